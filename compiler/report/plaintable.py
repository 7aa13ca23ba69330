"""The plain text of the report's step table, without laying it out cell by cell.

A plan of 10,000 steps has a table of 10,000 rows. rich lays out and renders
every cell on its own (measure, wrap, pad, crop: 7.6 of the 38 s that
``exoc plan`` took at 10,000 steps). For plain text (a file, a pipe, a
snapshot) nothing of that is needed when every cell fits on its line: the
columns are as wide as their widest cell, and each line is the cells padded to
them. :func:`plain_table` writes exactly the text that rich writes for
``Table(box=box.SIMPLE_HEAD, pad_edge=False, show_footer=True)`` with those
cells (a property test holds it to rich's), and returns ``None`` when the
table is wider than the page, where rich shrinks and wraps columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rich.cells import cell_len

Justify = Literal["left", "right"]


def _pad(text: str, width: int, justify: Justify) -> str:
    gap = " " * (width - cell_len(text))
    return gap + text if justify == "right" else text + gap


def plain_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    footer: Sequence[str],
    justify: Sequence[Justify],
    width: int,
) -> list[str] | None:
    """The table's lines (trailing spaces stripped), or ``None`` if it does not fit ``width``.

    ``rows`` hold one-line cells; the first and last columns have no outer padding
    (``pad_edge=False``), the others one space each side, and the SIMPLE_HEAD box
    adds a space at each edge and between columns.
    """
    table = [header, *rows, footer]
    if any("\n" in c for row in table for c in row):
        return None
    cols = len(header)
    widths = [max(cell_len(row[i]) for row in table) for i in range(cols)]
    total = sum(widths) + 3 * (cols - 1) + 2  # pads and dividers between columns, edges
    if total > width:
        return None

    def line(cells: Sequence[str]) -> str:
        padded = (_pad(c, w, j) for c, w, j in zip(cells, widths, justify, strict=True))
        return (" " + "   ".join(padded)).rstrip()

    return [
        "",  # the box's top edge: spaces
        line(header),
        " " + "─" * (total - 2),
        *(line(r) for r in rows),
        "",  # the footer's separator: spaces
        line(footer),
        "",  # the bottom edge
    ]
