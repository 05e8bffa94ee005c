"""A metric takes exactly the dimensions it declares: a session id (or any other undeclared dimension) is refused
before anything is written, by the recorder the cores default to and by the one that writes EMF."""

from __future__ import annotations

import pytest
from agentops_server.metrics import (
    ALL_METRICS,
    BATCHES_REFUSED,
    EVENTS_ACCEPTED,
    NO_METRICS,
    MetricsRecorder,
    UndeclaredDimensionError,
)
from agentops_server.metrics_emf import EmfRecorder


@pytest.mark.parametrize("recorder", [NO_METRICS, EmfRecorder()], ids=["cores_default", "emf"])
def test_a_session_id_dimension_is_refused_and_nothing_is_written(
    recorder: MetricsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UndeclaredDimensionError):
        recorder.record(EVENTS_ACCEPTED, 1, {"SessionId": "4a1f0c1e-0000-4000-8000-000000000000"})
    with pytest.raises(UndeclaredDimensionError):
        recorder.record(BATCHES_REFUSED, 1, {"ErrorCode": "THROTTLED", "SessionId": "s"})
    with pytest.raises(UndeclaredDimensionError):
        recorder.record(BATCHES_REFUSED, 1)  # its declared dimension is missing
    if isinstance(recorder, EmfRecorder):
        recorder.metrics.flush_metrics()
    assert capsys.readouterr().out == ""


def test_metric_names_are_unique_and_no_metric_declares_an_identifier_dimension() -> None:
    assert len({metric.name for metric in ALL_METRICS}) == len(ALL_METRICS)
    for metric in ALL_METRICS:
        assert not any("id" in dimension.lower() or "session" in dimension.lower() for dimension in metric.dimensions)
