"""Time budgets of a sealing run: how long the run, and one session in it, may take.

A Lambda invocation ends at a hard timeout. A run cut off in the middle of a session has only crashed (the next run
finishes the job), but a run that spends its time on one session it cannot finish keeps every session behind that one
unsealed. So the sealer gives a session's verification pass a third of the time the run has left when the session
starts (signing is decided only after it, and the rest, the archive pass and the expiry writes, costs about one such
pass each), and every pass stops at its deadline, checked while it streams rather than only between sessions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

Remaining = Callable[[], float]  # seconds the run has left for sealing work
CHECK_EVERY_LINES = 256  # how often a streaming pass looks at the clock


class OutOfTimeError(Exception):
    """A pass reached its deadline; what it was doing is abandoned (nothing partial is published)."""


def unlimited() -> float:
    return math.inf


@dataclass(frozen=True)
class Deadline:
    remaining: Remaining
    stop_at: float  # the pass stops once ``remaining()`` is at or below this

    @classmethod
    def end_of_run(cls, remaining: Remaining) -> Deadline:
        return cls(remaining, 0.0)

    @classmethod
    def share_of_run(cls, remaining: Remaining, share: float) -> Deadline:
        """A deadline ``share`` of the time left from now."""
        left = remaining()
        return cls(remaining, left - left * share if math.isfinite(left) else 0.0)

    def passed(self) -> bool:
        return self.remaining() <= self.stop_at

    def check(self, what: str) -> None:
        if self.passed():
            raise OutOfTimeError(f"{what} ran out of time")


def within(lines: Iterable[bytes], deadline: Deadline, what: str) -> Iterator[bytes]:
    """``lines``, checking ``deadline`` every ``CHECK_EVERY_LINES`` lines (and before the first)."""
    for count, line in enumerate(lines):
        if count % CHECK_EVERY_LINES == 0:
            deadline.check(what)
        yield line
