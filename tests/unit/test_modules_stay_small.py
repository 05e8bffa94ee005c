"""The size limits of docs/architecture.md, enforced on the source: no module of the layers or the verifier over 500
lines (one concept per module), and every Lambda handler a thin router of at most 60 lines."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 500
MAX_HANDLER_LINES = 60
MODULES = sorted([*(REPO / "layers").rglob("*.py"), *(REPO / "verifier" / "src").rglob("*.py")])
HANDLERS = sorted((REPO / "functions").glob("*/app.py"))


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("path", MODULES, ids=[str(path.relative_to(REPO)) for path in MODULES])
def test_no_module_of_the_layers_or_the_verifier_is_over_500_lines(path: Path) -> None:
    assert _lines(path) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", HANDLERS, ids=[str(path.relative_to(REPO)) for path in HANDLERS])
def test_every_handler_is_at_most_60_lines(path: Path) -> None:
    assert _lines(path) <= MAX_HANDLER_LINES


def test_the_limits_are_checked_on_every_module_and_handler() -> None:
    assert len(MODULES) > 60
    assert len(HANDLERS) == 6
