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

import pytest

from exo.compiler.windows import Windows, narrow

Instance = tuple[
    list[list[int]],  # periods[s][k]
    list[list[int]],  # preds[s]
    list[list[int]],  # succ[s]
    list[list[list[int]]],  # use[s][k][r]
    list[int],  # limits[r]
]


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


def test_a_stop_before_shaving_keeps_every_plan() -> None:
    for seed in range(10):
        periods, preds, succ, use, limits = inst = _instance(seed)
        horizon = _shortest(inst) + 1
        w = narrow(periods, preds, succ, use, limits, horizon, stopped=lambda: True)
        assert w is not None
        assert all(_within(w, plan) for plan in _plans(inst, horizon))


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
