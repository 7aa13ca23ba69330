"""The optimizer on the examples and on hand-checked cases: plans, schedules, baselines."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from exo.compiler.baselines import naive_choice
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.frontend import compile_file
from exo.compiler.ir import (
    Checkpoint,
    Duration,
    InputRef,
    Program,
    Quota,
    ReplicaRange,
    Step,
    Throughput,
    Workflow,
)
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan
from exo.compiler.problem import enumerate_program
from exo.compiler.report.facts import build_report
from tests.conftest import all_examples, example_id
from tests.optimizer_oracle import brute_force, check_plan

DESIGN_KEYS = {
    "workflow",
    "objective",
    "status",
    "deadline_h",
    "budget_usd",
    "confidence",
    "expected_cost_usd",
    "makespan_h",
    "lower_bound_usd",
    "baselines",
    "steps",
    "explanation",
}
STEP_KEYS = {
    "name",
    "instance_type",
    "accelerator",
    "accelerator_count",
    "spot",
    "batch_size",
    "replicas",
    "start_h",
    "expected_duration_h",
    "p_duration_h",
    "expected_cost_usd",
}


def _without_time(plan: Plan) -> dict[str, object]:
    data = plan.model_dump(mode="json")
    data.pop("solve_time_s")
    return data


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_examples_plan_and_check(path: Path) -> None:
    compiled = compile_file(path)
    plan = optimize(compiled.program, compiled.catalog)
    assert plan.status == "optimal", plan.explanation
    assert check_plan(compiled.program, compiled.catalog, plan) == []
    data = plan.model_dump(mode="json")
    assert set(data) >= DESIGN_KEYS
    assert set(data["baselines"]) == {"all_on_demand", "naive"}
    for s in data["steps"]:
        assert set(s) >= STEP_KEYS
    assert [s.name for s in plan.steps] == [s.name for s in compiled.program.steps]
    assert any(s.on_critical_path for s in plan.steps)
    aod = plan.baselines["all_on_demand"]
    if aod is not None:
        assert plan.expected_cost_usd is not None
        assert plan.expected_cost_usd <= aod.expected_cost_usd + 1e-9
    # deterministic: the same plan twice (the solve time aside)
    assert _without_time(optimize(compiled.program, compiled.catalog)) == _without_time(plan)


def test_overnight_example_by_hand() -> None:
    """The spec's overnight example: the numbers docs/cost-model.md works through."""
    spec = (
        Path(__file__).resolve().parents[2] / "shared" / "spec" / "examples" / "overnight_llm.exo"
    )
    if not spec.exists():
        pytest.skip("shared spec not present")
    compiled = compile_file(spec)
    plan = optimize(compiled.program, compiled.catalog)
    s = plan.step("summarize")
    assert s is not None
    # packing: 8 replicas of a 1-GPU step on one 8 x A100 instance, spot
    assert (s.instance_type, s.spot, s.batch_size, s.replicas, s.instances) == (
        "p4d.24xlarge",
        True,
        64,
        8,
        1,
    )
    # T = 0.1 + 100000 / (8 * 6.4 * 3600) = 0.642535 h; λ = 0.235 for p4d.24xlarge
    t = 0.1 + 100_000 / (8 * 6.4 * 3600)
    c = 64 / 6.4 / 3600
    lam = 0.235
    j = math.floor((t - 0.1) / c)
    rho = (t - 0.1) - j * c
    e = math.expm1(lam * 0.1) / lam + math.exp(lam * 0.1) / lam * (
        j * math.expm1(lam * c) + math.expm1(lam * rho)
    )
    assert (j, round(e, 6)) == (195, 0.656801)
    assert s.expected_duration_h == pytest.approx(e, rel=1e-12)
    assert s.expected_cost_usd == pytest.approx(1 * 5.0933 * e)
    # N = 1 spot step, m = 1: q = 0.95; k = 1: CDF(1; 0.235 (T + c + 0.1)) = 0.9863
    assert s.p_duration_h == pytest.approx(t + 1 * (c + 0.1))
    idx = plan.step("index")
    assert idx is not None and idx.start_h == pytest.approx(s.p_duration_h)


# --------------------------------------------------------------------------- small hand cases


def _cat(*rows: InstanceType) -> Catalog:
    return Catalog(name="hand", default_spot_preemptions_per_hour=0.0, instances=rows)


