"""Receipts (LOG.md section 7): what the service acknowledged to the agent, checked against the sealed chain.

A receipts file is JSON Lines, one ``{"session_id", "sequence_number", "event_id", "event_hash"}`` per acknowledged
event (the SDK writes one per event of each 200 answer; a retried batch may repeat identical lines). A chain fails
with ``RECEIPT_MISMATCH`` when an event acknowledged for its session is missing from it or differs at its sequence
number: the service, or anyone who could write its table, changed what it had acknowledged before sealing it.
Pure: lines and parsed events in, a violation or None out. Memory: the receipts of the one session checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._codes import RECEIPT_MISMATCH
from ._errors import MalformedJSONError, VerifierError
from ._eventline import JSON_WHITESPACE
from ._jcs import MAX_SAFE_INTEGER
from ._json import loads
from ._report import Violation

# LOG.md section 7, in the order the section lists them.
RECEIPT_KEYS = ("session_id", "sequence_number", "event_id", "event_hash")
_WHITESPACE = JSON_WHITESPACE.encode("ascii")

Acknowledged = tuple[str, str]
"""What a receipt says was stored at a sequence number: ``(event_id, event_hash)``."""


class ReceiptsFormatError(VerifierError, ValueError):
    """A receipts file is not JSON Lines of receipt objects (the check cannot run)."""


def read_receipts(lines: Iterable[bytes], session_id: str) -> dict[int, set[Acknowledged]]:
    """The receipts for ``session_id``, by sequence number (a set: identical repeats collapse, conflicting
    acknowledgements of one position are all kept). Every line is parsed strictly, whichever session it names."""
    receipts: dict[int, set[Acknowledged]] = {}
    for line_number, line in enumerate(lines, start=1):
        if not line.strip(_WHITESPACE):
            continue
        try:
            receipt = loads(line)
        except MalformedJSONError as error:
            raise ReceiptsFormatError(f"receipts line {line_number} is not valid JSON: {error}") from None
        if not isinstance(receipt, dict) or set(receipt) != set(RECEIPT_KEYS):
            raise ReceiptsFormatError(f"receipts line {line_number} is not an object with exactly {RECEIPT_KEYS}")
        sequence_number = receipt["sequence_number"]
        if type(sequence_number) is not int or not 0 <= sequence_number <= MAX_SAFE_INTEGER:
            raise ReceiptsFormatError(f"receipts line {line_number}: sequence_number is not a non-negative integer")
        if not all(isinstance(receipt[key], str) for key in ("session_id", "event_id", "event_hash")):
            raise ReceiptsFormatError(f"receipts line {line_number}: session_id, event_id, event_hash must be strings")
        if receipt["session_id"] == session_id:
            receipts.setdefault(sequence_number, set()).add((receipt["event_id"], receipt["event_hash"]))
    return receipts


def check_receipts(
    receipt_lines: Iterable[bytes], events: Iterable[Mapping[str, Any]], *, session_id: str
) -> Violation | None:
    """LOG.md section 7: ``RECEIPT_MISMATCH`` for the first acknowledged event (by sequence number) that the chain
    ``events`` (parsed, in order, already verified) does not hold as acknowledged, or None when all match.

    A receipts file that acknowledges nothing of ``session_id`` checks nothing, which is reported as a mismatch too:
    it is the wrong file for this session. ``ReceiptsFormatError`` when the file itself is malformed."""
    receipts = read_receipts(receipt_lines, session_id)
    if not receipts:
        return Violation(RECEIPT_MISMATCH, f"the receipts file acknowledges no event of session {session_id}")
    for event in events:
        sequence_number = event.get("sequence_number")
        acknowledged = receipts.pop(sequence_number, None) if type(sequence_number) is int else None
        if acknowledged is None:
            continue
        stored = (event.get("event_id"), event.get("event_hash"))
        for event_id, event_hash in sorted(acknowledged):
            if (event_id, event_hash) != stored:
                return Violation(
                    RECEIPT_MISMATCH,
                    f"the event acknowledged at sequence {sequence_number} differs from the sealed chain's",
                    event_sequence=sequence_number,
                    event_id=event_id,
                    context={
                        "acknowledged": {"event_id": event_id, "event_hash": event_hash},
                        "sealed": {"event_id": stored[0], "event_hash": stored[1]},
                    },
                )
    if receipts:
        sequence_number = min(receipts)
        event_id, event_hash = sorted(receipts[sequence_number])[0]
        return Violation(
            RECEIPT_MISMATCH,
            f"the event acknowledged at sequence {sequence_number} is missing from the sealed chain",
            event_sequence=sequence_number,
            event_id=event_id,
            context={"acknowledged": {"event_id": event_id, "event_hash": event_hash}, "sealed": None},
        )
    return None
