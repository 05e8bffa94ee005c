"""The replay viewer as a reader meets it (issue 15), opened from disk in headless Chromium: the verdict on the root
element, the header and the evidence support statement, the timeline (pairs, marks, filters, search, keyboard), the
pinned key, and a page that reaches nothing outside itself."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from agentops_verify import canonicalize

from tests.browser.chromium import Page
from tests.browser.documents import export_document, withheld_lines
from tests.browser.viewing import Shown, Viewer
from tests.support.chains import Event, build_chain, rehash_from, reseal
from tests.support.keys import TestSigner, default_signer, make_signer
from tests.unit.replay_export.exports import export_of, sealed_chain

AUTHORITATIVE = "AUTHORITATIVE_EVIDENCE"
PARTIAL = "PARTIAL_AUTHORITATIVE_EVIDENCE"


def session_payload(sequence_number: int) -> tuple[str, dict[str, Any]]:
    """0 START, 1 request, 2 tool call, 3 its result (failed), 4 error, 5 drop, 6 decision with a redaction, 7 reply,
    8 END (failure), 9 seal."""
    payloads: dict[int, tuple[str, dict[str, Any]]] = {
        1: ("MODEL_REQUEST", {"model": "gpt-x", "messages": [{"role": "user", "content": "Wie spät ist es in 東京?"}]}),
        2: ("TOOL_CALL", {"tool_name": "clock", "tool_id": "call-7", "args": {"zone": "Asia/Tokyo"}}),
        3: ("TOOL_RESULT", {"tool_name": "clock", "tool_id": "call-7", "status": "error", "result": None}),
        4: ("ERROR", {"error_type": "ToolError", "message": "clock service unreachable", "fatal": False}),
        5: ("LOG_DROP", {"dropped_count": 4, "cumulative_drops": 4, "drop_reason": "NETWORK_LOSS"}),
        6: (
            "DECISION_TRACE",
            {
                "decision_id": "d-1",
                "inputs": {"user_email": "[REDACTED]", "user_email_hash": "ab" * 32},
                "outputs": {"reply": "apologize"},
                "justification": "the tool failed",
            },
        ),
        7: ("MODEL_RESPONSE", {"model": "gpt-x", "content": "Sorry, I cannot tell the time right now."}),
    }
    return payloads[sequence_number]


def failed_session(signer: TestSigner) -> list[Event]:
    """A sealed session that ended in failure: ``session_payload`` events, then SESSION_END failure, then the seal."""
    events = build_chain(9, signer=signer, payload_factory=session_payload)
    events[8]["payload"] = {"status": "failure", "reason": "tool outage", "duration_ms": 8000}
    return reseal(rehash_from(events, 8), signer)


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return make_signer()


@pytest.fixture(scope="module")
def session(signer: TestSigner) -> list[Event]:
    return failed_session(signer)


def lines(events: Sequence[Event]) -> list[bytes]:
    return [canonicalize(event) for event in events]


def row_texts(page: Page) -> list[dict[str, Any]]:
    """The timeline rows the page has drawn, top to bottom."""
    script = """JSON.stringify([...document.querySelectorAll('#timeline .row:not([hidden])')]
      .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
      .map((row) => ({index: Number(row.dataset.index), classes: row.className, text: row.innerText})))"""
    rows: list[dict[str, Any]] = json.loads(page.evaluate(script))
    return rows


CLEAR_SEARCH = """(() => {
  const search = document.getElementById("search");
  search.value = "";
  search.dispatchEvent(new Event("input"));
  search.blur();
})()"""


def text_of(page: Page, element_id: str) -> str:
    return str(page.evaluate(f"document.getElementById({json.dumps(element_id)}).textContent"))


# ---- the verdict (issue 15, "Done when") ---------------------------------------------------------------------------


def test_sealed_session_with_its_key_pinned_in_the_address_is_pass_and_authoritative(viewer: Viewer) -> None:
    signer = make_signer()
    document = export_document(lines(build_chain(6, signer=signer)), signers=[signer])
    shown = viewer.show(document, signer.key_id)
    assert (shown.status, shown.evidence_class, shown.first_violation) == ("PASS", AUTHORITATIVE, "")
    assert shown.verified_events == 7
    assert shown.report["seal_key_trusted"] is True


def test_the_exporter_s_own_document_verifies_in_the_browser(viewer: Viewer) -> None:
    """The export route's document (agentops_server.export), withheld payloads, a drop and a redaction included."""
    events = sealed_chain(12, signer=default_signer())
    for withhold in (False, [2, 4]):
        document = export_of(events, withhold=withhold)
        shown = viewer.show(document.body, default_signer().key_id)
        assert (shown.status, shown.evidence_class) == ("PASS", document.evidence_class)
        assert shown.report["partial_reasons"] == ["LOG_DROP_PRESENT"]
        assert shown.verified_events == len(events)


