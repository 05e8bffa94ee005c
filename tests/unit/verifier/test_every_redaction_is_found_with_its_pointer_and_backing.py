"""The redaction rule of ELS section 3, stated once: every "[REDACTED]" with its JSON Pointer and whether a string
``<key>_hash`` sibling backs it. The verifier, the service and the SDK ask these functions, so they agree."""

from __future__ import annotations

from agentops_verify import (
    REDACTED,
    REDACTION_INTEGRITY,
    Redaction,
    canonicalize,
    chain_event,
    find_redactions,
    find_unbacked_redaction,
    has_redaction_hash,
    is_redacted,
    verify_lines,
)

from tests.support.chains import build_chain


def test_every_redaction_in_document_order_with_its_pointer() -> None:
    payload = {
        "a": {"x": REDACTED, "x_hash": "h"},
        "b": REDACTED,
        "c": [REDACTED, {"d/e~f": REDACTED}],
    }
    assert list(find_redactions(payload, "/payload")) == [
        Redaction("/payload/a/x", backed=True),
        Redaction("/payload/b", backed=False),
        Redaction("/payload/c/0", backed=False),  # an array element has no key, so no sibling
        Redaction("/payload/c/1/d~1e~0f", backed=False),
    ]
    assert find_unbacked_redaction(payload) == "/b"
    assert find_unbacked_redaction(payload, "/payload") == "/payload/b"


def test_only_a_string_sibling_hash_backs_a_redaction() -> None:
    assert find_unbacked_redaction({"k": REDACTED, "k_hash": None}) == "/k"
    assert find_unbacked_redaction({"k": REDACTED, "k_hash": 7}) == "/k"
    assert find_unbacked_redaction({"k": REDACTED, "k_hash": "salted:abc"}) is None
    assert has_redaction_hash({"k_hash": "h"}, "k")
    assert not has_redaction_hash({"k_hash": ["h"]}, "k")


def test_marker_is_the_exact_string() -> None:
    assert is_redacted("[REDACTED]")
    assert not is_redacted("[redacted]")
    assert not is_redacted(["[REDACTED]"])
    assert find_unbacked_redaction({"k": "[REDACTED] by policy"}) is None


def test_verifier_reports_the_first_unbacked_redaction_by_its_pointer() -> None:
    events = build_chain(3, seal=None)
    middle = events[1]
    events[1] = chain_event(
        event_id=middle["event_id"],
        session_id=middle["session_id"],
        sequence_number=1,
        timestamp_wall=middle["timestamp_wall"],
        event_type="TOOL_CALL",
        payload={"tool_name": "lookup", "args": {"first": REDACTED, "first_hash": "h", "then": REDACTED}},
        prev_event_hash=events[0]["event_hash"],
        chain_authority="server",
    )
    report = verify_lines([canonicalize(event) for event in events[:2]])
    violation = report.violations[0]
    assert (violation.type, violation.event_sequence) == (REDACTION_INTEGRITY, 1)
    assert violation.context == {"path": "/args/then"}
