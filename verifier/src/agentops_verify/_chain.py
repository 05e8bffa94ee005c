"""Streaming verification of one session (ELS section 7).

``ChainVerifier`` takes events one at a time, as raw JSON Lines or as parsed objects, reads each one's envelope
(check 1, ``_envelope``; a line as the archive writes it is read from its text), runs the other per-event checks
(``_checks``) over one ``ChainState`` (``_state``), stops checking at the first violation while still counting
events, and turns what it saw into a ``Report`` (``_policy``). No I/O: the caller reads the bytes and passes the
trust anchor in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ._checks import check_envelope
from ._describe import json_kind
from ._ecdsa import PublicKey
from ._envelope import Envelope, read_envelope
from ._errors import MalformedJSONError
from ._eventline import JSON_WHITESPACE, EventLineParser, canonical_bytes
from ._json import check_tree
from ._keys import KeyLookup
from ._policy import Policy, build_report
from ._report import VERIFIER_VERSION, Report
from ._segments import SegmentResult, can_take_over, segment_result, start_segment, take_over
from ._state import ChainOutcome, ChainState, CheckOptions, Stop

__all__ = ["VERIFIER_VERSION", "ChainVerifier", "KeyLookup", "SegmentResult"]

_JSON_WHITESPACE_BYTES = JSON_WHITESPACE.encode("ascii")


class ChainVerifier:
    """Verifies one session incrementally: ``add_line`` / ``add_event`` for each event in order, then ``finish``.

    ``add_line`` takes one raw JSON Lines line and is the fast path; ``add_event`` takes an event another component
    already parsed and checks it with the exact (slower) canonicalizer. Neither modifies what it is given.
    """

    def __init__(
        self,
        trust: KeyLookup | None = None,
        policy: Policy = Policy(),  # noqa: B008
        *,
        allow_withheld_payloads: bool = False,
    ) -> None:
        self._policy = policy
        parser = EventLineParser()
        self._read = parser.read_event
        self._parse = parser.parse_event
        # Events of an export document (ELS section 9) may carry "payload_withheld": true instead of a payload.
        self._options = CheckOptions(trust=trust, allow_withheld=allow_withheld_payloads)
        self._state = ChainState()

    # -- input -------------------------------------------------------------------------------------------------

    def add_line(self, line: bytes) -> None:
        """One JSON Lines line (raw bytes, with or without its LF). Lines holding only whitespace are skipped."""
        state = self._state
        state.line_number += 1
        stripped = line.strip(_JSON_WHITESPACE_BYTES)
        if not stripped:
            return
        if state.violation is not None:
            state.count += 1
            return
        try:
            envelope, event, payload_jcs = self._read(stripped)
            if envelope is None and type(event) is not dict:
                raise MalformedJSONError(f"an event must be a JSON object, not {json_kind(event)}")
        except MalformedJSONError as exc:
            state.malformed(str(exc))
            return
        self._check(envelope or event, payload_jcs)

    def add_event(self, event: Any) -> None:
        """One event that is already parsed (a dict as ``json.loads`` gives it)."""
        state = self._state
        state.line_number += 1
        if state.violation is not None:
            state.count += 1
            return
        try:
            if type(event) is not dict:
                raise MalformedJSONError(f"an event must be a JSON object, not {json_kind(event)}")
            check_tree(event)
            payload = event.get("payload")
            payload_jcs = canonical_bytes(payload, exact=True) if type(payload) is dict else None
        except MalformedJSONError as exc:
            state.malformed(str(exc))
            return
        self._check(event, payload_jcs)

    def _check(self, event: Envelope | dict[str, Any], payload_jcs: bytes | None) -> None:
        """Checks 1 to 7 for an event object, or 2 to 7 for the envelope of a canonical line (check 1 done)."""
        state = self._state
        index = state.count
        state.count += 1
        try:
            envelope = read_envelope(state, self._options, event, index) if isinstance(event, dict) else event
            check_envelope(state, self._options, envelope, payload_jcs, index)
        except Stop:
            return

    def use_document_keys(self, document_keys: Mapping[str, PublicKey]) -> None:
        """An export document's ``public_keys`` by id (ELS section 9): not trusted, only used to recompute the
        class the document may claim."""
        self._options = dataclasses.replace(self._options, document_keys=dict(document_keys))

    # -- results -----------------------------------------------------------------------------------------------

    def finish(self, *, source: str | None = None) -> Report:
        """The report for everything added so far. It changes nothing: more events may be added afterwards (a
        replay of an open session does that) and ``finish`` called again."""
        return build_report(self.outcome(), self._policy, source=source)

    def outcome(self) -> ChainOutcome:
        """The checks' findings before classification (used for export-claim checks)."""
        return self._state.outcome()

    @property
    def events_counted(self) -> int:
        """Events seen so far (for a segment worker: the first event's sequence number plus those after it)."""
        return self._state.count

    # -- parallel verification of one file in segments (see _parallel and _segments) -----------------------------

    def begin_segment(self, line: bytes) -> bool:
        """Worker side: continue the chain from ``line`` as if every event before it had verified. The main process
        verifies that line itself with the real state; this only sets the state it would leave behind. Returns
        False when the line cannot be a starting point (the main process then reports what is wrong with it)."""
        self._state.line_number += 1
        try:
            event, _ = self._parse(line.strip(_JSON_WHITESPACE_BYTES))
        except MalformedJSONError:
            return False
        return start_segment(self._state, event)

    def segment_result(
        self, *, lines: int, events: int, first_line: bytes | None, first_line_number: int, usable: bool
    ) -> SegmentResult:
        """Worker side: what the main process needs to continue from the end of this segment."""
        return segment_result(
            self._state,
            lines=lines,
            events=events,
            first_line=first_line,
            first_line_number=first_line_number,
            usable=usable,
        )

    def absorb_segment(self, segment: SegmentResult) -> bool:
        """Main side: continue with a worker's segment. The segment's first line is verified here with the real
        state. Returns False when the worker's result cannot simply be taken over (it found a violation, or an
        event id repeats one of an earlier segment): the caller then verifies the whole input serially, which
        reports exactly what a serial run reports."""
        state = self._state
        if segment.first_line is None:
            state.line_number += segment.lines
            return True
        state.line_number += segment.first_line_number - 1
        self.add_line(segment.first_line)
        remaining_lines = segment.lines - segment.first_line_number
        if state.violation is not None:  # decided here, before anything the worker saw
            state.count += segment.events - 1
            state.line_number += remaining_lines
            return True
        if not can_take_over(state, segment):
            return False
        take_over(state, segment, state.count - 1)
        state.line_number += remaining_lines
        return True
