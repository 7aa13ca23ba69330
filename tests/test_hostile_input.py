"""Hostile catalog cells, workflow values and options: refused at the source, or inert.

The class of bug (issue 12): a catalog cell trusted as a GRES type put a line of
shell into every generated ``.sbatch``. The rule now: a value either cannot be
represented safely where it goes, and is a diagnostic at its source (catalog
cell with file/row/column, workflow attribute with line/column, option by
name), or it reaches every artifact as data. These tests hold both halves:

* hostile names in every name column of a catalog, and hostile env names,
  images, paths and long names in a workflow, are refused at their place;
* hostile values that are allowed (command arguments, env values, paths,
  URIs, odd but legal catalog names) go through the Slurm job script (run with
  bash), the Kubernetes entrypoint (run with a POSIX shell; every object
  validates strictly) and the local manifest, and arrive byte for byte, with
  nothing executed;
* a catalog built past the loader still cannot put a line into a job script.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from exo.backends.api import PlannedWorkflow
from exo.backends.kubernetes import KubernetesBackend, KubernetesOptions
from exo.backends.local import LocalBackend, LocalOptions
from exo.backends.registry import installed, resolve_options
from exo.backends.slurm import SlurmBackend, SlurmOptions
from exo.backends.slurm.options import is_sbatch_option
from exo.compiler.catalog import Catalog, CatalogError, InstanceType, parse_catalog
from exo.compiler.cli import app
from exo.compiler.diagnostics import CompileError, render_all_text
from exo.compiler.frontend import compile_file
from exo.compiler.names import CATALOG_NAME, catalog_name_problem

from .test_kubernetes_helpers import (
    all_objects,
    planned_from_file,
    run_pod,
    validation_error,
)

#: Values that must never change meaning on the way to a command.
HOSTILE = [
    "x\ntouch PWNED_newline #",
    "'; touch PWNED_quote; '",
    '"; touch PWNED_dquote; "',
    "$(touch PWNED_subshell)",
    "`touch PWNED_backtick`",
    "# not a comment",
    "two words  and\ttab",
    "non-ascii: é 中文 🚀",
    "\\back\\slash\\",
    "$HOME ${PATH} * ? [a] ~ ; | & > < !",
    "--gres=gpu:x:1",
    "%j %a %%",
    "\x1b[31mred\x1b[0m",
    "{braces} {output}",
    "",
    "y" * 5000,
]

#: Names that must never reach an artifact (catalog cells, env names, images).
HOSTILE_NAMES = [
    "x\ntouch /tmp/PWNED #",  # the issue's GRES type
    "x\rtouch PWNED",
    "a'b",
    'a"b',
    "$(touch PWNED)",
    "`touch PWNED`",
    "a#b",
    "two words",
    "é",
    "中文",
    "a;b",
    "a:b",
    "a,b",
    "-rf",
    "\x1b[31m",
    "a\u202eb",
    "n" * 65,
]

CATALOG_HEADER = (
    "instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "ondemand_usd_per_hour,spot_usd_per_hour,cloud,region\n"
)


def csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def exo_string(text: str) -> str:
    """``text`` as an exo string literal that means exactly ``text`` (no placeholders)."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("{", "{{")
        .replace("}", "}}")
    )
    return f'"{escaped}"'


# --------------------------------------------------------------------- refused at the source


@pytest.mark.parametrize("column", ["instance_type", "accelerator", "cloud", "region"])
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_catalog_names_are_e415_at_their_cell(column: str, name: str) -> None:
    cells = {
        "instance_type": "g1",
        "accelerator": "A100",
        "accelerator_count": "1",
        "vcpus": "8",
        "memory_gib": "64",
        "ondemand_usd_per_hour": "1.0",
        "spot_usd_per_hour": "",
        "cloud": "aws",
        "region": "r1",
    }
    cells[column] = name
    order = CATALOG_HEADER.strip().split(",")
    row = ",".join(csv_cell(cells[c]) for c in order)
    with pytest.raises(CatalogError) as info:
        parse_catalog(CATALOG_HEADER + row + "\n", name="hostile.csv")
    (d,) = info.value.diagnostics  # E415 only: no follow-on errors about the same cell
    assert d.code == "E415"
    assert d.span is not None and d.span.file == "hostile.csv" and d.span.line == 2
    # the column of the cell's opening quote on its line
    assert d.span.column == len(
        ",".join(csv_cell(cells[c]) for c in order[: order.index(column)])
    ) + (2 if column != "instance_type" else 1)
    assert f"column `{column}`" in d.message
    # the message quotes a short excerpt with control characters escaped
    assert "\n" not in d.message and "\r" not in d.message and "\x1b" not in d.message
    assert len(d.message) < 250
    rendered = render_all_text(info.value.diagnostics, info.value.sources).plain
    assert "\x1b" not in rendered and "\u202e" not in rendered
    assert not any(line.startswith("touch") for line in rendered.splitlines())


def test_the_issues_catalog_is_refused_with_file_row_and_column(tmp_path: Path) -> None:
    (tmp_path / "hostile.csv").write_text(
        CATALOG_HEADER.replace(",cloud,region", "") + 'gpu1,"x\ntouch /tmp/PWNED #",1,8,64,1.0,\n'
    )
    (tmp_path / "wf.exo").write_text(
        'workflow w {\n  deadline = 8h\n  catalog = "hostile.csv"\n}\n'
        'step s {\n  command = ["echo", "hi"]\n  accelerators = ["x\\ntouch /tmp/PWNED #"]\n'
        "  duration = 1h\n}\n"
    )
    result = CliRunner().invoke(
        app, ["compile", str(tmp_path / "wf.exo"), "-t", "slurm", "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 1, result.output
    assert "hostile.csv:2:6: error[E415]: column `accelerator`" in result.stderr
    assert "x\\ntouch /tmp/PWNED #" in result.stderr  # the excerpt, escaped
    assert not (tmp_path / "out").exists()


def test_a_catalog_built_past_the_loader_cannot_reach_a_job_script(tmp_path: Path) -> None:
    """Defence in depth: model_construct skips validation; emission still refuses."""
    planned = _planned(tmp_path)
    hostile = [
        InstanceType.model_construct(**{**i.model_dump(), "accelerator": "x\ntouch PWNED #"})
        if i.accelerator
        else i
        for i in planned.catalog.instances
    ]
    catalog = Catalog.model_construct(
        **{**planned.catalog.model_dump(), "instances": tuple(hostile)}
    )
    plan = planned.plan.model_copy(
        update={
            "steps": [
                s.model_copy(update={"accelerator": "x\ntouch PWNED #"}) if s.accelerator else s
                for s in planned.plan.steps
            ]
        }
    )
    bad = planned.model_copy(update={"catalog": catalog, "plan": plan})
    with pytest.raises(ValueError, match="#SBATCH"):
        SlurmBackend().emit(bad, SlurmOptions())
    with pytest.raises(Exception, match="catalog name"):
        InstanceType.model_validate(
            {**planned.catalog.instances[0].model_dump(), "accelerator": "a b"}
        )


@given(st.text(min_size=1, max_size=20))
@settings(max_examples=300, deadline=None)
def test_a_catalog_name_is_refused_or_safe_in_an_sbatch_line(name: str) -> None:
    """The property that closes the hole: every name the loader accepts is an sbatch
    option character set (as a GRES type), every other name is refused (E415)."""
    row = f"g1,{csv_cell(name)},1,8,64,1.0,,aws,r\n"
    if "\x00" in name:
        return  # the csv module refuses NUL itself
    try:
        catalog = parse_catalog(CATALOG_HEADER + row, name="c.csv")
    except CatalogError as e:
        accepted = name.strip() and catalog_name_problem(name.strip()) is None
        assert not accepted or any(d.code != "E415" for d in e.diagnostics)
        return
    (inst,) = catalog.instances
    assert inst.accelerator is not None and CATALOG_NAME.fullmatch(inst.accelerator)
    assert is_sbatch_option(f"--gres=gpu:{inst.accelerator.lower()}:1")


WORKFLOW_HEAD = "workflow w {\n  deadline = 8h\n  budget = $100\n}\n"


@pytest.mark.parametrize(
    ("attribute", "code"),
    [
        ('env { "A=B" = "v" }', "E207"),
        ('env { "A B" = "v" }', "E207"),
        ('env { "$(touch PWNED)" = "v" }', "E207"),
        ('env { MY-VAR = "v" }', "E207"),
        ('env { "é" = "v" }', "E207"),
        ('env { EXO_OUTPUT = "v" }', "E207"),
        ('env { exo_batch_index = "v" }', "E207"),
        ('secrets = ["HF TOKEN"]', "E207"),
        ('secrets = ["TOKEN\\n"]', "E207"),
        ('secrets = ["T"] env { T = "x" }', "E207"),
        ('image = "busybox; touch PWNED"', "E209"),
        ('image = "busybox\\nx"', "E209"),
        ('image = "bad image"', "E209"),
        ('image = "é:latest"', "E209"),
        ('output = "out\\ndir"', "E210"),
        ('output = "out\\tdir"', "E210"),
    ],
)
def test_hostile_workflow_values_are_refused_at_their_place(
    tmp_path: Path, attribute: str, code: str
) -> None:
    path = tmp_path / "wf.exo"
    path.write_text(
        WORKFLOW_HEAD
        + 'step s {\n  command = ["run"]\n  cpu = 1\n  duration = 1h\n  '
        + attribute
        + "\n}\n"
    )
    with pytest.raises(CompileError) as err:
        compile_file(path)
    found = [(d.code, d.span.line if d.span else None) for d in err.value.diagnostics]
    assert found == [(code, 9)], found
    text = render_all_text(err.value.diagnostics, err.value.sources).plain
    assert not any(line.startswith("touch") for line in text.splitlines())


def test_hostile_dataset_uris_catalog_paths_and_long_names(tmp_path: Path) -> None:
    path = tmp_path / "wf.exo"
    long = "s" * 129
    path.write_text(
        'workflow w {\n  deadline = 8h\n  catalog = "a\\nb.csv"\n}\n'
        'dataset d {\n  uri = "s3://b/\\u"\n  items = 1\n}\n'.replace("\\u", "x\\ny")
        + f'step {long} {{\n  command = ["run"]\n  cpu = 1\n  duration = 1h\n}}\n'
    )
    with pytest.raises(CompileError) as err:
        compile_file(path)
    found = sorted((d.code, d.span.line if d.span else None) for d in err.value.diagnostics)
    assert found == [("E208", 9), ("E210", 3), ("E210", 6)], found


@pytest.mark.parametrize("target", ["local", "slurm", "kubernetes"])
def test_one_rule_for_env_names_on_every_target(tmp_path: Path, target: str) -> None:
    """``env { "A=B" = "v" }`` was E901 on local, E702 elsewhere: now E207 everywhere,
    from the front end, before any backend sees the workflow."""
    path = tmp_path / "wf.exo"
    path.write_text(
        WORKFLOW_HEAD
        + 'step s {\n  command = ["run"]\n  cpu = 1\n  duration = 1h\n  env { "A=B" = "v" }\n}\n'
    )
    args = ["run", str(path), "-t", "local", "--state-dir", str(tmp_path / "state")]
    if target != "local":
        args = ["compile", str(path), "-t", target, "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "wf.exo:9:9: error[E207]: env name 'A=B' is not allowed" in result.stderr
    assert "E901" not in result.stderr and "E702" not in result.stderr


@pytest.mark.parametrize(
    ("backend", "options"),
    [
        ("slurm", {"extra_directives": ["--comment=$(touch PWNED)"]}),
        ("slurm", {"extra_directives": ["--x\n#SBATCH --y"]}),
        ("slurm", {"extra_directives": ["--comment='a'"]}),
        ("slurm", {"partition": "a;b"}),
        ("slurm", {"gres_types": {"A100": "a\nb"}}),
        ("slurm", {"signal_seconds": 70_000}),
        ("slurm", {"backoff_s": 1e400}),
        ("kubernetes", {"ttl_seconds_after_finished": 2**31}),
        ("kubernetes", {"deadline_margin": 1e400}),
        ("kubernetes", {"default_image": "busybox\ntouch PWNED"}),
        ("kubernetes", {"namespace": "a b"}),
        ("kubernetes", {"shell": "/bin/sh\n-c"}),
        ("local", {"backoff_s": -1}),
        ("local", {"backoff_s": 1e400}),
    ],
)
def test_hostile_options_are_e701(backend: str, options: dict[str, Any], tmp_path: Path) -> None:
    plugin = installed().backends[backend]
    resolved, problems = resolve_options(plugin, options, {})
    if resolved is not None:  # validated by the backend's check()
        problems = plugin.check(_planned(tmp_path), resolved)
    assert problems and {d.code for d in problems if d.severity == "error"} == {"E701"}, problems
    text = render_all_text(problems, {}).plain
    assert not any(line.startswith(("touch", "#SBATCH")) for line in text.splitlines())


# --------------------------------------------------------------------- inert where allowed

#: A catalog whose names use every character the rule allows.
ODD_CATALOG = (
    CATALOG_HEADER
    + "cpu.box_1+2,,0,8,32,0.30,0.10,on-prem,zone.1_a+b\n"
    + "gpu+x.1_a-b,A100-80GB,1,16,128,3.0,1.0,on-prem,zone.1_a+b\n"
)

PROBE = (
    "import json, os, sys; "
    "out = os.environ['EXO_OUTPUT']; "
    "env = [os.environ['V%d' % i] for i in range(len(sys.argv) - 1)]; "
    "open(os.path.join(out, 'seen.json'), 'w', encoding='utf-8')"
    ".write(json.dumps({'argv': sys.argv[1:], 'env': env}))"
)


def _workflow(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "odd.csv").write_text(ODD_CATALOG)
    env = "\n".join(f"    V{i} = {exo_string(v)}" for i, v in enumerate(HOSTILE))
    args = ", ".join(exo_string(v) for v in HOSTILE)
    path = tmp_path / "wf.exo"
    path.write_text(
        'workflow odd {\n  deadline = 8h\n  budget = $100\n  catalog = "odd.csv"\n}\n'
        'dataset d {\n  uri = "s3://b/it\'s $(touch PWNED_uri) `x` # é"\n  items = 2\n}\n'
        "step probe {\n  input = d\n"
        f'  command = ["python3", "-c", {exo_string(PROBE)}, {args}]\n'
        '  image = "registry.example.com:5000/team/probe:v1.2_3@sha256:0123abcd"\n'
        '  output = "out dir/it\'s $(touch PWNED_out) `x` # é"\n'
        "  cpu = 2\n  duration = 10m\n  spot = never\n"
        f"  env {{\n{env}\n  }}\n}}\n"
        'step gpu {\n  after = [probe]\n  command = ["true"]\n  accelerators = ["A100-80GB"]\n'
        "  duration = 10m\n}\n"
    )
    return path


def _planned(tmp_path: Path) -> PlannedWorkflow:
    return planned_from_file(_workflow(tmp_path))


def _check_seen(seen: dict[str, Any]) -> None:
    assert seen["argv"] == HOSTILE
    assert seen["env"] == HOSTILE


def test_allowed_hostile_values_reach_the_slurm_command_literally(tmp_path: Path) -> None:
    """The emitted job script, run with bash as Slurm would start it (array task 0)."""
    planned = _planned(tmp_path)
    out = tmp_path / "artifacts"
    for a in SlurmBackend().emit(planned, SlurmOptions(spot_partition="preempt")):
        f = out / a.path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(a.content, "utf-8")
    gpu = (out / "steps" / "gpu.sbatch").read_text()
    assert "#SBATCH --gres=gpu:a100-80gb:1\n" in gpu  # the odd names as they are
    assert "# plan: gpu+x.1_a-b (1 x A100-80GB)" in gpu
    work = tmp_path / "work dir $(x)"
    work.mkdir()
    result = subprocess.run(
        ["bash", str(out / "steps" / "probe.sbatch"), str(tmp_path / "run"), "run-1", str(work)],
        env={"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": "0", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    shard = work / "out dir" / "it's $(touch PWNED_out) `x` # é" / "shard-0"
    _check_seen(json.loads((shard / "seen.json").read_text("utf-8")))
    assert not list(tmp_path.rglob("PWNED*"))


def test_allowed_hostile_values_reach_the_pod_literally_and_validate(tmp_path: Path) -> None:
    planned = _planned(tmp_path)
    artifacts = {
        a.path: a.content
        for a in KubernetesBackend().emit(planned, KubernetesOptions(provider="karpenter"))
    }
    objects = all_objects(artifacts)
    for name, obj in objects:
        assert validation_error(obj, "1.33") is None, name
    job = next(o for n, o in objects if o["kind"] == "Job" and "probe" in o["metadata"]["name"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com:5000/team/probe:v1.2_3@sha256:0123abcd"
    argv, _ = run_pod(job, 0, root=tmp_path / "pod")
    assert argv[:3] == ["python3", "-c", PROBE]
    assert argv[3:] == HOSTILE
    env = {e["name"]: e.get("value") for e in container["env"]}
    # Kubernetes expands $(VAR) in values; the emitted value undoes that exactly.
    from .test_kubernetes_helpers import kubelet_expand

    assert [kubelet_expand(env[f"V{i}"], {}) for i in range(len(HOSTILE))] == HOSTILE
    assert not list(tmp_path.rglob("PWNED*"))


def test_allowed_hostile_values_reach_the_local_manifest_and_command(tmp_path: Path) -> None:
    planned = _planned(tmp_path)
    (manifest,) = LocalBackend().emit(planned, LocalOptions())
    graph = json.loads(manifest.content)
    probe = next(s for s in graph["steps"] if s["name"] == "probe")
    literal = [c.replace("{{", "{").replace("}}", "}") for c in probe["command"][3:]]
    assert literal == HOSTILE
    from .localrun import run

    wf = tmp_path / "wf.exo"
    report = run(planned.model_copy(update={"plan": planned.plan}), wf)
    assert report.state == "done", report
    out = tmp_path / "out dir" / "it's $(touch PWNED_out) `x` # é" / "shard-0"
    _check_seen(json.loads((out / "seen.json").read_text("utf-8")))
    assert not list(tmp_path.rglob("PWNED*"))


def test_diagnostics_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """Control characters in a source line or a value never reach the terminal raw,
    and a long line is cut around the error with the caret still under it."""
    path = tmp_path / "wf.exo"
    filler = "x" * 4000
    path.write_text(
        WORKFLOW_HEAD
        + 'step s {\n  command = ["run"]\n  cpu = 1\n  duration = 1h\n'
        + '  env { "\x1b[2J\u202e" = "v" }\n'
        + f'  output = "{filler}" image = "bad image"\n}}\n'
    )
    with pytest.raises(CompileError) as err:
        compile_file(path)
    text = render_all_text(err.value.diagnostics, err.value.sources).plain
    assert [d.code for d in err.value.diagnostics] == ["E207", "E209"]
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[2J\\u202e" in text  # the message escapes them
    lines = text.splitlines()
    shown = next(i for i, line in enumerate(lines) if line.startswith("10 | "))
    assert len(lines[shown]) < 140 and "…" in lines[shown]
    caret = lines[shown + 1]
    start = caret.index("^")
    assert lines[shown][start : start + len('"bad image"')] == '"bad image"'
