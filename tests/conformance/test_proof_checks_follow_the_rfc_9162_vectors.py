"""RFC 9162 proof verification (LOG.md section 1) against the transparency-dev/merkle probe vectors.

Every vector is checked: ``wantErr: false`` must verify, ``wantErr: true`` must be refused with ``ProofError``. The
one vector listed in ``LIBRARY_API_EDGES`` encodes that library's API rather than RFC 9162 (see the vectors'
README): its "roots" are not SHA-256 hashes, which this verifier refuses whatever the sizes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from agentops_verify import HASH_SIZE, ProofError, verify_consistency, verify_inclusion

from tests.support.paths import CONFORMANCE

VECTORS = CONFORMANCE / "rfc9162"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))
# Equal sizes with equal 12-byte "don't care" roots: the Go library accepts them, this verifier requires hashes.
LIBRARY_API_EDGES = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _name(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def _load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text())
    return vector


def _hashes(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(value) for value in values or []]


def test_all_196_vectors_are_present() -> None:
    assert len(INCLUSION) + len(CONSISTENCY) == 196
    assert len(INCLUSION) > 50
    assert len(CONSISTENCY) > 50


def test_library_api_edges_are_the_vectors_whose_roots_are_not_hashes() -> None:
    for name in LIBRARY_API_EDGES:
        vector = _load(VECTORS / name)
        assert vector["wantErr"] is False
        assert vector["size1"] == vector["size2"]
        assert len(base64.b64decode(vector["root1"])) != HASH_SIZE


@pytest.mark.parametrize("path", INCLUSION, ids=_name)
def test_inclusion_vector(path: Path) -> None:
    vector = _load(path)

    def check() -> None:
        verify_inclusion(
            base64.b64decode(vector["leafHash"]),
            vector["leafIdx"],
            vector["treeSize"],
            _hashes(vector["proof"]),
            base64.b64decode(vector["root"]),
        )

    if vector["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


@pytest.mark.parametrize("path", CONSISTENCY, ids=_name)
def test_consistency_vector(path: Path) -> None:
    vector = _load(path)

    def check() -> None:
        verify_consistency(
            vector["size1"],
            vector["size2"],
            base64.b64decode(vector["root1"]),
            base64.b64decode(vector["root2"]),
            _hashes(vector["proof"]),
        )

    if vector["wantErr"] or _name(path) in LIBRARY_API_EDGES:
        with pytest.raises(ProofError):
            check()
    else:
        check()
