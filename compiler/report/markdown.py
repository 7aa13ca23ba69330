"""The report as GitHub-flavoured Markdown, for pull-request comments.

The summary (title, steps table, savings, constraints) is always visible; the
reasons per step and the assumptions fold into ``<details>`` blocks so that a
comment stays short in a review.
"""

from __future__ import annotations

from collections.abc import Sequence

from exo.compiler import figures
from exo.compiler.report import diff, whatif
from exo.compiler.report.diff import PlanDiff
from exo.compiler.report.facts import Report
from exo.compiler.report.whatif import SweepResult

CRITICAL = "★"


def cell(text: str) -> str:
    """Text safe inside a table cell (pipes escaped, no line breaks)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    tick = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{tick}{pad}{text}{pad}{tick}"


def title(report: Report) -> str:
    p = report.plan
    if p.status == "infeasible":
        return f"### exo plan {code(p.workflow)}: infeasible"
    return (
        f"### exo plan {code(p.workflow)}: {figures.money(p.expected_cost_usd)} in "
        f"{figures.hours(p.makespan_h)} ({p.status})"
    )


def summary_line(report: Report, *, solve_time: bool = True) -> str:
    p = report.plan
    facts = dict(report.assumptions)
    parts = [
        f"objective **{p.objective}**",
        f"deadline **{figures.hours(p.deadline_h) if p.deadline_h is not None else 'none'}**",
        f"budget **{figures.money(p.budget_usd) if p.budget_usd is not None else 'none'}**",
        f"confidence **{p.confidence:.0%}**",
        f"catalog {code(facts.get('catalog', 'unknown'))} "
        f"(prices {cell(facts.get('price snapshot', 'not dated'))})",
    ]
    if p.status == "feasible" and p.gap is not None:
        parts.append(f"gap **{figures.percent(p.gap)}**")
    if solve_time and p.solve_time_s is not None:
        parts.append(f"solved in {p.solve_time_s:.2f} s")
    return " · ".join(parts)


def steps_table(report: Report) -> list[str]:
    p = report.plan
    lines = [
        f"| step | tier | batch | replicas | start | time (expected / {p.confidence:.0%}) | cost |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for row in report.steps:
        s = row.plan
        name = f"**{cell(s.name)}**" + (f" {CRITICAL}" if s.on_critical_path else "")
        lines.append(
            f"| {name} | {cell(figures.tier(s))} | {figures.batch(s)} | {figures.replicas(s)} | "
            f"{figures.hours(s.start_h)} | {figures.hours(s.expected_duration_h)} / "
            f"{figures.hours(s.p_duration_h)} | {figures.money(s.expected_cost_usd)} |"
        )
    lines.append(
        f"| **total** | | | | | **{figures.hours(p.makespan_h)}** | "
        f"**{figures.money(p.expected_cost_usd)}** |"
    )
    return lines


def savings_line(report: Report) -> str:
    parts = []
    for s in report.savings:
        if s.cost_usd is None or s.saved_usd is None:
            parts.append(f"vs {s.label}: no such plan meets the limits")
        else:
            parts.append(
                f"vs {s.label}: **{figures.saving(s.saved_usd, s.saved_fraction)}** "
                f"({figures.money(s.cost_usd)} in {figures.hours(s.makespan_h)})"
            )
    return "**Against the baselines:** " + " · ".join(parts)


def constraint_lines(report: Report) -> list[str]:
    if not report.constraints:
        return ["- none set"]
    out = []
    for c in report.constraints:
        state = f"**{c.words}**" if c.state in ("binding", "shapes") else c.words
        line = f"- {cell(c.name)} {cell(c.limit)}: {state}"
        if c.used != "-":
            line += f", plan {cell(c.used)} ({cell(c.slack)})"
        if c.detail:
            line += f"; {cell(c.detail)}"
        out.append(line)
    return out


def why_lines(report: Report) -> list[str]:
    out = []
    for row in report.steps:
        w = row.why
        head = f"- **{cell(row.plan.name)}** ({cell(figures.step_label(row.plan))})"
        if w is None:
            out.append(head + ": options not known")
            continue
        out.append(f"{head}: {cell(w.reason)}")
        out += [f"  - {cell(figures.alternative(a, report.plan))}" for a in w.alternatives]
    return out


def bullet(line: str) -> str:
    """An explanation line as a list item; lines indented with ``- `` nest."""
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    if indent and stripped.startswith("- "):
        return "  " * max(1, indent // 2) + f"- {cell(stripped[2:])}"
    return f"- {cell(line)}"


def details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>"]


def render_markdown(report: Report, *, solve_time: bool = True) -> str:
    p = report.plan
    lines = [title(report), "", summary_line(report, solve_time=solve_time), ""]
    if report.feasible and report.steps:
        lines += steps_table(report)
        if any(r.plan.on_critical_path for r in report.steps):
            lines += ["", f"{CRITICAL} on the critical path"]
        about = [
            f"- **{cell(r.plan.name)}**: {cell(r.description)}"
            for r in report.steps
            if r.description is not None
        ]
        if about:
            lines += ["", "**Steps**", "", *about]
        lines += ["", savings_line(report), "", "**Constraints**", "", *constraint_lines(report)]
        if any(r.why is not None for r in report.steps):
            lines += ["", *details("Why each step runs where it does", why_lines(report))]
    if p.explanation:
        body = [bullet(e) for e in p.explanation]
        if p.status == "infeasible":
            lines += ["**Why no plan**", "", *body]
        else:
            lines += ["", *details("Solver notes", body)]
    facts = [f"- {topic}: {cell(text)}" for topic, text in report.assumptions]
    lines += ["", *details("Assumptions", facts)]
    return "\n".join(lines) + "\n"


def render_whatif(results: Sequence[SweepResult]) -> str:
    lines: list[str] = []
    for r in results:
        lines += [
            f"**{whatif.title(r).capitalize()}**",
            "",
            f"| {r.key} | status | cost | Δ cost | makespan | Δ time | changes |",
            "|--:|---|--:|--:|--:|--:|---|",
        ]
        for row in whatif.rows(r):
            label = f"**{row.label}** (now)" if row.current else row.label
            moved = "<br>".join(cell(c) for c in row.changes)
            lines.append(
                f"| {label} | {row.status} | {row.cost} | {row.cost_delta} | {row.makespan} | "
                f"{row.makespan_delta} | {moved} |"
            )
        lines.append("")
    return "\n".join(lines)


def render_diff(d: PlanDiff, *, unchanged: bool = False) -> str:
    """A ``diff`` code block (GitHub colours + and - lines) and the totals."""
    body: list[str] = []
    for s in d.steps:
        if s.action == "same" and not unchanged:
            continue
        if s.action == "add":
            body.append(f"+ {s.name}")
            body += [f"+     {c.field}: {c.new_text}" for c in s.changes]
        elif s.action == "remove":
            body.append(f"- {s.name}")
        elif s.action == "same":
            body.append(f"  {s.name}")
        else:
            body.append(f"! {s.name}")
            for c in s.changes:
                body.append(f"-     {c.field}: {c.old_text}")
                suffix = f" ({c.delta_text})" if c.delta_text else ""
                body.append(f"+     {c.field}: {c.new_text}{suffix}")
    if not body:
        body.append("  no step changes")
    lines = [
        f"**Plan diff** {code(d.old_label)} → {code(d.new_label)}: {diff.summary(d)}",
        "",
        "```diff",
        *body,
        "```",
    ]
    if d.totals:
        lines += ["", "| total | before | after | change |", "|---|--:|--:|--:|"]
        lines += [
            f"| {c.field} | {cell(c.old_text)} | {cell(c.new_text)} | {cell(c.delta_text)} |"
            for c in d.totals
        ]
    return "\n".join(lines) + "\n"
