"""The local stack's own contract (API.md "Local stack"): resources, local routes, errors, clean shutdown."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle, running_local_stack
from tests.integration.ingest.builders import batch_body, event, new_session_id, opening_batch
from tests.integration.ingest.storage import stored_items
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.integration


def aws_client(stack: LocalStackHandle, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.info["aws_endpoint"],
        region_name=stack.info["region"],
        aws_access_key_id="local-stack",
        aws_secret_access_key="local-stack",
    )


def test_info_names_the_emulated_resources_and_they_exist(local_stack: LocalStackHandle) -> None:
    info = local_stack.info
    assert set(info) == {
        "aws_endpoint",
        "region",
        "table",
        "archive_bucket",
        "kms_key_id",
        "seal_dead_letter_queue_url",
    }
    assert info["region"] == "us-east-1"
    assert info["aws_endpoint"].startswith("http://127.0.0.1:")
    table = aws_client(local_stack, "dynamodb").describe_table(TableName=info["table"])["Table"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == [
        "SealDue",
        "SessionsByStart",
        "SessionsByAgent",
        "LogPending",
    ]
    lock = aws_client(local_stack, "s3").get_object_lock_configuration(Bucket=info["archive_bucket"])
    assert lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    key = aws_client(local_stack, "kms").describe_key(KeyId=info["kms_key_id"])["KeyMetadata"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/anything"), ("DELETE", "/v1/sessions/3f1c2b6e-0000-4000-8000-000000000001"), ("GET", "/")],
)
def test_unknown_route_is_a_json_404(api: ApiClient, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_sealing_on_demand_seals_an_ended_session_and_appends_then_conflict(
    api: ApiClient, local_stack: LocalStackHandle
) -> None:
    session_id = new_session_id()
    path = f"/v1/sessions/{session_id}/events"
    assert api.post(path, batch_body([*opening_batch(extra_events=1), event(2, "SESSION_END")])).status == 200

    assert session_id in local_stack.seal_now()

    view = api.get(f"/v1/sessions/{session_id}").json()
    assert view["status"] == "SEALED"
    assert view["archive"]["bucket"] == local_stack.info["archive_bucket"]
    items = stored_items(local_stack, session_id)
    refused = api.post(path, batch_body([event(4)]))
    assert refused.status == 409
    assert refused.json()["error"]["code"] == "SESSION_SEALED"
    assert stored_items(local_stack, session_id) == items
    assert session_id not in local_stack.seal_now()  # sealing twice changes nothing
    assert stored_items(local_stack, session_id) == items


def test_stack_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    with running_local_stack(tmp_path / "stack.log", stop_signal=signal.SIGINT) as stack:
        unsigned = ApiClient(stack.base_url, access_key_id=None)
        assert unsigned.get("/v1/health").status == 200
    # running_local_stack asserted exit status 0 after SIGINT.


def test_sealing_loop_seals_ended_sessions_on_its_own(tmp_path: Path) -> None:
    with running_local_stack(tmp_path / "stack.log", {"SEAL_INTERVAL_SECONDS": "0.2"}) as stack:
        api = ApiClient(stack.base_url, access_key_id="AKIDSEALLOOP00000001")
        session_id = new_session_id()
        ended = [*opening_batch(), event(1, "SESSION_END")]
        assert api.post(f"/v1/sessions/{session_id}/events", batch_body(ended)).status == 200
        deadline = time.monotonic() + 30
        while api.get(f"/v1/sessions/{session_id}").json()["status"] != "SEALED":
            assert time.monotonic() < deadline, stack.log()
            time.sleep(0.1)


def test_head_and_options_get_a_bodiless_or_json_answer(local_stack: LocalStackHandle) -> None:
    url = urlsplit(local_stack.base_url)
    connection = http.client.HTTPConnection(url.netloc, timeout=10)
    try:
        connection.request("HEAD", "/v1/nothing")
        head = connection.getresponse()
        assert head.status == 404
        assert head.read() == b""
        # The connection is still usable: the HEAD answer carried no stray body.
        connection.request("OPTIONS", "/v1/nothing")
        options = connection.getresponse()
        assert options.status == 404
        assert json.loads(options.read())["error"]["code"] == "NOT_FOUND"
    finally:
        connection.close()


def test_busy_port_is_reported_and_exits_non_zero(local_stack: LocalStackHandle) -> None:
    busy_port = urlsplit(local_stack.base_url).port
    result = subprocess.run(
        [sys.executable, "-m", "infra.local_stack"],
        cwd=REPO_ROOT,
        env={**os.environ, "PORT": str(busy_port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{busy_port}" in result.stderr
    assert "ready" not in result.stdout


def test_function_logs_are_the_structured_lines_lambda_writes_naming_the_function(
    local_stack: LocalStackHandle,
) -> None:
    assert f"Function logs (structured JSON lines, as in CloudWatch): {local_stack.function_log_path}" in (
        local_stack.log()
    )
    logged_before = len(local_stack.function_log_records())

    local_stack.seal_now()

    records = local_stack.function_log_records()[logged_before:]
    finished = [record for record in records if record["message"] == "sealing run finished"]
    assert len(finished) == 1, records
    assert finished[0]["function_name"] == "SealFunction"
    assert finished[0]["service"] == "agentops-replay"
    assert {"level", "timestamp", "function_request_id", "cold_start", "sealed_count"} <= set(finished[0])
    assert "sealing run finished" not in local_stack.log()  # the stack's own output stays free of function lines
