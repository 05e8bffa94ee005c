"""Request plumbing shared by the handlers: identity, media type, body size, error bodies, settings."""

from __future__ import annotations

import base64

import pytest
from agentops_server.config import ConfigurationError, Settings
from agentops_server.errors import ApiError
from agentops_server.http import caller_identity, error_response, request_body, require_json_content_type


def test_caller_is_the_iam_user_arn() -> None:
    event = {"requestContext": {"authorizer": {"iam": {"userArn": "arn:aws:iam::1:user/a"}}}}
    assert caller_identity(event) == "arn:aws:iam::1:user/a"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"requestContext": {}},
        {"requestContext": {"authorizer": {"iam": {}}}},
        {"requestContext": {"authorizer": {"iam": {"userArn": ""}}}},
    ],
)
def test_missing_identity_is_forbidden(event: dict[str, object]) -> None:
    with pytest.raises(ApiError) as raised:
        caller_identity(event)
    assert (raised.value.status, raised.value.code) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON", "application/json; charset=utf-8", 'application/json;charset="UTF-8"'],
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    require_json_content_type({"Content-Type": content_type})


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "application/jsonl", "application/json; charset=latin-1", "application/x-www-form-urlencoded"],
)
def test_other_media_types_are_unsupported(content_type: str) -> None:
    with pytest.raises(ApiError) as raised:
        require_json_content_type({"content-type": content_type} if content_type else {})
    assert (raised.value.status, raised.value.code) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_base64_bodies_are_decoded_and_the_size_limit_counts_bytes() -> None:
    raw = "é".encode() * 10
    assert request_body({"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}) == raw
    assert request_body({"body": "é" * 10}, limit=20) == raw
    with pytest.raises(ApiError) as raised:
        request_body({"body": "é" * 11}, limit=20)
    assert (raised.value.status, raised.value.code) == (413, "PAYLOAD_TOO_LARGE")


def test_error_body_has_code_message_and_details() -> None:
    response = error_response(ApiError("SEQUENCE_CONFLICT", "Taken.", {"head": {"next_sequence_number": 3}}))
    assert response.status_code == 409
    assert (
        response.body
        == '{"error":{"code":"SEQUENCE_CONFLICT","message":"Taken.","details":{"head":{"next_sequence_number":3}}}}'
    )


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"TABLE_NAME": "t", "SEAL_IDLE_SECONDS": "60", "SERVICE_ID": "svc"})
    assert (settings.table_name, settings.seal_idle_seconds, settings.service_id) == ("t", 60, "svc")
    assert Settings.from_env({"TABLE_NAME": "t"}).seal_idle_seconds == 3600


@pytest.mark.parametrize(
    "environ", [{}, {"TABLE_NAME": "t", "SEAL_IDLE_SECONDS": "soon"}, {"TABLE_NAME": "t", "SEAL_IDLE_SECONDS": "0"}]
)
def test_bad_settings_fail_at_cold_start(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(environ)
