"""Schedules: serial SGS against a plain reference, forward-backward improvement, checks."""

from __future__ import annotations

import random

import pytest

from exo.compiler.schedule import (
    SMALL_PROFILE,
    Jobs,
    asap,
    critical,
    improve,
    makespan,
    priority_order,
    serial_sgs,
    violations,
)
from tests.optimizer_oracle import sgs as reference_sgs


def random_jobs(seed: int, n: int, resources: int = 2) -> Jobs:
    rng = random.Random(seed)
    preds = []
    for j in range(n):
        k = rng.randrange(0, min(j, 3) + 1)
        preds.append(tuple(sorted(rng.sample(range(j), k))) if j else ())
    limits = tuple(rng.randrange(4, 10) for _ in range(resources))
    usages = tuple(
        tuple(rng.randrange(0, q + 1) if rng.random() < 0.7 else 0 for q in limits)
        for _ in range(n)
    )
    durations = tuple(rng.choice([0.5, 1.0, 1.5, 2.25, rng.uniform(0.1, 3.0)]) for _ in range(n))
    return Jobs(durations, tuple(preds), usages, limits)


def _matches_the_reference(jobs: Jobs, seed: int) -> None:
    """The serial SGS over a random precedence-feasible order gives the reference's starts."""
    rng = random.Random(seed)
    order = priority_order(jobs, [rng.random() for _ in range(jobs.size)])
    got = serial_sgs(jobs, order)
    names = [str(i) for i in range(jobs.size)]
    ref = reference_sgs(
        [names[i] for i in order],
        {names[i]: jobs.durations[i] for i in range(jobs.size)},
        {names[i]: list(jobs.usages[i]) for i in range(jobs.size)},
        list(jobs.limits),
        {names[j]: [names[i] for i in jobs.preds[j]] for j in range(jobs.size)},
    )
    assert got == [ref[n] for n in names]
    assert violations(jobs, got) == []


@pytest.mark.parametrize("seed", range(30))
def test_serial_sgs_matches_a_plain_reference(seed: int) -> None:
    _matches_the_reference(random_jobs(seed, 12 + seed % 7), seed)


@pytest.mark.parametrize("seed", range(3))
def test_large_profile_matches_the_plain_reference(seed: int) -> None:
    """Above SMALL_PROFILE steps the numpy profile (buffers that grow) is used: same starts."""
    _matches_the_reference(random_jobs(500 + seed, SMALL_PROFILE + 150, resources=3), seed)


@pytest.mark.parametrize("seed", range(20))
def test_improvement_never_lengthens_and_stays_valid(seed: int) -> None:
    jobs = random_jobs(100 + seed, 25)
    order = priority_order(jobs, [float(i) for i in range(jobs.size)])
    first = serial_sgs(jobs, order)
    better = improve(jobs, first)
    assert makespan(jobs, better) <= makespan(jobs, first) + 1e-12
    assert violations(jobs, better) == []


def test_sgs_keeps_a_feasible_schedule_no_later() -> None:
    """Given the start order of a feasible schedule, no step starts later."""
    jobs = random_jobs(7, 15)
    base = serial_sgs(jobs, priority_order(jobs, [float(i) for i in range(jobs.size)]))
    # a feasible but stretched schedule: everything shifted by its index
    stretched = [s + 0.1 * i for i, s in enumerate(base)]
    if violations(jobs, stretched) == []:
        again = serial_sgs(jobs, priority_order(jobs, stretched))
        assert all(a <= b + 1e-12 for a, b in zip(again, stretched, strict=True))


def test_asap_critical_path_and_checks() -> None:
    jobs = Jobs((2.0, 3.0, 1.0, 4.0), ((), (0,), (0,), (1, 2)))
    starts = asap(jobs)
    assert starts == [0.0, 2.0, 2.0, 5.0]
    assert makespan(jobs, starts) == 9.0
    assert critical(jobs, starts) == [True, True, False, True]
    assert violations(jobs, [0.0, 1.0, 2.0, 5.0]) == ["step 1 starts before its predecessor 0 ends"]
    assert violations(jobs, starts, deadline=8.0)


def test_quota_waits_are_on_the_critical_chain() -> None:
    # two independent steps that cannot overlap: the second waits for the first
    jobs = Jobs((2.0, 3.0), ((), ()), ((1,), (1,)), (1,))
    starts = serial_sgs(jobs, [0, 1])
    assert starts == [0.0, 2.0]
    assert critical(jobs, starts) == [True, True]
    assert violations(jobs, [0.0, 1.0]) == ["resource 0 holds 2 > 1 at t=1.0"]


@pytest.mark.parametrize("seed", range(1000, 1012))
def test_fill_slack_keeps_the_schedule_valid_and_never_costs_more(seed: int) -> None:
    from exo.compiler.problem import build_problem
    from exo.compiler.solve import _pick, best_schedule, fill_slack
    from tests.optimizer_oracle import random_case

    program, catalog = random_case(seed, n_steps=4, quota=True)
    problem, _ = build_problem(
        program.model_copy(
            update={
                "workflow": program.workflow.model_copy(
                    update={"deadline_h": None, "budget_usd": None}
                )
            }
        ),
        catalog,
    )
    if any(not o for o in problem.options):
        return
    fast = _pick(problem, "P")
    starts = best_schedule(problem, fast)
    limit = makespan(problem.jobs(fast), starts)
    cheaper = fill_slack(problem, fast, starts, limit)
    assert violations(problem.jobs(cheaper), starts, limit + 1e-6) == []
    assert problem.cost(cheaper) <= problem.cost(fast) + 1e-9


def test_a_pass_the_clock_stops_is_abandoned_and_improve_keeps_the_best() -> None:
    """A schedule pass looks at the clock as it goes: out of time it returns ``None``
    (large schedules take seconds a pass), and ``improve`` keeps the best it had."""
    from exo.compiler.schedule import serial_sgs_within

    jobs = random_jobs(11, SMALL_PROFILE + 150, resources=3)
    order = priority_order(jobs, [float(i) for i in range(jobs.size)])
    first = serial_sgs(jobs, order)
    assert serial_sgs_within(jobs, order, lambda: False) == first
    assert serial_sgs_within(jobs, order, lambda: True) is None
    for budget in (0, 3, 7, 40):
        calls = iter(range(10**6))
        better = improve(jobs, first, expired=lambda b=budget, c=calls: next(c) >= b)
        assert makespan(jobs, better) <= makespan(jobs, first) + 1e-12
        assert violations(jobs, better) == []


@pytest.mark.parametrize("seed", range(3, 8))
def test_large_crowded_profile_matches_the_plain_reference(seed: int) -> None:
    """One resource, tight: long runs of full segments (the vectorised search for room)."""
    _matches_the_reference(random_jobs(900 + seed, SMALL_PROFILE + 100, resources=1), seed)


def test_a_step_larger_than_the_quota_is_refused_by_the_large_profile() -> None:
    jobs = random_jobs(5, SMALL_PROFILE + 10, resources=2)
    big = Jobs(jobs.durations, jobs.preds, (*jobs.usages[:-1], (99, 0)), jobs.limits)
    with pytest.raises(ValueError, match="more than the quota on its own"):
        serial_sgs(big, priority_order(big, [float(i) for i in range(big.size)]))