def _gpu(
    name: str, accel: str, od: float, count: int = 1, spot: float | None = None
) -> InstanceType:
    return InstanceType(
        instance_type=name,
        accelerator=accel,
        accelerator_count=count,
        vcpus=8 * count,
        memory_gib=64,
        ondemand_usd_per_hour=od,
        spot_usd_per_hour=spot,
        accelerator_memory_gib=80,
        spot_preemptions_per_hour=0.0,
    )


def _dur(name: str, per: dict[str, float], **kw: object) -> Step:
    return Step.model_validate(
        {
            "name": name,
            "accelerators": tuple(sorted(per)),
            "gpus": 1,
            "duration": Duration(per_key=per),
            "spot": "never",
            **kw,
        }
    )


CAT2 = _cat(_gpu("slow.1", "SLOW", 1.0), _gpu("fast.1", "FAST", 5.0))


def _wf(**kw: object) -> Workflow:
    return Workflow.model_validate({"name": "hand", **kw})


def test_cost_objective_trades_time_for_money_on_the_critical_path() -> None:
    # a -> b and c in parallel; slow costs 1/h, fast 5/h
    steps = (
        _dur("a", {"SLOW": 4.0, "FAST": 1.0}),
        _dur("b", {"SLOW": 4.0, "FAST": 1.0}, after=("a",)),
        _dur("c", {"SLOW": 6.0, "FAST": 2.0}),
    )
    program = Program(workflow=_wf(deadline_h=6.0), steps=steps)
    plan = optimize(program, CAT2)
    # slow everywhere takes 8 h; one fast step on the chain: 5 h, cost 5 + 4 + 6 = 15
    assert plan.status == "optimal"
    assert plan.expected_cost_usd == pytest.approx(15.0)
    assert plan.makespan_h == pytest.approx(6.0)
    assert {s.name: s.instance_type for s in plan.steps}["c"] == "slow.1"
    assert plan.lower_bound_usd == pytest.approx(15.0)
    assert check_plan(program, CAT2, plan) == []


def test_time_objective_prefers_the_cheaper_plan_among_equal_makespans() -> None:
    steps = (
        _dur("a", {"SLOW": 4.0, "FAST": 1.0}),
        _dur("b", {"SLOW": 1.5, "FAST": 0.5}),  # off the critical path when a is fast
    )
    program = Program(workflow=_wf(objective="time"), steps=steps)
    plan = optimize(program, CAT2)
    got = {s.name: s.instance_type for s in plan.steps}
    # fastest makespan is 1 h (a fast); b fast would also finish in time but slow... takes 1.5 h
    assert plan.makespan_h == pytest.approx(1.0)
    assert got == {"a": "fast.1", "b": "fast.1"}
    # with b able to run slow within the makespan, the cheaper one wins
    program2 = Program(
        workflow=_wf(objective="time"),
        steps=(_dur("a", {"SLOW": 4.0, "FAST": 2.0}), _dur("b", {"SLOW": 1.5, "FAST": 0.5})),
    )
    plan2 = optimize(program2, CAT2)
    assert plan2.makespan_h == pytest.approx(2.0)
    assert {s.name: s.instance_type for s in plan2.steps} == {"a": "fast.1", "b": "slow.1"}
    assert plan2.expected_cost_usd == pytest.approx(10.0 + 1.5)


def test_quota_serialises_parallel_steps_exactly() -> None:
    # three independent steps, each one FAST at a time by quota; slow ones are free to overlap
    steps = tuple(_dur(n, {"SLOW": 3.0, "FAST": 1.0}) for n in ("a", "b", "c"))
    program = Program(
        workflow=_wf(deadline_h=3.0, quota=Quota(accelerators={"FAST": 1})), steps=steps
    )
    plan = optimize(program, CAT2)
    # all slow: 3 h, cost 9; the quota is irrelevant then and slow is cheapest
    assert plan.expected_cost_usd == pytest.approx(9.0)
    tight = Program(
        workflow=_wf(deadline_h=2.0, quota=Quota(accelerators={"FAST": 1})), steps=steps
    )
    plan = optimize(tight, CAT2)
    # within 2 h every step must be fast, but only one FAST runs at a time: 3 h needed
    assert plan.status == "infeasible"
    text = "\n".join(plan.explanation)
    assert "quota" in text and "3.00 h" in text
    ok = Program(workflow=_wf(deadline_h=3.0, quota=Quota(accelerators={"FAST": 2})), steps=steps)
    assert optimize(ok, CAT2).expected_cost_usd == pytest.approx(9.0)


