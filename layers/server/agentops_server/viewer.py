"""The replay viewer (API.md, export ``format: "html"``): one self-contained HTML file made from an export document.

The page embeds the export document's exact bytes, compressed (zlib's deflate format, which the browser inflates with
its own DecompressionStream; a 100,000-event document shrinks about six times) and in base64, so nothing in them can
end the script element that holds them. Around them are the viewer's own stylesheet and scripts from
``viewer_assets/``: ``verifier.js`` re-verifies the document
in the browser (ELS sections 2 to 9, hashes and the seal signature with WebCrypto) and ``viewer.js`` draws the
header, the timeline and the detail pane. Its Content-Security-Policy allows exactly those inline script and style
elements (by their SHA-256) and nothing else: no request of any kind leaves the page, so it works opened from disk.

Rendering reads the document as bytes and never parses it (the browser does, strictly): the same document gives the
same bytes (for one build of zlib: compression level and window are fixed, and deflate output is a function of its
input), and ``viewer_chunks`` streams a document of any size without holding it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator
from importlib import resources

ASSET_PACKAGE = "agentops_server"
ASSET_FOLDER = "viewer_assets"
MEDIA_TYPE = "text/html; charset=utf-8"

_PLACEHOLDERS = ("@@CSP@@", "@@STYLE@@", "@@DOCUMENT@@", "@@VERIFIER@@", "@@VIEWER@@")
# Text that would end or confuse the raw-text element an asset is inlined into (HTML "script data" and RAWTEXT).
_UNSAFE_IN_RAW_TEXT = re.compile(r"</script|</style|<!--", re.IGNORECASE)


def _asset(name: str) -> str:
    return inlinable(name, (resources.files(ASSET_PACKAGE) / ASSET_FOLDER / name).read_text(encoding="utf-8"))


def inlinable(name: str, text: str) -> str:
    """``text`` if it can go into the page as it is, else ``ValueError``: a CR (the HTML parser turns CR LF into LF
    before the CSP hash is checked, so the script would not run) or, in a script or the stylesheet, text that would
    end its element early."""
    if "\r" in text or (name != "viewer.html" and _UNSAFE_IN_RAW_TEXT.search(text)):
        raise ValueError(f"viewer asset {name} cannot be inlined as it is")
    return text


def _csp_source(text: str) -> str:
    """A CSP hash source for one inline element's text (CSP Level 3, "hash-source")."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _page_parts() -> tuple[bytes, bytes]:
    template = _asset("viewer.html")
    for placeholder in _PLACEHOLDERS:
        if template.count(placeholder) != 1:
            raise ValueError(f"viewer.html must hold {placeholder} exactly once")
    style, verifier, viewer = _asset("viewer.css"), _asset("verifier.js"), _asset("viewer.js")
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_csp_source(verifier)} {_csp_source(viewer)}",
            f"style-src {_csp_source(style)}",
            "connect-src 'none'",
            "img-src 'none'",
            "font-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )
    values = {"@@CSP@@": policy, "@@STYLE@@": style, "@@VERIFIER@@": verifier, "@@VIEWER@@": viewer}
    head, tail = template.split("@@DOCUMENT@@")

    def fill(text: str) -> bytes:
        return re.sub("|".join(values), lambda match: values[match.group(0)], text).encode("utf-8")

    return fill(head), fill(tail)


_HEAD, _TAIL = _page_parts()
_BASE64_BLOCK = 3 * 1024 * 1024  # compressed bytes per base64 piece (a multiple of 3, so pieces join cleanly)
_COMPRESSION_LEVEL = 6  # zlib's default: nearly all of level 9's gain at a third of its time


def viewer_chunks(export_document: Iterable[bytes]) -> Iterator[bytes]:
    """The viewer page in pieces, for a document that arrives in pieces (any split; nothing is held but one piece)."""
    yield _HEAD
    compressor = zlib.compressobj(_COMPRESSION_LEVEL)
    pending = b""
    for chunk in export_document:
        pending += compressor.compress(chunk)
        if len(pending) >= _BASE64_BLOCK:
            usable = len(pending) - len(pending) % 3
            yield base64.b64encode(pending[:usable])
            pending = pending[usable:]
    yield base64.b64encode(pending + compressor.flush())
    yield _TAIL


def render_viewer(export_document: bytes) -> bytes:
    """The viewer page for one export document (ELS section 9); byte-identical for the same document."""
    return b"".join(viewer_chunks([export_document]))
