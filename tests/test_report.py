"""Report building blocks on small hand-built workflows: formatting, why, constraints, charts."""

from __future__ import annotations

import itertools
import math

import pytest

from exo.compiler import figures as fmt
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.costmodel import enumerate_options
from exo.compiler.frontend import compile_file
from exo.compiler.ir import (
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
from exo.compiler.plan import Plan, StepPlan
from exo.compiler.quota import accelerator_resource
from exo.compiler.report import svg
from exo.compiler.report.facts import build_report, peak_usage
from exo.compiler.report.markdown import cell, render_markdown
from exo.compiler.report.text import render_plain
from exo.compiler.report.why import step_floats

from .conftest import REPO


def inst(
    name: str,
    od: float,
    spot: float | None,
    *,
    accel: str | None = None,
    count: int = 0,
    vcpus: int = 8,
    rate: float = 0.2,
) -> InstanceType:
    return InstanceType(
        instance_type=name,
        accelerator=accel,
        accelerator_count=count,
        vcpus=vcpus,
        memory_gib=32.0,
        ondemand_usd_per_hour=od,
        spot_usd_per_hour=spot,
        accelerator_memory_gib=24.0 if accel else None,
        spot_preemptions_per_hour=rate,
    )


CATALOG = Catalog(
    name="test",
    snapshot="2026-01-01",
    default_spot_preemptions_per_hour=0.2,
    instances=(
        inst("small", 1.0, 0.3, vcpus=4),
        inst("big", 3.0, 1.0, vcpus=16),
        inst("gpu1", 2.0, 0.7, accel="L4", count=1),
    ),
)


def cpu_step(name: str, items: int, **kw: object) -> Step:
    tp = Throughput(flat={"small": 10.0, "big": 40.0})
    return Step(name=name, items=items, throughput=tp, **kw)  # type: ignore[arg-type]


def program(*steps: Step, **wf: object) -> Program:
    return Program(workflow=Workflow(name="t", catalog="test", **wf), steps=steps)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (None, "-"),
        (0.0, "$0.00"),
        (1234.567, "$1,234.57"),
        (0.5, "$0.50"),
        (0.0999, "$0.10"),
        (0.034, "$0.034"),
        (0.0042, "$0.0042"),
        (-2.5, "-$2.50"),
    ],
)
def test_money(usd: float | None, text: str) -> None:
    assert fmt.money(usd) == text


@pytest.mark.parametrize(
    ("h", "text"),
    [(None, "-"), (0.0, "0m"), (0.75, "45m"), (1.5, "1h30m"), (36.0, "36h00m"), (-0.25, "-15m")],
)
def test_hours(h: float | None, text: str) -> None:
    assert fmt.hours(h) == text


def test_signed_values() -> None:
    assert fmt.signed_money(3.1) == "+$3.10"
    assert fmt.signed_money(-0.4) == "-$0.40"
    assert fmt.signed_money(1e-9) == "$0.00"
    assert fmt.signed_hours(1 + 10 / 60) == "+1h10m"
    assert fmt.signed_hours(-1 / 3) == "-20m"
    assert fmt.signed_hours(0.001) == "0m"


def test_markdown_cells_escape_pipes() -> None:
    assert cell("a|b\nc") == "a\\|b c"


# --------------------------------------------------------------------------- why and floats


def test_floats_on_a_diamond() -> None:
    prog = program(
        cpu_step("a", 3600),
        cpu_step("b", 3600, input=InputRef(kind="step", name="a")),
        cpu_step("c", 3600, after=("a",)),
        cpu_step("d", 3600, after=("b", "c")),
    )

    def sp(name: str, start: float, p: float) -> StepPlan:
        return StepPlan(
            name=name,
            instance_type="small",
            accelerator=None,
            accelerator_count=0,
            spot=False,
            batch_size=None,
            replicas=1,
            start_h=start,
            expected_duration_h=p,
            p_duration_h=p,
            expected_cost_usd=p,
        )

    plan = Plan(
        workflow="t",
        objective="cost",
        status="optimal",
        deadline_h=None,
        budget_usd=None,
        confidence=0.95,
        expected_cost_usd=4.0,
        makespan_h=4.0,
        lower_bound_usd=4.0,
        steps=[sp("a", 0, 1), sp("b", 1, 2), sp("c", 1, 0.5), sp("d", 3, 1)],
    )
    floats = step_floats(plan, prog)
    assert floats == {"a": 0.0, "b": 0.0, "c": 1.5, "d": 0.0}


