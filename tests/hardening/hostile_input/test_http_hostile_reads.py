"""Hostile requests to the read and export routes of a sealed session over real HTTP: bad query parameters, bad
export requests, path tricks. Each gets its exact 4xx code and the API.md error body; afterwards the session, its
archived chain and its exports area are exactly as before (a rejected export writes no object)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.hardening.client_events import client_event, opening
from tests.hardening.hostile_input.test_http_hostile_input import assert_error_body


@dataclass(frozen=True)
class HostileRead:
    name: str
    method: str
    path: Callable[[str], str]
    status: int
    code: str
    body: bytes = b""
    content_type: str | None = None


def replay(query: str) -> Callable[[str], str]:
    return lambda session_id: f"/v1/sessions/{session_id}/replay?{query}"


def export(document: Any) -> bytes:
    return json.dumps(document).encode()


EXPORTS: Callable[[str], str] = lambda session_id: f"/v1/sessions/{session_id}/exports"  # noqa: E731
JSON = "application/json"

HOSTILE_READS: list[HostileRead] = [
    HostileRead("negative_from_sequence", "GET", replay("from_sequence=-1"), 400, "VALIDATION_ERROR"),
    HostileRead("from_sequence_with_plus_sign", "GET", replay("from_sequence=%2B1"), 400, "VALIDATION_ERROR"),
    HostileRead("from_sequence_with_exponent", "GET", replay("from_sequence=1e3"), 400, "VALIDATION_ERROR"),
    HostileRead(
        "from_sequence_beyond_any_integer", "GET", replay("from_sequence=" + "9" * 40), 400, "VALIDATION_ERROR"
    ),
    HostileRead("from_sequence_in_arabic_digits", "GET", replay("from_sequence=%D9%A1"), 400, "VALIDATION_ERROR"),
    HostileRead("limit_zero", "GET", replay("limit=0"), 400, "VALIDATION_ERROR"),
    HostileRead("limit_above_1000", "GET", replay("limit=1001"), 400, "VALIDATION_ERROR"),
    HostileRead("limit_not_a_number", "GET", replay("limit=all"), 400, "VALIDATION_ERROR"),
    HostileRead("limit_empty", "GET", replay("limit="), 400, "VALIDATION_ERROR"),
    HostileRead("limit_given_twice", "GET", replay("limit=1&limit=2"), 400, "VALIDATION_ERROR"),
    HostileRead(
        "replay_of_an_uppercase_session_id",
        "GET",
        lambda s: f"/v1/sessions/{s.upper()}/replay",
        404,
        "SESSION_NOT_FOUND",
    ),
    HostileRead(
        "replay_of_an_unknown_session", "GET", lambda s: f"/v1/sessions/{uuid.uuid4()}/replay", 404, "SESSION_NOT_FOUND"
    ),
    HostileRead("chain_of_a_path_trick", "GET", lambda s: "/v1/sessions/..%2Fkeys/chain", 404, "SESSION_NOT_FOUND"),
    HostileRead(
        "chain_of_an_unknown_session", "GET", lambda s: f"/v1/sessions/{uuid.uuid4()}/chain", 404, "SESSION_NOT_FOUND"
    ),
    HostileRead("export_format_xml", "POST", EXPORTS, 400, "VALIDATION_ERROR", export({"format": "xml"}), JSON),
    HostileRead("export_without_format", "POST", EXPORTS, 400, "VALIDATION_ERROR", export({}), JSON),
    HostileRead(
        "export_unknown_field", "POST", EXPORTS, 400, "VALIDATION_ERROR", export({"format": "json", "as": 1}), JSON
    ),
    HostileRead(
        "export_withholding_a_missing_sequence",
        "POST",
        EXPORTS,
        400,
        "VALIDATION_ERROR",
        export({"format": "json", "withhold_payloads": [99]}),
        JSON,
    ),
    HostileRead(
        "export_withholding_a_negative_sequence",
        "POST",
        EXPORTS,
        400,
        "VALIDATION_ERROR",
        export({"format": "json", "withhold_payloads": [-1]}),
        JSON,
    ),
    HostileRead(
        "export_withholding_by_string",
        "POST",
        EXPORTS,
        400,
        "VALIDATION_ERROR",
        export({"format": "json", "withhold_payloads": "yes"}),
        JSON,
    ),
    HostileRead(
        "export_withholding_floats",
        "POST",
        EXPORTS,
        400,
        "VALIDATION_ERROR",
        export({"format": "json", "withhold_payloads": [1.0]}),
        JSON,
    ),
    HostileRead("export_body_not_json", "POST", EXPORTS, 400, "VALIDATION_ERROR", b"format=json", JSON),
    HostileRead(
        "export_body_with_duplicate_keys",
        "POST",
        EXPORTS,
        400,
        "VALIDATION_ERROR",
        b'{"format": "json", "format": "pdf"}',
        JSON,
    ),
    HostileRead("export_body_a_json_array", "POST", EXPORTS, 400, "VALIDATION_ERROR", b'["json"]', JSON),
    HostileRead(
        "export_of_an_unknown_session",
        "POST",
        lambda s: f"/v1/sessions/{uuid.uuid4()}/exports",
        404,
        "SESSION_NOT_FOUND",
        export({"format": "json"}),
        JSON,
    ),
]


@pytest.fixture(scope="module")
def reader(local_stack: LocalStackHandle) -> ApiClient:
    return ApiClient(local_stack.base_url, access_key_id=f"AKIDREADS{uuid.uuid4().hex[:11].upper()}")


@pytest.fixture(scope="module")
def sealed_session(reader: ApiClient, local_stack: LocalStackHandle) -> str:
    session_id = str(uuid.uuid4())
    events = [*opening(extra=3), client_event(4, "SESSION_END")]
    assert reader.post(f"/v1/sessions/{session_id}/events", {"events": events}).status == 200
    assert session_id in local_stack.seal_now()
    return session_id


def exports_area(local_stack: LocalStackHandle, session_id: str) -> list[str]:
    info = local_stack.info
    s3 = boto3.client(
        "s3",
        endpoint_url=info["aws_endpoint"],
        region_name=info["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listing = s3.list_object_versions(Bucket=info["archive_bucket"], Prefix=f"exports/{session_id}/")
    return sorted(version["VersionId"] for version in listing.get("Versions", []))


def observable_state(reader: ApiClient, local_stack: LocalStackHandle, session_id: str) -> tuple[Any, ...]:
    head = reader.get(f"/v1/sessions/{session_id}")
    chain = reader.get(f"/v1/sessions/{session_id}/chain")
    assert (head.status, chain.status) == (200, 200)
    chain_reference = {key: chain.json()[key] for key in ("bucket", "key", "version_id", "sha256")}
    return head.json(), chain_reference, exports_area(local_stack, session_id)


def test_there_are_many_distinct_hostile_reads() -> None:
    assert len({case.name for case in HOSTILE_READS}) == len(HOSTILE_READS) >= 25


@pytest.mark.parametrize("case", HOSTILE_READS, ids=lambda case: case.name)
def test_hostile_read_or_export_gets_its_4xx_and_changes_nothing(
    case: HostileRead, reader: ApiClient, local_stack: LocalStackHandle, sealed_session: str
) -> None:
    before = observable_state(reader, local_stack, sealed_session)
    response = reader.request(case.method, case.path(sealed_session), body=case.body, content_type=case.content_type)
    assert_error_body(response, case.status, case.code)
    assert observable_state(reader, local_stack, sealed_session) == before
