"""The Powertools side of ``agentops_server.metrics``: a recorder writing CloudWatch embedded metric format lines, and
the measurements the HTTP handlers wrap around a route.

A handler builds one ``EmfRecorder`` per process and decorates its entry point with ``@recorder.metrics.log_metrics``:
metrics without a dimension besides ``service`` are gathered and written in one EMF line when the invocation ends;
a metric with its own dimension (an error code, a format) is written at once as a line of its own, since an EMF line
gives all its metrics the same dimensions.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from agentops_server.http import api_error_of
from agentops_server.metrics import (
    APPEND_LATENCY,
    APPEND_REQUESTS,
    APPEND_SERVER_ERRORS,
    BATCHES_REFUSED,
    EXPORT_DURATION,
    EXPORT_FAILURES,
    EXPORTS_CREATED,
    NAMESPACE,
    Metric,
    MetricsRecorder,
    checked_dimensions,
)

# An invocation that served a route without metrics (health, a session view) is normal, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


class EmfRecorder:
    def __init__(self) -> None:
        self.metrics = Metrics(namespace=NAMESPACE)

    def record(self, metric: Metric, value: float, dimensions: Mapping[str, str] | None = None) -> None:
        checked = checked_dimensions(metric, dimensions or {})
        if not checked:
            self.metrics.add_metric(name=metric.name, unit=metric.unit, value=value)
            return
        with single_metric(name=metric.name, unit=MetricUnit(metric.unit), value=value, namespace=NAMESPACE) as line:
            if self.metrics.service:
                line.add_dimension(name="service", value=str(self.metrics.service))
            for name, dimension_value in checked.items():
                line.add_dimension(name=name, value=dimension_value)


def _elapsed_millis(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


@contextmanager
def append_measured(recorder: MetricsRecorder) -> Iterator[None]:
    """Around one POST of a batch: its latency when accepted, else its refusal by error code (5xx counted apart)."""
    started = time.perf_counter()
    recorder.record(APPEND_REQUESTS, 1)
    try:
        yield
    except Exception as error:
        refusal = api_error_of(error)
        recorder.record(BATCHES_REFUSED, 1, {"ErrorCode": refusal.code})
        if refusal.status >= 500:
            recorder.record(APPEND_SERVER_ERRORS, 1)
        raise
    recorder.record(APPEND_LATENCY, _elapsed_millis(started))


@contextmanager
def export_measured(recorder: MetricsRecorder, file_format: str) -> Iterator[None]:
    """Around one export of ``file_format``: its duration when written; a failure when it is answered with a 5xx."""
    started = time.perf_counter()
    try:
        yield
    except Exception as error:
        if api_error_of(error).status >= 500:
            recorder.record(EXPORT_FAILURES, 1)
        raise
    recorder.record(EXPORTS_CREATED, 1, {"Format": file_format})
    recorder.record(EXPORT_DURATION, _elapsed_millis(started), {"Format": file_format})
