"""Fault-injecting doubles for the write side of ingest and sealing.

``FaultyStore`` wraps the in-memory chain store (the reference semantics of ``ChainStore``), ``FaultyArchive`` wraps
the S3 archive over moto, ``FaultySigner`` wraps a test key that signs like KMS. Each write call is a *step*
(``method#ordinal``); a ``Fault`` fires once, at one step, in one of the ways a real backend fails:

- ``throttled``: refused before anything is written (DynamoDB/S3/KMS throttling)
- ``unavailable``: a timeout or 5xx before anything is written
- ``lost_response``: the write happened, the response was lost (timeout after the fact)
- ``retried_conditional``: the write happened, the SDK's automatic retry then failed the write's own condition
- ``crash_before`` / ``crash_after``: the process dies just before / just after the write
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agentops_server.archive import Archive, ArchiveUnavailableError
from agentops_server.memory import InMemoryChainStore
from agentops_server.signing import SigningUnavailableError
from agentops_server.store import (
    ArchiveRef,
    SequenceConflictError,
    SessionExistsError,
    SessionHead,
    SigningKeyRecord,
    StoreThrottledError,
    StoreUnavailableError,
)

from tests.support.keys import TestSigner

FAULT_KINDS = ("throttled", "unavailable", "lost_response", "retried_conditional", "crash_before", "crash_after")

T = TypeVar("T")


class ProcessCrash(BaseException):
    """The Lambda process died at this point (the test catches it where the runtime would restart)."""


@dataclass
class FaultPlan:
    """Counts every write step; fires ``kind`` once at ``step`` (``None``: record only)."""

    step: str | None = None
    kind: str | None = None
    fired: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)

    def run(
        self,
        method: str,
        write: Callable[[], T],
        *,
        refused: Callable[[], Exception],
        conditional: Callable[[], Exception] | None = None,
    ) -> T:
        ordinal = self._counts.get(method, 0) + 1
        self._counts[method] = ordinal
        step = f"{method}#{ordinal}"
        self.steps.append(step)
        if step != self.step or self.fired:
            return write()
        self.fired.append(step)
        kind = self.kind
        if kind == "retried_conditional" and conditional is None:
            kind = "lost_response"  # an unconditional write retried just succeeds again: the response is lost
        if kind in {"throttled", "unavailable"}:
            raise refused()
        if kind == "crash_before":
            raise ProcessCrash(step)
        write()
        if kind == "lost_response":
            raise refused()
        if kind == "retried_conditional":
            assert conditional is not None
            raise conditional()
        raise ProcessCrash(step)


def _store_refusal(plan: FaultPlan) -> Callable[[], Exception]:
    def refusal() -> Exception:
        error: Exception = (
            StoreThrottledError("injected throttling")
            if plan.kind == "throttled"
            else StoreUnavailableError("injected timeout")
        )
        return error

    return refusal


class FaultyStore:
    """The in-memory store whose write methods go through a ``FaultPlan``; reads go straight through."""

    def __init__(self, plan: FaultPlan, seal_idle_seconds: int = 3600) -> None:
        self.inner = InMemoryChainStore(seal_idle_seconds=seal_idle_seconds)
        self.plan = plan

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_session(self, session_id: str, owner: str, started_at: Any, agent_id: str | None = None) -> SessionHead:
        return self.plan.run(
            "create_session",
            lambda: self.inner.create_session(session_id, owner, started_at, agent_id),
            refused=_store_refusal(self.plan),
            conditional=lambda: SessionExistsError(owner),
        )

    def put_batch(self, batch: Any) -> None:
        self.plan.run(
            "put_batch",
            lambda: self.inner.put_batch(batch),
            refused=_store_refusal(self.plan),
            conditional=lambda: SequenceConflictError("injected: the retried write found its own batch"),
        )

    def advance_head(self, batch: Any) -> None:
        self.plan.run("advance_head", lambda: self.inner.advance_head(batch), refused=_store_refusal(self.plan))

    def mark_sealing(self, session_id: str) -> None:
        self.plan.run("mark_sealing", lambda: self.inner.mark_sealing(session_id), refused=_store_refusal(self.plan))

    def mark_sealed(self, session_id: str, *args: Any) -> None:
        self.plan.run(
            "mark_sealed",
            lambda: self.inner.mark_sealed(session_id, *args),
            refused=_store_refusal(self.plan),
        )

    def expire_archived(self, session_id: str, expires_at: Any, stop: Any) -> bool:
        done: bool = self.plan.run(
            "expire_archived",
            lambda: self.inner.expire_archived(session_id, expires_at, stop),
            refused=_store_refusal(self.plan),
        )
        return done

    def refuse_seal(self, session_id: str, reason: str) -> None:
        self.plan.run(
            "refuse_seal",
            lambda: self.inner.refuse_seal(session_id, reason),
            refused=_store_refusal(self.plan),
        )


class FaultyArchive:
    """An ``Archive`` whose writes go through a ``FaultPlan``."""

    def __init__(self, inner: Archive, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    def write_session(self, session_id: str, lines: Iterable[bytes], sha256: str) -> ArchiveRef:
        return self._plan.run(
            "archive.write_session",
            lambda: self._inner.write_session(session_id, lines, sha256),
            refused=lambda: ArchiveUnavailableError("injected S3 failure"),
        )

    def publish_key(self, key: SigningKeyRecord) -> None:
        self._plan.run(
            "archive.publish_key",
            lambda: self._inner.publish_key(key),
            refused=lambda: ArchiveUnavailableError("injected S3 failure"),
        )

    def published_keys(self) -> list[SigningKeyRecord]:
        return self._inner.published_keys()

    def archived_sha256(self, session_id: str) -> str | None:
        return self._inner.archived_sha256(session_id)

    def publish_key_index(self, keys: Sequence[SigningKeyRecord]) -> None:
        self._plan.run(
            "archive.publish_key_index",
            lambda: self._inner.publish_key_index(keys),
            refused=lambda: ArchiveUnavailableError("injected S3 failure"),
        )


class FaultySigner:
    """A test P-256 key behind the ``Signer`` interface; ``sign`` is a step (KMS throttles or the process dies)."""

    def __init__(self, key: TestSigner, plan: FaultPlan) -> None:
        self._key = key
        self._plan = plan

    @property
    def key_id(self) -> str:
        return self._key.key_id

    @property
    def public_key_pem(self) -> str:
        return self._key.public_key_pem

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._plan.run(
            "kms.sign",
            lambda: self._key.sign(message),
            refused=lambda: SigningUnavailableError("injected KMS throttling"),
        )
        return signature
