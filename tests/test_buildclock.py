"""Spot options built only where the time limit leaves room for them (issue #16).

The options are built in batches of steps; before each, a ``SpotGate`` says whether
its spot options still fit the limit. A batch built on demand only gets a lower
bound per family on the spot options not built, and the plan's proven bound covers
them: a plan of such a build is never called optimal when spot could beat it, never
infeasible because spot was not built, and its lower bound stays a real bound.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import exo.compiler.costmodel as costmodel
from exo.compiler.anytime import Clock
from exo.compiler.buildclock import SpotGate
from exo.compiler.catalog import load_catalog
from exo.compiler.ir import Program
from exo.compiler.optimizer import optimize
from exo.compiler.problem import enumerate_program
from tests.optimizer_oracle import check_plan

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from gen_programs import generate  # noqa: E402  (a benchmark script, not a package)

CATALOG = load_catalog("aws/us-east-1", ROOT)


@pytest.fixture(scope="module")
def program() -> Program:
    got, _ = generate(16, seed=3, deadline="loose", quota=False, catalog=CATALOG)
    return got


def _never(first: int, size: int) -> bool:
    return False


def test_the_gate_builds_everything_without_a_limit_and_the_first_batch_always() -> None:
    gate = SpotGate(Clock(None), 2000)
    assert all(gate(lo, 500) for lo in range(0, 2000, 500))
    spent = Clock(1e-9)
    time.sleep(0.001)
    late = SpotGate(spent, 2000)
    assert late(0, 500)  # nothing measured yet: the first batch is built whole
    assert not late(500, 500) and not late(1000, 500)


def test_the_gate_leaves_spot_out_on_a_stop_request_and_when_it_cannot_fit() -> None:
    assert not SpotGate(Clock(3600.0, stop=lambda: True), 1000)(0, 500)
    gate = SpotGate(Clock(3600.0), 10**9)  # a billion steps cannot be built in an hour
    assert gate(0, 500)
    time.sleep(0.002)
    assert not gate(500, 500)


def test_a_batch_without_spot_has_its_on_demand_options_and_a_bound_on_each_spot_one(
    program: Program,
) -> None:
    full = enumerate_program(program, CATALOG)
    lean = enumerate_program(program, CATALOG, spot=_never)
    assert full.unbuilt == {} and lean.unbuilt
    for step in program.steps:
        name = step.name
        spot = [o for o in full.options[name] if o.spot]
        # the on-demand options are the same, and the spot-only steps keep their spot
        kept = [o for o in full.options[name] if not o.spot or step.spot == "only"]
        assert list(lean.options[name]) == kept
        bounds = lean.unbuilt.get(name, ())
        if step.spot == "only" or not spot:
            assert bounds == ()
            continue
        for o in spot:
            mine = [
                b
                for b in bounds
                if (b.instance_type, b.batch_size) == (o.instance_type, o.batch_size)
            ]
            assert len(mine) == 1
            assert mine[0].first <= o.instances <= mine[0].last
            assert mine[0].cost_lb <= o.cost + 1e-9 and mine[0].p_lb <= o.P + 1e-9


def test_a_plan_without_some_spot_options_is_valid_and_its_bound_covers_them(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = optimize(program, CATALOG)
    assert reference.status == "optimal" and reference.expected_cost_usd is not None
    monkeypatch.setattr(costmodel, "STEPS_AT_ONCE", 4)  # four batches of four steps
    plan = optimize(program, CATALOG, stop=lambda: True)  # all but the first on demand
    assert check_plan(program, CATALOG, plan) == []
    assert plan.expected_cost_usd is not None and plan.lower_bound_usd is not None
    assert plan.lower_bound_usd <= reference.expected_cost_usd + 1e-6
    assert plan.expected_cost_usd > reference.expected_cost_usd  # spot was cheaper
    assert plan.status == "feasible" and plan.gap is not None and plan.gap > 0.0
    assert any(
        line.startswith("time limit: the spot options of ") and "of the 16 steps" in line
        for line in plan.explanation
    )


def test_a_budget_only_spot_meets_is_not_called_infeasible(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On demand alone misses the budget; the spot options not built could meet it, so
    they are built (past the limit) rather than an infeasibility claimed."""
    reference = optimize(program, CATALOG)
    assert reference.expected_cost_usd is not None
    budget = reference.expected_cost_usd * 1.001
    tight = program.model_copy(
        update={"workflow": program.workflow.model_copy(update={"budget_usd": budget})}
    )
    monkeypatch.setattr(costmodel, "STEPS_AT_ONCE", 4)
    lean = enumerate_program(tight, CATALOG, spot=lambda first, size: first == 0)
    assert lean.unbuilt  # what the first search sees: on demand misses the budget
    plan = optimize(tight, CATALOG, stop=lambda: True)
    assert plan.status in ("optimal", "feasible")
    assert check_plan(tight, CATALOG, plan) == []
    assert not any(line.startswith("time limit: the spot options") for line in plan.explanation)
