"""The browser's verifier agrees with agentops-verify (issue 15): for every case of ``corpus`` the page and the Python
library, given the same document bytes and the same pinned key id, reach the same status, first violation (and, for
a violation in an event, the same event), evidence class and partial reasons."""

from __future__ import annotations

from typing import Any

import pytest
from agentops_verify import TrustStore, verify_bytes

from tests.browser.corpus import Case, all_cases
from tests.browser.viewing import Viewer

CASES = all_cases()


def python_verdict(case: Case) -> dict[str, Any]:
    report = verify_bytes(case.document, trust=TrustStore(pinned_ids=[case.pin] if case.pin else []))
    violation = report.first_violation
    return {
        "status": report.status,
        "first_violation": violation.type if violation else "",
        "event": violation.event_sequence if violation and violation.event_id else None,
        "evidence_class": report.evidence_class,
        "partial_reasons": list(report.partial_reasons),
    }


def browser_verdict(viewer: Viewer, case: Case) -> dict[str, Any]:
    shown = viewer.show(case.document, case.pin, name=case.name)
    violations = shown.report["violations"]
    violation = violations[0] if violations else None
    return {
        "status": shown.status,
        "first_violation": shown.first_violation,
        "event": violation["event_sequence"] if violation and violation["event_id"] else None,
        "evidence_class": shown.evidence_class,
        "partial_reasons": shown.report["partial_reasons"],
    }


def test_the_corpus_holds_the_seed_vectors_the_tamper_matrix_and_the_viewer_cases() -> None:
    names = [case.name for case in CASES]
    assert sum(name.startswith("seed_") for name in names) == 4
    assert sum(name.startswith("matrix_") for name in names) >= 70
    assert {"one_payload_byte_changed", "genuine_pinned", "genuine_unpinned"} <= set(names)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_browser_and_python_verifiers_agree(case: Case, viewer: Viewer) -> None:
    assert browser_verdict(viewer, case) == python_verdict(case)