def test_why_names_the_cheaper_option_that_misses_the_deadline() -> None:
    # 36,000 items on demand: small (10/s, $1/h) takes 1 h for $1.00; big (20/s,
    # $3/h) 30 min for $1.50. A 45 min deadline leaves only big.
    tp = Throughput(flat={"small": 10.0, "big": 20.0})
    prog = program(Step(name="work", items=36_000, throughput=tp, spot="never"), deadline_h=0.75)
    plan = optimize(prog, CATALOG)
    assert plan.status == "optimal"
    assert plan.steps[0].instance_type == "big"
    rep = build_report(plan, prog, CATALOG)
    why = rep.steps[0].why
    assert why is not None
    assert why.reason == "the cheapest option that keeps the plan within the deadline"
    cheaper = [a for a in why.alternatives if a.kind == "cheaper"]
    assert len(cheaper) == 1
    alt = cheaper[0]
    assert alt.option.instance_type == "small"
    assert alt.option.cost == pytest.approx(1.0)
    assert plan.steps[0].expected_cost_usd == pytest.approx(1.5)
    assert alt.cost_delta_usd == pytest.approx(-0.5)
    assert alt.duration_delta_h == pytest.approx(0.5)
    assert alt.misses_deadline
    line = fmt.alternative(alt, plan)
    assert line == ("cheaper: small on-demand x1 (-$0.50, +30m; plan 1h00m, past the 45m deadline)")


def test_why_alternatives_match_the_cost_model() -> None:
    prog = program(cpu_step("work", 36_000), deadline_h=0.5)
    plan = optimize(prog, CATALOG)
    rep = build_report(plan, prog, CATALOG)
    why = rep.steps[0].why
    assert why is not None
    chosen = plan.steps[0]
    opts = enumerate_options(prog.steps[0], CATALOG, 0.95)
    assert why.options == len(opts)
    assert why.alternatives
    for a in why.alternatives:
        assert a.option in opts
        assert a.cost_delta_usd == pytest.approx(a.option.cost - chosen.expected_cost_usd)
        assert a.duration_delta_h == pytest.approx(a.option.P - chosen.p_duration_h)
        # one step: the plan ends when the step does
        assert a.plan_makespan_h == pytest.approx(max(plan.makespan_h or 0, a.option.P))
        assert a.misses_deadline == (a.plan_makespan_h > 0.5 + 1e-6)
    if chosen.spot:
        # the price of not taking the spot risk is always shown
        assert any(not a.option.spot for a in why.alternatives)


def test_deadline_is_slack_when_the_cheapest_options_fit() -> None:
    prog = program(cpu_step("work", 3_600, spot="never"), deadline_h=10.0, budget_usd=50.0)
    plan = optimize(prog, CATALOG)
    rep = build_report(plan, prog, CATALOG)
    by = {c.name: c for c in rep.constraints}
    assert not by["deadline"].binding
    assert not by["budget"].binding
    assert by["budget"].slack == f"{fmt.money(50.0 - (plan.expected_cost_usd or 0))} under budget"


def test_a_deadline_with_room_left_shapes_the_plan_but_does_not_bind() -> None:
    # small on demand: 1 h for $1.00; big: 30 min for $1.50.
    tp = Throughput(flat={"small": 10.0, "big": 20.0})
    step = Step(name="work", items=36_000, throughput=tp, spot="never")
    prog = program(step, deadline_h=0.75)
    plan = optimize(prog, CATALOG)
    assert plan.steps[0].instance_type == "big"  # small (1 h, $1.00) misses 45 min
    rep = build_report(plan, prog, CATALOG)
    deadline = next(c for c in rep.constraints if c.name == "deadline")
    # 15 minutes to spare: the optimum does not press against the deadline
    assert deadline.state == "shapes" and not deadline.binding
    assert deadline.slack == "15m to spare"
    assert "1h00m" in deadline.detail
    text = render_plain(rep, 160, solve_time=False)
    assert "deadline 45m: shapes the plan, plan 30m (15m to spare)" in text


def test_a_deadline_the_plan_meets_exactly_binds() -> None:
    tp = Throughput(flat={"small": 10.0, "big": 20.0})
    step = Step(name="work", items=36_000, throughput=tp, spot="never")
    prog = program(step, deadline_h=0.5)  # big takes exactly 30 min
    plan = optimize(prog, CATALOG)
    rep = build_report(plan, prog, CATALOG)
    deadline = next(c for c in rep.constraints if c.name == "deadline")
    assert deadline.binding and deadline.slack == "at the deadline"
    text = render_plain(rep, 160, solve_time=False)
    assert "deadline 30m: binding, plan 30m (at the deadline)" in text


def test_binding_never_comes_with_room_to_spare() -> None:
    """'deadline 12h: binding, plan 7h48m (4h12m to spare)' must not happen."""
    for path in sorted((REPO / "examples").glob("*.exo")):
        compiled = compile_file(path)
        plan = optimize(compiled.program, compiled.catalog)
        rep = build_report(plan, compiled.program, compiled.catalog)
        for c in rep.constraints:
            if c.binding:
                assert c.slack in ("at the deadline", "at the budget", "0 free at the peak"), c


def test_budget_shapes_a_time_objective() -> None:
    tp = Throughput(flat={"small": 10.0, "big": 20.0})
    step = Step(name="work", items=36_000, throughput=tp, spot="never")
    prog = program(step, objective="time", budget_usd=1.2)
    plan = optimize(prog, CATALOG)
    # big: 0.5 h x $3 = $1.50 > $1.20, so the fastest affordable is small
    assert plan.steps[0].instance_type == "small"
    rep = build_report(plan, prog, CATALOG)
    budget = next(c for c in rep.constraints if c.name == "budget")
    assert budget.state == "shapes"  # $0.20 left: not pressed against
    assert "$1.50" in budget.detail


