"""What ``exoc plan`` shows while the optimizer searches, and how Ctrl-C stops it.

The optimizer is a pure function that takes a ``progress`` callback and a
``stop`` predicate (:mod:`exo.compiler.anytime`); this module supplies both for a
terminal: a one-line status on stderr ("best 37 h, bound 31 h, gap 16%"), shown
only when stderr is a terminal, and a SIGINT handler whose first Ctrl-C asks the
search to stop and return the best plan so far (a second one interrupts at once).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from exo.compiler.anytime import Progress, ProgressFn, StopFn
from exo.compiler.figures import money


def describe(p: Progress) -> str:
    """``best 37 h, bound 31 h, gap 16% · 12 s of 60 s (exact model)``."""

    def value(x: float | None) -> str:
        if x is None:
            return "-"
        return money(x) if p.objective == "cost" else f"{x:.3g} h"

    gap = p.gap
    parts = [f"best {value(p.best)}", f"bound {value(p.bound)}"]
    if gap is not None:
        parts.append(f"gap {gap:.1%}")
    limit = "" if p.limit_s is None else f" of {p.limit_s:.0f} s"
    what = "fastest plan" if p.objective == "time" else "cheapest plan"
    return f"planning ({what}): {', '.join(parts)} · {p.elapsed_s:.0f} s{limit} ({p.phase})"


@dataclass
class Session:
    """The callbacks handed to the optimizer, and whether Ctrl-C was pressed."""

    progress: ProgressFn | None
    stop: StopFn
    interrupted: list[bool] = field(default_factory=lambda: [False])


@contextmanager
def planning(show: bool | None = None) -> Iterator[Session]:
    """Progress line (when ``show``, by default when stderr is a terminal) and Ctrl-C handling."""
    if show is None:
        show = sys.stderr.isatty()
    pressed = [False]

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if pressed[0]:
            raise KeyboardInterrupt
        pressed[0] = True

    previous: Any = None
    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        previous = None
    live: Any = None
    progress: ProgressFn | None = None
    if show:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        live = Live(Text(""), console=Console(stderr=True), transient=True, auto_refresh=False)
        live.start()
        last = [0.0]

        def show_progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] < 0.25:
                return
            last[0] = now
            note = (
                "  (Ctrl-C: stop with the best plan so far)" if not pressed[0] else "  (stopping)"
            )
            live.update(Text(describe(p) + note), refresh=True)

        progress = show_progress
    try:
        yield Session(progress, lambda: pressed[0], pressed)
    finally:
        if live is not None:
            live.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
