"""One headless Chromium for the browser suite, and a helper that shows an export document in the viewer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import Browser, Page, running_browser
from tests.browser.viewing import Viewer


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with running_browser() as running:
        yield running


@pytest.fixture(scope="session")
def shared_page(browser: Browser) -> Iterator[Page]:
    page = browser.page()
    yield page
    page.close()


@pytest.fixture
def viewer(shared_page: Page, tmp_path: Path) -> Viewer:
    return Viewer(shared_page, tmp_path)
