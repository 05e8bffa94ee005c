"""Each rule of the evidence format is stated once, in the verifier package (issue 13): the service, the handlers and
the SDK import the redaction marker, the signature algorithm, the UUID form, the integer range and the list of event
types, and never write them again in code (docstrings and comments may name them)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import agentops_verify as els
import pytest

from tests.support.paths import REPO_ROOT

CONSUMERS = (REPO_ROOT / "layers" / "server" / "agentops_server", REPO_ROOT / "sdk" / "src", REPO_ROOT / "functions")
SOURCES = sorted(path for root in CONSUMERS for path in root.rglob("*.py"))
UUID_FRAGMENT = els.UUID_PATTERN[:14]  # "[0-9a-f]{8}-[0"


def _docstrings(tree: ast.Module) -> set[int]:
    owners = [tree, *(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.ClassDef))]
    return {
        id(owner.body[0].value)
        for owner in owners
        if owner.body and isinstance(owner.body[0], ast.Expr) and isinstance(owner.body[0].value, ast.Constant)
    }


def _restatements(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value == els.REDACTED:
                yield f"line {node.lineno}: the redaction marker (import REDACTED or is_redacted)"
            if node.value == els.SIGNATURE_ALGORITHM:
                yield f"line {node.lineno}: the signature algorithm (import SIGNATURE_ALGORITHM)"
            if UUID_FRAGMENT in node.value:
                yield f"line {node.lineno}: the UUID form (import is_canonical_uuid or UUID_PATTERN)"
            if els.HEX_DIGEST_PATTERN in node.value:
                yield f"line {node.lineno}: the hex digest form (import HEX_DIGEST_PATTERN)"
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Pow)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.right, ast.Constant)
            and (node.left.value, node.right.value) == (2, 53)
        ):
            yield f"line {node.lineno}: the integer range (import MAX_SAFE_INTEGER)"
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            named = [
                item.value for item in node.elts if isinstance(item, ast.Constant) and item.value in els.EVENT_TYPES
            ]
            if len(named) >= 3:
                yield f"line {node.lineno}: a list of event types (derive it from EVENT_TYPES)"


def test_the_consumers_are_found() -> None:
    assert len(SOURCES) > 40


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_no_consumer_restates_a_rule_of_the_format(path: Path) -> None:
    assert list(_restatements(path)) == []
