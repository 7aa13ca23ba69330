"""Narrowed start windows hold every plan (against brute force), and they prove.

:func:`exo.compiler.windows.narrow` removes starts that no plan ending by the
horizon can use. Removing one that a plan uses would make the descent's
"infeasible" a false proof of optimality, so on small random problems every
plan is enumerated and each of its starts must lie in the windows; and where
no plan exists the rules should often see it without a model.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from exo.compiler.windows import Known, Windows, narrowing

if TYPE_CHECKING:
    from exo.compiler.problem import Problem
    from exo.compiler.timeindexed import Grid

Instance = tuple[
    list[list[int]],  # periods[s][k]
    list[list[int]],  # preds[s]
    list[list[int]],  # succ[s]
    list[list[list[int]]],  # use[s][k][r]
    list[int],  # limits[r]
]


def narrow(*args: Any, **kwargs: Any) -> Windows | None:
    """The windows :func:`narrowing` finds."""
    return narrowing(*args, **kwargs).windows


def _instance(seed: int, steps: int = 5) -> Instance:
    rng = random.Random(seed)
    limits = [rng.randint(2, 4), rng.randint(2, 5)]
    periods: list[list[int]] = []
    use: list[list[list[int]]] = []
    for _ in range(steps):
        modes = rng.randint(1, 3)
        periods.append([rng.randint(1, 3) for _ in range(modes)])
        use.append([[rng.randint(0, q) for q in limits] for _ in range(modes)])
    preds = [[i for i in range(j) if rng.random() < 0.25] for j in range(steps)]
    succ: list[list[int]] = [[] for _ in range(steps)]
    for j, ps in enumerate(preds):
        for i in ps:
            succ[i].append(j)
    return periods, preds, succ, use, limits


def _plans(inst: Instance, horizon: int) -> Iterator[list[tuple[int, int]]]:
    """Every plan ending by ``horizon``: (option, start) per step (steps in topological order)."""
    periods, preds, _, use, limits = inst
    load = [[0] * horizon for _ in limits]
    placed: list[tuple[int, int]] = []

    def place(s: int) -> Iterator[list[tuple[int, int]]]:
        if s == len(periods):
            yield list(placed)
            return
        ready = max((placed[i][1] + periods[i][placed[i][0]] for i in preds[s]), default=0)
        for k, p in enumerate(periods[s]):
            for t in range(ready, horizon - p + 1):
                span = range(t, t + p)
                if any(load[r][x] + use[s][k][r] > q for r, q in enumerate(limits) for x in span):
                    continue
                for r in range(len(limits)):
                    for x in span:
                        load[r][x] += use[s][k][r]
                placed.append((k, t))
                yield from place(s + 1)
                placed.pop()
                for r in range(len(limits)):
                    for x in span:
                        load[r][x] -= use[s][k][r]

    yield from place(0)


def _within(w: Windows, plan: list[tuple[int, int]]) -> bool:
    return all(w.es[s] <= t <= w.ls[s][k] for s, (k, t) in enumerate(plan))


def _shortest(inst: Instance) -> int:
    horizon = 1
    while next(_plans(inst, horizon), None) is None:
        horizon += 1
    return horizon


@pytest.mark.parametrize("seed", range(40))
def test_every_plan_lies_in_the_narrowed_windows(seed: int) -> None:
    inst = _instance(seed)
    periods, preds, succ, use, limits = inst
    best = _shortest(inst)
    for horizon in (best - 1, best, best + 1):
        w = narrow(periods, preds, succ, use, limits, horizon)
        plans = _plans(inst, horizon)
        if w is None:
            assert next(plans, None) is None, "the windows closed on a problem with a plan"
            continue
        for plan in plans:
            assert _within(w, plan), plan


def test_the_rules_prove_most_one_period_shorter_questions_without_a_model() -> None:
    proven = 0
    for seed in range(40):
        periods, preds, succ, use, limits = inst = _instance(seed)
        if narrow(periods, preds, succ, use, limits, _shortest(inst) - 1) is None:
            proven += 1
    # not a promise of completeness (the model answers the rest), a check of strength
    assert proven >= 35


def test_shaving_sees_what_the_rules_alone_do_not() -> None:
    # quota 1 of 4: steps 0 (4 units, 3 periods), 2 (3 or 2 units, 2 periods)
    # and 3 (3 units, 3 periods) can never overlap pairwise, so they need 8
    # periods; their energy (12 + 9 + 4 = 25) fits in 7 x 4 = 28, and the
    # windows of 7 periods leave no step a compulsory part: only fixing a start
    # (shaving) shows that the other two no longer fit.
    periods = [[3], [2], [2, 2], [3]]
    preds: list[list[int]] = [[], [], [1], []]
    succ: list[list[int]] = [[], [2], [], []]
    use = [[[4, 3]], [[0, 1]], [[3, 5], [2, 5]], [[3, 2]]]
    limits = [4, 5]
    assert next(_plans((periods, preds, succ, use, limits), 7), None) is None
    rules_only = narrow(periods, preds, succ, use, limits, 7, stopped=lambda: True)
    assert rules_only is not None
    assert narrow(periods, preds, succ, use, limits, 7) is None
    # with one period more the plan (0 @ 0, 2 @ 3, 3 @ 5) is in the windows
    w = narrow(periods, preds, succ, use, limits, 8)
    assert w is not None and _within(w, [(0, 0), (0, 0), (1, 3), (0, 5)])


def test_steps_that_never_run_together_are_ordered() -> None:
    # quota 3, two steps of 2 units (3 and 2 periods): they never overlap, so
    # they need 5 periods. In 4 the energy fits (6 + 4 <= 12, and 6 in the 2
    # periods of step 0's compulsory part): only ordering the pair shows that
    # neither can come first, with no shaving.
    periods = [[3], [2]]
    preds: list[list[int]] = [[], []]
    succ: list[list[int]] = [[], []]
    use = [[[2]], [[2]]]
    assert narrow(periods, preds, succ, use, [3], 4, stopped=lambda: True) is None
    # in 6, step 1 may go first or second: the windows keep both
    w = narrow(periods, preds, succ, use, [3], 6, stopped=lambda: True)
    assert w is not None and _within(w, [(0, 0), (0, 3)]) and _within(w, [(0, 2), (0, 0)])


def test_a_stop_before_shaving_keeps_every_plan() -> None:
    for seed in range(10):
        periods, preds, succ, use, limits = inst = _instance(seed)
        horizon = _shortest(inst) + 1
        w = narrow(periods, preds, succ, use, limits, horizon, stopped=lambda: True)
        assert w is not None
        assert all(_within(w, plan) for plan in _plans(inst, horizon))


@pytest.mark.parametrize("seed", range(8))
def test_what_a_longer_question_narrowed_holds_every_shorter_plan(seed: int) -> None:
    # the descent asks H + 1, then H, H - 1: each narrowing starts from the one
    # before, its latest starts moved earlier, and stopped or not keeps every plan
    periods, preds, succ, use, limits = inst = _instance(seed)
    best = _shortest(inst)
    known = Known()
    for stop in (True, False):
        for horizon in (best + 2, best + 1, best, best - 1):
            answer = known.answer(horizon)
            got = answer or narrowing(
                periods,
                preds,
                succ,
                use,
                limits,
                horizon,
                stopped=lambda stop=stop: stop,  # type: ignore[misc]
                start=known.start(horizon),
            )
            if answer is None:
                known.put(horizon, got)
            plans = _plans(inst, horizon)
            if got.windows is None:
                assert next(plans, None) is None, (horizon, "closed on a problem with a plan")
                continue
            assert all(_within(got.windows, plan) for plan in plans), horizon
    # the second sweep (not stopped) finished every question it asked
    assert all(known.answer(h) is not None for h in (best + 1, best, best - 1))


def test_no_plan_by_a_horizon_answers_every_shorter_one() -> None:
    # two steps of 2 periods, one after the other: no plan by 3, one by 4
    chain = ([[2], [2]], [[], [0]], [[1], []], [[[1]], [[1]]], [1])
    known = Known()
    known.put(9, narrowing(*chain, 9))
    known.put(3, narrowing(*chain, 3))
    for horizon in (3, 2):
        got = known.answer(horizon)
        assert got is not None and got.windows is None
    assert known.answer(7) is None
    # the start for 7 comes from 9, every latest start two periods earlier
    start = known.start(7)
    assert start == Windows((0, 2), ((3,), (5,)))


@pytest.mark.parametrize("seed", range(4))
def test_the_cost_model_on_narrowed_windows_keeps_its_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exo.compiler import timeindexed
    from exo.compiler.timeindexed import exact_grid, solve_grid

    from .test_exact_rows import _fits, _optimum, _problem

    p = _problem(seed)
    horizon = _optimum(seed)  # the cost stage's horizon: the best makespan
    grid = exact_grid(p, horizon)
    assert grid is not None
    narrowed = solve_grid(p, grid, objective="cost", horizon_h=horizon, time_limit_s=None)
    monkeypatch.setattr(timeindexed, "NARROWED", (None,))
    wide = solve_grid(p, grid, objective="cost", horizon_h=horizon, time_limit_s=None)
    assert narrowed is not None and wide is not None
    assert narrowed.run.status == wide.run.status == "optimal"
    assert narrowed.value == pytest.approx(wide.value)
    assert narrowed.choice is not None and narrowed.starts is not None
    assert _fits(p, narrowed.choice, tuple(round(t) for t in narrowed.starts))
    pairs = enumerate(zip(narrowed.choice, narrowed.starts, strict=True))
    assert max(t + p.options[s][k].P for s, (k, t) in pairs) <= horizon


def _small_problem() -> tuple[Problem, int, Grid]:
    """A small problem of the exact stage's tests, its optimum and its grid."""
    from exo.compiler.timeindexed import exact_grid

    from .test_exact_rows import _optimum, _problem

    p = _problem(1)
    best = _optimum(1)
    grid = exact_grid(p, best)
    assert grid is not None
    return p, best, grid


