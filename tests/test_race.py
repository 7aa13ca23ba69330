"""The race of :mod:`exo.compiler.race` and :mod:`exo.compiler.feasibility`: real forked
processes, stopped and reaped; the same answers raced on two cores as in turn on one."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exo.compiler import feasibility
from exo.compiler.highs import Watch
from exo.compiler.race import Rival, usable_cores
from exo.compiler.windows import Rules, Windows


def _gone(pid: int) -> bool:
    """The process no longer exists (reaped, not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _count(stopped: Callable[[], bool]) -> int:
    n = 0
    while not stopped():
        n += 1
    return n


def _sleep_forever(stopped: Callable[[], bool]) -> int:
    while True:  # never looks at stopped()
        time.sleep(1)


def _fail(stopped: Callable[[], bool]) -> int:
    raise ValueError("the search broke")


def test_the_childs_answer_comes_back_and_the_child_is_reaped() -> None:
    rival: Rival[tuple[int, str]] = Rival(lambda stopped: (os.getpid(), "done"))
    got = rival.wait(None, lambda: False)
    assert got is not None
    child, text = got[0]
    assert text == "done" and child == rival.pid != os.getpid()
    rival.kill()
    assert _gone(rival.pid)
    assert not multiprocessing.active_children()


def test_a_child_that_never_looks_at_its_stop_signal_is_killed_at_once() -> None:
    rival: Rival[int] = Rival(_sleep_forever)
    assert rival.answer() is None
    assert rival.stop(0.1) is None  # asked, did not answer: killed
    assert _gone(rival.pid)
    rival.kill()  # twice is harmless


def test_a_stopped_child_sends_what_it_has() -> None:
    rival: Rival[int] = Rival(_count)
    got = rival.stop(30.0)
    assert got is not None and got[0] >= 0
    assert _gone(rival.pid)


def test_the_child_ignores_ctrl_c_and_the_caller_decides() -> None:
    rival: Rival[int] = Rival(_count)
    os.kill(rival.pid, signal.SIGINT)
    assert rival.wait(time.perf_counter() + 0.2, lambda: False) is None  # still counting
    assert not _gone(rival.pid)
    got = rival.stop(30.0)
    assert got is not None
    assert _gone(rival.pid)


def test_an_exception_in_the_child_comes_back_as_its_traceback() -> None:
    rival: Rival[int] = Rival(_fail)
    assert rival.wait(None, lambda: False) is None
    rival.kill()
    assert rival.error is not None and "ValueError: the search broke" in rival.error


def test_a_child_whose_caller_is_killed_stops(tmp_path: Path) -> None:
    # the caller is killed outright (no chance to end its child): the child sees its
    # parent change and stops by itself
    script = tmp_path / "caller.py"
    script.write_text(
        "import os, sys\n"
        "from exo.compiler.race import Rival\n"
        "def count(stopped):\n"
        "    while not stopped():\n"
        "        pass\n"
        "rival = Rival(count)\n"
        "print(rival.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert out.returncode == -signal.SIGKILL
    pid = int(out.stdout.split()[0])
    for _ in range(600):  # bounded wait (a minute) for the orphan to notice
        if _gone(pid) or _zombie(pid):
            break
        time.sleep(0.1)
    assert _gone(pid) or _zombie(pid)


def _zombie(pid: int) -> bool:
    """Exited, not yet reaped by whoever adopted it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@contextmanager
def _one_core() -> Iterator[None]:
    """This process on one CPU (its affinity), as on a machine with one usable core."""
    was = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(was)})
    try:
        assert usable_cores() == 1
        yield
    finally:
        os.sched_setaffinity(0, was)


@pytest.mark.skipif(usable_cores() < 2, reason="a race needs two usable cores")
@pytest.mark.parametrize("seed", [1, 2, 8])
def test_raced_and_in_turn_give_the_same_answers(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a descent, each question raced (two cores) and asked in turn (one core): the
    # same plans and the same "none", whichever of the two finished first
    from exo.compiler.timeindexed import exact_grid, solve_grid

    from .test_exact_rows import _fits, _problem

    races: list[int] = []
    race = feasibility._race

    def counted(*args: object) -> object:
        races.append(1)
        return race(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(feasibility, "_race", counted)
    monkeypatch.setattr(feasibility, "SHAVE_SHARE", 0.0)  # windows left open: questions to race
    p = _problem(seed, steps=8)
    horizon = int(sum(max(o.P for o in opts) for opts in p.options))
    grid = exact_grid(p, horizon)
    assert grid is not None
    while True:
        raced = solve_grid(p, grid, objective=None, horizon_h=horizon, time_limit_s=60.0)
        with _one_core():
            in_turn = solve_grid(p, grid, objective=None, horizon_h=horizon, time_limit_s=60.0)
        assert raced is not None and in_turn is not None
        assert not multiprocessing.active_children()
        assert (raced.choice, raced.starts) == (in_turn.choice, in_turn.starts)
        assert raced.run.status == in_turn.run.status
        if raced.choice is None or raced.starts is None:
            assert raced.run.status == "infeasible"
            break
        assert _fits(p, raced.choice, tuple(round(t) for t in raced.starts))
        ends = (
            t + p.options[s][k].P
            for s, (k, t) in enumerate(zip(raced.choice, raced.starts, strict=True))
        )
        horizon = round(max(ends)) - 1
    assert len(races) >= 5  # the questions were raced


@pytest.mark.skipif(usable_cores() < 2, reason="a race needs two usable cores")
def test_ctrl_c_during_a_race_keeps_the_searchs_frontier_and_no_child() -> None:
    # Ctrl-C while both run and neither has answered: the model returns (here one that
    # has not answered by then, as HiGHS on a hard question), the child is asked to
    # stop and sends its frontier, kept for a resume round; no child is left
    from exo.compiler.splitting import Searched
    from exo.compiler.windows import Known

    rules, windows = _open_question()
    known = Known()

    def ctrl_c() -> bool:  # pressed as the race starts
        return True

    def unanswered(limit: float | None, watch: Watch | None) -> str:
        assert watch is not None
        while not watch.stopped():
            time.sleep(0.01)
        return "unknown"

    got = feasibility.decide(
        rules, windows, known, None, Watch(stopped=ctrl_c), unanswered, lambda r: r != "unknown"
    )
    assert not multiprocessing.active_children()
    # the search's answer, or where it stopped (a child this quick may have finished)
    assert isinstance(got, Searched)
    assert known.splits[7] == got.frontier


@pytest.mark.skipif(usable_cores() < 2, reason="a race needs two usable cores")
def test_a_resumed_question_leaves_the_model_out_when_it_had_longer() -> None:
    # HiGHS starts afresh and is deterministic: a question asked again where the
    # model's share is no longer than it already ran unanswered goes straight on with
    # the search (as in turn), which then has both the question's time and the
    # caller's core
    from exo.compiler.splitting import Searched
    from exo.compiler.windows import Known

    rules, windows = _open_question()
    ran: list[float | None] = []

    def unanswered(limit: float | None, watch: Watch | None) -> str:
        ran.append(limit)
        assert watch is not None
        while not watch.stopped():
            time.sleep(0.01)
        return "unknown"

    def ask(known: Known, limit: float) -> object:
        return feasibility.decide(
            rules,
            windows,
            known,
            limit,
            Watch(stopped=lambda: False),
            unanswered,
            lambda r: r != "unknown",
        )

    known = Known()
    known.model_s[7] = 5.0  # an earlier round's model ran 5 s without an answer
    got = ask(known, 20.0)
    assert ran == []  # not run again for its quarter of 20 s: no longer than before
    assert isinstance(got, Searched) and got.outcome in ("none", "plan")
    assert not multiprocessing.active_children()
    # a first ask runs the model and records how long it ran unanswered
    fresh = Known()
    ask(fresh, 0.3)
    assert ran == [feasibility.RACE_MODEL_SHARE * 0.3]  # raced: HiGHS has its share
    assert 0.0 < fresh.model_s[7] <= 0.3 + 0.5
    assert not multiprocessing.active_children()


def _open_question() -> tuple[Rules, Windows]:
    """A small question at horizon 7 whose windows, barely narrowed, stay open."""
    from exo.compiler.windows import narrowing

    from .test_windows import _instance

    periods, preds, succ, use, limits = _instance(3, steps=7)
    rules = Rules(periods, preds, succ, use, limits, 7)
    windows = narrowing(periods, preds, succ, use, limits, 7, stopped=lambda: True).windows
    assert windows is not None
    return rules, windows
