"""Spot traces: reading the public format and turning a trace into spells of capacity.

The format is that of the "Can't Be Late" traces (NSDI 2024, the public
``skypilot-org/spot-traces`` repository; see docs/simulate.md): a JSON object
``{"metadata": {"gap_seconds": 300, ...}, "data": [...]}`` with one value per
tick of ``gap_seconds``, the number of spot instances available at that tick
(0/1 for single-node traces, 0..N for N-node traces). A value dropping is a
preemption; 0 is a capacity gap.

A trace is replayed cyclically (a run starts at a random offset and wraps
around at the end). A step of ``m`` instances in the trace's zone holds, at a
tick of value ``a`` in a trace whose largest value is ``amax``, instance ``j``
(0-based) while ``a > j * amax / m``: with a 0/1 trace every instance of the
step is up or down together, with an N-node trace the step keeps the share of
its instances the trace keeps of its nodes.

Files are read with the bounded reader of ``compiler/inputs.py``; every problem
in every file is a diagnostic (E630-E634), all reported at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exo.compiler.diagnostics import CompileError, Diagnostic, Span
from exo.compiler.inputs import MAX_TRACE_BYTES, InputRefused, read_regular_file

#: Most ticks a trace may hold (45 days of 5-minute ticks are 12,960).
MAX_TICKS = 10_000_000
#: Largest tick (one week); the smallest is one second.
MAX_GAP_SECONDS = 7 * 24 * 3600.0
#: Largest count at one tick.
MAX_COUNT = 1_000_000

FIX = 'to fix: a trace is {"metadata": {"gap_seconds": 300}, "data": [1, 1, 0, ...]}'


@dataclass(frozen=True, slots=True)
class SpotTrace:
    """One trace: its label, the tick in hours and the count available at each tick."""

    name: str
    tick_h: float
    counts: tuple[int, ...]

    @property
    def period_h(self) -> float:
        return self.tick_h * len(self.counts)

    @property
    def peak(self) -> int:
        return max(self.counts)

    def available_fraction(self) -> float:
        """Share of ticks with any spot capacity."""
        return sum(1 for c in self.counts if c > 0) / len(self.counts)


@dataclass(frozen=True, slots=True)
class Spells:
    """The up spells (hours) of one instance level of a trace, over three periods.

    Spells are laid out over ``[0, 3 * period_h)`` (the trace repeated three
    times, spells that touch across a period boundary merged), so that the spell
    containing or following any time of the middle period is found by one search.
    ``always_up``: the level never loses capacity.
    """

    starts: np.ndarray[Any, np.dtype[np.float64]]
    ends: np.ndarray[Any, np.dtype[np.float64]]
    period_h: float
    always_up: bool


def spells(trace: SpotTrace, threshold: float) -> Spells:
    """Spells during which the trace's count is above ``threshold``."""
    up = np.asarray(trace.counts, dtype=np.float64) > threshold
    n = up.size
    if up.all():
        return Spells(np.zeros(1), np.full(1, 3.0 * trace.period_h), trace.period_h, True)
    tiled = np.concatenate([[False], np.tile(up, 3), [False]]).astype(np.int8)
    edges = np.diff(tiled)
    starts = np.flatnonzero(edges == 1).astype(np.float64) * trace.tick_h
    ends = np.flatnonzero(edges == -1).astype(np.float64) * trace.tick_h
    assert starts.size == ends.size and n > 0
    return Spells(starts, ends, trace.period_h, False)


# --------------------------------------------------------------------------- reading


def load_traces(paths: Sequence[Path]) -> list[SpotTrace]:
    """Every trace, or one CompileError with the problems of every file."""
    out: list[SpotTrace] = []
    problems: list[Diagnostic] = []
    sources: dict[str, str] = {}
    for path in paths:
        label = str(path)
        try:
            text = _read(path, label)
            sources[label] = text
            out.append(parse_trace(text, label))
        except CompileError as e:
            problems.extend(e.diagnostics)
    if problems:
        raise CompileError(problems, sources)
    return out


def _read(path: Path, label: str) -> str:
    try:
        data = read_regular_file(path, MAX_TRACE_BYTES)
    except InputRefused as e:
        raise CompileError(
            [Diagnostic("E630", f"cannot read the spot trace {label}: it {e.reason}")]
        ) from None
    except OSError as e:
        raise CompileError(
            [Diagnostic("E630", f"cannot read the spot trace {label}: {e.strerror or e}")]
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CompileError(
            [Diagnostic("E631", f"{label} is not a spot trace: not UTF-8 text (byte {e.start})")]
        ) from None


def parse_trace(text: str, label: str) -> SpotTrace:
    """A trace from its JSON text; every problem found is a diagnostic."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        line, col = (e.lineno, e.colno) if isinstance(e, json.JSONDecodeError) else (1, 1)
        msg = e.msg if isinstance(e, json.JSONDecodeError) else "nesting too deep"
        raise CompileError(
            [
                Diagnostic(
                    "E631",
                    f"{label} is not a spot trace: invalid JSON ({msg})",
                    Span.point(label, line, col),
                    help=(FIX,),
                )
            ],
            {label: text},
        ) from None
    if not isinstance(data, dict) or "data" not in data:
        raise CompileError(
            [Diagnostic("E631", f'{label} is not a spot trace: no "data" list', help=(FIX,))]
        )
    problems: list[Diagnostic] = []
    tick = _gap_seconds(data.get("metadata"), label, problems)
    counts = _counts(data["data"], label, problems)
    if problems:
        raise CompileError(problems)
    assert tick is not None and counts is not None
    if max(counts) == 0:
        raise CompileError(
            [
                Diagnostic(
                    "E634",
                    f"the spot trace {label} never has spot capacity (every tick is 0)",
                    help=(
                        "a zone without any capacity cannot be replayed; "
                        "leave it out, or plan that step on demand",
                    ),
                )
            ]
        )
    return SpotTrace(label, tick / 3600.0, counts)


def _gap_seconds(meta: object, label: str, problems: list[Diagnostic]) -> float | None:
    gap = meta.get("gap_seconds") if isinstance(meta, dict) else None
    ok = isinstance(gap, int | float) and not isinstance(gap, bool)
    if ok and math.isfinite(float(gap)) and 1.0 <= float(gap) <= MAX_GAP_SECONDS:  # type: ignore[arg-type]
        return float(gap)  # type: ignore[arg-type]
    shown = "missing" if gap is None else json.dumps(gap)[:40]
    problems.append(
        Diagnostic(
            "E632",
            f"{label}: metadata.gap_seconds must be a number of seconds from 1 to "
            f"{MAX_GAP_SECONDS:.0f}, got {shown}",
            help=('to fix: the traces\' tick is usually "gap_seconds": 300 (5 minutes)',),
        )
    )
    return None


def _counts(raw: object, label: str, problems: list[Diagnostic]) -> tuple[int, ...] | None:
    def bad(why: str) -> None:
        problems.append(Diagnostic("E633", f'{label}: "data" {why}', help=(FIX,)))

    if not isinstance(raw, list) or not raw:
        bad("must be a non-empty list of instance counts, one per tick")
        return None
    if len(raw) > MAX_TICKS:
        bad(f"holds {len(raw):,} ticks; at most {MAX_TICKS:,} are read")
        return None
    out: list[int] = []
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            bad(f"[{i}] is {json.dumps(v)[:40]}, not a count of instances")
            return None
        if v < 0 or v > MAX_COUNT or v != int(v):
            bad(f"[{i}] is {v}, not a whole count from 0 to {MAX_COUNT:,}")
            return None
        out.append(int(v))
    return tuple(out)
