"""The progress line, Ctrl-C and the default time limit of ``exoc plan``."""

from __future__ import annotations

import os
import signal

import pytest
import typer

from exo.compiler.anytime import Clock, Progress
from exo.compiler.cli.options import resolve_time_limit
from exo.compiler.cli.planning import describe, planning
from exo.compiler.optimizer import DEFAULT_TIME_LIMIT_S


def test_progress_line_says_best_bound_and_gap() -> None:
    line = describe(Progress("time", 37.0, 31.0, 12.4, 60.0, "exact model"))
    assert line.startswith("planning (fastest plan): best 37 h, bound 31 h, gap 16.2%")
    assert "12 s of 60 s (exact model)" in line
    cost = describe(Progress("cost", 12.5, None, 1.0, None, "relaxation"))
    assert "best $12.50, bound -" in cost and "gap" not in cost


def test_first_ctrl_c_asks_the_search_to_stop_the_second_interrupts() -> None:
    with planning(show=False) as ui:
        assert not ui.stop()
        os.kill(os.getpid(), signal.SIGINT)
        assert ui.stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_default_and_unlimited_time_limits() -> None:
    assert resolve_time_limit(None) == DEFAULT_TIME_LIMIT_S
    assert resolve_time_limit(float("inf")) is None
    assert resolve_time_limit(2.5) == 2.5
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(typer.BadParameter):
            resolve_time_limit(bad)


def test_clock_reports_the_best_value_and_the_largest_bound() -> None:
    seen: list[Progress] = []
    clock = Clock(10.0, progress=seen.append)
    clock.report("cost", "relaxation", bound=5.0)
    clock.report("cost", "heuristic", best=9.0)
    clock.child(1.0).report("cost", "local search", best=8.0, bound=4.0)
    assert (seen[-1].best, seen[-1].bound) == (8.0, 5.0)
    assert seen[-1].limit_s == 10.0 and seen[-1].gap == pytest.approx(3 / 8)
    stopped = Clock(None, stop=lambda: True)
    assert stopped.expired() and stopped.child(5.0).expired()
