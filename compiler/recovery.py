"""Syntax error recovery: resynchronise at the next top-level declaration.

After a syntax error the parser blanks out the declaration the error is in,
from its first line up to the line where the next declaration starts, and
parses again, so that every declaration with a syntax error is reported once
and the others are still parsed. Blanking keeps newlines (every other
character becomes a space), so positions, and the spans of later
diagnostics, stay those of the file.

A declaration starts on a line that begins, at column 1, with ``import``,
``param`` or ``KIND NAME {`` (``step summarize {``), which is how exo files
are written; a declaration written further right is found as part of the one
before it, and is then skipped with it.
"""

from __future__ import annotations

import re
from bisect import bisect_right

_START = re.compile(
    r"^(?:import\b|param\b|[A-Za-z_][A-Za-z0-9_.\-]*[ \t]+[A-Za-z_][A-Za-z0-9_.\-]*[ \t]*\{)",
    re.MULTILINE,
)


def declaration_starts(text: str) -> list[int]:
    """Offsets of the lines where a top-level declaration starts, in order."""
    return [m.start() for m in _START.finditer(text)]


def declaration_around(text: str, pos: int) -> tuple[int, int]:
    """``[start, end)`` of the declaration holding offset ``pos``: from the last
    declaration start at or before it (or the top of the file) to the next one
    after it (or the end of the file)."""
    starts = declaration_starts(text)
    i = bisect_right(starts, pos)
    start = starts[i - 1] if i > 0 else 0
    end = starts[i] if i < len(starts) else len(text)
    return start, end


def blank(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` turned into spaces, newlines kept."""
    middle = re.sub(r"[^\r\n]", " ", text[start:end])
    return text[:start] + middle + text[end:]


def offset_of(text: str, line: int, column: int) -> int:
    """The offset of a 1-based line and column."""
    pos = 0
    for _ in range(line - 1):
        nl = text.find("\n", pos)
        if nl < 0:
            return len(text)
        pos = nl + 1
    return min(pos + column - 1, len(text))
