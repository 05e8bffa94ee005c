"""What the sealer reports to its metrics recorder (``agentops_server.metrics``): seal latency from the session's
end or idle deadline, and the age of the oldest due session, which keeps growing for a session that keeps failing
(a deferral moves its place in the due index, never the moment it became due)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from agentops_server.aws.kms_signer import KmsSigner
from agentops_server.aws.s3_archive import S3Archive
from agentops_server.memory import InMemoryChainStore
from agentops_server.metrics import Metric, checked_dimensions
from agentops_server.sealing import Sealer
from agentops_server.signing import Signer, SigningUnavailableError

from tests.functional.seal.conftest import IDLE_SECONDS, SERVICE_ID, T0, ingest_session


class Recorded:
    def __init__(self) -> None:
        self.values: list[tuple[str, float, dict[str, str]]] = []

    def record(self, metric: Metric, value: float, dimensions: Mapping[str, str] | None = None) -> None:
        self.values.append((metric.name, value, dict(checked_dimensions(metric, dimensions or {}))))

    def of(self, name: str) -> list[float]:
        return [value for recorded, value, _ in self.values if recorded == name]


class ThrottledSigner:
    """The seal key, with KMS refusing every Sign for now (a transient failure: the session is deferred)."""

    def __init__(self, signer: KmsSigner) -> None:
        self._signer = signer

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    @property
    def public_key_pem(self) -> str:
        return self._signer.public_key_pem

    def sign(self, message: bytes) -> bytes:
        raise SigningUnavailableError("KMS sign failed: ThrottlingException")


def sealer(store: InMemoryChainStore, signer: Signer, archive: S3Archive, recorded: Recorded) -> Sealer:
    return Sealer(
        store,
        signer,
        archive,
        SERVICE_ID,
        seal_idle=timedelta(seconds=IDLE_SECONDS),
        metrics=recorded,
    )


def test_a_session_that_keeps_failing_keeps_its_age(
    store: InMemoryChainStore, signer: KmsSigner, archive: S3Archive
) -> None:
    ingest_session(store)  # ended at T0
    recorded = Recorded()
    failing = sealer(store, ThrottledSigner(signer), archive, recorded)

    assert failing.seal_due_sessions(T0 + timedelta(hours=1)) == []
    assert failing.seal_due_sessions(T0 + timedelta(hours=2)) == []

    assert recorded.of("OldestDueSessionAge") == [3600.0, 7200.0]
    assert recorded.of("SessionsDeferred") == [1, 1]
    assert recorded.of("SessionsSealed") == [0, 0]


def test_seal_latency_runs_from_the_idle_deadline_to_the_seal(
    store: InMemoryChainStore, signer: KmsSigner, archive: S3Archive
) -> None:
    session_id = ingest_session(store, end=False)  # last batch at T0: due at T0 + the idle time
    recorded = Recorded()
    run_at = T0 + timedelta(seconds=IDLE_SECONDS + 600)

    assert sealer(store, signer, archive, recorded).seal_due_sessions(run_at) == [session_id]

    assert recorded.of("SealLatency") == [600.0]
    assert recorded.of("OldestDueSessionAge") == [600.0]
    assert recorded.of("SessionsSealed") == [1]


def test_a_run_with_nothing_due_reports_zero(store: InMemoryChainStore, signer: KmsSigner, archive: S3Archive) -> None:
    recorded = Recorded()

    assert sealer(store, signer, archive, recorded).seal_due_sessions(T0) == []

    assert recorded.of("OldestDueSessionAge") == [0.0]
    assert recorded.of("SessionsSealed") == [0]