def _starts_of_narrowings(monkeypatch: pytest.MonkeyPatch) -> list[Windows | None]:
    """Each narrowing the time-indexed model runs from now on, by where it started."""
    from exo.compiler import feasibility

    starts: list[Windows | None] = []
    narrowing_of = feasibility.narrowing

    def spy(*args: object, **kwargs: object) -> object:
        starts.append(kwargs["start"])  # type: ignore[arg-type]
        return narrowing_of(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(feasibility, "narrowing", spy)
    return starts


def test_a_question_asked_again_goes_on_from_what_was_narrowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from exo.compiler.timeindexed import solve_grid

    from .test_exact_rows import _problem

    p, best, grid = _small_problem()
    starts = _starts_of_narrowings(monkeypatch)
    for horizon, limit in ((best, 0.0), (best, None), (best, None), (best - 1, None)):
        got = solve_grid(
            p, grid, objective=None, horizon_h=horizon, time_limit_s=limit, remember=True
        )
        assert got is not None
        assert (got.choice is not None) == (horizon == best)
    # the first narrowing (stopped at once) started from nothing, the second from
    # it; the third question had its answer; the shorter one started from it too
    assert len(starts) == 3 and starts[0] is None
    assert starts[1] is not None and starts[2] is not None
    # an equal problem of another solve starts afresh (a plan never depends on
    # what the process planned before)
    again = _problem(1)
    assert again == p and again is not p
    solve_grid(again, grid, objective=None, horizon_h=best, time_limit_s=None, remember=True)
    assert len(starts) == 4 and starts[3] is None


def test_a_throw_away_question_keeps_the_solves_own_narrowings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the neighbourhood search asks many one-off problems between the descent's
    # questions: asked without remember=True they neither start from nor push out
    # the narrowings the solve's own problem has kept
    from exo.compiler import feasibility
    from exo.compiler.timeindexed import solve_grid

    from .test_exact_rows import _problem

    p, best, grid = _small_problem()
    starts = _starts_of_narrowings(monkeypatch)
    solve_grid(p, grid, objective=None, horizon_h=best, time_limit_s=None, remember=True)
    others = [_problem(1) for _ in range(feasibility.KNOWN_PROBLEMS + 1)]
    for other in others:
        solve_grid(other, grid, objective=None, horizon_h=best, time_limit_s=None)
    assert all(start is None for start in starts)
    assert all(id(other) not in feasibility._KNOWN for other in others)
    # the solve's next question still has its answer: no narrowing runs
    solve_grid(p, grid, objective=None, horizon_h=best, time_limit_s=None, remember=True)
    assert len(starts) == 1 + len(others)
