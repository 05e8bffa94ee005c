"""Asynchronous exports over the local stack (API.md, POST /v1/sessions/{id}/exports, rev 2 "Large sessions").

The stack runs with ``EXPORT_ASYNC_MIN_EVENTS=1``, so every export takes the asynchronous path: 202 with the status
route, the export written by an asynchronous invocation of the export function (the local stack serves Lambda's
Invoke call), polled until done. The synchronous export of the same session, made after raising the threshold by a
template parameter update, verifies to the same content.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.api_client import ApiClient, ApiResponse
from infra.launcher import LocalStackHandle, running_local_stack
from tests.integration.cli.test_an_auditor_lists_fetches_verifies_and_exports_with_the_cli import cli

pytestmark = pytest.mark.integration

POLL_SECONDS = 60.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    log_path = tmp_path_factory.mktemp("async-exports") / "local_stack.log"
    with running_local_stack(log_path, {"EXPORT_ASYNC_MIN_EVENTS": "1"}) as handle:
        yield handle


@pytest.fixture
def api(stack: LocalStackHandle) -> ApiClient:
    return ApiClient(stack.base_url, access_key_id=f"AKID{uuid.uuid4().hex[:16].upper()}")


def _events(count: int) -> list[dict[str, Any]]:
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "sequence_number": sequence,
            "timestamp_wall": f"2026-01-01T12:00:{sequence:02d}.000Z",
            "event_type": "MODEL_REQUEST",
            "payload": {"model": "m-1", "messages": [{"role": "user", "content": f"step {sequence}"}]},
        }
        for sequence in range(count)
    ]
    events[0]["event_type"], events[0]["payload"] = "SESSION_START", {"agent_id": "async-export-agent"}
    events[-1]["event_type"], events[-1]["payload"] = "SESSION_END", {"status": "success"}
    return events


def _sealed_session(stack: LocalStackHandle, api: ApiClient, count: int = 12) -> str:
    session_id = str(uuid.uuid4())
    posted = api.post(f"/v1/sessions/{session_id}/events", {"events": _events(count)})
    assert posted.status == 200, posted.body
    assert session_id in stack.seal_now()
    return session_id


def _poll(api: ApiClient, location: str) -> ApiResponse:
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        answer = api.get(location)
        if answer.status != 202 or time.monotonic() > deadline:
            return answer
        assert answer.json()["status"] == "PENDING"
        time.sleep(0.2)


def _aws(stack: LocalStackHandle, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.info["aws_endpoint"],
        region_name=stack.info["region"],
        aws_access_key_id="local-stack",
        aws_secret_access_key="local-stack",
    )


def _export_objects(stack: LocalStackHandle, session_id: str) -> list[tuple[str, str]]:
    listing = _aws(stack, "s3").list_object_versions(
        Bucket=stack.info["archive_bucket"], Prefix=f"exports/{session_id}/"
    )
    return sorted((version["Key"], version["VersionId"]) for version in listing.get("Versions", []))


def _job_items(stack: LocalStackHandle, session_id: str) -> list[dict[str, Any]]:
    page = _aws(stack, "dynamodb").query(
        TableName=stack.info["table"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"EXPORT#{session_id}"}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = page["Items"]
    return items


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
        return data


def _verify_offline(tmp_path: Path, api: ApiClient, document: bytes) -> dict[str, Any]:
    (tmp_path / "keys.json").write_bytes(api.get("/v1/keys").body)
    (tmp_path / "export.json").write_bytes(document)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "agentops_verify", "--format", "json"),
            *("--trusted-key", str(tmp_path / "keys.json"), str(tmp_path / "export.json")),
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _set_threshold(stack: LocalStackHandle, events: int) -> None:
    request = urllib.request.Request(
        f"{stack.base_url}/_local/parameters",
        data=json.dumps({"ExportAsyncMinEvents": str(events)}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "ExportFunction" in json.loads(response.read())["restarted"]


def test_a_large_export_is_accepted_then_written_asynchronously_with_the_content_of_the_synchronous_one(
    stack: LocalStackHandle, api: ApiClient, tmp_path: Path
) -> None:
    session_id = _sealed_session(stack, api)

    accepted = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json", "withhold_payloads": [3]})

    assert accepted.status == 202, accepted.body
    pending = accepted.json()
    assert (pending["status"], pending["format"]) == ("PENDING", "json")
    location = accepted.headers["Location"]
    assert location == f"/v1/sessions/{session_id}/exports/{pending['export_id']}"
    done = _poll(api, location)
    assert done.status == 200, done.body
    body = done.json()
    assert set(body) == {
        "export_id",
        "format",
        "bucket",
        "key",
        "version_id",
        "sha256",
        "url",
        "expires_in",
        "evidence_class",
    }
    assert body["export_id"] == pending["export_id"]
    document = _download(body["url"])
    assert hashlib.sha256(document).hexdigest() == body["sha256"]
    report = _verify_offline(tmp_path, api, document)
    assert report["evidence_class"] == body["evidence_class"] == "AUTHORITATIVE_EVIDENCE"

    _set_threshold(stack, 1_000_000)
    try:
        synchronous = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json", "withhold_payloads": [3]})
    finally:
        _set_threshold(stack, 1)
    assert synchronous.status == 201, synchronous.body
    expected = json.loads(_download(synchronous.json()["url"]))
    produced = json.loads(document)
    assert {name: value for name, value in produced.items() if name != "generated_at"} == {
        name: value for name, value in expected.items() if name != "generated_at"
    }


def test_the_same_request_names_the_same_job_and_never_writes_a_second_export(
    stack: LocalStackHandle, api: ApiClient
) -> None:
    session_id = _sealed_session(stack, api)

    first = api.post(f"/v1/sessions/{session_id}/exports", {"format": "pdf"})
    again = api.post(f"/v1/sessions/{session_id}/exports", {"format": "pdf"})
    done = _poll(api, first.headers["Location"])
    after = api.post(f"/v1/sessions/{session_id}/exports", {"format": "pdf"})

    assert first.status == 202, first.body
    export_id = first.json()["export_id"]
    assert again.json()["export_id"] == export_id  # 202 while pending, or 201 when already written
    assert done.status == 200, done.body
    assert _download(done.json()["url"]).startswith(b"%PDF-")
    assert after.status == 201, after.body
    assert (after.json()["export_id"], after.json()["version_id"]) == (export_id, done.json()["version_id"])
    # One document and one rendering, each written once; one job.
    assert [key for key, _ in _export_objects(stack, session_id)] == [
        f"exports/{session_id}/{export_id}.json",
        f"exports/{session_id}/{export_id}.pdf",
    ]
    assert len(_job_items(stack, session_id)) == 1


def test_a_different_withheld_set_is_a_different_export(stack: LocalStackHandle, api: ApiClient) -> None:
    session_id = _sealed_session(stack, api)

    whole = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json"})
    withheld = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json", "withhold_payloads": True})

    assert whole.json()["export_id"] != withheld.json()["export_id"]
    assert _poll(api, whole.headers["Location"]).status == 200
    assert _poll(api, withheld.headers["Location"]).status == 200


def test_a_failed_job_reports_its_error_and_the_same_request_starts_it_again(
    stack: LocalStackHandle, api: ApiClient
) -> None:
    """The head's archive digest rewritten in the table (an insider): the job reads the archive, finds it is not the
    sealed one, and fails as the synchronous export would, with 422 VERIFICATION_FAILED; nothing is exported."""
    session_id = _sealed_session(stack, api)
    _aws(stack, "dynamodb").update_item(
        TableName=stack.info["table"],
        Key={"pk": {"S": f"S#{session_id}"}, "sk": {"S": "HEAD"}},
        UpdateExpression="SET #archive.sha256 = :forged",
        ExpressionAttributeNames={"#archive": "archive"},
        ExpressionAttributeValues={":forged": {"S": "0" * 64}},
    )

    accepted = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json"})
    failed = _poll(api, accepted.headers["Location"])
    retried = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json"})

    assert accepted.status == 202, accepted.body
    assert failed.status == 422, failed.body
    assert failed.error_code == "VERIFICATION_FAILED"
    details = failed.json()["error"]["details"]
    assert (details["status"], details["export_id"]) == ("FAILED", accepted.json()["export_id"])
    assert _export_objects(stack, session_id) == []
    assert (retried.status, retried.json()["export_id"]) == (202, accepted.json()["export_id"])
    assert _poll(api, accepted.headers["Location"]).error_code == "VERIFICATION_FAILED"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"format": "docx"}, 400, "VALIDATION_ERROR"),
        ({"format": "json", "withhold_payloads": [13]}, 400, "VALIDATION_ERROR"),
        ({"format": "json", "extra": 1}, 400, "VALIDATION_ERROR"),
    ],
)
def test_a_refused_export_request_starts_no_job_and_writes_nothing(
    stack: LocalStackHandle, api: ApiClient, body: dict[str, Any], status: int, code: str
) -> None:
    session_id = _sealed_session(stack, api)

    refused = api.post(f"/v1/sessions/{session_id}/exports", body)

    assert (refused.status, refused.error_code) == (status, code)
    assert _job_items(stack, session_id) == []
    assert _export_objects(stack, session_id) == []


def test_an_export_of_an_unknown_session_starts_no_job(stack: LocalStackHandle, api: ApiClient) -> None:
    session_id = str(uuid.uuid4())

    refused = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json"})

    assert (refused.status, refused.error_code) == (404, "SESSION_NOT_FOUND")
    assert _job_items(stack, session_id) == []
    assert _export_objects(stack, session_id) == []


def test_an_unknown_export_id_is_not_found(stack: LocalStackHandle, api: ApiClient) -> None:
    session_id = _sealed_session(stack, api)

    answer = api.get(f"/v1/sessions/{session_id}/exports/{uuid.uuid4()}")

    assert (answer.status, answer.error_code) == (404, "EXPORT_NOT_FOUND")


def test_a_job_item_rewritten_to_name_another_format_is_not_found(stack: LocalStackHandle, api: ApiClient) -> None:
    """A PDF job's item changed to ``json`` (an insider with table access) would otherwise serve the document the
    PDF was rendered from under the PDF's export id: a job's fields must hash to its id."""
    session_id = _sealed_session(stack, api)
    accepted = api.post(f"/v1/sessions/{session_id}/exports", {"format": "pdf"})
    assert _poll(api, accepted.headers["Location"]).status == 200
    _aws(stack, "dynamodb").update_item(
        TableName=stack.info["table"],
        Key={"pk": {"S": f"EXPORT#{session_id}"}, "sk": {"S": accepted.json()["export_id"]}},
        UpdateExpression="SET #format = :json",
        ExpressionAttributeNames={"#format": "format"},
        ExpressionAttributeValues={":json": {"S": "json"}},
    )

    answer = api.get(accepted.headers["Location"])

    assert (answer.status, answer.error_code) == (404, "EXPORT_NOT_FOUND")


def test_the_status_route_needs_a_caller_identity(stack: LocalStackHandle, api: ApiClient) -> None:
    session_id = _sealed_session(stack, api)
    accepted = api.post(f"/v1/sessions/{session_id}/exports", {"format": "json"})

    answer = api.as_principal(None).get(accepted.headers["Location"])

    assert (answer.status, answer.error_code) == (403, "FORBIDDEN")


def test_the_cli_export_follows_a_202_until_the_export_is_written(
    stack: LocalStackHandle, api: ApiClient, tmp_path: Path
) -> None:
    session_id = _sealed_session(stack, api)

    exported = cli(stack, "export", session_id, "--format", "pdf", "--out", str(tmp_path / "large.pdf"))

    assert exported.status == 0, exported.err
    assert "is being written" in exported.err
    path, _, sha256_field, evidence_class, _ = exported.out.strip().split("\t")
    assert (tmp_path / "large.pdf").read_bytes().startswith(b"%PDF-")
    assert sha256_field == f"sha256 {hashlib.sha256((tmp_path / 'large.pdf').read_bytes()).hexdigest()}"
    assert (path, evidence_class) == (str(tmp_path / "large.pdf"), "AUTHORITATIVE_EVIDENCE")
