"""The rows that strengthen the exact models keep them exact (against brute force).

- rounded quotas (:mod:`exo.compiler.quotarows`): a set of concurrent options
  meets the rounded quota exactly when it meets the original one;
- clique rows (:mod:`exo.compiler.conflicts`): on small hand-made problems the
  time-indexed model with both finds the brute-forced optimal makespan;
- the descent (:func:`exo.compiler.exact.solve_exact` for ``objective = time``):
  from a poor plan, one period at a time, it reaches the brute-forced optimum
  and proves it, also from a plan off the grid.
"""

from __future__ import annotations

import functools
import itertools
import random

import pytest

from exo.compiler.anytime import Clock
from exo.compiler.conflicts import conflict_graph, quota_cliques
from exo.compiler.costmodel import Option, usage
from exo.compiler.exact import solve_exact
from exo.compiler.problem import Problem, binding_resources
from exo.compiler.quotarows import quota_divisor, scaled_quotas
from exo.compiler.timeindexed import exact_grid, solve_grid

RESOURCES = ("accel:A", "cpu")


def _opt(step: str, name: str, gpus: int, vcpus: int, hours: float) -> Option:
    return Option(
        step=step,
        instance_type=name,
        accelerator="A" if gpus else None,
        accelerator_count=gpus,
        vcpus=vcpus,
        spot=False,
        batch_size=None,
        replicas=1,
        price_usd_per_hour=1.0,
        throughput=None,
        perf_key=name,
        preemptions_per_hour=0.0,
        checkpoint_h=0.0,
        preemptions_at_confidence=0,
        T=hours,
        E=hours,
        P=hours,
        cost=hours,
    )


def _problem(seed: int, steps: int = 4) -> Problem:
    """Two tight quotas, the second on vCPUs as ``100 q + 1`` (as the PSPLIB encoding)."""
    rng = random.Random(seed)
    names = tuple(f"s{i}" for i in range(steps))
    preds = tuple(tuple(i for i in range(j) if rng.random() < 0.3) for j in range(steps))
    options = tuple(
        tuple(
            _opt(n, f"{n}-{k}", rng.randint(1, 4), 100 * rng.randint(0, 4) + 1, rng.randint(1, 3))
            for k in range(2)
        )
        for n in names
    )
    return Problem(
        names=names,
        preds=preds,
        options=options,
        resources=RESOURCES,
        limits=(5, 100 * 4 + 99),
        deadline=None,
        budget=None,
        objective="time",
        confidence=0.95,
    )


def _fits(p: Problem, choice: tuple[int, ...], starts: tuple[int, ...]) -> bool:
    dur = [int(p.options[s][k].P) for s, k in enumerate(choice)]
    for j in range(p.size):
        if any(starts[j] < starts[i] + dur[i] for i in p.preds[j]):
            return False
    for t in set(starts):
        held = [0] * len(p.resources)
        for s, k in enumerate(choice):
            if starts[s] <= t < starts[s] + dur[s]:
                held = [
                    a + b for a, b in zip(held, usage(p.options[s][k], p.resources), strict=True)
                ]
        if any(h > q for h, q in zip(held, p.limits, strict=True)):
            return False
    return True


def _brute_force(p: Problem, horizon: int) -> int:
    best = horizon
    for choice in itertools.product(*(range(len(o)) for o in p.options)):
        dur = [int(p.options[s][k].P) for s, k in enumerate(choice)]
        for starts in itertools.product(range(horizon), repeat=p.size):
            end = max(a + d for a, d in zip(starts, dur, strict=True))
            if end < best and _fits(p, choice, starts):
                best = end
    return best


@functools.cache
def _optimum(seed: int) -> int:
    """The brute-forced optimal makespan of ``_problem(seed)`` (computed once per seed)."""
    p = _problem(seed)
    return _brute_force(p, int(sum(max(o.P for o in opts) for opts in p.options)))


def test_the_divisor_rounds_the_vcpu_encoding_back_to_units() -> None:
    # PSPLIB's second resource: q units as 100 q + 1 vCPUs against 100 cap + 99
    assert quota_divisor([[501, 701, 1001], [801, 901], *[[101]] * 50], 1499) == 100
    # 8- and 16-vCPU instances under 100 vCPUs: at most 12 eights, exactly
    assert quota_divisor([[8, 16], [8]], 100) == 8
    assert quota_divisor([[3], [5]], 7) == 1  # nothing to round
    assert quota_divisor([], 7) == 1


