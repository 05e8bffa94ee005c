"""The local console of ``make dev``: ``GET /_local/console`` lists the sessions, and each row opens that session in
the replay viewer (``GET /_local/console/sessions/<session_id>/viewer``).

Local stack only, and unauthenticated like ``/_local/info``: the console calls the stack's own routes through the
same handlers a signed client reaches, as the local caller ``local-console`` - ``GET /v1/sessions`` for the list and
``POST /v1/sessions/{session_id}/exports`` with ``format: "html"`` for the viewer, whose file it reads back from the
local bucket and returns. A deployment has no console: auditors get the same viewer from the HTML export
(``agentops-replay export SESSION_ID --format html``).

The list page is self-contained (inline style, no script, a Content-Security-Policy that forbids every fetch); the
viewer page is the export's own self-contained file.
"""

from __future__ import annotations

import base64
import json
import re
import traceback
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from infra.apigw import RouteTable, build_http_event
from infra.lambda_runtime import FunctionPool, HandlerNotInstalledError

CONSOLE_PATH = "/_local/console"
CONSOLE_CALLER = "local-console"
# What a SigV4 Authorization header carries; the local stack takes the caller from its access key id alone.
CONSOLE_AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential={CONSOLE_CALLER}/20260101/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host, Signature=local"
)
LIST_PARAMETERS = ("agent_id", "status", "next_token")
STATUSES = ("", "OPEN", "ENDED", "SEALING", "SEALED")
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"
_VIEWER_PATH = re.compile(rf"{re.escape(CONSOLE_PATH)}/sessions/([0-9a-fA-F-]{{36}})/viewer")

# (method, path, raw query, body) -> the Lambda proxy result the route's handler returned
RouteCaller = Callable[[str, str, str, bytes], Mapping[str, Any]]


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    body: bytes
    content_security_policy: str | None = PAGE_CSP


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")


def console_page(call_route: RouteCaller, path: str, raw_query: str) -> Page:
    """The page for ``GET path?raw_query`` under ``/_local/console``."""
    if path in (CONSOLE_PATH, CONSOLE_PATH + "/"):
        return _session_list(call_route, raw_query)
    match = _VIEWER_PATH.fullmatch(path)
    if match is None:
        return _message(404, "Not found", f"The console has no page {path}.")
    return _viewer(call_route, match.group(1).lower())


def route_caller(routes: RouteTable, pools: Mapping[str, FunctionPool]) -> RouteCaller:
    """Calls the stack's routes as the console's local caller, through the handlers that serve them over HTTP."""

    def call(method: str, path: str, raw_query: str, body: bytes) -> Mapping[str, Any]:
        match = routes.match(method, path)
        if match is None:
            return _error_result(404, "NOT_FOUND", f"no route for {method} {path}")
        event = build_http_event(
            method=method,
            raw_path=path,
            raw_query=raw_query,
            headers=[("authorization", CONSOLE_AUTHORIZATION), ("content-type", "application/json")],
            body=body,
            source_ip="127.0.0.1",
            match=match,
            request_id=str(uuid.uuid4()),
            domain_name="127.0.0.1",
        )
        try:
            result: Mapping[str, Any] = pools[match.route.function_logical_id].invoke(event)
        except HandlerNotInstalledError as error:
            return _error_result(503, "HANDLER_NOT_INSTALLED", str(error))
        except Exception:
            traceback.print_exc()
            return _error_result(500, "INTERNAL_ERROR", "the function failed")
        return result

    return call


def _error_result(status: int, code: str, message: str) -> Mapping[str, Any]:
    return {"statusCode": status, "body": json.dumps({"error": {"code": code, "message": message, "details": {}}})}


