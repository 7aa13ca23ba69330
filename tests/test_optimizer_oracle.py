"""The optimizer against a brute-force oracle on many small random workflows.

For every seed: the optimizer's objective equals the exhaustive optimum (cost,
or makespan then cost), every per-step figure matches the DESIGN §3 formulas
recomputed independently, the schedule honours precedence, deadline, budget
and the quota at every instant, and the lower bound is at most the optimum.
"""

from __future__ import annotations

import math

import pytest

from exo.compiler.optimizer import optimize
from tests.optimizer_oracle import brute_force, check_plan, random_case


def _agree(seed: int, n_steps: int, quota: bool) -> None:
    program, catalog = random_case(seed, n_steps=n_steps, quota=quota)
    plan = optimize(program, catalog)
    best = brute_force(program, catalog)
    assert check_plan(program, catalog, plan) == []
    if best is None:
        assert plan.status == "infeasible", plan.model_dump()
        assert plan.explanation
        return
    assert plan.status == "optimal", plan.explanation
    assert plan.expected_cost_usd is not None and plan.makespan_h is not None
    if program.workflow.objective == "cost":
        assert math.isclose(plan.expected_cost_usd, best.cost, rel_tol=1e-7, abs_tol=1e-6)
    else:
        assert math.isclose(plan.makespan_h, best.makespan, rel_tol=1e-7, abs_tol=1e-6)
        assert math.isclose(plan.expected_cost_usd, best.cost, rel_tol=1e-7, abs_tol=1e-6)
    assert plan.lower_bound_usd is not None
    assert plan.lower_bound_usd <= best.cost + 1e-6


@pytest.mark.parametrize("seed", range(60))
def test_matches_brute_force_without_quota(seed: int) -> None:
    _agree(seed, n_steps=3 + seed % 2, quota=False)


@pytest.mark.parametrize("seed", range(1000, 1040))
def test_matches_brute_force_with_quota(seed: int) -> None:
    _agree(seed, n_steps=3, quota=True)
