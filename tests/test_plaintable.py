"""The report's text written line by line (the step table, the indented sections) is
rich's text exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich import box
from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from exo.compiler.report import text
from exo.compiler.report.plaintable import Justify, plain_table
from exo.compiler.report.text import render_plain_renderable

#: Cells as the report has them (names, tiers, figures), wide characters included;
#: no line breaks, tabs or spaces at either end.
_CHARS = st.sampled_from([*map(chr, range(0x21, 0x7F)), " ", "\u4e2d", "\xe9", "\u2500", "\xd7"])
CELL = st.text(_CHARS, max_size=14).map(str.strip)


def rich_text(
    header: list[str], rows: list[list[str]], footer: list[str], justify: list[Justify], width: int
) -> str:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_footer=True, footer_style="bold")
    for h, j, f in zip(header, justify, footer, strict=True):  # Text: no markup read
        table.add_column(Text(h), justify=j, footer=Text(f))
    for r in rows:
        table.add_row(*(Text(c) for c in r))
    return render_plain_renderable(table, width)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]], list[str], list[Justify], int]:
    cols = draw(st.integers(1, 7))
    row = st.lists(CELL, min_size=cols, max_size=cols)
    header = draw(row.filter(any))  # rich leaves out a header row of empty cells
    justify: list[Justify] = draw(
        st.lists(st.sampled_from(["left", "right"]), min_size=cols, max_size=cols)
    )
    return header, draw(st.lists(row, max_size=6)), draw(row), justify, draw(st.integers(20, 160))


@settings(max_examples=400, deadline=None)
@given(tables())
def test_plain_table_writes_what_rich_writes_or_gives_way(
    t: tuple[list[str], list[list[str]], list[str], list[Justify], int],
) -> None:
    header, rows, footer, justify, width = t
    lines = plain_table(header, rows, footer, justify, width)
    if lines is None:  # wider than the page: rich shrinks and wraps columns
        return
    assert "\n".join(lines) + "\n" == rich_text(header, rows, footer, justify, width)


def test_a_table_wider_than_the_page_is_left_to_rich() -> None:
    assert plain_table(["a" * 30, "b"], [], ["", ""], ["left", "left"], 30) is None
    assert plain_table(["a" * 20, "b"], [], ["", ""], ["left", "left"], 30) is not None
    assert plain_table(["a", "b"], [["x\ny", "z"]], ["", ""], ["left", "left"], 80) is None


#: Section items: short and long (wrapped), words and runs without spaces, styled spans,
#: a tab or a line break now and then (rich's own layout then).
ITEM_TEXT = st.text(
    st.sampled_from([*"abc xyz-:;()$%.,", " ", "\u4e2d", "\xe9", "\t", "\n"]), max_size=200
)


@st.composite
def items(draw: st.DrawFn) -> list[tuple[int, Text]]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        t = Text(draw(ITEM_TEXT), style=draw(st.sampled_from(["", "dim", "bold"])))
        if t.plain and draw(st.booleans()):
            t.stylize("cyan", 0, draw(st.integers(1, len(t.plain))))
        out.append((draw(st.integers(1, 3)), t))
    return out


@settings(max_examples=400, deadline=None)
@given(items(), st.integers(20, 160))
def test_an_indented_section_writes_what_rich_paddings_write(
    its: list[tuple[int, Text]], width: int
) -> None:
    expected = Group(Text("why", style="bold"), *(Padding(t, (0, 0, 0, 2 * lv)) for lv, t in its))
    assert render_plain_renderable(text._section("why", its), width) == render_plain_renderable(
        expected, width
    )