def _session_list(call_route: RouteCaller, raw_query: str) -> Page:
    query = {name: value for name, value in parse_qsl(raw_query) if name in LIST_PARAMETERS and value}
    status, document = _json_result(call_route("GET", "/v1/sessions", urlencode(query), b""))
    if status != 200:
        return _message(status, "The session list failed", _api_error(document))
    rows = "".join(_session_row(session) for session in document.get("sessions", []))
    next_token = document.get("next_token")
    more = (
        f'<p><a href="{CONSOLE_PATH}?{escape(urlencode({**query, "next_token": next_token}))}">next page</a></p>'
        if next_token
        else ""
    )
    table = f"""<table><thead><tr><th>session</th><th>agent</th><th>status</th><th>events</th><th>started (UTC)</th>
<th>ended</th><th>sealed</th></tr></thead><tbody>{rows or '<tr><td colspan="7">no sessions</td></tr>'}</tbody></table>
{more}
<p class="note">Newest first, as <code>GET /v1/sessions</code> lists them. A row opens the session in the replay viewer:
the HTML export of its sealed chain, which checks every hash and the seal's signature in your browser. Local stack only;
on a deployment run <code>agentops-replay export SESSION_ID --format html</code> for the same view.</p>"""
    body = _filter_form(query) + table
    return Page(200, "text/html; charset=utf-8", _document("Sessions", body))


def _filter_form(query: Mapping[str, str]) -> str:
    options = "".join(
        f'<option value="{name}"{" selected" if query.get("status", "") == name else ""}>{name or "any"}</option>'
        for name in STATUSES
    )
    agent_id = escape(query.get("agent_id", ""))
    return (
        f'<form method="get" action="{CONSOLE_PATH}">'
        f'<label>agent id <input name="agent_id" value="{agent_id}"></label> '
        f'<label>status <select name="status">{options}</select></label> <button>filter</button></form>\n'
    )


def _session_row(session: Mapping[str, Any]) -> str:
    session_id = str(session.get("session_id"))
    link = f"{CONSOLE_PATH}/sessions/{quote(session_id)}/viewer"
    cells = [session.get(name) for name in ("agent_id", "status", "event_count", "started_at", "ended_at", "sealed_at")]
    status_class = "alarm" if session.get("status") in ("OPEN", "SEALING") else ""
    return (
        f'<tr class="{status_class}"><td><a href="{escape(link)}">{escape(session_id)}</a></td>'
        + "".join(f"<td>{'' if cell is None else escape(str(cell))}</td>" for cell in cells)
        + "</tr>"
    )


def _viewer(call_route: RouteCaller, session_id: str) -> Page:
    request = json.dumps({"format": "html"}).encode()
    status, document = _json_result(call_route("POST", f"/v1/sessions/{session_id}/exports", "", request))
    if status != 201:
        return _message(status, f"No viewer for session {session_id}", _api_error(document))
    # The presigned GET of the local bucket (moto on 127.0.0.1), made by the export handler itself.
    with urllib.request.urlopen(str(document["url"]), timeout=60) as response:  # noqa: S310
        viewer = response.read()
    return Page(200, "text/html; charset=utf-8", viewer, content_security_policy=None)


def _json_result(result: Mapping[str, Any]) -> tuple[int, Any]:
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    try:
        return int(result.get("statusCode", 500)), json.loads(raw)
    except ValueError:
        return int(result.get("statusCode", 500)), {}


def _api_error(document: Any) -> str:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"
    return "the service answered without an error document"


def _message(status: int, title: str, text: str) -> Page:
    body = f'<p class="alarm">{escape(text)}</p><p><a href="{CONSOLE_PATH}">all sessions</a></p>'
    return Page(status, "text/html; charset=utf-8", _document(title, body))


def _document(title: str, body: str) -> bytes:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">
<title>{escape(title)} - AgentOps Replay local console</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .35em .6em; text-align: left; font-variant-numeric: tabular-nums; }}
th {{ background: #f3f3f3; }}
tr:hover {{ background: #f7f9ff; }}
code, td:first-child {{ font-family: ui-monospace, monospace; }}
.alarm {{ color: #a40000; }}
.note {{ color: #555; max-width: 60em; }}
form {{ margin-bottom: 1em; }}
</style></head>
<body><h1>{escape(title)}</h1>
{body}
</body></html>
""".encode()
