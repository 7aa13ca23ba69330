"""The step attribute ``description``: lowered to the IR, checked, shown in the plan reports.

It was added by following docs/architecture.md ("Adding a step attribute, end to
end"), so these tests are also that walkthrough's check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from exo.compiler.attributes import STEP_ATTRIBUTES
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.diagnostics import CompileError, render_all_text
from exo.compiler.frontend import compile_file
from exo.compiler.names import MAX_DESCRIPTION
from exo.compiler.optimizer import optimize
from exo.compiler.report.facts import build_report
from exo.compiler.report.markdown import render_markdown
from exo.compiler.report.text import render_plain

from .golden import golden

HEAD = """param corpus = "wiki"
workflow w {
  deadline = 8h
  budget   = $100
}
"""


def write(tmp_path: Path, body: str) -> Path:
    entry = tmp_path / "flow.exo"
    entry.write_text(HEAD + body, "utf-8")
    return entry


def rendered_errors(path: Path) -> str:
    with pytest.raises(CompileError) as info:
        compile_file(path)
    text = render_all_text(info.value.diagnostics, info.value.sources).plain
    return text.replace(str(path), "flow.exo")


def test_the_attribute_table_lists_it_last() -> None:
    assert STEP_ATTRIBUTES.rows[-1].name == "description"
    assert STEP_ATTRIBUTES.rows[-1].field == "description"


def test_a_description_reaches_the_ir_with_params_placed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
step summarize {
  duration    = 1h
  description = "Summarise every {corpus} article (in {{braces}})"
}
step plain { duration = 1h }
""",
    )
    program = compile_file(path).program
    assert program.step("summarize").description == "Summarise every wiki article (in {braces})"
    assert program.step("plain").description is None
    # The IR's JSON has the key only where a description is written, so the IR of
    # every program without one is byte for byte what it was.
    steps = {s["name"]: s for s in json.loads(program.model_dump_json())["steps"]}
    assert steps["summarize"]["description"].startswith("Summarise every wiki")
    assert "description" not in steps["plain"]


def test_a_description_from_a_param_override(tmp_path: Path) -> None:
    path = write(tmp_path, 'step s {\n  duration = 1h\n  description = "Clean {corpus}"\n}\n')
    program = compile_file(path, {"corpus": "arxiv"}).program
    assert program.step("s").description == "Clean arxiv"


def test_bad_descriptions_are_reported_where_written(
    tmp_path: Path, snapshot: SnapshotAssertion
) -> None:
    long = "x" * (MAX_DESCRIPTION + 1)
    path = write(
        tmp_path,
        f"""
step a {{
  duration    = 1h
  description = "one\\ntwo"
}}
step b {{
  duration    = 1h
  description = "{long}"
}}
step c {{
  duration    = 1h
  description = summary
}}
step d {{
  duration    = 1h
  description = "about {{nothing}}"
}}
step e {{
  duration    = 1h
  descripton  = "typo"
}}
""",
    )
    text = rendered_errors(path)
    assert text == golden(snapshot, "txt")
    assert "error[E211]: 'description'" in text
    assert f"the limit is {MAX_DESCRIPTION}" in text
    assert "did you mean `description`?" in text


CATALOG = Catalog(
    name="test",
    snapshot="2026-01-01",
    default_spot_preemptions_per_hour=0.2,
    instances=(
        InstanceType(
            instance_type="small",
            accelerator=None,
            accelerator_count=0,
            vcpus=4,
            memory_gib=16.0,
            ondemand_usd_per_hour=1.0,
            spot_usd_per_hour=None,
            accelerator_memory_gib=None,
            spot_preemptions_per_hour=0.2,
        ),
    ),
)


def test_the_plan_reports_show_descriptions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
step summarize {
  duration    = 1h
  description = "Summarise every {corpus} article"
}
step plain {
  input    = summarize
  duration = 1h
}
""",
    )
    program = compile_file(path).program
    report = build_report(optimize(program, CATALOG), program, CATALOG)
    text = render_plain(report, 160, solve_time=False)
    markdown = render_markdown(report, solve_time=False)
    # terminal: a "steps" section between the table and the savings, described steps only
    lines = text.splitlines()
    at = lines.index("steps")
    assert lines[at + 1 : at + 4] == ["  summarize: Summarise every wiki article", "", "savings"]
    assert lines.index("steps") > next(i for i, line in enumerate(lines) if "total" in line)
    # Markdown: the same, under the steps table
    lines = markdown.splitlines()
    at = lines.index("**Steps**")
    assert lines[at + 1 : at + 4] == ["", "- **summarize**: Summarise every wiki article", ""]
    assert lines[at + 4].startswith("**Against the baselines:**")


def test_no_steps_section_without_descriptions(tmp_path: Path) -> None:
    path = write(tmp_path, "step s { duration = 1h }\n")
    program = compile_file(path).program
    report = build_report(optimize(program, CATALOG), program, CATALOG)
    assert "\nsteps\n" not in render_plain(report, 160, solve_time=False)
    assert "**Steps**" not in render_markdown(report, solve_time=False)
