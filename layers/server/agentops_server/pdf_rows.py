"""Text and long tables for the PDF report (``agentops_server.pdf``): built-in fonts only, one line per row.

The built-in PDF fonts cover Latin-1, so ``plain`` shows anything else as a ``\\u`` escape; ``Rows`` draws a page of
a long table straight on the canvas, because a platypus ``Table`` costs about 1 ms per row, which a 100,000-event
session cannot afford.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable

ROWS_PER_PAGE = 80  # rows of the long tables per page: 81 lines of 8.5 pt fit the A4 frame
ALARM_SHADE = colors.Color(1, 0.86, 0.86)  # errors, failures and drops
WITHHELD_SHADE = colors.Color(0.92, 0.92, 0.92)  # payloads this export does not disclose


@dataclass(frozen=True)
class Column:
    title: str
    width: float
    font: str = "Helvetica"
    size: float = 6


class Rows(Flowable):  # type: ignore[misc]
    """One page of a long table. A cell too wide for its column is cut short with "..." (the export document has
    every value in full); a row with a shade gets that background, so errors and withheld payloads stand out."""

    ROW_HEIGHT = 8.5

    def __init__(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[str]],
        shades: Sequence[colors.Color | None] | None = None,
    ) -> None:
        super().__init__()
        self._columns = columns
        self._rows = rows
        self._shades = shades or [None] * len(rows)
        self._width = sum(column.width for column in columns)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self._width, (len(self._rows) + 1) * self.ROW_HEIGHT

    def draw(self) -> None:
        canvas = self.canv
        top = (len(self._rows) + 1) * self.ROW_HEIGHT
        canvas.setFillColor(colors.lightgrey)
        canvas.rect(0, top - self.ROW_HEIGHT, self._width, self.ROW_HEIGHT, stroke=0, fill=1)
        for index, shade in enumerate(self._shades, start=2):
            if shade is not None:
                canvas.setFillColor(shade)
                canvas.rect(0, top - index * self.ROW_HEIGHT, self._width, self.ROW_HEIGHT, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        canvas.setStrokeColor(colors.grey)
        canvas.setLineWidth(0.2)
        for index in range(1, len(self._rows) + 2):
            canvas.line(0, top - index * self.ROW_HEIGHT, self._width, top - index * self.ROW_HEIGHT)
        # One text object per column, a line per row: far fewer PDF operators than positioning every cell.
        x = 0.0
        for position, column in enumerate(self._columns):
            text = canvas.beginText(x + 1.5, top - self.ROW_HEIGHT + 2.2)
            text.setFont("Helvetica-Bold", column.size, leading=self.ROW_HEIGHT)
            text.textLine(fit(column.title, "Helvetica-Bold", column.size, column.width - 3))
            text.setFont(column.font, column.size, leading=self.ROW_HEIGHT)
            for row in self._rows:
                text.textLine(fit(row[position], column.font, column.size, column.width - 3))
            canvas.drawText(text)
            x += column.width


def paged_rows(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    shades: Sequence[colors.Color | None] | None = None,
) -> list[Rows]:
    """``rows`` as one ``Rows`` flowable per page."""
    all_shades = list(shades) if shades is not None else [None] * len(rows)
    return [
        Rows(columns, rows[start : start + ROWS_PER_PAGE], all_shades[start : start + ROWS_PER_PAGE])
        for start in range(0, len(rows), ROWS_PER_PAGE)
    ]


def fit(text: str, font: str, size: float, width: float) -> str:
    # No glyph of the built-in fonts is wider than 1.02 em (Courier: 0.6 em), so short text needs no measuring.
    if len(text) * size * (0.6 if font == "Courier" else 1.02) <= width or stringWidth(text, font, size) <= width:
        return text
    # The longest prefix that fits with its "...", by bisection: summaries can be long and tables 100,000 rows.
    shortest, longest = 0, len(text) - 1
    while shortest < longest:
        middle = (shortest + longest + 1) // 2
        if stringWidth(text[:middle] + "...", font, size) <= width:
            shortest = middle
        else:
            longest = middle - 1
    return text[:shortest] + "..."


def plain(value: Any) -> str:
    """Text for a built-in (Latin-1) font: anything else is shown as a \\u escape."""
    text = "" if value is None else str(value)
    if text.isascii():
        return text
    return "".join(char if ord(char) < 0x100 else f"\\u{ord(char):04x}" for char in text)
