"""The local console of ``make dev`` over HTTP: the session list, unauthenticated, each row opening the viewer."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

from infra.api_client import ApiClient
from infra.launcher import LocalStackHandle
from tests.integration.ingest.builders import event
from tests.support.viewer_page import embedded

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Page:
    status: int
    headers: dict[str, str]
    text: str


@dataclass(frozen=True)
class Sealed:
    session_id: str
    agent_id: str


def get(local_stack: LocalStackHandle, path: str) -> Page:
    """An unsigned GET, as a browser sends it."""
    try:
        with urllib.request.urlopen(local_stack.base_url + path, timeout=120) as response:
            return Page(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode())
    except urllib.error.HTTPError as error:
        return Page(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode())


@pytest.fixture(scope="module")
def sealed(local_stack: LocalStackHandle) -> Sealed:
    agent = ApiClient(local_stack.base_url, access_key_id=f"AKIDAGENT{uuid.uuid4().hex[:11].upper()}")
    agent_id = f"console-agent-{uuid.uuid4().hex[:12]}"
    session_id = str(uuid.uuid4())
    events = [
        event(0, "SESSION_START", {"agent_id": agent_id, "environment": "dev", "framework": "langchain"}),
        event(1, "TOOL_CALL", {"tool_name": "lookup_order", "tool_id": "call-1"}),
        event(2, "TOOL_RESULT", {"tool_name": "lookup_order", "tool_id": "call-1", "status": "success"}),
        event(3, "SESSION_END", {"status": "success"}),
    ]
    posted = agent.post(f"/v1/sessions/{session_id}/events", {"events": events})
    assert posted.status == 200, posted.body
    assert session_id in local_stack.seal_now()
    return Sealed(session_id, agent_id)


def test_console_lists_sessions_without_credentials_and_links_each_to_its_viewer(
    local_stack: LocalStackHandle, sealed: Sealed
) -> None:
    page = get(local_stack, f"/_local/console?agent_id={sealed.agent_id}")

    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert sealed.session_id in page.text
    assert f'href="/_local/console/sessions/{sealed.session_id}/viewer"' in page.text
    assert "SEALED" in page.text
    assert "agentops-replay export SESSION_ID --format html" in page.text


def test_console_filters_are_those_of_get_v1_sessions(local_stack: LocalStackHandle, sealed: Sealed) -> None:
    page = get(local_stack, f"/_local/console?agent_id={sealed.agent_id}&status=OPEN")

    assert page.status == 200
    assert sealed.session_id not in page.text
    assert "no sessions" in page.text


def test_console_page_is_self_contained(local_stack: LocalStackHandle, sealed: Sealed) -> None:
    page = get(local_stack, "/_local/console")

    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.text  # also in the page, for a saved copy
    assert not re.search(r"<script|<link|<img|<iframe|url\(|https?://", page.text)


def test_console_opens_a_session_in_the_replay_viewer(local_stack: LocalStackHandle, sealed: Sealed) -> None:
    page = get(local_stack, f"/_local/console/sessions/{sealed.session_id}/viewer")

    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.lstrip().lower().startswith("<!doctype html>")
    document = json.loads(embedded(page.text.encode()))  # the export document of the sealed chain, as the page holds it
    assert document["session_id"] == sealed.session_id
    assert document["events"][0]["payload"]["agent_id"] == sealed.agent_id
    assert document["evidence_class"] == "AUTHORITATIVE_EVIDENCE"


def test_console_viewer_of_an_unknown_session_says_why(local_stack: LocalStackHandle) -> None:
    page = get(local_stack, f"/_local/console/sessions/{uuid.uuid4()}/viewer")

    assert page.status == 404
    assert "SESSION_NOT_FOUND" in page.text


def test_console_has_no_other_pages(local_stack: LocalStackHandle) -> None:
    assert get(local_stack, "/_local/console/admin").status == 404
