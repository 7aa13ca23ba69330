"""The workflow DAG as Graphviz dot or Mermaid text (``exoc graph``).

Without a plan each step shows the hardware it may use; with one
(``exoc graph --plan``) it shows where the plan puts it: the tier, replicas
(and instances), batch size, start, duration at the plan's confidence (P) and
expected cost, with the critical path drawn bold, so that the DAG can be
shared as the plan.
"""

from __future__ import annotations

import json

from exo.compiler import figures
from exo.compiler.ir import Program, full_dag
from exo.compiler.plan import Plan, StepPlan


def _q(s: str) -> str:
    return json.dumps(s)


def _planned(step: StepPlan, confidence: float) -> list[str]:
    shape = figures.replicas_long(step)
    if step.batch_size is not None:
        shape += f", batch {step.batch_size}"
    return [
        figures.tier(step),
        shape,
        f"start {figures.hours(step.start_h)}, P {figures.hours(step.p_duration_h)} ({confidence:.0%})",
        f"{figures.money(step.expected_cost_usd)} expected",
    ]


def _label(program: Program, node: str, kind: str, plan: Plan | None) -> str:
    if kind == "dataset":
        d = program.datasets[node]
        return f"{node}\n{d.items:,} items" if d.items else node
    planned = plan.step(node) if plan is not None else None
    if plan is not None and planned is not None:
        return "\n".join([node, *_planned(planned, plan.confidence)])
    s = program.step(node)
    hw = ", ".join(s.accelerators) if s.accelerators else "cpu"
    return f"{node}\n[{hw}]"


def _critical(plan: Plan | None, node: str) -> bool:
    planned = plan.step(node) if plan is not None else None
    return planned is not None and planned.on_critical_path


def _tight(plan: Plan | None, a: str, b: str) -> bool:
    """An edge of the critical path: both ends on it and ``b`` starts as ``a`` ends."""
    pa = plan.step(a) if plan is not None else None
    pb = plan.step(b) if plan is not None else None
    if pa is None or pb is None or not (pa.on_critical_path and pb.on_critical_path):
        return False
    return abs(pb.start_h - (pa.start_h + pa.p_duration_h)) < 1e-6


def _title(plan: Plan) -> str:
    """``plan: $13.41 expected, 8h52m at 95% (optimal); bold: the critical path``."""
    return (
        f"plan: {figures.money(plan.expected_cost_usd)} expected, {figures.hours(plan.makespan_h)} "
        f"at {plan.confidence:.0%} ({plan.status}); bold: the critical path"
    )


def to_dot(program: Program, plan: Plan | None = None) -> str:
    g = full_dag(program)
    lines = [
        f"digraph {_q(program.workflow.name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
    ]
    if plan is not None:
        lines.append(f'  labelloc=t; fontname="Helvetica"; label={_q(_title(plan))};')
    for node in sorted(g.nodes):
        kind = g.nodes[node].get("kind", "step")
        shape = "cylinder" if kind == "dataset" else "box"
        style = ', style="rounded"' if kind == "step" else ""
        if _critical(plan, node):
            style = ', style="rounded,bold", penwidth=2'
        label = _label(program, node, kind, plan)
        lines.append(f"  {_q(node)} [shape={shape}{style}, label={_q(label)}];")
    for a, b, data in sorted(g.edges(data=True)):
        attrs = []
        if data.get("kind") == "after":
            attrs.append("style=dashed")
        if _tight(plan, a, b):
            attrs.append("penwidth=2")
        lines.append(f"  {_q(a)} -> {_q(b)}{' [' + ', '.join(attrs) + ']' if attrs else ''};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(program: Program, plan: Plan | None = None) -> str:
    g = full_dag(program)
    ids = {n: f"n{i}" for i, n in enumerate(sorted(g.nodes))}
    lines = ["flowchart LR"]
    if plan is not None:
        lines = ["---", f"title: {_q(_title(plan))}", "---", *lines]
    for node in sorted(g.nodes):
        kind = g.nodes[node].get("kind", "step")
        label = _label(program, node, kind, plan)
        text = label.replace('"', "#quot;").replace("\n", "<br/>")
        lines.append(
            f'  {ids[node]}[("{text}")]' if kind == "dataset" else f'  {ids[node]}["{text}"]'
        )
    critical = [ids[n] for n in sorted(g.nodes) if _critical(plan, n)]
    for a, b, data in sorted(g.edges(data=True)):
        arrow = "-.->" if data.get("kind") == "after" else "-->"
        if _tight(plan, a, b) and data.get("kind") != "after":
            arrow = "==>"  # Mermaid has no thick dotted arrow: `after` stays dotted
        lines.append(f"  {ids[a]} {arrow} {ids[b]}")
    if critical:
        lines.append("  classDef critical stroke-width:3px")
        lines.append(f"  class {','.join(critical)} critical")
    return "\n".join(lines) + "\n"
