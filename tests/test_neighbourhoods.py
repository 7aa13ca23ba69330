"""The neighbourhood search over options (``compiler/neighbourhoods.py``) on PSPLIB problems.

Properties, not timings (the benchmark measures how close it gets: docs/benchmarks.md):
a neighbourhood keeps the best plan (renumbered) as one of its plans and holds
every kept step to its option and order; every plan returned holds precedence
and every quota, is never longer than the plan given, and without a time limit
the same plan comes back on every run.
"""

from __future__ import annotations

from typing import Any

import pytest

import exo.compiler.neighbourhoods as neighbourhoods
from exo.compiler.anytime import Clock, Progress
from exo.compiler.heuristics import Found
from exo.compiler.makespan_search import children_for, evolve, lower_bound
from exo.compiler.neighbourhoods import neighbourhood, shorter_by_neighbourhoods, stall_after
from exo.compiler.problem import Problem
from exo.compiler.schedule import violations
from exo.compiler.solution import pick
from exo.compiler.timeindexed import exact_grid

from .test_makespan_search import DATA, _found, _psplib, _valid

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="no PSPLIB data in ../shared")


def test_a_neighbourhood_holds_the_kept_steps_and_still_admits_the_best_plan() -> None:
    problem, _ = _psplib("j1661_9")
    best = _found(problem, pick(problem, "time"))
    grid = exact_grid(problem, best.makespan)
    assert grid is not None
    freed = frozenset({1, 4, 7, 11})
    sub, subgrid, order, kept = neighbourhood(problem, grid, best, freed)
    assert sorted(order) == list(range(problem.size))
    where = {s: i for i, s in enumerate(order)}
    for i, s in enumerate(order):
        # renumbered in start order: every edge, old and added, points backwards
        assert all(p < i for p in sub.preds[i])
        assert {where[p] for p in problem.preds[s]} <= set(sub.preds[i])
        if s in freed:
            assert kept[i] == list(range(len(problem.options[s])))
            assert sub.preds[i] == tuple(sorted(where[p] for p in problem.preds[s]))
        else:
            assert kept[i] == [best.choice[s]]
            assert subgrid.periods[i] == (grid.periods[s][best.choice[s]],)
    # the best plan, renumbered, is a plan of the neighbourhood
    choice = tuple(kept[i].index(best.choice[s]) for i, s in enumerate(order))
    starts = [best.starts[s] for s in order]
    assert violations(sub.jobs(choice), starts) == []
    # a kept step that ends before another kept step starts stays before it
    a, b = _ordered_pair(problem, best, freed)
    assert where[a] in sub.preds[where[b]]


def _ordered_pair(problem: Problem, best: Found, freed: frozenset[int]) -> tuple[int, int]:
    """Two kept steps, the first ending before the second starts."""
    n = len(best.starts)
    durations = [problem.options[s][k].P for s, k in enumerate(best.choice)]
    for a in range(n):
        for b in range(n):
            if a in freed or b in freed or a == b:
                continue
            if best.starts[a] + durations[a] <= best.starts[b]:
                return a, b
    raise AssertionError("no two kept steps one after the other")


def test_without_a_limit_it_shortens_validly_and_reproducibly() -> None:
    problem, optimum = _psplib("j1040_7")  # 10 jobs, two resources, optimum 28
    plan = _found(problem, pick(problem, "time"))
    seen: list[Progress] = []
    got = shorter_by_neighbourhoods(
        problem, plan, Clock(None, progress=seen.append), bound=lower_bound(problem), seed=3
    )
    _valid(problem, got)
    assert optimum <= got.makespan < plan.makespan
    assert seen and seen[-1].best == got.makespan and seen[-1].phase == "neighbourhood search"
    again = shorter_by_neighbourhoods(
        problem, plan, Clock(None), bound=lower_bound(problem), seed=3
    )
    assert again == got


def test_it_stops_at_the_bound_and_when_the_clock_has_run_out() -> None:
    problem, _ = _psplib("j1040_7")
    plan = _found(problem, pick(problem, "time"))
    assert shorter_by_neighbourhoods(problem, plan, Clock(None), bound=plan.makespan) is plan
    assert shorter_by_neighbourhoods(problem, plan, Clock(0.0), bound=0.0) is plan


def test_on_an_optimal_plan_it_gives_up_after_a_stall_and_leaves_the_rest_of_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem, optimum = _psplib("j1036_2")  # 10 jobs, two resources, optimum 26
    start = _found(problem, pick(problem, "time"))
    bound = lower_bound(problem)
    plan = evolve(
        problem,
        start,
        Clock(None),
        bound=bound,
        seed=2,
        max_children=children_for(problem),
        modes=True,
    )
    assert plan.makespan == optimum  # no question can find a shorter plan
    asked: list[float] = []
    real = neighbourhoods.solve_grid

    def counted(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["horizon_h"])
        return real(*args, **kwargs)

    monkeypatch.setattr(neighbourhoods, "solve_grid", counted)
    clock = Clock(3600.0)
    got = shorter_by_neighbourhoods(problem, plan, clock, bound=bound, seed=3)
    assert got is plan
    # every question asked for a plan a period shorter, and the search gave up
    # after the stall, long before its clock (which the descent then has)
    assert asked == [optimum - 1.0] * stall_after(problem.size)
    assert not clock.expired()
    assert stall_after(10) == 8 and stall_after(20) == 10 and stall_after(30) == 15