@pytest.mark.parametrize("seed", range(20))
def test_the_rounded_quota_accepts_exactly_what_the_quota_accepts(seed: int) -> None:
    rng = random.Random(seed)
    usages = [[rng.choice([0, 8, 16, 24, 32, 64]) for _ in range(2)] for _ in range(5)]
    limit = rng.randint(16, 120)
    d = quota_divisor(usages, limit)
    for choice in itertools.product(*(range(2) for _ in usages)):
        for run in itertools.product((0, 1), repeat=len(usages)):
            held = [usages[s][k] for s, (k, on) in enumerate(zip(choice, run, strict=True)) if on]
            assert (sum(held) <= limit) == (sum(u // d for u in held) <= limit // d)


def test_scaled_quotas_divide_each_quota_by_its_own_divisor() -> None:
    p = _problem(3)
    use, limits = scaled_quotas(p)
    assert limits == (5, 4)
    for s, opts in enumerate(p.options):
        for k, o in enumerate(opts):
            raw = usage(o, p.resources)
            assert use[s][k] == (raw[0], raw[1] // 100)


@pytest.mark.parametrize("seed", range(8))
def test_the_time_indexed_optimum_with_cliques_is_the_brute_forced_one(seed: int) -> None:
    p = _problem(seed)
    horizon = int(sum(max(o.P for o in opts) for opts in p.options))
    use, limits = scaled_quotas(p)
    g = conflict_graph(p, use, limits, [range(len(o)) for o in p.options])
    grid = exact_grid(p, horizon)
    assert grid is not None
    got = solve_grid(p, grid, objective="time", horizon_h=horizon, time_limit_s=None)
    assert got is not None and got.run.status == "optimal"
    assert got.value == _optimum(seed)
    # the models' own schedule meets the original quotas at every instant
    assert got.choice is not None and got.starts is not None
    assert _fits(p, got.choice, tuple(round(t) for t in got.starts))
    if seed == 0:
        assert quota_cliques(g)  # the clique rows were part of the model


def test_cliques_need_a_quota_edge() -> None:
    p = _problem(0)
    use, limits = scaled_quotas(p)
    g = conflict_graph(p, use, limits, [range(len(o)) for o in p.options])
    for clique in quota_cliques(g):
        assert len({s for s, _ in clique}) >= 2
        assert any(g.edges[a, b]["quota"] for a, b in itertools.combinations(clique, 2))


def test_a_makespan_bound_rounds_up_to_whole_periods() -> None:
    from exo.compiler.exact import whole_periods

    assert whole_periods(19.73, 1.0) == 20.0
    assert whole_periods(20.0, 1.0) == 20.0
    assert whole_periods(20.0000001, 1.0) == pytest.approx(20.0000001)  # never lowered
    assert whole_periods(1.1, 0.5) == 1.5
    assert whole_periods(-float("inf"), 1.0) == -float("inf")


def _one_after_another(
    p: Problem, offset: float
) -> tuple[tuple[int, ...], tuple[float, ...], float]:
    """A poor plan that meets every quota: option 0 everywhere, one step at a time."""
    choice = tuple(0 for _ in p.options)
    starts: list[float] = []
    t = offset
    for s in range(p.size):
        starts.append(t)
        t += p.options[s][0].P
    return choice, tuple(starts), t


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_the_descent_proves_the_brute_forced_makespan(seed: int, offset: float) -> None:
    p = _problem(seed)
    optimum = _optimum(seed)
    # offset 0.5: the plan ends half a period after a whole one, so the first
    # question must be "a whole number of periods below it", not "a period less"
    plan = _one_after_another(p, offset)
    binding = binding_resources(p.options, p.resources, p.limits)
    got = solve_exact(
        p,
        objective="time",
        limit=None,
        binding=binding,
        clock=Clock(None),
        seconds=None,
        plan=plan,
    )
    assert got is not None and got.exact and got.period == 1.0
    r = got.result
    if r.status == "infeasible":
        # nothing ends a period sooner: the plan in hand is the optimum
        assert plan[2] - offset == optimum and offset == 0.0
        return
    assert r.status == "optimal"
    assert r.value == optimum == r.bound
    assert r.choice is not None and r.starts is not None
    assert _fits(p, r.choice, tuple(round(t) for t in r.starts))
    ends = [t + p.options[s][k].P for s, (k, t) in enumerate(zip(r.choice, r.starts, strict=True))]
    assert max(ends) == optimum


@pytest.mark.parametrize("seed", range(4))
def test_asking_for_any_plan_within_a_horizon_answers_exactly(seed: int) -> None:
    p = _problem(seed)
    horizon = int(sum(max(o.P for o in opts) for opts in p.options))
    optimum = _optimum(seed)
    grid = exact_grid(p, horizon)
    assert grid is not None
    none = solve_grid(p, grid, objective=None, horizon_h=optimum - 1, time_limit_s=None)
    assert none is not None and none.run.status == "infeasible" and none.choice is None
    some = solve_grid(p, grid, objective=None, horizon_h=optimum, time_limit_s=None)
    assert some is not None and some.choice is not None and some.starts is not None
    assert _fits(p, some.choice, tuple(round(t) for t in some.starts))
    ends = [
        t + p.options[s][k].P for s, (k, t) in enumerate(zip(some.choice, some.starts, strict=True))
    ]
    assert max(ends) <= optimum


def test_the_mode_search_is_not_repeated_from_the_same_plan_with_less_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a resume round starts the descent from the same plan with less time: the mode
    # search (fixed seeds) would repeat a part of its first run, so it is left out
    from exo.compiler import exact
    from exo.compiler.anytime import Clock
    from exo.compiler.timeindexed import exact_grid

    calls: list[float | None] = []

    def counted(problem: Problem, plan: object, clock: Clock, seconds: float | None) -> None:
        calls.append(seconds)
        return None

    monkeypatch.setattr(exact, "shorter_modes", counted)
    p = _problem(2, steps=6)
    grid = exact_grid(p, 40.0)
    assert grid is not None
    plan = ((0,) * p.size, (0.0,) * p.size, 40.0)
    other = ((0,) * p.size, (1.0,) * p.size, 40.0)
    clock = Clock(None)
    assert exact.shorter_first(p, grid, clock, 10.0, plan) is None
    assert exact.shorter_first(p, grid, clock, 4.0, plan) is None  # same plan, less time
    assert exact.shorter_first(p, grid, clock, 12.0, plan) is None  # more time: again
    assert exact.shorter_first(p, grid, clock, 4.0, other) is None  # another plan
    assert calls == [10.0, 12.0, 4.0]
