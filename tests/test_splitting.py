"""The split search answers "a plan by H?" exactly (against brute force), and resumes.

:mod:`exo.compiler.splitting` refutes a question by splitting its windows and
narrowing each half. A "none" that a plan contradicts would be a false proof of
optimality, so on small random problems every answer is held against the
enumeration of every plan; a plan it hands back must keep every edge and quota;
and a search stopped after any node and resumed from its frontier answers as
one run does.
"""

from __future__ import annotations

import pytest

from exo.compiler.splitting import Frontier, heaviness, is_plan, split, split_search
from exo.compiler.windows import Rules, Windows, narrowing, precedence_windows

from .test_windows import _instance, _plans, _shortest


def _question(
    seed: int, horizon: int, steps: int, *, shave: bool = True
) -> tuple[Rules, Windows | None]:
    """The rules of a question and its narrowed windows (not shaved: more left to split)."""
    periods, preds, succ, use, limits = _instance(seed, steps)
    rules = Rules(periods, preds, succ, use, limits, horizon)
    stop = (lambda: False) if shave else (lambda: True)
    return rules, narrowing(periods, preds, succ, use, limits, horizon, stopped=stop).windows


@pytest.mark.parametrize("seed", range(30))
def test_the_split_search_answers_as_the_plans_say(seed: int) -> None:
    steps = 5 + seed % 3
    inst = _instance(seed, steps)
    best = _shortest(inst)
    for horizon in (best - 1, best, best + 1):
        rules, windows = _question(seed, horizon, steps, shave=seed % 2 == 0)
        exists = next(_plans(inst, horizon), None) is not None
        if windows is None:
            assert not exists
            continue
        got = split_search(rules, Frontier((windows,)), lambda: False)
        assert got.outcome == ("plan" if exists else "none"), horizon
        if exists:
            assert got.plan is not None and is_plan(rules, *got.plan)
            assert list(zip(*got.plan, strict=True)) in list(_plans(inst, horizon))


@pytest.mark.parametrize("seed", range(12))
def test_a_search_stopped_after_any_node_goes_on_to_the_same_answer(seed: int) -> None:
    steps = 7
    inst = _instance(seed, steps)
    # one period short (no plan: every node refuted) or the shortest (a plan)
    horizon = _shortest(inst) - seed % 2
    periods, preds, succ, _, _ = inst
    rules, _ = _question(seed, horizon, steps)
    windows = precedence_windows(periods, preds, succ, horizon)  # the search does the rest
    whole = split_search(rules, Frontier((windows,)), lambda: False)
    assert whole.outcome == ("none" if seed % 2 else "plan")
    # stop at every other look at the clock, in shaving too: a run does a node at most
    calls = [0]

    def every_other() -> bool:
        calls[0] += 1
        return calls[0] % 2 == 0

    frontier = Frontier((windows,))
    for _ in range(10_000):
        got = split_search(rules, frontier, every_other)
        frontier = got.frontier
        if got.outcome != "stopped":
            break
    # (the shaving cut short splits other nodes: the same answer, maybe another plan)
    assert got.outcome == whole.outcome
    assert got.plan is None or is_plan(rules, *got.plan)


def test_a_split_keeps_every_start_in_one_half() -> None:
    w = Windows((2, 0), ((2, 1, 2), (6, 4)))
    first, second = split(w) or (None, None)
    assert first is not None and second is not None
    # step 1's window (0..6) is the widest: 0..3 and 4..6
    assert first == Windows((2, 0), ((2, 1, 2), (3, 3)))
    assert second == Windows((2, 4), ((2, 1, 2), (6, 4)))
    # step 0 has one start (2) in options 0 and 2: they are split
    one = Windows((2, 4), ((2, 1, 2), (4, 3)))
    a, b = split(one) or (None, None)
    assert a == Windows((2, 4), ((2, 1, 1), (4, 3)))
    assert b == Windows((2, 4), ((1, 1, 2), (4, 3)))
    assert split(Windows((2, 4), ((2, 1, 1), (4, 3)))) is None


def test_a_split_weighs_each_window_by_how_heavy_its_step_is() -> None:
    # step 0: 2 periods at 1 of a quota of 4; step 1: 3 periods at 4 of it (its whole limit)
    rules = Rules([[2], [3]], [[], []], [[], []], [[[1]], [[4]]], [4], 10)
    heavy = heaviness(rules)
    assert heavy == (0.5, 3.0)
    w = Windows((0, 0), ((8,), (3,)))
    # step 0's window is wider (9 starts against 4) but step 1 is heavier: 4 * 3 > 9 * 0.5
    first, second = split(w, heavy) or (None, None)
    assert first == Windows((0, 0), ((8,), (1,))) and second == Windows((0, 2), ((8,), (3,)))
    assert split(w) == (Windows((0, 0), ((4,), (3,))), Windows((5, 0), ((8,), (3,))))  # widest
    # a tie of weights goes to the wider window
    assert split(Windows((0, 0), ((5,), (5,))), (1.0, 1.0)) == split(Windows((0, 0), ((5,), (5,))))


def test_is_plan_checks_edges_quotas_and_the_horizon() -> None:
    # two steps of 2 periods using 1 of a quota of 1, the second after the first
    rules = Rules([[2], [2]], [[], [0]], [[1], []], [[[1]], [[1]]], [1], 4)
    assert is_plan(rules, (0, 0), (0, 2))
    assert not is_plan(rules, (0, 0), (0, 1))  # the edge, and the quota
    assert not is_plan(rules, (0, 0), (1, 3))  # past the horizon
    free = Rules([[2], [2]], [[], []], [[], []], [[[1]], [[1]]], [1], 4)
    assert not is_plan(free, (0, 0), (0, 1))  # the quota alone
    assert is_plan(free, (0, 0), (2, 0))


@pytest.mark.parametrize("seed", range(3))
def test_a_descent_question_is_answered_by_the_search_and_resumed(seed: int) -> None:
    from exo.compiler import feasibility
    from exo.compiler.timeindexed import exact_grid, horizon_periods, solve_grid

    from .test_exact_rows import _fits, _optimum, _problem

    p, best = _problem(seed), _optimum(seed)
    grid = exact_grid(p, best)
    assert grid is not None
    for horizon in (best, best - 1):
        # the first ask stopped at once (nothing searched), the second goes on
        for limit in (0.0, None):
            got = solve_grid(
                p, grid, objective=None, horizon_h=horizon, time_limit_s=limit, remember=True
            )
            assert got is not None
        if horizon == best:
            assert got.choice is not None and got.starts is not None
            assert _fits(p, got.choice, tuple(round(t) for t in got.starts))
        else:
            assert got.choice is None and got.run.status == "infeasible"
    known = feasibility.known_of(p, grid.delta)
    assert known.answer(horizon_periods(grid, best - 1)) is not None  # "none" kept
