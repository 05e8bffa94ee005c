"""The service's metrics, named once: what each one counts, its unit and the only dimensions it may carry.

Cores report through a ``MetricsRecorder`` they are given (``NO_METRICS`` by default) and never import Powertools;
the handlers give them ``agentops_server.metrics_emf.EmfRecorder``, which writes CloudWatch embedded metric format
(EMF) lines to the function's log, where CloudWatch turns them into metrics of ``NAMESPACE``. The alarms and the
dashboard in ``template.yaml`` name these metrics; docs/operations.md says what to do when one alarms.

Dimensions stay low-cardinality: every metric carries the Powertools ``service`` dimension and at most the names
listed here, whose values come from small closed sets (an API error code, an export format, a KMS operation, an
alarm name). Never a session id, an agent id or a caller: ``record`` refuses a dimension a metric does not declare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

NAMESPACE = "AgentOpsReplay"

COUNT = "Count"
MILLISECONDS = "Milliseconds"
SECONDS = "Seconds"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    dimensions: tuple[str, ...] = ()  # besides ``service``


# Ingest (POST /v1/sessions/{id}/events).
APPEND_REQUESTS = Metric("AppendRequests", COUNT)
EVENTS_ACCEPTED = Metric("EventsAccepted", COUNT)
BATCHES_REFUSED = Metric("BatchesRefused", COUNT, ("ErrorCode",))
APPEND_SERVER_ERRORS = Metric("AppendServerErrors", COUNT)  # answered 5xx: the client retries the same batch
APPEND_LATENCY = Metric("AppendLatency", MILLISECONDS)
# Sealing.
SESSIONS_SEALED = Metric("SessionsSealed", COUNT)
SEAL_LATENCY = Metric("SealLatency", SECONDS)  # from the session's end (or its idle deadline) to its seal_timestamp
SEAL_REFUSALS = Metric("SealRefusals", COUNT, ("Alarm",))  # the stored evidence disagrees with itself
SESSIONS_DEFERRED = Metric("SessionsDeferred", COUNT)
OLDEST_DUE_SESSION_AGE = Metric("OldestDueSessionAge", SECONDS)
KMS_ERRORS = Metric("KmsErrors", COUNT, ("Operation",))
# Reads and exports.
EXPORTS_CREATED = Metric("ExportsCreated", COUNT, ("Format",))
EXPORT_DURATION = Metric("ExportDuration", MILLISECONDS, ("Format",))
EXPORT_FAILURES = Metric("ExportFailures", COUNT)  # answered 5xx
REPLAY_PAGES_SERVED = Metric("ReplayPagesServed", COUNT)

ALL_METRICS = (
    APPEND_REQUESTS,
    EVENTS_ACCEPTED,
    BATCHES_REFUSED,
    APPEND_SERVER_ERRORS,
    APPEND_LATENCY,
    SESSIONS_SEALED,
    SEAL_LATENCY,
    SEAL_REFUSALS,
    SESSIONS_DEFERRED,
    OLDEST_DUE_SESSION_AGE,
    KMS_ERRORS,
    EXPORTS_CREATED,
    EXPORT_DURATION,
    EXPORT_FAILURES,
    REPLAY_PAGES_SERVED,
)


class UndeclaredDimensionError(ValueError):
    """A metric was given a dimension it does not declare (a session id would be one)."""


def checked_dimensions(metric: Metric, dimensions: Mapping[str, str]) -> Mapping[str, str]:
    if set(dimensions) != set(metric.dimensions):
        raise UndeclaredDimensionError(
            f"{metric.name} takes the dimensions {list(metric.dimensions)}, not {sorted(dimensions)}"
        )
    return dimensions


class MetricsRecorder(Protocol):
    def record(self, metric: Metric, value: float, dimensions: Mapping[str, str] | None = None) -> None:
        """Report ``value`` (in ``metric.unit``) with exactly the dimensions ``metric`` declares."""


class _NoMetrics:
    def record(self, metric: Metric, value: float, dimensions: Mapping[str, str] | None = None) -> None:
        checked_dimensions(metric, dimensions or {})


NO_METRICS: MetricsRecorder = _NoMetrics()
