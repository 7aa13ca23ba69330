"""Plan diff on fixture plans: per-step and total changes, the three formats, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from exo.compiler import figures
from exo.compiler.cli.plan import plan_json
from exo.compiler.diagnostics import CompileError
from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import optimize
from exo.compiler.report import diff as diffmod
from exo.compiler.report.markdown import render_diff
from exo.compiler.report.text import diff_renderable, render_plain_renderable

from .conftest import REPO
from .golden import golden

DATA = REPO / "tests" / "data" / "report"


def fixture_diff() -> diffmod.PlanDiff:
    old = diffmod.load_plan(DATA / "old.json")
    new = diffmod.load_plan(DATA / "new.json")
    return diffmod.diff_plans(old, new, "old.json", "new.json")


def test_steps_added_changed_removed() -> None:
    d = fixture_diff()
    actions = {s.name: s.action for s in d.steps}
    assert actions == {
        "summarize": "change",
        "index": "change",
        "evaluate": "add",
        "notify": "remove",
    }
    assert [s.name for s in d.steps] == ["summarize", "index", "evaluate", "notify"]
    summarize = next(s for s in d.steps if s.name == "summarize")
    fields = {c.field: (c.old, c.new) for c in summarize.changes}
    assert fields["tier"] == ("g5.xlarge (A10G x1) spot", "g6.xlarge (L4 x1) spot")
    assert fields["batch"] == (32, 64)
    assert fields["replicas"] == (4, 8)
    assert fields["time"] == (6.5, 3.35)
    assert fields["cost"] == (9.8, 10.0)
    assert "start" not in fields  # both start at 0
    index = next(s for s in d.steps if s.name == "index")
    assert [c.field for c in index.changes] == ["start"]
    totals = {c.field: c for c in d.totals}
    assert set(totals) == {"cost", "makespan", "deadline"}
    assert totals["cost"].delta_text == "-$1.75, -12.3%"
    assert diffmod.summary(d) == "1 to add, 2 to change, 1 to remove, 0 unchanged"
    assert d.changed


def test_differences_below_display_precision_are_not_changes() -> None:
    old = diffmod.load_plan(DATA / "old.json")
    steps = [
        s.model_copy(
            update={
                "expected_cost_usd": s.expected_cost_usd + 0.001,
                "p_duration_h": s.p_duration_h + 1 / 600,
            }
        )
        for s in old.steps
    ]
    new = old.model_copy(update={"steps": steps, "solve_time_s": 9.0})
    d = diffmod.diff_plans(old, new)
    assert not d.changed
    assert all(s.action == "same" for s in d.steps)
    assert "no changes" in render_plain_renderable(diff_renderable(d))


def test_diff_renderings(snapshot: SnapshotAssertion) -> None:
    d = fixture_diff()
    text = render_plain_renderable(diff_renderable(d), 100)
    assert "\x1b[" not in text
    assert text == golden(snapshot, "txt", "text")
    md = render_diff(d)
    assert md.count("```") == 2
    assert md == golden(snapshot, "md", "markdown")
    data = diffmod.to_json(d)
    assert data["summary"] == {"add": 1, "change": 2, "remove": 1, "same": 0}
    assert json.dumps(data, indent=2, sort_keys=True) == golden(snapshot, "json", "json")


def test_unchanged_steps_on_request() -> None:
    old = diffmod.load_plan(DATA / "old.json")
    d = diffmod.diff_plans(old, old)
    assert "index" not in render_diff(d)
    assert "  index" in render_diff(d, unchanged=True)


def test_a_saved_plan_round_trips(tmp_path: Path) -> None:
    compiled = compile_file(REPO / "examples" / "quickstart.exo")
    plan = optimize(compiled.program, compiled.catalog)
    path = tmp_path / "plan.json"
    path.write_text(plan_json(plan), encoding="utf-8")
    assert diffmod.load_plan(path) == plan
    # keys added by --what-if / --compare (or by newer versions) are ignored
    data = json.loads(path.read_text("utf-8"))
    data["what_if"] = []
    data["added_later"] = {"x": 1}
    path.write_text(json.dumps(data), encoding="utf-8")
    assert diffmod.load_plan(path) == plan


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("missing.json", "E001", "cannot read the plan file"),
        ("not_json.json", "E602", "invalid JSON at line 3, column 1"),
        ("bad_step.json", "E602", "steps.0.replicas"),
    ],
)
def test_bad_plan_files(name: str, code: str, words: str) -> None:
    with pytest.raises(CompileError) as info:
        diffmod.load_plan(DATA / name)
    (d,) = info.value.diagnostics
    assert d.code == code
    assert words in d.message


def test_a_shift_across_a_minute_boundary_is_not_a_change() -> None:
    old = diffmod.load_plan(DATA / "old.json")
    index = old.steps[1]
    a = old.model_copy(update={"steps": [index.model_copy(update={"start_h": 5 + 0.7 / 60})]})
    b = old.model_copy(update={"steps": [index.model_copy(update={"start_h": 5 + 1.1 / 60})]})
    assert (figures.hours(5 + 0.7 / 60), figures.hours(5 + 1.1 / 60)) == ("5h01m", "5h01m")
    c = old.model_copy(update={"steps": [index.model_copy(update={"start_h": 5 + 1.6 / 60})]})
    assert figures.hours(5 + 1.6 / 60) == "5h02m"
    assert diffmod.diff_plans(a, b).steps[0].action == "same"
    assert diffmod.diff_plans(b, c).steps[0].action == "same"  # 30 s apart, shown as 0m
    assert diffmod.diff_plans(a, c).steps[0].action == "change"  # 54 s apart: +1m


def test_a_v1_plan_rented_one_instance_per_replica_and_packing_shows() -> None:
    """Plans written before v2 have no ``instances``: they rented one per replica."""
    old = diffmod.load_plan(DATA / "old.json")
    summarize = old.step("summarize")
    assert summarize is not None and summarize.instances == summarize.replicas == 4
    packed = summarize.model_copy(
        update={"instance_type": "p4d.24xlarge", "replicas": 8, "instances": 1}
    )
    new = old.model_copy(
        update={"steps": [packed, *(s for s in old.steps if s.name != "summarize")]}
    )
    d = diffmod.diff_plans(old, new)
    (step,) = [s for s in d.steps if s.name == "summarize"]
    fields = {c.field: (c.old, c.new) for c in step.changes}
    assert fields["replicas"] == (4, 8) and fields["instances"] == (4, 1)