def test_a_quota_the_plan_does_not_use_is_marked_unused() -> None:
    prog = program(
        cpu_step("work", 3_600, spot="never"),
        deadline_h=10.0,
        quota=Quota(accelerators={"L4": 4}),
    )
    plan = optimize(prog, CATALOG)
    rep = build_report(plan, prog, CATALOG)
    quota = next(c for c in rep.constraints if c.name == "quota L4")
    assert quota.state == "unused" and quota.used == "-"
    text = render_plain(rep, 160, solve_time=False)
    assert "quota L4 4: unused" in text and "peak 0" not in text


def test_quota_peak_and_binding() -> None:
    gpu = Step(
        name="g",
        items=36_000,
        accelerators=("L4",),
        gpus=1,
        throughput=Throughput(flat={"L4": 5.0}),
        replicas=ReplicaRange(min=1, max=4),
        spot="never",
    )
    twin = gpu.model_copy(update={"name": "h"})
    prog = program(gpu, twin, deadline_h=1.5, quota=Quota(accelerators={"L4": 4}))
    plan = optimize(prog, CATALOG)
    assert plan.status == "optimal"
    peak = peak_usage(plan, accelerator_resource("L4"), CATALOG)
    assert peak <= 4
    rep = build_report(plan, prog, CATALOG)
    quota = next(c for c in rep.constraints if c.name == "quota L4")
    assert quota.used == f"peak {peak}"
    assert quota.binding == (peak == 4)
    assert quota.state in ("binding", "shapes", "slack")


def test_duration_steps_and_an_infeasible_plan() -> None:
    step = Step(name="d", duration=Duration(default_h=2.0), spot="never")
    prog = program(step, deadline_h=1.0)
    plan = optimize(prog, CATALOG)
    assert plan.status == "infeasible"
    rep = build_report(plan, prog, CATALOG)
    assert rep.constraints == ()
    text = render_plain(rep, 100, solve_time=False)
    assert "why no plan" in text
    for line in plan.explanation:
        assert line.split()[0] in text
    md = render_markdown(rep, solve_time=False)
    assert md.startswith("### exo plan `t`: infeasible")
    assert "**Why no plan**" in md


def test_a_plan_alone_still_renders() -> None:
    prog = program(cpu_step("work", 3_600), deadline_h=2.0)
    plan = optimize(prog, CATALOG)
    rep = build_report(plan)  # no program, no catalog: a JSON file
    assert not rep.dag_known
    assert all(r.why is None for r in rep.steps)
    text = render_plain(rep, 120, solve_time=False)
    assert "options not known" not in text  # no why section at all
    assert fmt.money(plan.expected_cost_usd) in text


# --------------------------------------------------------------------------- charts


def test_ticks_are_round_and_cover_the_range() -> None:
    assert svg.ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert svg.ticks(0, 0.9)[-1] <= 0.9
    t = svg.ticks(0, 7.3)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(t)}
    assert len(steps) == 1
    step = steps.pop()
    assert step / 10 ** math.floor(math.log10(step)) in (1, 2, 2.5, 5)


def test_layered_layout_follows_the_dag() -> None:
    names = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("a", "e")]
    layers = svg.layered(names, edges)
    depth = {x: i for i, layer in enumerate(layers) for x in layer}
    assert depth == {"a": 0, "b": 1, "c": 1, "e": 1, "d": 2}
    for a, b in edges:
        assert depth[a] < depth[b]


def test_svg_escapes_names() -> None:
    step = Step(
        name="x<y&z",
        items=3600,
        throughput=Throughput(flat={"small": 10.0}),
        spot="never",
    )
    prog = program(step)
    plan = optimize(prog, CATALOG)
    rep = build_report(plan, prog, CATALOG)
    for chart in (svg.gantt(rep), svg.costs(rep), svg.dag(rep)):
        assert "x&lt;y&amp;z" in chart
        assert "x<y" not in chart
        assert "<rect" in chart


@pytest.mark.parametrize("name", ["quickstart", "synthetic_finetune", "gcp_evals"])
def test_the_reports_step_graph_is_networkxs_without_loading_it(name: str) -> None:
    """The report orders steps with exo's own topological sort; networkx is the reference."""
    import networkx as nx

    from exo.compiler.ir import step_dag
    from exo.compiler.report.facts import _order

    compiled = compile_file(REPO / "examples" / f"{name}.exo")
    prog = compiled.program
    plan = optimize(prog, compiled.catalog)
    dag = step_dag(prog)
    rep = build_report(plan, prog, compiled.catalog)
    assert rep.edges == tuple(sorted(dag.edges))
    names = [s.name for s in reversed(plan.steps)]  # not already in an order of the graph
    index = {n: i for i, n in enumerate(names)}
    order, preds = _order(prog, names)
    assert order == list(nx.lexicographical_topological_sort(dag, key=lambda n: index[n]))
    pos = {n: i for i, n in enumerate(order)}
    assert preds == tuple(tuple(sorted(pos[p] for p in dag.predecessors(n))) for n in order)
