"""The local stack's API Gateway emulation: routes come from the template, events have the payload 2.0 shape."""

from __future__ import annotations

import base64

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.apigw import RouteMatch, RouteTable, build_http_event, caller_from_authorization
from infra.template import HttpRoute, http_routes, load_template
from tests.support.paths import TEMPLATE


@pytest.fixture(scope="module")
def routes() -> RouteTable:
    return RouteTable(http_routes(load_template(TEMPLATE)))


def sigv4_authorization(access_key_id: str) -> str:
    request = AWSRequest(method="GET", url="http://127.0.0.1:3000/v1/keys")
    SigV4Auth(Credentials(access_key_id, "secret"), "execute-api", "us-east-1").add_auth(request)
    return str(request.headers["Authorization"])


def event_for(
    match: RouteMatch, headers: list[tuple[str, str]], body: bytes = b"", raw_query: str = ""
) -> dict[str, object]:
    return build_http_event(
        method=match.route.method,
        raw_path="/v1/sessions/abc/events",
        raw_query=raw_query,
        headers=headers,
        body=body,
        source_ip="127.0.0.1",
        match=match,
        request_id="req-1",
        domain_name="127.0.0.1:3000",
        now=1_700_000_000.0,
    )


def test_route_table_is_the_templates_http_api_events(routes: RouteTable) -> None:
    keys = {route.route_key for route in routes.routes}
    assert {"POST /v1/sessions/{session_id}/events", "GET /v1/sessions/{session_id}", "GET /v1/health"} <= keys
    assert {"GET /v1/sessions/{session_id}/chain", "GET /v1/keys"} <= keys


def test_path_parameters_are_extracted_and_percent_decoded(routes: RouteTable) -> None:
    match = routes.match("POST", "/v1/sessions/a%20b/events")
    assert match is not None
    assert match.route.function_logical_id == "IngestFunction"
    assert match.path_parameters == {"session_id": "a b"}


def test_session_view_and_chain_routes_do_not_shadow_each_other(routes: RouteTable) -> None:
    view = routes.match("GET", "/v1/sessions/s1")
    chain = routes.match("GET", "/v1/sessions/s1/chain")
    assert view is not None
    assert view.route.route_key == "GET /v1/sessions/{session_id}"
    assert chain is not None
    assert chain.route.function_logical_id == "ChainFunction"


def test_wrong_method_or_unknown_path_matches_nothing(routes: RouteTable) -> None:
    assert routes.match("DELETE", "/v1/sessions/s1") is None
    assert routes.match("GET", "/v1/sessions/s1/events") is None
    assert routes.match("GET", "/v1/nothing") is None
    assert routes.match("GET", "/v1/sessions/s1/chain/extra") is None


def test_literal_segments_beat_parameters() -> None:
    table = RouteTable(
        [
            HttpRoute("ById", "functions/a/", "GET", "/v1/items/{item_id}", True),
            HttpRoute("Latest", "functions/b/", "GET", "/v1/items/latest", True),
        ]
    )
    latest = table.match("GET", "/v1/items/latest")
    assert latest is not None
    assert latest.route.function_logical_id == "Latest"


def test_event_carries_the_payload_v2_fields(routes: RouteTable) -> None:
    match = routes.match("POST", "/v1/sessions/abc/events")
    assert match is not None
    event = event_for(
        match,
        [
            ("Content-Type", "application/json"),
            ("X-Trace", "a"),
            ("x-trace", "b"),
            ("Cookie", "one=1; two=2"),
            ("Authorization", sigv4_authorization("AKIDAGENT1")),
        ],
        body=b'{"events": []}',
        raw_query="a=1&a=2&b=",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/sessions/{session_id}/events"
    assert event["rawPath"] == "/v1/sessions/abc/events"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"session_id": "abc"}
    assert event["cookies"] == ["one=1", "two=2"]
    headers = event["headers"]
    assert isinstance(headers, dict)
    assert headers["content-type"] == "application/json"
    assert headers["x-trace"] == "a,b"
    assert "cookie" not in headers
    assert all(name == name.lower() for name in headers)
    assert (event["body"], event["isBase64Encoded"]) == ('{"events": []}', False)
    context = event["requestContext"]
    assert isinstance(context, dict)
    assert context["http"] == {
        "method": "POST",
        "path": "/v1/sessions/abc/events",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "",
    }
    assert context["routeKey"] == event["routeKey"]
    assert context["timeEpoch"] == 1_700_000_000_000
    iam = context["authorizer"]["iam"]
    assert iam["accessKey"] == "AKIDAGENT1"
    assert iam["userArn"] == "arn:aws:iam::123456789012:user/AKIDAGENT1"


def test_unsigned_request_reaches_the_handler_without_an_authorizer(routes: RouteTable) -> None:
    match = routes.match("POST", "/v1/sessions/abc/events")
    assert match is not None
    event = event_for(match, [("Content-Type", "application/json")], body=b"{}")
    context = event["requestContext"]
    assert isinstance(context, dict)
    assert "authorizer" not in context


def test_health_route_never_gets_an_authorizer_even_when_signed(routes: RouteTable) -> None:
    match = routes.match("GET", "/v1/health")
    assert match is not None
    context = event_for(match, [("Authorization", sigv4_authorization("AKIDX"))])["requestContext"]
    assert isinstance(context, dict)
    assert "authorizer" not in context


def test_binary_and_non_utf8_bodies_are_base64_encoded(routes: RouteTable) -> None:
    match = routes.match("POST", "/v1/sessions/abc/events")
    assert match is not None
    binary = event_for(match, [("Content-Type", "application/octet-stream")], body=b"\x00\x01")
    assert (binary["body"], binary["isBase64Encoded"]) == (base64.b64encode(b"\x00\x01").decode(), True)
    broken = event_for(match, [("Content-Type", "application/json")], body=b'{"a": "\xff"}')
    assert broken["isBase64Encoded"] is True
    assert base64.b64decode(str(broken["body"])) == b'{"a": "\xff"}'


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer token", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"],
)
def test_authorization_without_a_sigv4_credential_is_no_identity(authorization: str | None) -> None:
    assert caller_from_authorization(authorization) is None


def test_distinct_access_keys_are_distinct_principals() -> None:
    first = caller_from_authorization(sigv4_authorization("AKIDONE"))
    second = caller_from_authorization(sigv4_authorization("AKIDTWO"))
    assert first is not None
    assert second is not None
    assert first.user_arn != second.user_arn
