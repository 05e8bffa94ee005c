"""SECURITY.md names the test behind each claim; every name it gives must be a test that exists (and every matrix
row or hostile-request case it cites must exist), so the document cannot silently outlive its evidence."""

from __future__ import annotations

import ast
import re

from tests.hardening.hostile_input.test_http_hostile_input import HOSTILE
from tests.support.paths import REPO_ROOT
from tests.tamper.matrix.test_every_attack_gets_its_exact_verdict import ATTACKS

REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[(\w+)\])?`")
CASE_NAMES = {attack.name for attack in ATTACKS} | {case.name for case in HOSTILE}


def document() -> str:
    return (REPO_ROOT / "SECURITY.md").read_text(encoding="utf-8")


def functions_in(path: str) -> set[str]:
    tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_test_named_in_security_md_exists() -> None:
    references = REFERENCE.findall(document())
    assert len(references) >= 30
    for path, name, case in references:
        assert (REPO_ROOT / path).is_file(), path
        assert name in functions_in(path), f"{path}::{name}"
        if case:
            assert case in CASE_NAMES, case


def test_every_bracketed_case_cited_alone_exists() -> None:
    cited = set(re.findall(r"`\[(\w+)\]`", document()))
    assert cited
    assert cited <= CASE_NAMES


def test_every_matrix_row_cited_exists() -> None:
    groups = re.findall(r"\(rows?\s([^)]*)\)", document())
    rows = {name for group in groups for name in re.findall(r"`([a-z0-9_]+)`", group)}
    assert len(rows) >= 15
    assert rows <= CASE_NAMES
