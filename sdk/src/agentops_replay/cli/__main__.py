"""``python -m agentops_replay.cli``: the same command as ``agentops-replay``."""

from ._main import main

raise SystemExit(main())
