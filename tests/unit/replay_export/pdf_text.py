"""Read the text of an uncompressed reportlab PDF (``render_pdf(..., compress=False)``) without a PDF library.

Collects the literal strings shown by ``Tj`` and ``TJ`` in page content streams, undoing PDF string escapes (PDF
32000-1 section 7.3.4.2), and joins them with spaces, so a sentence wrapped over lines still reads as one.
"""

from __future__ import annotations

import re

_SHOW = re.compile(rb"\((?:\\.|[^\\)])*\)\s*Tj|\[(?:[^\]\\]|\\.)*\]\s*TJ", re.DOTALL)
_LITERAL = re.compile(rb"\(((?:\\.|[^\\)])*)\)", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


def _unescape(raw: bytes) -> str:
    out = bytearray()
    index = 0
    while index < len(raw):
        byte = raw[index : index + 1]
        if byte == b"\\" and index + 1 < len(raw):
            following = raw[index + 1 : index + 2]
            octal = re.match(rb"[0-7]{1,3}", raw[index + 1 : index + 4])
            if octal:
                out.append(int(octal.group(), 8))
                index += 1 + len(octal.group())
                continue
            out += _ESCAPES.get(following, following)
            index += 2
            continue
        out += byte
        index += 1
    return out.decode("latin-1")


def pdf_strings(pdf: bytes) -> list[str]:
    """Every string the pages show, in content-stream order."""
    return [_unescape(literal) for shown in _SHOW.findall(pdf) for literal in _LITERAL.findall(shown)]


def pdf_text(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(pdf_strings(pdf)))
