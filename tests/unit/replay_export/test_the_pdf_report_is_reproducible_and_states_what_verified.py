"""The PDF rendering of an export: made from the document alone, readable, and the same bytes every time."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest
from agentops_server.pdf import EVIDENCE_SUPPORT_STATEMENT, render_pdf
from agentops_verify import (
    Checkpoint,
    LogChecks,
    LogProof,
    TileBuilder,
    TileReader,
    TrustStore,
    inclusion_proof,
    load_pem_public_key,
    loads,
    verify_export,
)

from tests.support.chains import build_chain, ordinary_payload
from tests.support.evidence_log import ORIGIN, leaf_for, sign_note
from tests.support.keys import default_signer
from tests.unit.replay_export.exports import export_of, sealed_chain
from tests.unit.replay_export.pdf_text import pdf_strings, pdf_text


def test_two_renders_of_one_export_are_byte_identical() -> None:
    body = export_of(sealed_chain()).body

    assert render_pdf(body) == render_pdf(body)


def test_render_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    body = export_of(sealed_chain()).body
    first = render_pdf(body)

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1893456000")  # reportlab's own timestamp override must not leak in
    second = render_pdf(body)

    assert first == second
    assert b"D:20260102083000+00'00'" in first  # the export's generated_at, not a clock


def test_different_exports_render_differently() -> None:
    assert render_pdf(export_of(sealed_chain()).body) != render_pdf(export_of(sealed_chain()).body)


def test_pdf_carries_the_statement_the_session_and_every_sequence_number() -> None:
    events = sealed_chain(200)
    pdf = render_pdf(export_of(events).body, compress=False)

    text = pdf_text(pdf)
    strings = pdf_strings(pdf)

    for sentence in EVIDENCE_SUPPORT_STATEMENT:
        assert sentence in text
    assert events[0]["session_id"] in text
    event_table = strings[strings.index("Events") : strings.index("Seal and keys")]
    # Each page of the table is drawn column by column: "Seq", then that page's sequence numbers.
    sequence_numbers = []
    for position, piece in enumerate(event_table):
        if piece == "Seq":
            sequence_numbers += [int(value) for value in itertools.takewhile(str.isdigit, event_table[position + 1 :])]
    assert sequence_numbers == [event["sequence_number"] for event in events]
    for event in events:
        assert event["timestamp_wall"] in event_table
        assert event["payload_hash"] in event_table


def test_partial_evidence_says_so_on_the_cover_with_its_reasons() -> None:
    text = pdf_text(render_pdf(export_of(sealed_chain()).body, compress=False))

    cover = text[: text.index("page 2")]
    assert "Evidence class: PARTIAL_AUTHORITATIVE_EVIDENCE" in cover
    assert "This record is partial. Reasons: LOG_DROP_PRESENT" in cover


def test_redactions_drops_withheld_payloads_and_pii_findings_are_shown() -> None:
    body = export_of(sealed_chain(), [6]).body

    text = pdf_text(render_pdf(body, compress=False))

    assert "redacted: 1" in text
    assert "dropped 2 (BUFFER_FULL)" in text
    assert "payload withheld" in text
    assert "/payload/result/note" in text
    assert "PAYMENT_CARD_NUMBER" in text
    assert "4111111111111111" not in text


def test_seal_and_key_annex_names_the_fingerprint_and_the_verification_result() -> None:
    body = export_of(build_chain(6)).body
    document = loads(body)

    text = pdf_text(render_pdf(body, compress=False))

    assert "Evidence class: AUTHORITATIVE_EVIDENCE" in text
    assert f"signer_key_id: {document['seal']['signer_key_id']}" in text
    assert f"Seal key id (fingerprint) {document['verification']['seal_key_id']}" in text
    assert f"Replay fingerprint {document['verification']['replay_fingerprint']}" in text
    assert "Chain of custody" in text


def test_what_nothing_signs_is_labelled_so() -> None:
    text = pdf_text(render_pdf(export_of(sealed_chain()).body, compress=False))

    assert "Export generated at (not signed) 2026-01-02T08:30:00.000000Z" in text
    assert "Export generator (not signed)" in text
    assert "not evidence: nothing signs it" in text


PATIENT = "Jane Roe-Castellano"


def _patient_payloads(sequence_number: int) -> tuple[str, dict[str, object]]:
    if sequence_number == 3:
        return "TOOL_RESULT", {"tool_name": "crm", "result": {"patients": {PATIENT: {"contact": "jane@example.com"}}}}
    if sequence_number == 4:
        return "LOG_DROP", {"dropped_count": 1, "cumulative_drops": 1, "drop_reason": "BUFFER_FULL"}
    if sequence_number == 5:
        return "TOOL_CALL", {"tool_name": "crm", "args": {PATIENT: "[REDACTED]"}}
    return ordinary_payload(sequence_number)


@pytest.mark.parametrize("withhold", [True, [3, 4, 5]])
def test_withheld_export_pdf_leaks_no_member_names(withhold: bool | list[int]) -> None:
    events = build_chain(8, payload_factory=_patient_payloads)
    disclosed = pdf_text(render_pdf(export_of(events).body, compress=False))
    assert PATIENT in disclosed  # disclosed, the pointers name the member

    text = pdf_text(render_pdf(export_of(events, withhold).body, compress=False))

    for leak in (PATIENT, "patients", "/payload", "redacted: ", "dropped 1", "BUFFER_FULL"):
        assert leak not in text
    assert "payload withheld" in text


def test_text_outside_the_built_in_fonts_is_shown_escaped() -> None:
    def payloads(sequence_number: int) -> tuple[str, dict[str, object]]:
        return "TOOL_RESULT", {"tool_name": "crm", "result": {"名前": "bob@example.com"}}

    body = export_of(build_chain(3, payload_factory=payloads)).body

    text = pdf_text(render_pdf(body, compress=False))

    assert "/payload/result/\\u540d\\u524d" in text


def test_a_re_serialized_document_renders_the_same_report_text() -> None:
    body = export_of(sealed_chain(30)).body
    pretty = json.dumps(json.loads(body), indent=2, ensure_ascii=True).encode()

    canonical_text = pdf_text(render_pdf(body, compress=False))
    pretty_text = pdf_text(render_pdf(pretty, compress=False))

    # Only the document's own SHA-256 differs (it is printed on the cover and in the chain of custody).
    assert canonical_text.replace(hashlib.sha256(body).hexdigest(), "") == pretty_text.replace(
        hashlib.sha256(pretty).hexdigest(), ""
    )


FAILED_AT = 11


def _failed_session(sequence_number: int) -> tuple[str, dict[str, object]]:
    """A support agent whose refund tool fails: a tool error, a fatal ERROR, then SESSION_END failure."""
    scripted: dict[int, tuple[str, dict[str, object]]] = {
        1: ("MODEL_REQUEST", {"model": "gpt-4o", "provider": "openai", "messages": []}),
        2: ("MODEL_RESPONSE", {"model": "gpt-4o", "finish_reason": "tool_calls"}),
        3: ("TOOL_CALL", {"tool_name": "lookup_order", "tool_id": "call-1", "args": {"order": "A-17"}}),
        4: ("TOOL_RESULT", {"tool_name": "lookup_order", "tool_id": "call-1", "status": "success", "result": {}}),
        5: ("TOOL_CALL", {"tool_name": "lookup_order", "tool_id": "call-2", "args": {"order": "A-18"}}),
        6: ("TOOL_RESULT", {"tool_name": "lookup_order", "tool_id": "call-2", "status": "success", "result": {}}),
        7: (
            "TOOL_CALL",
            {"tool_name": "issue_refund", "tool_id": "call-3", "args": {"email": "[REDACTED]", "email_hash": "a" * 64}},
        ),
        8: ("TOOL_RESULT", {"tool_name": "issue_refund", "tool_id": "call-3", "status": "error", "result": "frozen"}),
        9: (
            "ERROR",
            {"error_type": "PermissionDenied", "message": "account 4411 is frozen by compliance", "fatal": True},
        ),
        10: ("MODEL_REQUEST", {"model": "claude-3-haiku", "provider": "anthropic", "messages": []}),
        FAILED_AT: (
            "SESSION_END",
            {"status": "failure", "reason": "the refund could not be issued", "duration_ms": 11000},
        ),
    }
    return scripted[sequence_number]


def failed_session() -> list[dict[str, object]]:
    return build_chain(FAILED_AT + 1, end=False, payload_factory=_failed_session)


def test_pdf_of_a_failed_session_says_it_failed_and_why() -> None:
    body = export_of(failed_session()).body
    assert loads(body)["verification"]["status"] == "PASS"

    text = pdf_text(render_pdf(body, compress=False))

    cover = text[: text.index("page 2")]
    assert "This session FAILED" in cover
    assert "Reason: the refund could not be issued" in cover
    assert "event 9: PermissionDenied: account 4411 is frozen by compliance (fatal)" in cover
    assert "Agent test-agent (environment dev, test)" in cover
    assert "End status failure" in text
    assert "End reason the refund could not be issued" in text


def test_pdf_of_a_successful_session_does_not_say_it_failed() -> None:
    text = pdf_text(render_pdf(export_of(build_chain(10)).body, compress=False))

    cover = text[: text.index("page 2")]
    assert "The session ended: success" in cover
    assert "FAILED" not in text


def test_pdf_of_a_session_without_an_end_says_it_is_unknown() -> None:
    text = pdf_text(render_pdf(export_of(build_chain(6, end=False)).body, compress=False))

    assert "The session recorded no end (no SESSION_END): how it ended is unknown." in text[: text.index("page 2")]


def test_pdf_names_models_and_tools_with_counts() -> None:
    text = pdf_text(render_pdf(export_of(failed_session()).body, compress=False))

    assert "Model Requests Responses gpt-4o 1 1 claude-3-haiku 1 0" in text
    assert "Tool Calls Results by status lookup_order 2 success 2 issue_refund 1 error 1" in text
    # The errors, one row per distinct error (the table is drawn column by column).
    assert "Type PermissionDenied Message account 4411 is frozen by compliance Fatal yes Count 1" in text
    # The event table's summary column: model, tool and status, error message.
    for summary in (
        "gpt-4o (openai)",
        "lookup_order [call-1] -> success",
        "issue_refund [call-3] -> error",
        "PermissionDenied: account 4411 is frozen by compliance (fatal)",
        "failure: the refund could not be issued",
    ):
        assert summary in text


def test_pdf_marks_withheld_and_redacted_events() -> None:
    events = failed_session()

    text = pdf_text(render_pdf(export_of(events, [0, 9]).body, compress=False))

    event_table = text[text.index("All 13 events") : text.index("Seal and keys")]
    assert "[redacted: 1] issue_refund [call-3]" in event_table
    assert event_table.count("payload withheld (not in this export)") == 2
    assert "Agent: withheld in this export" in text[: text.index("page 2")]
    assert "2 payloads are withheld in this export and not counted here" in text
    assert "account 4411" not in text  # the withheld ERROR's message


def test_pdf_seal_event_count_is_labelled_events_before_the_seal() -> None:
    events = failed_session()

    text = pdf_text(render_pdf(export_of(events).body, compress=False))

    assert f"event_count (events before the seal) {len(events) - 1}" in text


def test_a_failed_session_with_withheld_payloads_renders_the_same_bytes_twice() -> None:
    body = export_of(failed_session(), [3]).body

    assert render_pdf(body) == render_pdf(body)


def _log_with(events: list[dict[str, object]]) -> dict[str, object]:
    """The log proof an export of ``events`` carries (LOG.md section 5): the session is leaf 1 of a log of three
    sealed sessions, signed by the seal key."""
    leaves = [leaf_for(build_chain(4)), leaf_for(events), leaf_for(build_chain(5))]
    builder = TileBuilder()
    tiles = {tile.path: tile.data for leaf in leaves for tile in builder.append(leaf.to_bytes())}
    tiles.update((tile.path, tile.data) for tile in builder.partial_tiles())
    note = sign_note(Checkpoint(ORIGIN, builder.size, builder.root()), default_signer()).decode()
    path = tuple(inclusion_proof(1, builder.size, TileReader(builder.size, tiles.__getitem__)))
    return LogProof(note, 1, leaves[1], path).to_dict()


def test_pdf_states_the_log_checkpoint_and_leaf_and_how_to_verify_the_proof_offline() -> None:
    events = build_chain(6)
    log_proof = _log_with(events)
    export = export_of(events, log_proof=log_proof)
    checkpoint_text = str(log_proof["checkpoint"]).split("\n")
    key = load_pem_public_key(default_signer().public_key_pem)
    report = verify_export(loads(export.body), trust=TrustStore([key]), log=LogChecks(keys=(key,)))
    assert report.passed  # a genuine proof, as the API serves it
    assert report.log is not None

    text = pdf_text(render_pdf(export.body, compress=False))

    custody = text[text.index("Chain of custody") :]
    assert f"Log checkpoint origin {ORIGIN}" in custody
    assert "Log tree size 3" in custody
    assert f"Log root hash (base64) {checkpoint_text[2]}" in custody
    assert "Leaf index of this session 1" in custody
    assert "places the session at leaf 1 of the evidence log" in custody
    assert "agentops-verify --log-key KEY --require-log-inclusion export.json" in custody
    assert "not yet in the" not in text


def test_pdf_of_an_export_without_a_log_proof_says_the_session_is_not_yet_in_the_log() -> None:
    text = pdf_text(render_pdf(export_of(build_chain(6)).body, compress=False))

    custody = text[text.index("Chain of custody") :]
    assert "Evidence log not yet in the log" in custody
    assert "The session is not yet in the deployment's evidence log" in custody
    assert "Log checkpoint origin" not in text


def test_pdf_of_an_unreadable_log_proof_says_the_verifier_reports_it_invalid() -> None:
    events = build_chain(6)
    log_proof = {**_log_with(events), "leaf_index": "one"}

    text = pdf_text(render_pdf(export_of(events, log_proof=log_proof).body, compress=False))

    assert "the export's log proof cannot be read" in text
    assert "LOG_PROOF_INVALID" in text
    assert "Leaf index of this session" not in text