def test_one_changed_payload_byte_fails_and_points_at_the_event(viewer: Viewer, signer: TestSigner) -> None:
    events = build_chain(6, signer=signer)
    document = export_document(lines(events), signers=[signer])
    changed = document.replace(b'"expression":"2+2"', b'"expression":"2+3"', 1)
    assert changed != document
    shown = viewer.show(changed, signer.key_id)
    assert (shown.status, shown.evidence_class, shown.first_violation) == (
        "FAIL",
        "NON_AUTHORITATIVE_EVIDENCE",
        "PAYLOAD_HASH_MISMATCH",
    )
    assert shown.verified_events == 3  # events 0-2 verified, event 3 is the TOOL_CALL whose args changed
    assert "PAYLOAD_HASH_MISMATCH at event #3" in text_of(viewer.page, "verification-summary")
    flagged = [row for row in row_texts(viewer.page) if "violation" in row["classes"].split()]
    assert [row["index"] for row in flagged] == [3]


def test_without_a_pinned_key_the_class_is_partial_and_pasting_the_key_id_makes_it_authoritative(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    document = export_document(lines(build_chain(5, signer=signer)), signers=[signer])
    shown = viewer.show(document)
    assert (shown.status, shown.evidence_class) == ("PASS", PARTIAL)
    assert shown.report["partial_reasons"] == ["UNTRUSTED_SEAL_KEY"]
    page = viewer.page
    page.evaluate("document.getElementById('pin-input').focus()")
    page.type_text(make_signer().key_id)  # a well-formed id of a key that did not sign
    page.wait_for("document.getElementById('pin-note').textContent.includes('another key')")
    assert page.evaluate("document.documentElement.dataset.evidenceClass") == PARTIAL
    page.evaluate("document.getElementById('pin-input').value = ''")
    page.type_text(signer.key_id)
    page.wait_for(f"document.documentElement.dataset.evidenceClass === {json.dumps(AUTHORITATIVE)}")
    assert page.evaluate("location.hash") == f"#pin={signer.key_id}"  # the address now carries the pin


def test_a_malformed_pin_is_refused_and_pins_nothing(viewer: Viewer, signer: TestSigner) -> None:
    document = export_document(lines(build_chain(5, signer=signer)), signers=[signer])
    shown = viewer.show(document, signer.key_id.upper())
    assert shown.evidence_class == PARTIAL
    assert "Not a key id" in text_of(viewer.page, "pin-note")


# ---- the header and the statement ---------------------------------------------------------------------------------


def test_header_says_who_ran_how_it_ended_what_was_claimed_and_what_verified(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    document = export_document(lines(session), signers=[signer])
    viewer.show(document, signer.key_id)
    page = viewer.page
    assert text_of(page, "fact-session") == session[0]["session_id"]
    assert text_of(page, "fact-agent") == "test-agent"
    assert text_of(page, "fact-status") == "failure — tool outage"
    assert text_of(page, "fact-claimed") == PARTIAL  # a LOG_DROP: partial however it is pinned
    assert text_of(page, "fact-verified") == PARTIAL
    assert text_of(page, "fact-seal-key") == signer.key_id
    assert page.evaluate("document.getElementById('pin-input').value") == signer.key_id
    assert "LOG_DROP_PRESENT" in text_of(page, "verification-details")


def test_evidence_support_statement_says_what_the_page_is_not(viewer: Viewer, signer: TestSigner) -> None:
    viewer.show(export_document(lines(build_chain(4, signer=signer)), signers=[signer]))
    statement = " ".join(text_of(viewer.page, "statement").split())
    for claim in (
        "it is not evidence",
        "not a compliance certification",
        "not a guarantee that the agent behaved correctly",
        "not legal advice",
        "the record is not complete",
    ):
        assert claim in statement


# ---- the timeline -----------------------------------------------------------------------------------------------


def test_every_event_is_a_row_with_its_type_time_and_summary(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    viewer.show(export_document(lines(session), signers=[signer]), signer.key_id)
    rows = row_texts(viewer.page)
    assert [row["index"] for row in rows] == list(range(len(session)))
    for row, event in zip(rows, session, strict=True):
        assert event["event_type"] in row["text"]
        assert event["timestamp_wall"] in row["text"]
    assert "clock service unreachable" in rows[4]["text"]
    assert "Wie spät ist es in 東京?" in rows[1]["text"]


def test_errors_drops_redactions_and_withheld_payloads_are_marked(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    document = export_document(withheld_lines(lines(session), [7]), signers=[signer])
    shown = viewer.show(document, signer.key_id)
    assert shown.status == "PASS"
    classes = {row["index"]: set(row["classes"].split()) for row in row_texts(viewer.page)}
    texts = {row["index"]: row["text"] for row in row_texts(viewer.page)}
    assert [index for index, names in classes.items() if "error" in names] == [3, 4, 8]  # failed tool, ERROR, END
    assert [index for index, names in classes.items() if "drop" in names] == [5]
    assert "gap: 4 event(s) dropped" in texts[5]
    assert "[REDACTED]×1" in texts[6]
    assert [index for index, names in classes.items() if "withheld" in names] == [7]
    assert "payload withheld" in texts[7]


def test_a_tool_call_is_paired_with_its_result_and_enter_jumps_between_them(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    viewer.show(export_document(lines(session), signers=[signer]), signer.key_id)
    page = viewer.page
    rows = row_texts(page)
    assert "→ result #3" in rows[2]["text"]
    assert "← call #2" in rows[3]["text"]
    page.evaluate("document.getElementById('timeline').focus()")
    for _ in range(3):
        page.press("j")
    assert page.evaluate("document.documentElement.dataset.selectedEvent") == "2"
    assert "Its result: #3" in text_of(page, "detail")
    page.press("Enter")
    assert page.evaluate("document.documentElement.dataset.selectedEvent") == "3"
    page.press("Enter")
    assert page.evaluate("document.documentElement.dataset.selectedEvent") == "2"


def test_keyboard_moves_through_the_timeline_and_the_detail_pane_follows(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    viewer.show(export_document(lines(session), signers=[signer]), signer.key_id)
    page = viewer.page
    page.evaluate("document.getElementById('timeline').focus()")
    selected = "document.documentElement.dataset.selectedEvent"
    page.press("ArrowDown")
    assert page.evaluate(selected) == "0"
    page.press("End")
    assert page.evaluate(selected) == str(len(session) - 1)
    assert "CHAIN_SEAL" in text_of(page, "detail")
    page.press("k")
    page.press("ArrowUp")
    assert page.evaluate(selected) == str(len(session) - 3)
    page.press("Home")
    assert page.evaluate(selected) == "0"
    assert '"agent_id": "test-agent"' in text_of(page, "detail")
    page.press("/")
    assert page.evaluate("document.activeElement.id") == "search"


def test_filter_by_type_and_search_narrow_the_timeline(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    viewer.show(export_document(lines(session), signers=[signer]), signer.key_id)
    page = viewer.page
    page.evaluate("document.querySelector('#type-filter button[data-type=\"TOOL_CALL\"]').click()")
    assert 2 not in [row["index"] for row in row_texts(page)]
    assert text_of(page, "shown-count") == f"{len(session) - 1} of {len(session)} events shown"
    page.evaluate("document.querySelector('#type-filter button[data-type=\"TOOL_CALL\"]').click()")
    page.evaluate("document.getElementById('search').focus()")
    page.type_text("UNREACHABLE")
    page.wait_for("document.getElementById('shown-count').textContent.startsWith('1 of')")
    assert [row["index"] for row in row_texts(page)] == [4]
    page.evaluate(CLEAR_SEARCH)
    page.wait_for(f"document.getElementById('shown-count').textContent.startsWith('{len(session)} of')")
    page.evaluate("document.getElementById('only-flagged').click()")
    assert [row["index"] for row in row_texts(page)] == [3, 4, 5, 6, 8]  # failures, the drop, the redaction


def test_a_long_session_draws_only_the_rows_in_view(viewer: Viewer) -> None:
    signer = make_signer()
    events = build_chain(3000, signer=signer)
    shown = viewer.show(export_document(lines(events), signers=[signer]), signer.key_id)
    assert (shown.status, shown.verified_events) == ("PASS", 3001)
    page = viewer.page
    drawn = page.evaluate("document.querySelectorAll('#timeline .row').length")
    assert 0 < drawn < 200
    page.evaluate("document.getElementById('timeline').focus()")
    page.press("End")
    page.settle(0.1)
    assert row_texts(page)[-1]["index"] == 3000


# ---- nothing leaves the page ------------------------------------------------------------------------------------


def test_the_page_makes_no_network_request_and_violates_no_policy(
    viewer: Viewer, signer: TestSigner, session: list[Event]
) -> None:
    page = viewer.page
    before = len(page.requests)
    shown = viewer.show(export_document(lines(session), signers=[signer]), signer.key_id)
    page.evaluate("document.getElementById('timeline').focus()")
    for key in ("j", "j", "Enter", "End"):
        page.press(key)
    page.evaluate("document.getElementById('search').focus()")
    page.type_text("clock")
    page.settle(0.3)
    assert page.requests[before:] == [shown.url.split("#")[0]]  # the file itself, nothing else
    assert page.evaluate("JSON.stringify(window.__cspViolations)") == "[]"
    assert page.console_errors == []


def test_the_policy_stops_a_request_even_from_script_the_page_did_not_plan(viewer: Viewer, signer: TestSigner) -> None:
    viewer.show(export_document(lines(build_chain(4, signer=signer)), signers=[signer]))
    page = viewer.page
    before = len(page.requests)
    page.evaluate(
        """(async () => {
          const image = new Image(); image.src = "https://example.invalid/pixel.png";
          try { await fetch("https://example.invalid/data"); } catch (error) { /* refused */ }
        })()"""
    )
    page.settle(0.3)
    directives = {violation["directive"] for violation in json.loads(page.evaluate("JSON.stringify(__cspViolations)"))}
    assert {"img-src", "connect-src"} <= directives
    attempted = [url for url in page.requests[before:] if "example.invalid" in url]
    assert attempted  # the browser saw the attempts...
    assert {url: page.blocked.get(url) for url in attempted} == dict.fromkeys(attempted, "csp")  # ...and sent none


def test_the_viewer_report_is_the_page_verdict(viewer: Viewer, signer: TestSigner) -> None:
    shown: Shown = viewer.show(export_document(lines(build_chain(4, signer=signer)), signers=[signer]), signer.key_id)
    assert shown.report["status"] == shown.status
    assert shown.report["evidence_class"] == shown.evidence_class
    assert shown.report["verified_events"] == shown.verified_events
