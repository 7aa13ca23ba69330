"""Monte Carlo under the model: plans keep the promises they print (seeded, small).

For random plans and the examples, :mod:`exo.compiler.simulate` runs each plan
thousands of times with Poisson preemptions at every instance's λ. Every step
must meet its ``P`` at least as often as its share of the confidence, the whole
plan its makespan at least as often as the workflow's confidence (within three
standard errors), and the mean simulated cost must be within 2 % of the plan's
``expected_cost_usd``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from exo.compiler.catalog import Catalog
from exo.compiler.costmodel import Confidence, Option, option_for, workflow_confidence
from exo.compiler.frontend import compile_file
from exo.compiler.ir import Program, Step
from exo.compiler.optimizer import optimize
from exo.compiler.preemption import expected_hours
from exo.compiler.simulate import SimStep, instance_hours, plan_steps, simulate
from tests.conftest import all_examples, example_id
from tests.optimizer_oracle import random_case

RUNS = 4000


def _slack(p: float, runs: int = RUNS) -> float:
    """Three standard errors of a frequency ``p`` over ``runs`` trials."""
    return 3.0 * math.sqrt(max(p * (1.0 - p), 1e-4) / runs)


def _check(program: Program, catalog: Catalog, seed: int) -> int:
    plan = optimize(program, catalog)
    if plan.status == "infeasible":
        return 0
    conf = workflow_confidence(program, catalog)
    res = simulate(plan_steps(program, catalog, plan), runs=RUNS, seed=seed)
    for sp, st in zip(plan.steps, res.steps, strict=True):
        want = conf.step if sp.spot else 1.0
        assert st.hit_rate >= want - _slack(want), (sp.name, st.hit_rate, want)
    c = program.workflow.confidence
    assert res.makespan_hit_rate >= c - _slack(c), (res.makespan_hit_rate, c)
    assert res.all_steps_hit_rate <= res.makespan_hit_rate
    assert plan.expected_cost_usd is not None
    assert math.isclose(res.mean_cost_usd, plan.expected_cost_usd, rel_tol=0.02), (
        res.mean_cost_usd,
        plan.expected_cost_usd,
    )
    return sum(1 for s in plan.steps if s.spot)


def test_random_plans_keep_their_promises() -> None:
    spot_steps = 0
    for seed in range(24):
        program, catalog = random_case(seed, n_steps=3 + seed % 2, quota=seed % 3 == 0)
        spot_steps += _check(program, catalog, seed)
    assert spot_steps >= 10  # the cases exercise spot, not just on demand


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_examples_keep_their_promises(path: Path) -> None:
    compiled = compile_file(path)
    _check(compiled.program, compiled.catalog, seed=7)


@pytest.mark.parametrize(
    ("startup", "work", "c", "lam"),
    [(0.1, 1.25, 1.25, 0.5), (0.1, 1.25, 0.5, 0.5), (0.25, 4.0, 0.01, 0.47), (0.0, 2.0, 2.0, 0.3)],
)
def test_simulated_mean_time_is_the_exact_e(
    startup: float, work: float, c: float, lam: float
) -> None:
    """The simulator and the closed form agree: E is the exact mean (no first-order error)."""
    rng = np.random.Generator(np.random.PCG64(11))
    hours = instance_hours(rng, (40_000,), startup_h=startup, work_h=work, checkpoint_h=c, rate=lam)
    e = expected_hours(startup + work, startup, c, lam)
    err = hours.std() / math.sqrt(hours.size)
    assert abs(hours.mean() - e) <= 4 * err
    assert hours.min() >= startup + work - 1e-12


def test_on_demand_is_deterministic_and_the_makespan_is_the_plan() -> None:
    steps = [
        SimStep("a", (), 0.0, 2.0, 2, 0.1, 1.9, 1.9, 0.0, 1.0, 4.0),
        SimStep("b", (0,), 2.0, 1.0, 1, 0.0, 1.0, 1.0, 0.0, 2.0, 2.0),
    ]
    res = simulate(steps, runs=10, seed=1)
    assert res.makespan_hit_rate == 1.0 and res.mean_makespan_h == pytest.approx(3.0)
    assert res.mean_cost_usd == pytest.approx(6.0) and res.cost_stderr_usd == pytest.approx(0.0)
    late = simulate(steps, runs=10, seed=1, release="asap")
    assert late.mean_makespan_h == pytest.approx(3.0)


def test_a_step_ends_with_its_last_instance() -> None:
    """Per-replica P (v1) is not a promise for the step: eight instances miss it more often."""
    one = SimStep("s", (), 0.0, 2.25, 1, 0.1, 2.0, 0.01, 0.47, 1.0, 0.0)
    eight = SimStep("s", (), 0.0, 2.25, 8, 0.1, 2.0, 0.01, 0.47, 1.0, 0.0)
    r1 = simulate([one], runs=RUNS, seed=3).steps[0].hit_rate
    r8 = simulate([eight], runs=RUNS, seed=3).steps[0].hit_rate
    assert r8 < r1
    assert r8 == pytest.approx(r1**8, abs=0.03)


@pytest.mark.parametrize("seed", range(12))
def test_a_plans_options_are_read_back_from_its_p_without_the_poisson_tail(seed: int) -> None:
    """``option_for(planned_p=P)`` (what ``plan_steps`` and the run-time fallback ask)
    is the option the optimizer planned: ``k`` read back from ``P = T + k (c + r)``."""
    program, catalog = random_case(seed, n_steps=4, quota=seed % 3 == 0)
    plan = optimize(program, catalog)
    conf = workflow_confidence(program, catalog)
    for sp in plan.steps:
        step = program.step(sp.name)
        choice = (sp.instance_type, sp.spot, sp.batch_size, sp.replicas)
        searched = _option(step, catalog, conf, choice, None)
        read = _option(step, catalog, conf, choice, sp.p_duration_h)
        assert read == searched
        assert isinstance(read, Option) and sp.p_duration_h == read.P


def _option(
    step: Step,
    catalog: Catalog,
    conf: Confidence,
    choice: tuple[str, bool, int | None, int],
    planned_p: float | None,
) -> object:
    it, spot, batch, replicas = choice
    return option_for(
        step,
        catalog,
        conf,
        instance_type=it,
        spot=spot,
        batch_size=batch,
        replicas=replicas,
        planned_p=planned_p,
    )