def test_quota_schedule_holds_at_every_instant() -> None:
    steps = (
        _dur("a", {"SLOW": 5.0, "FAST": 2.0}),
        _dur("b", {"SLOW": 5.0, "FAST": 2.0}),
        _dur("c", {"SLOW": 5.0, "FAST": 2.0}),
        _dur("d", {"SLOW": 5.0, "FAST": 2.0}, after=("a",)),
    )
    quota = Quota(accelerators={"FAST": 1, "SLOW": 1})
    program = Program(workflow=_wf(deadline_h=11.0, quota=quota), steps=steps)
    plan = optimize(program, CAT2)
    assert plan.status == "optimal"
    assert check_plan(program, CAT2, plan) == []
    best = brute_force(program, CAT2)
    assert best is not None and plan.expected_cost_usd == pytest.approx(best.cost)


def test_time_limit_still_gives_a_checked_plan_and_a_proven_bound() -> None:
    steps = []
    for i in range(12):
        after = (f"s{i - 1}",) if i % 3 else ()
        steps.append(_dur(f"s{i}", {"SLOW": 2.0 + i % 4, "FAST": 0.5 + (i % 3) * 0.2}, after=after))
    program = Program(workflow=_wf(deadline_h=7.0), steps=tuple(steps))
    plan = optimize(program, CAT2, time_limit_s=0.5)
    assert plan.status in ("optimal", "feasible")
    assert check_plan(program, CAT2, plan) == []
    assert plan.gap is not None and plan.gap >= 0.0
    assert plan.lower_bound_usd is not None and plan.expected_cost_usd is not None
    exact = optimize(program, CAT2)
    assert plan.lower_bound_usd <= exact.expected_cost_usd + 1e-6  # type: ignore[operator]


def test_baselines() -> None:
    cat = _cat(
        _gpu("cheap.1", "SLOW", 0.5, spot=0.2),
        _gpu("cheap.4", "SLOW", 1.8, count=4, spot=0.6),
        _gpu("fast.1", "FAST", 3.0, spot=1.0),
    )
    step = Step(
        name="s",
        input=InputRef(kind="dataset", name="d"),
        items=36_000,
        accelerators=("SLOW", "FAST"),
        gpus=1,
        throughput=Throughput(per_batch={"SLOW": {8: 1.0, 32: 2.0}, "FAST": {8: 5.0, 32: 10.0}}),
        batch_sizes=(8, 32),
        replicas=ReplicaRange(min=1, max=4),
    )
    program = Program(workflow=_wf(deadline_h=3.0), steps=(step,))
    plan = optimize(program, cat)
    naive = plan.baselines["naive"]
    # naive: cheapest per hour on demand (cheap.1 at $0.5), largest batch (32), one replica
    assert naive is not None
    assert naive.makespan_h == pytest.approx(36_000 / (2.0 * 3600))
    assert naive.expected_cost_usd == pytest.approx(0.5 * 5.0)
    chosen = naive_choice(program, cat, enumerate_program(program, cat))
    assert chosen is not None and chosen["s"].instance_type == "cheap.1"
    aod = plan.baselines["all_on_demand"]
    on_demand = optimize(program, cat, allow_spot=False)
    assert aod is not None and on_demand.expected_cost_usd is not None
    assert aod.expected_cost_usd == pytest.approx(on_demand.expected_cost_usd)
    assert all(not s.spot for s in on_demand.steps)
    assert plan.expected_cost_usd is not None
    assert plan.expected_cost_usd <= aod.expected_cost_usd


def test_lower_bound_never_exceeds_cost_and_gap_is_zero_when_optimal() -> None:
    program = Program(
        workflow=_wf(deadline_h=5.0, budget_usd=40.0),
        steps=(
            _dur("a", {"SLOW": 4.0, "FAST": 1.0}),
            _dur("b", {"SLOW": 2.0, "FAST": 1.0}, after=("a",)),
        ),
    )
    plan = optimize(program, CAT2)
    assert plan.status == "optimal" and plan.gap == 0.0
    assert plan.lower_bound_usd is not None and plan.expected_cost_usd is not None
    assert plan.lower_bound_usd <= plan.expected_cost_usd
    assert math.isclose(plan.lower_bound_usd, plan.expected_cost_usd, rel_tol=1e-9)


