"""The three input shapes of ELS section 7: JSON Lines, a JSON array of events, an export document (``_exports``).

Bytes and parsed values in, a ``Report`` out; no I/O. The evidence-log checks (LOG.md sections 6 and 7) follow the
chain's when asked for (``_logchecks``); a chain's leaf must then name the SHA-256 of the input's exact bytes. A JSON
array or an export document is the only value of its input: text after it is MALFORMED_JSON (rev 2). A JSON value
that is none of the three is LOAD_ERROR, with a message that says what it looks like (rev 2), so an auditor who hands
over the wrong file learns which file it was.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from . import _codes as codes
from . import _rules as rules
from ._chain import ChainVerifier
from ._describe import json_kind
from ._errors import MalformedJSONError
from ._eventline import JSON_WHITESPACE
from ._exports import verify_export
from ._json import loads
from ._keys import KeyLookup, TrustStore
from ._logchecks import LogChecks, report_with_log_checks, seal_payload_of_line
from ._policy import Policy, input_failure
from ._report import Report, Violation

_WHITESPACE = JSON_WHITESPACE.encode("ascii")
_LEADING_WHITESPACE = re.compile(rb"[ \t\r\n]*")
# A JSON object holding any of these is read as an event (even a broken one), unless members of another document
# below give it away.
_EVENT_MEMBERS = frozenset(rules.ENVELOPE_FIELDS) - {"session_id"} | {rules.WITHHELD_MARK}
# JSON documents people hand over by mistake, recognized by members that give them away (API.md, LOG.md).
_LOOKALIKES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"keys"}), "looks like a key set (GET /v1/keys); pass it with --trusted-key"),
    (
        frozenset({"signer_key_id", "public_key_pem"}),
        "looks like one published key; pass keys with --trusted-key (a PEM file or a GET /v1/keys key set)",
    ),
    (
        frozenset({"checkpoint", "inclusion_proof"}),
        "looks like an evidence-log proof (GET /v1/sessions/{id}/log-proof), not a session",
    ),
    (
        frozenset({"frames"}),
        "looks like a replay page (GET /v1/sessions/{id}/replay); verify the session's archive or an export instead",
    ),
    (frozenset({"reports"}), "looks like agentops-verify output, not evidence"),
    (frozenset({"status", "evidence_class", "violations"}), "looks like a verification report, not evidence"),
    (
        frozenset({"next_sequence_number", "last_event_hash"}),
        "looks like a session head (GET /v1/sessions/{id}); verify the session's archive or an export instead",
    ),
    (frozenset({"sessions"}), "looks like a list of sessions (GET /v1/sessions), not a session"),
    (frozenset({"url", "sha256"}), "looks like an API answer that points at evidence; verify the file it points to"),
    (frozenset({"events"}), 'holds "events" but no "export_version", so it is not an export document'),
)


def verify_lines(
    lines: Iterable[bytes],
    *,
    trust: KeyLookup | None = None,
    policy: Policy = Policy(),  # noqa: B008
    allow_withheld_payloads: bool = False,
) -> Report:
    """Verify a session given as JSON Lines, one raw line per item (each with or without its LF).

    ``allow_withheld_payloads`` accepts events marked ``"payload_withheld": true`` (the events of an export
    document, ELS section 9), as the exporter needs when it verifies the events it is about to publish."""
    verifier = ChainVerifier(trust, policy, allow_withheld_payloads=allow_withheld_payloads)
    for line in lines:
        verifier.add_line(line)
    return verifier.finish()


def verify_events(events: Iterable[Any], *, trust: KeyLookup | None = None, policy: Policy = Policy()) -> Report:  # noqa: B008
    """Verify a session given as already-parsed events."""
    verifier = ChainVerifier(trust, policy)
    for event in events:
        verifier.add_event(event)
    return verifier.finish()


def verify_bytes(
    data: bytes,
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    source: str | None = None,
    log: LogChecks | None = None,
) -> Report:
    """Verify one input of any of the three shapes, detected from its content, then the evidence-log checks ``log``
    asks for (for a chain, its log proof's leaf must name the SHA-256 of ``data``)."""
    start = _skip_whitespace(data, 0)
    line_end = data.find(b"\n", start)
    shape, value = detect_shape(data[start : line_end + 1 if line_end >= 0 else len(data)], data)
    if shape == "jsonl":
        lines = data.split(b"\n")
        verifier = ChainVerifier(trust, policy)
        for line in lines:
            verifier.add_line(line)
        if log is None:
            return verifier.finish(source=source)
        events = [line for line in lines if line.strip(_WHITESPACE)]
        return report_with_log_checks(
            verifier.outcome(),
            policy,
            log,
            seal_payload=seal_payload_of_line(events[-1]) if events else None,
            events=lambda: map(loads, events),
            archive_sha256=hashlib.sha256(data).hexdigest(),
            source=source,
        )
    if shape == "trailing":
        what, offset = value
        message = f"text follows the {what} at character {offset}; such a file holds that one JSON value only"
        violation = Violation(codes.MALFORMED_JSON, message, context={"offset": offset})
        return input_failure(violation, policy, source=source)
    if shape == "not-i-json":
        what, problem = value
        violation = Violation(codes.MALFORMED_JSON, f"the {what} is not I-JSON: {problem}")
        return input_failure(violation, policy, source=source)
    archive_sha256 = hashlib.sha256(data).hexdigest() if log is not None else None
    return _verify_value(value, trust=trust, policy=policy, source=source, log=log, archive_sha256=archive_sha256)


def detect_shape(first_line: bytes, whole: bytes | None) -> tuple[str, Any]:
    """How to read an input: ``("jsonl", None)``, ``("document", parsed value)``, ``("trailing", (what, offset))``
    for an array or export document with text after it, or ``("not-i-json", (what, problem))`` for one holding
    something the strict reading refuses (a duplicate key, NaN, ...).

    ``first_line`` is the input's first line that is not blank, with its LF; ``whole`` is the complete input, or None
    when the caller streams and will supply it only if asked (then the answer may be ``("needs-whole", None)``). A
    first line that is a complete event starts JSON Lines; so does a first line that is not JSON and does not open an
    object or array, which is then reported as malformed with its line number. Anything else is read as one JSON
    value; if the whole input is not one, it is read as JSON Lines after all, unless it starts with a complete array
    or export document (then the text after it, or what the strict reading refused in it, is the problem).
    """
    head = first_line.strip(_WHITESPACE)
    if head[:1] != b"[":
        try:
            first = loads(head)
        except MalformedJSONError:
            if head[:1] != b"{":
                return "jsonl", None
        else:
            if type(first) is dict and "export_version" not in first and _looks_like_event(first):
                return "jsonl", None
            if whole is not None and _only_whitespace_after(whole, head):
                return "document", first
    if whole is None:
        return "needs-whole", None
    try:
        return "document", loads(whole)
    except MalformedJSONError as error:
        strict_error = str(error)
    leading = _leading_value(whole)
    if leading is not None:
        value, offset, text_follows = leading
        what = _document_kind(value)
        if what is not None:
            # An array or export document, by a lenient reading: the problem is the text after it if there is any,
            # else what the strict reading refused in it (not its first line read as JSON Lines).
            if text_follows:
                return "trailing", (what, offset)
            return "not-i-json", (what, strict_error)
    return "jsonl", None


def _document_kind(value: Any) -> str | None:
    if type(value) is list:
        return "JSON array"
    if type(value) is dict and "export_version" in value:
        return "export document"
    return None


def verify_document(
    document: Any,
    *,
    trust: TrustStore | None = None,
    policy: Policy = Policy(),  # noqa: B008
    source: str | None = None,
    log: LogChecks | None = None,
) -> Report:
    """Verify one parsed JSON document: an array of events, an export document, or a single event; then the
    evidence-log checks ``log`` asks for (a parsed document has no bytes, so a leaf's ``archive_sha256`` is not
    checked)."""
    return _verify_value(document, trust=trust, policy=policy, source=source, log=log, archive_sha256=None)


def _verify_value(
    document: Any,
    *,
    trust: TrustStore | None,
    policy: Policy,
    source: str | None,
    log: LogChecks | None,
    archive_sha256: str | None,
) -> Report:
    if type(document) is dict and "export_version" in document:
        return verify_export(document, trust=trust, policy=policy, source=source, log=log)
    if type(document) is dict and _looks_like_event(document):
        document = [document]
    if type(document) is not list:
        message = (
            f"the input {what_it_looks_like(document)}; expected JSON Lines of events, a JSON array of events or an "
            "export document"
        )
        return input_failure(Violation(codes.LOAD_ERROR, message), policy, source=source)
    events: Sequence[Any] = document
    verifier = ChainVerifier(trust, policy)
    for event in events:
        verifier.add_event(event)
    if log is None:
        return verifier.finish(source=source)
    last = events[-1] if events else None
    return report_with_log_checks(
        verifier.outcome(),
        policy,
        log,
        seal_payload=last.get("payload") if type(last) is dict else None,
        events=lambda: events,
        archive_sha256=archive_sha256,
        source=source,
    )


def what_it_looks_like(value: Any) -> str:
    """What a JSON value that is not a session seems to be, for a LOAD_ERROR message (ELS section 7, rev 2)."""
    if type(value) is not dict:
        return f"is one JSON value, {json_kind(value)}, not a session"
    members = value.keys()
    for giveaway, description in _LOOKALIKES:
        if giveaway <= members:
            return description
    if not members:
        return "is an empty JSON object, not a session"
    return "is a JSON object that is neither an event nor an export document"


def _looks_like_event(value: dict[str, Any]) -> bool:
    members = value.keys()
    return not _EVENT_MEMBERS.isdisjoint(members) and not any(giveaway <= members for giveaway, _ in _LOOKALIKES)


def _only_whitespace_after(whole: bytes, head: bytes) -> bool:
    # Whether ``head`` (a stripped line of ``whole``) is all that ``whole`` holds besides whitespace, without copying
    # the input.
    start = _skip_whitespace(whole, 0)
    return whole.startswith(head, start) and _skip_whitespace(whole, start + len(head)) == len(whole)


def _skip_whitespace(data: bytes, position: int) -> int:
    match = _LEADING_WHITESPACE.match(data, position)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _leading_value(whole: bytes) -> tuple[Any, int, bool] | None:
    # The JSON value the input starts with, the character offset where it ends and whether text other than
    # whitespace follows it; None when the input does not start with one. Used only to say what kind of input the
    # strict reading refused, and where: the value itself is not evidence, so the standard library's lenient reading
    # is enough here.
    try:
        text = whole.decode("utf-8")
        start = len(text) - len(text.lstrip(JSON_WHITESPACE))
        value, end = json.JSONDecoder().raw_decode(text, start)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value, end, bool(text[end:].strip(JSON_WHITESPACE))
