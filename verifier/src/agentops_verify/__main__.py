"""``python -m agentops_verify``: the same command as ``agentops-verify``."""

from ._cli import main

raise SystemExit(main())
