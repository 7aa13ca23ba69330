"""The workflow DAG as Graphviz dot or Mermaid text (``exoc graph``)."""

from __future__ import annotations

import json

from exo.compiler.ir import Program, full_dag


def _q(s: str) -> str:
    return json.dumps(s)


def _label(program: Program, node: str, kind: str) -> str:
    if kind == "dataset":
        d = program.datasets[node]
        return f"{node}\n{d.items:,} items" if d.items else node
    s = program.step(node)
    hw = ", ".join(s.accelerators) if s.accelerators else "cpu"
    return f"{node}\n[{hw}]"


def to_dot(program: Program) -> str:
    g = full_dag(program)
    lines = [
        f"digraph {_q(program.workflow.name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
    ]
    for node in sorted(g.nodes):
        kind = g.nodes[node].get("kind", "step")
        shape = "cylinder" if kind == "dataset" else "box"
        style = ', style="rounded"' if kind == "step" else ""
        lines.append(
            f"  {_q(node)} [shape={shape}{style}, label={_q(_label(program, node, kind))}];"
        )
    for a, b, data in sorted(g.edges(data=True)):
        style = " [style=dashed]" if data.get("kind") == "after" else ""
        lines.append(f"  {_q(a)} -> {_q(b)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(program: Program) -> str:
    g = full_dag(program)
    ids = {n: f"n{i}" for i, n in enumerate(sorted(g.nodes))}
    lines = ["flowchart LR"]
    for node in sorted(g.nodes):
        kind = g.nodes[node].get("kind", "step")
        text = _label(program, node, kind).replace("\n", "<br/>").replace('"', "#quot;")
        lines.append(
            f'  {ids[node]}[("{text}")]' if kind == "dataset" else f'  {ids[node]}["{text}"]'
        )
    for a, b, data in sorted(g.edges(data=True)):
        arrow = "-.->" if data.get("kind") == "after" else "-->"
        lines.append(f"  {ids[a]} {arrow} {ids[b]}")
    return "\n".join(lines) + "\n"
