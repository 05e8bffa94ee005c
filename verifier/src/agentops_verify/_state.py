"""The state one session's chain has built while it is checked (ELS section 7), and what the checks take from outside.

``ChainState`` is everything the next check needs (previous hash, expected sequence number, a few flags, the event ids
seen, the seal's state) and everything found so far. A violation is recorded in it and ends checking (``Stop``).
``ChainOutcome`` is what the checks established, before classification and policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _codes as codes
from ._describe import describe
from ._ecdsa import PublicKey
from ._keys import KeyLookup
from ._report import Finding, Violation
from ._seal import UNSEALED, SealState

# Warnings of one kind beyond this many are counted, not listed, so memory stays flat on long chains.
MAX_WARNINGS_PER_TYPE = 100

# A LOG_DROP's counts as a segment worker leaves them to the main process: the event's sequence number and id, its
# dropped_count and cumulative_drops, and how many warnings the worker had listed before it (its own warnings go
# there, so the main process lists them where a serial run does, before the event's TIMESTAMP_ANOMALY).
DeferredDrop = tuple[int, str, Any, Any, int]


class Stop(Exception):  # noqa: N818 - control flow between the checks and ChainVerifier, never escapes the package
    """Raised by a check after it has recorded a violation."""


@dataclass(frozen=True)
class CheckOptions:
    """What the checks take from outside the chain: the trusted keys, an export document's listed keys (used only to
    recompute what the document may claim, ELS section 9), and whether events may withhold their payload."""

    trust: KeyLookup | None = None
    document_keys: Mapping[str, PublicKey] = field(default_factory=dict)
    allow_withheld: bool = False


@dataclass(frozen=True)
class ChainOutcome:
    """What the per-event checks established, before classification and policy."""

    violation: Violation | None
    warnings: tuple[Finding, ...]
    session_id: str | None
    authority: str | None
    event_count: int
    first_event_hash: str | None
    final_event_hash: str | None
    seal: SealState
    complete: bool
    has_log_drop: bool
    total_drops: int


@dataclass(slots=True)
class ChainState:
    """One session's chain as checked so far. ``count`` counts events, also after the first violation."""

    count: int = 0
    line_number: int = 0
    violation: Violation | None = None
    warnings: list[Finding] = field(default_factory=list)
    warning_counts: dict[str, int] = field(default_factory=dict)
    session_id: str | None = None
    authority: str | None = None
    first_hash: str | None = None
    last_hash: str | None = None
    seen_ids: set[int] = field(default_factory=set)
    last_time: str | None = None
    has_end: bool = False
    seal: SealState = UNSEALED
    has_log_drop: bool = False
    total_drops: int = 0
    excessive_drops_reported: bool = False
    legacy_schema_reported: bool = False
    withheld: list[int] = field(default_factory=list)
    # Set only in a segment worker of parallel verification (see _segments): the ids it saw, and the LOG_DROP counts
    # whose running total lives in the main process.
    segment_ids: list[int] | None = None
    deferred_drops: list[DeferredDrop] | None = None

    def fail(self, code: str, message: str, index: int | None, event_id: Any, **context: Any) -> Stop:
        self.violation = Violation(
            code, message, event_sequence=index, event_id=event_id if type(event_id) is str else None, context=context
        )
        return Stop()

    def invalid_field(self, name: str, expected: str, value: Any, index: int, event_id: Any) -> Stop:
        return self.fail(
            codes.INVALID_FIELD, f"{name} must be {expected}, found {describe(value)}", index, event_id, field=name
        )

    def malformed(self, message: str) -> None:
        """The line or value at the current position is not an I-JSON object: MALFORMED_JSON, counted as an event."""
        self.violation = Violation(
            codes.MALFORMED_JSON, message, event_sequence=self.count, context={"line": self.line_number}
        )
        self.count += 1

    def warn(self, code: str, message: str, index: int | None, event_id: str | None, **context: Any) -> None:
        count = self.warning_counts.get(code, 0) + 1
        self.warning_counts[code] = count
        if count <= MAX_WARNINGS_PER_TYPE:
            self.warnings.append(Finding(code, message, event_sequence=index, event_id=event_id, context=context))

    def outcome(self) -> ChainOutcome:
        violation = self.violation
        if violation is None and self.count == 0:
            violation = Violation(codes.EMPTY_LOG, "the input holds no events")
        warnings = list(self.warnings)
        if self.withheld:
            warnings.append(
                Finding(
                    codes.PAYLOAD_WITHHELD,
                    f"{len(self.withheld)} payload(s) withheld from this export; their hashes still chain",
                    context={"sequences": list(self.withheld)},
                )
            )
        for code, count in self.warning_counts.items():
            if count > MAX_WARNINGS_PER_TYPE:
                warnings.append(Finding(code, f"{count - MAX_WARNINGS_PER_TYPE} more {code} warnings not listed"))
        return ChainOutcome(
            violation=violation,
            warnings=tuple(warnings),
            session_id=self.session_id,
            authority=self.authority,
            event_count=self.count,
            first_event_hash=self.first_hash,
            final_event_hash=self.last_hash,
            seal=self.seal,
            complete=self.has_end,
            has_log_drop=self.has_log_drop,
            total_drops=self.total_drops,
        )
