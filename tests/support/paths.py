"""Where things are, relative to the repository (CI runs in a fresh clone with shared/ beside it)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"
TEMPLATE = REPO_ROOT / "template.yaml"
FUNCTIONS = REPO_ROOT / "functions"
