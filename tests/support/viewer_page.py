"""The export document a replay viewer page (``agentops_server.viewer``) embeds, read back for tests."""

from __future__ import annotations

import base64
import re
import zlib

DATA_BLOCK = re.compile(
    rb'<script id="export-document" type="application/octet-stream" data-encoding="deflate base64">'
    rb"([A-Za-z0-9+/=]*)</script>"
)


def embedded(page: bytes) -> bytes:
    """The exact bytes of the export document in ``page``."""
    match = DATA_BLOCK.search(page)
    assert match is not None, "the page embeds no export document"
    return zlib.decompress(base64.b64decode(match.group(1), validate=True))
