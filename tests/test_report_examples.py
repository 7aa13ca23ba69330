"""The reports of every example: text (wide and narrow), Markdown, JSON and HTML.

Snapshots pin the exact output (solve time fixed, so they are deterministic);
the other assertions check that each report says what the plan says.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from exo.compiler import figures as fmt
from exo.compiler.cli.plan import plan_json
from exo.compiler.frontend import Compiled, compile_file
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan
from exo.compiler.report.facts import Report, build_report
from exo.compiler.report.html import render_html
from exo.compiler.report.markdown import render_markdown
from exo.compiler.report.text import render_plain

from .conftest import all_examples, example_id
from .golden import golden

EXAMPLES = all_examples()
NARROW = 64
#: The solve time every snapshot shows (the real one varies run to run).
FIXED_SOLVE_S = 0.5


@cache
def planned(path: Path) -> tuple[Compiled, Plan]:
    compiled = compile_file(path)
    plan = optimize(compiled.program, compiled.catalog)
    return compiled, plan.model_copy(update={"solve_time_s": FIXED_SOLVE_S})


def report_of(path: Path) -> Report:
    compiled, plan = planned(path)
    return build_report(plan, compiled.program, compiled.catalog)


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_json_report(path: Path, snapshot: SnapshotAssertion) -> None:
    _, plan = planned(path)
    text = plan_json(plan)
    data = json.loads(text)
    # DESIGN §4: every key present (more may be added)
    for key in (
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
    ):
        assert key in data
    assert text == golden(snapshot, "json")


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_text_report(path: Path, snapshot: SnapshotAssertion) -> None:
    rep = report_of(path)
    plan = rep.plan
    wide = render_plain(rep, 120)
    assert "\x1b[" not in wide
    assert f"solved in {FIXED_SOLVE_S:.2f} s" in wide
    assert plan.status == "optimal"
    # one table row per step, in plan order, with its cost
    rows = [line for line in wide.splitlines() if re.match(r"^ \S", line)]
    for s in plan.steps:
        row = next(r for r in rows if r.split()[0] == s.name)
        assert row.rstrip().endswith(fmt.money(s.expected_cost_usd))
        assert ("*" in row.split()[:2]) == s.on_critical_path
    assert fmt.money(plan.expected_cost_usd) in wide
    for s in rep.savings:
        base = plan.baselines[s.key]
        if base is None:  # e.g. no all-on-demand plan meets the deadline
            assert f"vs {s.label}: no such plan meets the limits" in wide
            continue
        assert s.saved_usd == pytest.approx(
            base.expected_cost_usd - (plan.expected_cost_usd or 0.0)
        )
        assert f"vs {s.label}: {fmt.saving(s.saved_usd, s.saved_fraction)}" in wide
    assert wide == golden(snapshot, "txt", "wide")
    narrow = render_plain(rep, NARROW)
    assert max(len(line) for line in narrow.splitlines()) <= NARROW
    for s in plan.steps:
        assert s.name in narrow
    assert narrow == golden(snapshot, "txt", "narrow")


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_markdown_report(path: Path, snapshot: SnapshotAssertion) -> None:
    rep = report_of(path)
    md = render_markdown(rep, solve_time=False)
    table = [line for line in md.splitlines() if line.startswith("| **")]
    assert len(table) == len(rep.plan.steps) + 1  # steps and the total
    assert md.count("<details>") == md.count("</details>")
    assert "solved in" not in md
    assert md == golden(snapshot, "md")


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_why_is_consistent_with_the_optimum(path: Path) -> None:
    """Without quotas a cheaper option that keeps every limit would contradict the optimum."""
    compiled, plan = planned(path)
    rep = report_of(path)
    quota = compiled.program.workflow.quota
    assert all(r.why is not None for r in rep.steps)
    for row in rep.steps:
        assert row.why is not None
        for alt in row.why.alternatives:
            assert alt.cost_delta_usd == pytest.approx(alt.option.cost - row.plan.expected_cost_usd)
            if alt.kind == "cheaper" and not quota.accelerators and quota.cpu is None:
                assert plan.objective == "time" or alt.misses_deadline or alt.over_budget


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_html_report_is_self_contained(path: Path) -> None:
    rep = report_of(path)
    page = render_html(rep, solve_time=False)
    assert page == render_html(rep, solve_time=False)  # deterministic
    assert page.startswith("<!DOCTYPE html>")
    # nothing is fetched: no URL attributes, no external scripts or styles
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    for chart in ("gantt", "costs", "dag"):
        assert f'class="chart {chart}"' in page
    assert page.count('class="gantt-row"') == len(rep.plan.steps)
    assert page.count('<g class="node"') == len(rep.plan.steps)
    assert page.count('class="edge"') == len(rep.edges)
    assert page.count('class="hatch"') == sum(1 for s in rep.plan.steps if s.spot)
    assert ('class="deadline"' in page) == (rep.plan.deadline_h is not None)
