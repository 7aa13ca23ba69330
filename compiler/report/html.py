"""The report as one self-contained HTML page (no network: inline CSS, SVG and a tiny script).

The page has the Gantt chart, the cost breakdown, the DAG, the steps table, the
reasons, the constraints, what-if curves and a plan diff when asked for, and the
assumptions. A Content-Security-Policy forbids every external load, so a page
that renders here renders the same on an air-gapped laptop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from exo.compiler import __version__, figures
from exo.compiler.report import diff as diffmod
from exo.compiler.report import svg, whatif
from exo.compiler.report.diff import PlanDiff
from exo.compiler.report.facts import Report
from exo.compiler.report.whatif import SweepResult


@cache
def _template() -> jinja2.Template:
    text = (
        resources.files("exo.compiler.report")
        .joinpath("templates", "report.html.j2")
        .read_text(encoding="utf-8")
    )
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return env.from_string(text)


def _cards(report: Report) -> dict[str, Any]:
    p = report.plan
    budget_note = deadline_note = ""
    if p.budget_usd is not None and p.expected_cost_usd is not None:
        budget_note = f"budget {figures.money(p.budget_usd)}, {figures.money(p.budget_usd - p.expected_cost_usd)} to spare"
    if p.deadline_h is not None and p.makespan_h is not None:
        deadline_note = f"deadline {figures.hours(p.deadline_h)}, {figures.hours(p.deadline_h - p.makespan_h)} to spare"
    cards = []
    for s in report.savings:
        if s.saved_usd is None or s.cost_usd is None:
            cards.append(
                {
                    "label": f"saved vs {s.label}",
                    "saved": "-",
                    "note": "no such plan meets the limits",
                }
            )
        elif s.saved_usd < 0:  # any amount more reads as more than $0.00
            frac = figures.percent(-s.saved_fraction) if s.saved_fraction is not None else "-"
            cards.append(
                {
                    "label": f"extra vs {s.label}",
                    "saved": figures.money(-s.saved_usd),
                    "note": f"{frac} above {figures.money(s.cost_usd)} ({figures.hours(s.makespan_h)})",
                }
            )
        else:
            cards.append(
                {
                    "label": f"saved vs {s.label}",
                    "saved": figures.money(max(s.saved_usd, 0.0)),
                    "note": f"{figures.percent(s.saved_fraction)} of {figures.money(s.cost_usd)} "
                    f"({figures.hours(s.makespan_h)})",
                }
            )
    return {"budget_note": budget_note, "deadline_note": deadline_note, "savings": cards}


def _rows(report: Report) -> list[dict[str, Any]]:
    out = []
    for r in report.steps:
        s = r.plan
        out.append(
            {
                "name": s.name,
                "critical": s.on_critical_path,
                "tier": figures.tier(s),
                "batch": figures.batch(s),
                "replicas": figures.replicas(s),
                "instances": s.instances,
                "start": figures.hours(s.start_h),
                "expected": figures.hours(s.expected_duration_h),
                "p": figures.hours(s.p_duration_h),
                "price": figures.money(s.price_usd_per_hour) if s.price_usd_per_hour else "-",
                "cost": figures.money(s.expected_cost_usd),
            }
        )
    return out


def _why(report: Report) -> list[dict[str, Any]]:
    out = []
    for r in report.steps:
        if r.why is None:
            continue
        out.append(
            {
                "name": r.plan.name,
                "label": figures.step_label(r.plan),
                "reason": r.why.reason,
                "alternatives": [figures.alternative(a, report.plan) for a in r.why.alternatives],
            }
        )
    return out


def _whatif(results: Sequence[SweepResult]) -> list[dict[str, Any]]:
    return [
        {
            "key": r.key,
            "cost_chart": Markup(svg.whatif(r, "cost")),
            "time_chart": Markup(svg.whatif(r, "makespan")),
            "rows": whatif.rows(r),
        }
        for r in results
    ]


def _diff(d: PlanDiff | None) -> dict[str, Any]:
    if d is None:
        return {"diff": None, "diff_steps": [], "diff_totals": [], "diff_summary": ""}
    steps = []
    for s in d.steps:
        if s.action == "same":
            continue
        if s.action == "add":
            lines = [f"{c.field}: {c.new_text}" for c in s.changes]
        else:
            lines = [f"{c.field}: {diffmod.change_text(c)}" for c in s.changes]
        steps.append(
            {"action": s.action, "sign": diffmod.SIGN[s.action], "name": s.name, "changes": lines}
        )
    totals = [{"field": c.field, "text": diffmod.change_text(c)} for c in d.totals]
    return {
        "diff": d,
        "diff_steps": steps,
        "diff_totals": totals,
        "diff_summary": diffmod.summary(d),
    }


def _explain_line(line: str) -> tuple[bool, str]:
    """``(nested, text)``: explanation lines indented with ``- `` are sub-items."""
    stripped = line.strip()
    if line.startswith(" ") and stripped.startswith("- "):
        return True, stripped[2:]
    return False, stripped


def render_html(
    report: Report,
    *,
    what_if: Sequence[SweepResult] = (),
    compare: PlanDiff | None = None,
    solve_time: bool = True,
    simulation: Mapping[str, Any] | None = None,
    actuals: Mapping[str, Any] | None = None,
) -> str:
    """The whole page as one string (deterministic when ``solve_time`` is off)."""
    p = report.plan
    status = p.status + (
        f", gap {figures.percent(p.gap)}" if p.status == "feasible" and p.gap else ""
    )
    feasible = report.feasible and bool(report.steps)
    colours = svg.tier_colours([r.plan for r in report.steps])
    context: dict[str, Any] = {
        "version": __version__,
        "plan": p,
        "status": status,
        "feasible": feasible,
        "facts": dict(report.assumptions),
        "assumptions": report.assumptions,
        "deadline": figures.hours(p.deadline_h) if p.deadline_h is not None else "none",
        "budget": figures.money(p.budget_usd) if p.budget_usd is not None else "none",
        "confidence": f"{p.confidence:.0%}",
        "solve_time": f"{p.solve_time_s:.2f} s"
        if solve_time and p.solve_time_s is not None
        else "",
        "cost": figures.money(p.expected_cost_usd),
        "makespan": figures.hours(p.makespan_h),
        "colours": sorted(colours.items(), key=lambda kv: list(colours).index(kv[0])),
        "gantt": Markup(svg.gantt(report)) if feasible else "",
        "costs": Markup(svg.costs(report)) if feasible else "",
        "dag": Markup(svg.dag(report)) if feasible and report.dag_known else "",
        "rows": _rows(report),
        "why": _why(report),
        "constraints": report.constraints,
        "whatif": _whatif(what_if),
        "explanation": [_explain_line(line) for line in p.explanation],
        **_cards(report),
        **_diff(compare),
        "simulation": simulation,
        "actuals": actuals,
    }
    return _template().render(context)
