"""Reading CSV text cell by cell, with the exact position of every cell.

``csv.reader`` gives cells but not where they are; :func:`records` pairs each
record's cells with their spans (quoted cells, doubled quotes and line breaks
inside quotes counted correctly), so that a catalog diagnostic can point at one
cell. :func:`redact` keeps only the cells diagnostics point at, for rendering.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence

from exo.compiler.diagnostics import DiagnosticSink, Span
from exo.compiler.records import record


@record
class Record:
    """One CSV record with the position of each of its cells."""

    line: int
    cells: list[str]
    spans: list[Span]
    #: Where a missing cell at the end of the record would go.
    end: Span


class _Lines:
    """Feeds ``csv.reader`` line by line and remembers how many lines it took."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.taken = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.taken >= len(self.lines):
            raise StopIteration
        self.taken += 1
        return self.lines[self.taken - 1]


_LINE_ENDS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _cell_bounds(raw: str) -> tuple[list[tuple[int, int]], int | None]:
    """Start/end offsets of the cells of one raw record (Python's default CSV dialect).

    Returns the bounds and, for a quoted cell that is never closed, its offset.
    """
    end = len(raw.rstrip(_LINE_ENDS))
    bounds: list[tuple[int, int]] = []
    i = 0
    while True:
        start = i
        if i < end and raw[i] == '"':
            i += 1
            closed = False
            while i < end:
                if raw[i] == '"':
                    if i + 1 < end and raw[i + 1] == '"':
                        i += 2
                        continue
                    i += 1
                    closed = True
                    break
                i += 1
            if not closed:
                bounds.append((start, len(raw.rstrip(_LINE_ENDS))))
                return bounds, start
        while i < end and raw[i] != ",":
            i += 1
        bounds.append((start, i))
        if i >= end:
            return bounds, None
        i += 1


def records(text: str, file: str, sink: DiagnosticSink) -> Iterator[Record]:
    lines = text.splitlines(keepends=True)
    feed = _Lines(lines)
    reader = csv.reader(feed)
    while True:
        first = feed.taken
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            sink.error(
                "E402",
                f"catalog line {first + 1} is not valid CSV: {exc}",
                Span.point(file, first + 1, 1),
                help=("to fix: check the quotes and separators on this line",),
            )
            return
        raw_lines = lines[first : feed.taken]
        raw = "".join(raw_lines)
        starts: list[int] = []
        pos = 0
        for ln in raw_lines:
            starts.append(pos)
            pos += len(ln)

        def at(offset: int, starts: list[int] = starts, first: int = first) -> tuple[int, int]:
            k = max(j for j, s in enumerate(starts) if s <= offset) if starts else 0
            return first + 1 + k, offset - (starts[k] if starts else 0) + 1

        if not cells or all(not c.strip() for c in cells):
            continue
        bounds, unclosed = _cell_bounds(raw)
        if unclosed is not None:
            line, col = at(unclosed)
            sink.error(
                "E402",
                "quoted cell is never closed",
                Span.point(file, line, col),
                help=(
                    'to fix: close the quote; a quote inside a quoted cell is written twice ("")',
                ),
                notes=("everything after this quote was read as part of one cell",),
            )
            return
        spans: list[Span] = []
        if len(bounds) == len(cells):
            for s, e in bounds:
                line, col = at(s)
                end_line, end_col = at(e) if e > s else (line, col + 1)
                spans.append(Span(file, line, col, end_line, end_col))
        else:  # should not happen; fall back to the start of the record
            spans = [Span.point(file, first + 1, 1) for _ in cells]
        tail = len(raw.rstrip(_LINE_ENDS))
        line, col = at(tail)
        yield Record(first + 1, cells, spans, Span.point(file, line, col))


def header_span(rec: Record) -> Span:
    last = rec.spans[-1]
    return Span(rec.spans[0].file, rec.line, 1, last.end_line, last.end_column)


def redact(text: str, spans: Sequence[Span]) -> str:
    """``text`` with every character outside ``spans`` blanked (lines kept, as ``splitlines``)."""
    lines = text.splitlines()
    keep: dict[int, list[tuple[int, int]]] = {}
    for sp in spans:
        for ln in range(sp.line, min(sp.end_line, len(lines)) + 1):
            lo = sp.column - 1 if ln == sp.line else 0
            hi = sp.end_column - 1 if ln == sp.end_line else len(lines[ln - 1])
            keep.setdefault(ln, []).append((lo, hi))
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        ranges = keep.get(number)
        if not ranges:
            out.append("")
            continue
        chars = [" "] * len(line)
        for lo, hi in ranges:
            chars[lo:hi] = line[lo:hi]
        out.append("".join(chars).rstrip())
    return "\n".join(out)