def test_spot_that_cannot_be_promised_is_named_when_it_would_have_been_cheaper() -> None:
    """4 h without checkpoints at λ = 0.47/h: spot costs less but cannot be promised."""
    cat = _cat(
        InstanceType(
            instance_type="g.1",
            accelerator="A10G",
            accelerator_count=1,
            vcpus=8,
            memory_gib=64,
            ondemand_usd_per_hour=1.0,
            spot_usd_per_hour=0.3,
            accelerator_memory_gib=24,
            spot_preemptions_per_hour=0.47,
        )
    )
    step = _dur("train", {"A10G": 4.0}, spot="allowed", checkpoint=Checkpoint(kind="none"))
    program = Program(workflow=_wf(deadline_h=10.0), steps=(step,))
    plan = optimize(program, cat)
    (s,) = plan.steps
    assert plan.status == "optimal" and not s.spot
    # E = (e^{0.47 x 4} - 1)/0.47 = 11.816 h; at $0.30/h: $3.54 < $4.00 on demand
    line = next(x for x in plan.explanation if "cannot be promised" in x)
    assert "`train`: spot on g.1 would cost $3.54" in line and "add checkpoints" in line
    report = build_report(plan, program, cat)
    why = report.steps[0].why
    assert why is not None and "cannot be promised at 95% confidence" in why.reason


@pytest.mark.parametrize("path", all_examples(), ids=example_id)
def test_the_baseline_filters_the_plans_options_exactly(path: Path) -> None:
    """The all-on-demand baseline reuses the plan's enumeration without spot: the
    same options, rejections and sampled ranges as enumerating with spot disallowed."""
    from exo.compiler.problem import without_spot

    compiled = compile_file(path)
    program, cat = compiled.program, compiled.catalog
    assert without_spot(enumerate_program(program, cat)) == enumerate_program(
        program, cat, allow_spot=False
    )


def test_the_baseline_is_not_solved_past_the_time_limit() -> None:
    from exo.compiler.anytime import Clock
    from exo.compiler.optimizer import _all_on_demand
    from exo.compiler.solve import Solution

    program = compile_file(all_examples()[0]).program
    enum = enumerate_program(program, compile_file(all_examples()[0]).catalog)
    sol = Solution("feasible", (), (), 1.0, 1.0, 0.5, 0.5)
    base, line = _all_on_demand(program, enum, sol, True, Clock(1e-9))
    assert base is None
    assert "not computed, the plan used the whole time limit" in line


@pytest.mark.parametrize("deadline", [10.0, 6.0])
def test_the_trivial_bound_proves_only_what_the_solver_would(deadline: float) -> None:
    """Slow everywhere (the cheapest) meets a 10 h deadline: optimal without a model, at
    the solver's optimum; at 6 h it does not, and the solver decides."""
    from exo.compiler.anytime import Clock
    from exo.compiler.problem import build_problem
    from exo.compiler.solution import proven_by_bound
    from exo.compiler.solve import solve_problem

    steps = (
        _dur("a", {"SLOW": 4.0, "FAST": 1.0}),
        _dur("b", {"SLOW": 4.0, "FAST": 1.0}, after=("a",)),
        _dur("c", {"SLOW": 6.0, "FAST": 2.0}),
    )
    program = Program(workflow=_wf(deadline_h=deadline), steps=steps)
    problem, _ = build_problem(program, CAT2)
    quick = proven_by_bound(problem)
    solved = solve_problem(problem, Clock(None))
    plan = optimize(program, CAT2)
    assert plan.status == solved.status == "optimal"
    lines = "\n".join(plan.explanation)
    if deadline == 10.0:
        assert quick is not None and quick.proved_by == "bound"
        assert quick.cost == pytest.approx(solved.cost) == pytest.approx(14.0)
        assert "optimal: proven without a solver model" in lines
        assert "HiGHS" not in lines
    else:
        assert quick is None
        assert plan.expected_cost_usd == pytest.approx(15.0)
        assert "optimal: proven by the solver (HiGHS)" in lines
    assert check_plan(program, CAT2, plan) == []
