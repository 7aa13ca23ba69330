"""What-if: parsing ``--what-if`` values and re-planning a fixture workflow per value."""

from __future__ import annotations

from functools import cache

import pytest
from syrupy.assertion import SnapshotAssertion

from exo.compiler.frontend import Compiled, compile_file
from exo.compiler.ir import Program
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan
from exo.compiler.report import svg, whatif
from exo.compiler.report.markdown import render_whatif
from exo.compiler.report.text import render_plain_renderable, whatif_renderable
from exo.compiler.report.whatif import Sweep, WhatIfError, parse_what_if

from .conftest import SPEC
from .golden import golden


@pytest.mark.parametrize(
    ("spec", "key", "values"),
    [
        ("deadline=6h,12h", "deadline", (6.0, 12.0)),
        ("deadline=12h, 6h ,6h", "deadline", (6.0, 12.0)),
        ("deadline=90m,1h30m,2", "deadline", (1.5, 2.0)),
        ("deadline=4h,none", "deadline", (4.0, None)),
        ("budget=$50,$100", "budget", (50.0, 100.0)),
        ("budget=$1,000,$50", "budget", (50.0, 1000.0)),
        ("budget=1_500", "budget", (1500.0,)),
        ("confidence=0.9,99%", "confidence", (0.9, 0.99)),
        ("Deadline=1d", "deadline", (24.0,)),
    ],
)
def test_parse(spec: str, key: str, values: tuple[float | None, ...]) -> None:
    sweep = parse_what_if(spec)
    assert sweep.key == key
    assert sweep.values == pytest.approx(values)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("deadline", "expected KEY=V1,V2"),
        ("price=1", "KEY one of deadline, budget, confidence"),
        ("deadline=", "give at least one value"),
        ("deadline=6x", "unknown unit 'x'"),
        ("deadline=4GiB", "not a duration"),
        ("deadline=-1h", "must be positive"),
        ("budget=fifty", "not an amount"),
        ("budget=$0", "must be positive"),
        ("confidence=1.5", "between 0 and 1"),
        ("confidence=none", "cannot be lifted"),
        ("deadline=" + ",".join(f"{i}h" for i in range(1, 30)), "at most 24 values"),
    ],
)
def test_parse_errors(spec: str, words: str) -> None:
    with pytest.raises(WhatIfError) as info:
        parse_what_if(spec)
    assert words in str(info.value)


# --------------------------------------------------------------------------- re-planning


@cache
def overnight() -> tuple[Compiled, Plan]:
    compiled = compile_file(SPEC / "examples" / "overnight_llm.exo")
    return compiled, optimize(compiled.program, compiled.catalog)


def sweep(spec: str) -> whatif.SweepResult:
    compiled, base = overnight()

    def planner(p: Program) -> Plan:
        return optimize(p, compiled.catalog)

    return whatif.run_sweep(compiled.program, parse_what_if(spec), base, planner)


def test_deadline_trade_off() -> None:
    result = sweep("deadline=30m,1h,2h,12h,none")
    values = [sc.value for sc in result.scenarios]
    assert values == [0.5, 1.0, 2.0, 8.0, 12.0, None]  # the current 8h is included
    current = [sc for sc in result.scenarios if sc.current]
    assert len(current) == 1
    assert current[0].plan is overnight()[1]
    by = {sc.value: sc.plan for sc in result.scenarios}
    assert by[0.5].status == "infeasible"  # the fastest plan takes longer than 30m
    feasible = [sc for sc in result.scenarios if sc.plan.status == "optimal"]
    # a looser deadline never costs more (the optimum of a relaxed problem)
    costs = [sc.plan.expected_cost_usd or 0.0 for sc in feasible]
    assert costs == sorted(costs, reverse=True)
    for sc in feasible:
        if sc.value is not None:
            assert (sc.plan.makespan_h or 0.0) <= sc.value + 1e-6
        assert sc.plan.deadline_h == sc.value


def test_budget_below_the_optimum_is_infeasible() -> None:
    _, base = overnight()
    cost = base.expected_cost_usd or 0.0
    result = sweep(f"budget={cost * 0.5:.2f},{cost * 2:.2f}")
    low, high = (sc for sc in result.scenarios if not sc.current)
    assert low.plan.status == "infeasible"
    assert high.plan.expected_cost_usd == pytest.approx(cost)
    rows = whatif.rows(result)
    assert rows[0].changes == tuple(low.plan.explanation[:1])


def test_renderings(snapshot: SnapshotAssertion) -> None:
    result = sweep("deadline=50m,2h,12h")
    rows = whatif.rows(result)
    assert [r.current for r in rows] == [False, False, True, False]
    assert rows[2].cost_delta == "" and rows[0].cost_delta.startswith("+$")
    assert rows[0].changes and rows[0].changes[0].startswith("summarize → ")
    wide = render_plain_renderable(whatif_renderable([result], 120), 120)
    narrow = render_plain_renderable(whatif_renderable([result], 60), 60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert wide == golden(snapshot, "txt", "text")
    assert narrow == golden(snapshot, "txt", "narrow")
    assert render_whatif([result]) == golden(snapshot, "md", "markdown")
    chart = svg.whatif(result, "cost")
    assert chart.count('class="point') == len(result.scenarios)
    assert 'class="point current"' in chart
    assert "<polyline" in chart
    data = whatif.to_json(result)
    assert [s["value"] for s in data["scenarios"]] == pytest.approx([50 / 60, 2.0, 8.0, 12.0])


def test_with_value_changes_only_that_limit() -> None:
    compiled, _ = overnight()
    p = whatif.with_value(compiled.program, "budget", None)
    assert p.workflow.budget_usd is None
    assert p.workflow.deadline_h == compiled.program.workflow.deadline_h
    assert p.steps == compiled.program.steps
    assert Sweep("budget", (None,)).values == (None,)
