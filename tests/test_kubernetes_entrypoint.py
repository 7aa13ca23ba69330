"""Inside the pod: the entrypoint fills placeholders exactly as the local runner does.

Each test takes an emitted Job, reproduces what Kubernetes does before the
container starts (downward-API values, ``$(VAR)`` expansion; see
``test_kubernetes_helpers``) and runs the Job's real entrypoint under a real
POSIX shell, then compares the program's arguments and ``EXO_*`` environment
with :func:`exo.backends.api.expand_command` / ``shard_environment``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exo.backends.api import (
    PlannedWorkflow,
    expand,
    expand_command,
    micro_batch_size,
    runtime_values,
    shard_count,
    shard_environment,
    shards,
)
from exo.backends.kubernetes import KubernetesOptions
from exo.backends.kubernetes.entrypoint import Literal, choose_opener, kubelet_escape, tokens
from exo.backends.kubernetes.resolve import POD_CHECKPOINT
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import (
    RUNTIME_PLACEHOLDERS,
    Dataset,
    InputRef,
    Program,
    Step,
    Throughput,
    Workflow,
)
from exo.compiler.plan import Plan, StepPlan

from .conftest import SPEC
from .test_kubernetes_helpers import (
    BACKEND,
    SAMPLE_WORKFLOW_NAME,
    embedded_jobs,
    emit,
    jobs,
    kubelet_expand,
    on_host,
    planned_from_file,
    run_pod,
    yaml_documents,
)

SPEC_EXAMPLES = [
    SPEC / "examples" / "overnight_llm.exo",
    SPEC / "examples" / "finetune_synthetic.exo",
]


def expected(
    pw: PlannedWorkflow,
    step_name: str,
    index: int,
    run: str,
    attempt: int,
    job: Mapping[str, Any],
    root: Path,
    storage: str | None = None,
) -> dict[str, str]:
    """The runtime values of one shard, computed from the IR alone.

    Outputs are absolute (paths or URIs); each shard writes its own
    ``shard-<index>`` under its step's output (a path: staged first, then
    renamed). Checkpoints are under the storage mount ``storage``, or the pod's
    own folder (POD_CHECKPOINT) without one. Pod volumes are under ``root``.
    """
    step = pw.program.step(step_name)
    sp = pw.step_plan(step_name)

    def output_of(s: Step) -> str:
        return expand(s.output, {"run_id": run, "step": s.name}) if s.output else ""

    if step.input is None:
        input_value = ""
    elif step.input.kind == "dataset":
        input_value = pw.program.datasets[step.input.name].uri or ""
    else:
        input_value = output_of(pw.program.step(step.input.name))
    out = output_of(step)
    if not out:
        output = ""
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", out):
        output = f"{out.rstrip('/')}/shard-{index}"
    else:
        output = on_host(f"{out.rstrip('/')}/.exo-staging/shard-{index}", job, root)
    if storage is None:
        checkpoint = on_host(POD_CHECKPOINT, job, root)
    else:
        checkpoint = on_host(f"{storage}/{run}/checkpoints/{step.name}/shard-{index}", job, root)
    return runtime_values(
        step=step.name,
        shard=shards(step, sp)[index],
        shard_count=shard_count(step, sp),
        batch_size=micro_batch_size(step, sp),
        run_id=run,
        attempt=attempt,
        input=on_host(input_value, job, root),
        output=output,
        checkpoint=checkpoint,
    )


@pytest.mark.parametrize("path", SPEC_EXAMPLES, ids=lambda p: p.name)
def test_every_shard_sees_what_the_local_runner_would_give_it(path: Path, tmp_path: Path) -> None:
    pw = planned_from_file(path)
    artifacts = emit(pw, run_id="r-7")
    standalone = jobs(artifacts)
    embedded = {
        j["metadata"]["annotations"]["exo.dev/step-name"]: j
        for j in embedded_jobs(yaml_documents(artifacts)["workflow.yaml"]).values()
    }
    for step in pw.program.steps:
        count = standalone[step.name]["spec"]["completions"]
        for index in sorted({0, count // 2, count - 1}):
            for job, run in (
                (standalone[step.name], "r-7"),
                (embedded[step.name], SAMPLE_WORKFLOW_NAME),
            ):
                argv, env = run_pod(job, index, failures=1, ignored=2, root=tmp_path)
                values = expected(pw, step.name, index, run, 4, job, tmp_path)
                assert argv == expand_command(step.command, values), (step.name, index)
                want = shard_environment(values)
                assert {k: env[k] for k in want} == want, (step.name, index)


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_entrypoint_runs_under_common_shells(shell: str, tmp_path: Path) -> None:
    pw = planned_from_file(SPEC_EXAMPLES[0])
    job = jobs(emit(pw))["summarize"]
    count = job["spec"]["completions"]
    assert count == job["spec"]["parallelism"] == pw.step_plan("summarize").replicas
    items = pw.program.step("summarize").items or 0
    argv, env = run_pod(job, count - 1, shell=shell, root=tmp_path)
    assert argv[argv.index("--shard") + 1] == str(count - 1)
    assert env["EXO_BATCH_START"] == str(items * (count - 1) // count)
    assert env["EXO_BATCH_END"] == str(items)
    assert env["EXO_SHARD_COUNT"] == str(count)
    assert env["EXO_ATTEMPT"] == "1"


# --- any command, any shard ---------------------------------------------------------------

_PIECES = st.one_of(
    st.sampled_from([f"{{{p}}}" for p in RUNTIME_PLACEHOLDERS]),
    st.sampled_from(
        [
            "{{",
            "}}",
            "{",
            "}",
            "$",
            "$$",
            "$(",
            "$(HOME)",
            "$(EXO_RUN_ID)",
            "{exo:",
            "{exo:step}",
            "\\",
            "'",
            '"',
            "`",
            "*",
            "?",
            " ",
            "\n",
            "-",
            "{nope}",
            ";",
            "|",
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=4),
)
_ARG = st.lists(_PIECES, max_size=6).map("".join)


def single_step(
    command: list[str], items: int, batch: int | None, replicas: int, output: str
) -> PlannedWorkflow:
    step = Step(
        name="s",
        input=InputRef(kind="dataset", name="d"),
        items=items,
        output=output,
        image="busybox",
        command=tuple(command),
        cpu=1,
        throughput=Throughput(flat={"cpu": 10.0}),
        retries=1,
    )
    catalog = Catalog(
        name="test",
        default_spot_preemptions_per_hour=0.1,
        instances=(
            InstanceType(
                instance_type="c1",
                accelerator=None,
                accelerator_count=0,
                vcpus=4,
                memory_gib=8,
                ondemand_usd_per_hour=0.2,
                spot_usd_per_hour=None,
                spot_preemptions_per_hour=0.0,
            ),
        ),
    )
    sp = StepPlan(
        name="s",
        instance_type="c1",
        accelerator=None,
        accelerator_count=0,
        spot=False,
        batch_size=batch,
        replicas=replicas,
        start_h=0.0,
        expected_duration_h=1.0,
        p_duration_h=1.0,
        expected_cost_usd=0.2,
    )
    plan = Plan(
        workflow="w",
        objective="cost",
        status="optimal",
        deadline_h=None,
        budget_usd=None,
        confidence=0.95,
        expected_cost_usd=0.2,
        makespan_h=1.0,
        lower_bound_usd=0.2,
        steps=[sp],
    )
    program = Program(
        workflow=Workflow(name="w"),
        datasets={"d": Dataset(name="d", uri="s3://in/{x}$(HOME)", items=items)},
        steps=(step,),
    )
    return PlannedWorkflow(program=program, plan=plan, catalog=catalog, base_dir=".")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    command=st.lists(_ARG, min_size=1, max_size=4),
    items=st.integers(0, 5000),
    batch=st.one_of(st.none(), st.integers(1, 700)),
    replicas=st.integers(1, 9),
    # a path on the storage volume (staged, then renamed) or URIs (written in place)
    output=st.sampled_from(["s3://out/{run_id}/", "/data/$(x)/{step}", "gs://o/{{lit}}-$$"]),
    pick=st.floats(0, 1),
    failures=st.integers(0, 3),
    ignored=st.integers(0, 3),
)
def test_any_command_is_filled_like_expand(
    command: list[str],
    items: int,
    batch: int | None,
    replicas: int,
    output: str,
    pick: float,
    failures: int,
    ignored: int,
    tmp_path: Path,
) -> None:
    pw = single_step(command, items, batch, replicas, output)
    storage = {"storage_pvc": "vol", "storage_mount": "/data"}
    assert not BACKEND.check(pw, KubernetesOptions(**storage))
    job = jobs(emit(pw, run_id="run-1", **storage))["s"]
    count = job["spec"]["completions"]
    index = min(count - 1, int(pick * count))
    argv, env = run_pod(job, index, failures=failures, ignored=ignored, root=tmp_path)
    values = expected(pw, "s", index, "run-1", 1 + failures + ignored, job, tmp_path, "/data")
    assert argv == expand_command(command, values)
    want = shard_environment(values)
    assert {k: env[k] for k in want} == want


# --- the pieces ---------------------------------------------------------------------------


@given(st.text(st.sampled_from("$()ab{}"), max_size=12))
def test_kubelet_escape_round_trips(text: str) -> None:
    assert kubelet_expand(kubelet_escape(text), {"a": "X", "ab": "Y", "HOME": "/home/u"}) == text


def test_kubelet_escape_leaves_plain_dollars_alone() -> None:
    assert kubelet_escape("cost $5 ${x} $") == "cost $5 ${x} $"
    assert kubelet_escape("$(x) $$") == "$$(x) $$$"


@given(st.lists(_ARG, max_size=4))
def test_opener_never_occurs_in_literal_text(command: list[str]) -> None:
    opener = choose_opener(command)
    for arg in command:
        for t in tokens(arg):
            assert not isinstance(t, Literal) or opener not in t.text


def test_tokens_follow_expand() -> None:
    values = {p: f"<{p}>" for p in RUNTIME_PLACEHOLDERS}
    for template in [
        "a{{b}}c",
        "{batch_index}{{batch_index}}",
        "{nope}{step}}}",
        "}{",
        "{{{output}}}",
    ]:
        parts = tokens(template)
        assert all(not isinstance(t, Literal) or t.text for t in parts)
        rebuilt = "".join(t.text if isinstance(t, Literal) else values[t.name] for t in parts)
        assert rebuilt == expand(template, values)


def test_yaml_line_break_characters_survive_serialisation() -> None:
    """YAML 1.1 folds NEL/LS/PS/CR in plain, single-quoted and literal scalars."""
    import yaml

    from exo.backends.kubernetes.serialize import to_yaml

    for value in ["\x85", "a\u2028b", "c\u2029d", "x\r\ny", "multi\nline", "plain"]:
        assert yaml.safe_load(to_yaml({"arg": value}))["arg"] == value
