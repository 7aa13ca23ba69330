"""``exoc graph --plan``: the DAG as the plan (tier, replicas, batch size, P per step),
in dot (parsed by pydot, a real dot parser) and in Mermaid."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pydot
import pytest
from typer.testing import CliRunner

from exo.compiler import figures as fmt
from exo.compiler.cli import app
from exo.compiler.frontend import compile_file
from exo.compiler.graphviz import to_dot, to_mermaid
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan

from .conftest import REPO

EXAMPLE = REPO / "examples" / "overnight_classify.exo"
# pydot's parser uses pyparsing names that newer pyparsing deprecates (not ours to fix).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@cache
def planned() -> tuple[object, Plan]:
    compiled = compile_file(EXAMPLE)
    return compiled.program, optimize(compiled.program, compiled.catalog)


def graph(*args: str) -> str:
    result = CliRunner().invoke(app, ["graph", str(EXAMPLE), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_dot_plan_shows_every_step_as_planned() -> None:
    _, plan = planned()
    (g,) = pydot.graph_from_dot_data(graph("--plan"))
    nodes = {n.get_name().strip('"'): n for n in g.get_nodes()}
    for s in plan.steps:
        label = nodes[s.name].get_label().strip('"').replace("\\n", "\n")
        lines = label.splitlines()
        assert lines[0] == s.name
        assert fmt.tier(s) in lines  # tier: instance type, accelerator, spot or on-demand
        assert any(line.startswith(fmt.replicas(s)) for line in lines)
        if s.batch_size is not None:
            assert f"batch {s.batch_size}" in label
        assert f"P {fmt.hours(s.p_duration_h)} (95%)" in label
        assert fmt.money(s.expected_cost_usd) in label
        bold = "bold" in (nodes[s.name].get("style") or "")
        assert bold == s.on_critical_path
    assert "plan: $" in g.get("label")
    assert "inbox" in nodes  # datasets stay


def test_dot_without_plan_shows_the_candidate_hardware() -> None:
    text = graph()
    (g,) = pydot.graph_from_dot_data(text)
    labels = " ".join(n.get_label() or "" for n in g.get_nodes())
    assert "classify\\n[L4, A10G, A100]" in labels
    assert "replicas" not in labels and "plan:" not in text


def test_mermaid_plan() -> None:
    _, plan = planned()
    text = graph("--plan", "--format", "mermaid")
    assert text.startswith("---\ntitle: ") and "\nflowchart LR\n" in text
    for s in plan.steps:
        assert fmt.tier(s) in text and fmt.replicas(s) in text
    assert "==>" in text  # the critical path
    assert "classDef critical" in text


def test_instances_are_drawn_as_the_plan_gives_them() -> None:
    """Replicas packed onto fewer instances (cost model v2) are shown as such."""

    program, plan = planned()
    first = plan.steps[0]
    packed = first.model_copy(update={"replicas": 8, "instances": 2})
    assert fmt.replicas_long(packed) == "8 replicas on 2 instances"
    one = first.model_copy(update={"replicas": 1, "instances": 1})
    assert fmt.replicas_long(one) == "1 replica"
    other = plan.model_copy(update={"steps": [packed, *plan.steps[1:]]})
    assert "8 replicas on 2 instances" in to_dot(program, other)
    assert "8 replicas on 2 instances" in to_mermaid(program, other)


def test_an_infeasible_plan_exits_3(tmp_path: Path) -> None:
    wf = tmp_path / "wf.exo"
    wf.write_text(
        'workflow w {\n  deadline = 1m\n  catalog = "aws/us-east-1"\n}\n'
        "step s { cpu = 1 duration = 2h }\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["graph", str(wf), "--plan"])
    assert result.exit_code == 3
    assert "no feasible plan" in result.stderr


@pytest.mark.parametrize("fmt_name", ["dot", "mermaid"])
def test_the_plan_graph_is_deterministic(fmt_name: str) -> None:
    assert graph("--plan", "--format", fmt_name) == graph("--plan", "--format", fmt_name)
