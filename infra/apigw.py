"""API Gateway HTTP API emulation: route matching and the payload format 2.0 event a Lambda receives.

The route table comes from the template's ``HttpApi`` events (``infra.template.http_routes``), never from a second
list. Identity: on AWS the IAM authorizer verifies the SigV4 signature and puts the caller into
``requestContext.authorizer.iam``; locally the signature is not checked and the caller is the access key id of the
``Authorization`` header (API.md "Local stack"). A request without it reaches the handler with no authorizer, and
the handler answers 403 FORBIDDEN, as the spec requires.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from infra.template import HttpRoute

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
LOCAL_API_ID = "local"
STAGE = "$default"

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_PATH_PARAMETER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$")
# Bodies of these media types reach the Lambda as text; anything else is base64 (API Gateway's behaviour).
_TEXT_MEDIA_TYPES = re.compile(r"^(text/.*|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded))$")


@dataclass(frozen=True)
class RouteMatch:
    route: HttpRoute
    path_parameters: dict[str, str]


class RouteTable:
    """Matches a request to a template route, most specific first (literal segments beat ``{parameters}``)."""

    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        compiled = [(route, _path_pattern(route.path)) for route in routes]
        compiled.sort(key=lambda entry: (entry[0].path.count("+}"), entry[0].path.count("{")))
        self._routes = compiled

    @property
    def routes(self) -> list[HttpRoute]:
        return [route for route, _ in self._routes]

    def match(self, method: str, path: str) -> RouteMatch | None:
        for route, pattern in self._routes:
            if route.method not in ("ANY", method.upper()):
                continue
            matched = pattern.fullmatch(path)
            if matched:
                parameters = {name: unquote(value) for name, value in matched.groupdict().items()}
                return RouteMatch(route, parameters)
        return None


def _path_pattern(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.split("/"):
        parameter = _PATH_PARAMETER.match(segment)
        if parameter is None:
            parts.append(re.escape(segment))
        elif parameter.group(2):
            parts.append(f"(?P<{parameter.group(1)}>.+)")
        else:
            parts.append(f"(?P<{parameter.group(1)}>[^/]+)")
    return re.compile("/".join(parts))


@dataclass(frozen=True)
class IamCaller:
    """What the IAM authorizer would report for the caller; locally everything derives from the access key id."""

    access_key_id: str

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/{self.access_key_id}"

    def authorizer_context(self) -> dict[str, object]:
        return {
            "iam": {
                "accessKey": self.access_key_id,
                "accountId": LOCAL_ACCOUNT_ID,
                "callerId": self.access_key_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": self.user_arn,
                "userId": self.access_key_id,
            }
        }


def caller_from_authorization(authorization: str | None) -> IamCaller | None:
    """The access key id of a SigV4 ``Authorization`` header (``Credential=<key id>/<scope>``), if there is one."""
    if not authorization or not authorization.startswith("AWS4-HMAC-SHA256 "):
        return None
    credential = _CREDENTIAL.search(authorization)
    return IamCaller(credential.group(1)) if credential else None


def build_http_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    match: RouteMatch,
    request_id: str,
    domain_name: str,
    now: float | None = None,
) -> dict[str, object]:
    """The API Gateway HTTP API payload format 2.0 event for one request."""
    merged_headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        # Repeated headers are joined with commas in format 2.0.
        merged_headers[lowered] = f"{merged_headers[lowered]},{value}" if lowered in merged_headers else value
    merged_headers.setdefault("x-forwarded-for", source_ip)
    merged_headers.setdefault("x-forwarded-proto", "http")

    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value

    timestamp = time.time() if now is None else now
    request_context: dict[str, object] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", maxsplit=1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": merged_headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": match.route.route_key,
        "stage": STAGE,
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(timestamp)),
        "timeEpoch": int(timestamp * 1000),
    }
    if match.route.authorized:
        caller = caller_from_authorization(merged_headers.get("authorization"))
        if caller is not None:
            request_context["authorizer"] = caller.authorizer_context()

    event: dict[str, object] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged_headers,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    if body:
        event["body"], event["isBase64Encoded"] = _encode_body(body, merged_headers.get("content-type", ""))
    return event


def _encode_body(body: bytes, content_type: str) -> tuple[str, bool]:
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    if _TEXT_MEDIA_TYPES.match(media_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True
