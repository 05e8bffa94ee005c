"""The replay viewer page as bytes (``agentops_server.viewer``): one self-contained file, the document inside it
exactly, scripts and style admitted by their hashes only, the same bytes every time. What the page does in a
browser is tested in ``tests/browser``."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import tomllib
from importlib import resources

import pytest
from agentops_server import viewer
from agentops_server.viewer import render_viewer, viewer_chunks

from tests.support.chains import build_chain
from tests.support.paths import REPO_ROOT
from tests.support.viewer_page import embedded
from tests.unit.replay_export.exports import export_of

INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)
POLICY = re.compile(rb'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')


def document() -> bytes:
    return export_of(build_chain(8)).body


def policy_of(page: bytes) -> dict[str, list[str]]:
    match = POLICY.search(page)
    assert match is not None
    directives = [part.split() for part in match.group(1).decode("ascii").split(";")]
    return {name: values for name, *values in directives}


def test_the_page_holds_the_export_document_byte_for_byte() -> None:
    body = document()
    assert embedded(render_viewer(body)) == body


def test_any_bytes_are_embedded_unchanged_even_those_that_would_end_a_script() -> None:
    hostile = b'{"export_version":"1"}</script><script>alert(1)</script>\xff\x00<!--'
    page = render_viewer(hostile)
    assert embedded(page) == hostile
    assert page.count(b"<script") == 3  # the data block and the two scripts of the viewer, nothing injected


def test_two_renders_of_one_document_are_byte_identical() -> None:
    body = document()
    assert render_viewer(body) == render_viewer(body)


def test_streaming_gives_the_same_page_however_the_document_is_split() -> None:
    body = document() * 40  # not a document any more, but bytes are bytes here
    pieces = [body[start : start + 777] for start in range(0, len(body), 777)]
    assert b"".join(viewer_chunks(pieces)) == render_viewer(body)
    assert b"".join(viewer_chunks([])) == render_viewer(b"")


def test_streaming_a_large_document_yields_it_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(viewer, "_BASE64_BLOCK", 3 * 64)
    body = random.Random(7).randbytes(500_000)  # incompressible: deflate passes it on as it comes
    chunks = list(viewer_chunks([body[start : start + 50_000] for start in range(0, len(body), 50_000)]))
    assert len(chunks) > 6
    assert embedded(b"".join(chunks)) == body


def test_policy_allows_no_request_and_only_the_viewer_s_own_script_and_style() -> None:
    page = render_viewer(document())
    policy = policy_of(page)
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'none'"]
    assert policy["img-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'none'"]
    inline: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for kind, text in INLINE.findall(page):
        inline[kind].append("'sha256-" + base64.b64encode(hashlib.sha256(text).digest()).decode("ascii") + "'")
    assert len(inline[b"script"]) == 2
    assert sorted(policy["script-src"]) == sorted(inline[b"script"])
    assert policy["style-src"] == inline[b"style"]
    assert "'unsafe-inline'" not in str(policy)
    assert "'unsafe-eval'" not in str(policy)


def test_the_page_names_no_resource_outside_itself() -> None:
    page = render_viewer(document())
    folder = resources.files("agentops_server") / "viewer_assets"
    markup = (folder / "viewer.html").read_text(encoding="utf-8")
    assert re.search(r"\s(src|href|action|srcset|poster)\s*=", markup) is None  # no element loads anything
    assert re.search(r"@import|url\(", (folder / "viewer.css").read_text(encoding="utf-8")) is None
    assert re.search(rb"https?://", page) is None


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("viewer.js", "const end = '</script>';"),
        ("viewer.js", "// <!-- a comment the HTML parser would read as one"),
        ("viewer.css", "a { content: '</STYLE>'; }"),
        ("verifier.js", "const crlf = 1;\r\n"),
        ("viewer.html", "<p>\r\n</p>"),
    ],
)
def test_an_asset_that_cannot_be_inlined_as_it_is_is_refused(name: str, text: str) -> None:
    with pytest.raises(ValueError, match="cannot be inlined"):
        viewer.inlinable(name, text)


def test_the_assets_ship_with_the_package() -> None:
    folder = resources.files("agentops_server") / "viewer_assets"
    for name in ("viewer.html", "viewer.css", "verifier.js", "viewer.js"):
        assert (folder / name).is_file()
    settings = tomllib.loads((REPO_ROOT / "layers" / "server" / "pyproject.toml").read_text())
    assert "viewer_assets/*" in settings["tool"]["setuptools"]["package-data"]["agentops_server"]
    # The layer's build copies the whole package folder, assets included.
    assert 'cp -R "$(LAYER_DIR)agentops_server"' in (REPO_ROOT / "layers" / "server" / "Makefile").read_text()
