"""Every metric of ``agentops_server.metrics`` written by the real handlers, read back from their EMF output: its
name, unit and dimensions as declared, the template's service name, and never a session id or a caller."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from agentops_server.metrics import ALL_METRICS, NAMESPACE
from agentops_server.store import StoreUnavailableError
from botocore.exceptions import ClientError

from infra.lambda_runtime import LocalLambdaContext
from tests.functional.replay_export.conftest import store_events
from tests.hardening.client_events import body, client_event
from tests.operations.conftest import AGENT, Deployment, MetricRecord, emf_records, service_name
from tests.support.apigw import http_api_event, invoke
from tests.support.chains import build_chain

AUDITOR = "arn:aws:iam::111122223333:user/operations-auditor"
SCHEDULED = {"source": "agentops-replay.seal-schedule"}


def append(deployment: Deployment, session_id: str, events: list[dict[str, Any]], **options: Any) -> int:
    event = http_api_event("POST", f"/v1/sessions/{session_id}/events", caller=AGENT, body=body(events), **options)
    status: int = invoke(deployment.handler("ingest"), event, "IngestFunction")["statusCode"]
    return status


def run_sealer(deployment: Deployment) -> dict[str, Any]:
    result: dict[str, Any] = deployment.handler("seal").lambda_handler(
        SCHEDULED, LocalLambdaContext("SealFunction", 1769, 900)
    )
    return result


def request(deployment: Deployment, function: str, method: str, path: str, document: Any = None) -> int:
    text = None if document is None else json.dumps(document)
    event = http_api_event(method, path, caller=AUDITOR, body=text)
    status: int = invoke(deployment.handler(function), event, function)["statusCode"]
    return status


class ThrottledSigning:
    """The seal key's KMS client, except that Sign is throttled (the sealer defers and sealing waits)."""

    def __init__(self, kms: Any) -> None:
        self._kms = kms

    def get_public_key(self, **arguments: Any) -> Any:
        return self._kms.get_public_key(**arguments)

    def sign(self, **arguments: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Sign")


def unavailable(*arguments: Any) -> Any:
    raise StoreUnavailableError("DynamoDB is unavailable")


def failing(*arguments: Any) -> Any:
    raise RuntimeError("the export broke")


@pytest.fixture
def emitted(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> tuple[list[MetricRecord], list[str]]:
    """Drive every metric through the handlers; the EMF records written and the session ids used."""
    ended, tampered_id, waiting = (str(uuid.uuid4()) for _ in range(3))
    assert append(deployment, ended, [client_event(0, "SESSION_START"), client_event(1), client_event(2)]) == 200
    assert append(deployment, ended, [client_event(3), client_event(4, "SESSION_END")]) == 200
    assert append(deployment, ended, [client_event(5)], content_type=None) == 415
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deployment.handler("ingest").ingest, "append", unavailable)
        assert append(deployment, str(uuid.uuid4()), [client_event(0, "SESSION_START")]) == 503

    # A stored chain that no longer verifies (one payload changed after it was chained): refused, never sealed.
    tampered = build_chain(6, session_id=tampered_id, seal=None)
    tampered[3] = {**tampered[3], "payload": {"changed": "after chaining"}}
    store_events(deployment.handler("ingest").wiring.store, tampered)
    assert run_sealer(deployment) == {"sealed": [ended]}

    assert append(deployment, waiting, [client_event(0, "SESSION_START"), client_event(1, "SESSION_END")]) == 200
    seal = deployment.handler("seal")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seal.wiring.signer, "_kms", ThrottledSigning(seal.wiring.signer._kms))
        assert run_sealer(deployment) == {"sealed": []}

    assert request(deployment, "replay", "GET", f"/v1/sessions/{ended}/replay") == 200
    assert request(deployment, "export", "POST", f"/v1/sessions/{ended}/exports", {"format": "json"}) == 201
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deployment.handler("export").wiring.export_service, "export", failing)
        assert request(deployment, "export", "POST", f"/v1/sessions/{ended}/exports", {"format": "pdf"}) == 500
    return emf_records(capsys.readouterr().out), [ended, tampered_id, waiting]


def test_every_metric_is_written_as_declared_and_never_names_a_session(
    emitted: tuple[list[MetricRecord], list[str]],
) -> None:
    records, session_ids = emitted
    declared = {metric.name: metric for metric in ALL_METRICS}
    assert {record.name for record in records} == set(declared)
    for record in records:
        metric = declared[record.name]
        assert record.namespace == NAMESPACE
        assert record.unit == metric.unit, record.name
        assert set(record.dimensions) == {"service", *metric.dimensions}, record.name
        assert record.dimensions["service"] == service_name()
        for forbidden in (*session_ids, AGENT, AUDITOR):
            assert forbidden not in record.line


def test_the_values_say_what_happened(emitted: tuple[list[MetricRecord], list[str]]) -> None:
    records, _ = emitted

    def values(name: str, **dimensions: str) -> list[Any]:
        found: list[Any] = []
        for record in records:
            if record.name == name and all(record.dimensions.get(key) == value for key, value in dimensions.items()):
                # One EMF line holds a list when a metric was added more than once before the flush.
                found.extend(record.value if isinstance(record.value, list) else [record.value])
        return found

    assert sum(values("EventsAccepted")) == 7  # 3 + 2 events of the ended session, 2 of the waiting one
    assert values("BatchesRefused", ErrorCode="UNSUPPORTED_MEDIA_TYPE") == [1]
    assert values("BatchesRefused", ErrorCode="SERVICE_UNAVAILABLE") == [1]
    assert values("AppendServerErrors") == [1]
    assert values("SealRefusals", Alarm="SEAL_REFUSED") == [1]
    assert values("SessionsSealed") == [1, 0]
    assert values("SessionsDeferred") == [1]
    assert values("KmsErrors", Operation="Sign") == [1]
    assert values("ExportsCreated", Format="json") == [1]
    assert len(values("ExportDuration", Format="json")) == 1
    assert values("ExportFailures") == [1]
    assert values("ReplayPagesServed") == [1]
    # The tampered session ended at its chain's first timestamp, long before this run: the oldest due session.
    (first_run_age, _) = values("OldestDueSessionAge")
    assert first_run_age > 86_400
    (latency,) = values("SealLatency")
    assert 0 <= latency < 600
