"""Open an export document in the viewer (a file:// page in headless Chromium) and read what the page concluded."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentops_server.viewer import render_viewer

from tests.browser.chromium import Page

_numbers = itertools.count()
# The page is done when its root element carries a verification status.
DONE = "(document.documentElement !== null && document.documentElement.dataset.verificationStatus)"


@dataclass(frozen=True)
class Shown:
    """What the page put on its root element, and its whole report (``window.agentopsReport``)."""

    status: str
    evidence_class: str
    first_violation: str
    verified_events: int
    report: dict[str, Any]
    url: str


class Viewer:
    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder

    def show(self, document: bytes, pin: str | None = None, *, name: str = "viewer") -> Shown:
        """Render ``document``, open it (pinning ``pin`` through the address) and wait for the verification."""
        path = self.folder / f"{name}-{next(_numbers)}.html"
        path.write_bytes(render_viewer(document))
        return self.open(path, pin)

    def open(self, path: Path, pin: str | None = None, timeout: float = 60) -> Shown:
        url = self.page.open(path, f"pin={pin}" if pin else "")
        self.page.wait_for(f"document.URL === {json.dumps(url)} && {DONE}", timeout=timeout)
        attributes = self.page.evaluate("JSON.stringify(Object.assign({}, document.documentElement.dataset))")
        data = json.loads(attributes)
        report = json.loads(self.page.evaluate("JSON.stringify(window.agentopsReport || null)"))
        return Shown(
            status=data["verificationStatus"],
            evidence_class=data.get("evidenceClass", ""),
            first_violation=data.get("firstViolation", ""),
            verified_events=int(data.get("verifiedEvents", "-1")),
            report=report,
            url=url,
        )
