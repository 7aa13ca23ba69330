"""The Slurm backend on a real cluster: slurmctld + slurmd + munge on this machine.

``tests/slurm/cluster.sh up`` starts a private single-node cluster (CI runs it
before the tests). These tests use it, or start it themselves when they can;
without one they are skipped with the reason, and with ``EXO_REQUIRE_SLURM=1``
(set in CI) that skip is a failure.

Every run goes through the real path: the emitted ``submit.sh`` calls ``sbatch``,
the generated job scripts run the shards, ``squeue`` is polled. Commands of the
examples are swapped for a small probe script that records what it saw.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from exo.backends.api import (
    ENVIRONMENT,
    PlannedWorkflow,
    RunContext,
    RunReport,
    expand,
    shard_count,
)
from exo.backends.conformance_run import ExecutionConformance, ProcessDriver, ShardDriver
from exo.backends.runtime import actuals, ledger
from exo.backends.slurm import SlurmBackend, SlurmOptions
from exo.backends.slurm import runner as slurm_runner
from exo.backends.slurm.jobs import build
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import Dataset, InputRef, Program, Step, Throughput, Workflow
from exo.compiler.pipeline import plan_for
from exo.compiler.plan import Plan, StepPlan

from .conftest import REPO, SPEC, all_examples, example_id

pytestmark = pytest.mark.slurm

CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
REQUIRED = os.environ.get("EXO_REQUIRE_SLURM") == "1"
OPTIONS = SlurmOptions(spot_partition="preempt", poll_s=1, backoff_s=0.2, backoff_max_s=1)


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"no Slurm cluster, and EXO_REQUIRE_SLURM=1: {reason}")
    pytest.skip(f"no Slurm cluster: {reason}")


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment for Slurm commands (SLURM_CONF of the private cluster)."""
    bash = shutil.which("bash")
    if bash is None:
        _unavailable("bash is not installed")
        raise AssertionError("unreachable")
    started = False
    status = subprocess.run([bash, str(CLUSTER_SH), "status"], capture_output=True, check=False)
    if status.returncode != 0:
        if shutil.which("slurmctld") is None and not REQUIRED:
            _unavailable(
                "slurm-wlm is not installed; `sudo tests/slurm/cluster.sh up` installs and "
                "starts a private single-node cluster"
            )
        if os.geteuid() != 0:
            _unavailable("the private cluster is not running and starting it needs root")
        up = subprocess.run(
            [bash, str(CLUSTER_SH), "up"], capture_output=True, text=True, timeout=900, check=False
        )
        if up.returncode != 0:
            _unavailable("tests/slurm/cluster.sh up failed: " + up.stderr.strip()[-2000:])
        started = True
    out = subprocess.run(
        [bash, str(CLUSTER_SH), "env"], capture_output=True, text=True, check=True
    ).stdout
    conf = out.strip().removeprefix("export SLURM_CONF=").strip("'")
    env = {**os.environ, "SLURM_CONF": conf}
    yield env
    if started:
        subprocess.run([bash, str(CLUSTER_SH), "down"], capture_output=True, check=False)


def context(workflow_file: Path, env: dict[str, str], **extra: str) -> RunContext:
    return RunContext(
        workflow_file=str(workflow_file),
        state_dir=str(workflow_file.parent / ".exo"),
        progress="none",
        environ={**env, **extra},
    )


def squeue(env: dict[str, str], job: str) -> list[list[str]]:
    out = subprocess.run(
        ["squeue", "-h", "-r", f"--jobs={job}", "-o", "%i|%K|%T"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# --- a probe instead of the examples' commands ------------------------------------------------

#: Records the shard it ran as, what it saw, when, and which input shards existed.
PROBE = r"""
set -eu
out=$6
{
  printf 'step=%s\nindex=%s\nstart=%s\nend=%s\nattempt=%s\nrun=%s\n' "$1" "$2" "$3" "$4" "$7" "$8"
  printf 'env=%s,%s,%s,%s,%s,%s\n' "$EXO_STEP" "$EXO_BATCH_INDEX" "$EXO_BATCH_START" \
      "$EXO_BATCH_END" "$EXO_ATTEMPT" "$EXO_RUN_ID"
  printf 'began=%s\n' "$(date +%s.%N)"
  if [ -d "$5" ]; then printf 'inputs=%s\n' "$(ls "$5" | tr '\n' ' ')"; fi
} >"$out/probe.txt"
sleep 0.1
printf 'ended=%s\n' "$(date +%s.%N)" >>"$out/probe.txt"
"""
PROBE_COMMAND = (
    "bash",
    "-c",
    PROBE,
    "probe",
    "{step}",
    "{batch_index}",
    "{batch_start}",
    "{batch_end}",
    "{input}",
    "{output}",
    "{attempt}",
    "{run_id}",
)


def probe_record(shard_dir: Path) -> dict[str, str]:
    lines = (shard_dir / "probe.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def shrink(planned: PlannedWorkflow) -> PlannedWorkflow:
    """The probe instead of each command, and at most 2 shards per step."""
    steps = []
    for step in planned.program.steps:
        sp = planned.step_plan(step.name)
        items = step.items
        if items:
            items = min(items, sp.batch_size + 1) if sp.batch_size else min(items, 2)
        output = step.output
        if output and output.startswith("/"):
            output = f"out/{step.name}"
        steps.append(
            step.model_copy(update={"command": PROBE_COMMAND, "items": items, "output": output})
        )
    program = planned.program.model_copy(update={"steps": tuple(steps)})
    return planned.model_copy(update={"program": program})


def copy_example(path: Path, tmp: Path) -> Path:
    src_root = SPEC / "examples" if path.is_relative_to(SPEC) else REPO / "examples"
    dest_root = tmp / "project"
    shutil.copytree(src_root, dest_root, dirs_exist_ok=True)
    return dest_root / path.relative_to(src_root)


def check_outputs(
    planned: PlannedWorkflow, report: RunReport, workflow_file: Path
) -> dict[str, list[dict[str, str]]]:
    """Every shard published exactly once, with the right range and env: by attempt 1, or for
    a spot step by a later attempt when the cluster requeued it (its ``preempt`` partition
    yields to on-demand jobs of the other runs sharing the one node)."""
    assert report.run_id is not None
    run_dir = workflow_file.parent / ".exo"
    (root,) = list((run_dir / "slurm").iterdir())
    run = root / report.run_id
    records: dict[str, list[dict[str, str]]] = {}
    for job in build(planned, OPTIONS):
        out = slurm_runner.output_path(job, run, workflow_file.parent, report.run_id)
        step = planned.program.step(job.step)
        n = shard_count(step, planned.step_plan(job.step))
        assert n == job.shards
        published = sorted(p.name for p in out.iterdir() if p.name.startswith("shard-"))
        assert published == sorted(f"shard-{i}" for i in range(n)), (job.step, published)
        staging = out / ".exo-staging"
        assert not staging.exists() or not any(staging.iterdir())
        spot = planned.step_plan(job.step).spot
        recs = []
        for i in range(n):
            rec = probe_record(out / f"shard-{i}")
            assert (rec["step"], rec["index"], rec["run"]) == (job.step, str(i), report.run_id)
            assert rec["attempt"] == "1" or (spot and int(rec["attempt"]) > 1), rec
            assert rec["env"] == ",".join(
                [job.step, str(i), rec["start"], rec["end"], rec["attempt"], report.run_id]
            )
            recs.append(rec)
        records[job.step] = recs
    return records


@pytest.mark.parametrize("with_examples", [all_examples()], ids=["all"])
def test_examples_run_in_dependency_order_with_every_shard_once(
    with_examples: list[Path], slurm_env: dict[str, str], tmp_path: Path
) -> None:
    """All examples at once (each its own run) on the cluster, to keep the suite short."""
    runs: list[tuple[Path, Path, PlannedWorkflow]] = []
    for i, path in enumerate(with_examples):
        copy = copy_example(path, tmp_path / f"ex{i}")
        planned, _ = plan_for(copy, {})
        runs.append((path, copy, shrink(planned)))
    secrets = {s: "dummy-value" for _, _, p in runs for st in p.program.steps for s in st.secrets}
    backend = SlurmBackend()
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [
            pool.submit(backend.run, planned, OPTIONS, context(copy, slurm_env, **secrets))
            for _, copy, planned in runs
        ]
        reports = [f.result(timeout=600) for f in futures]
    for (path, copy, planned), report in zip(runs, reports, strict=True):
        name = example_id(path)
        assert report.state == "done", (name, report)
        assert report.exit_code == 0
        assert all(s.state == "done" and s.retries == 0 for s in report.steps), name
        records = check_outputs(planned, report, copy)
        for step in planned.program.steps:
            began = min(float(r["began"]) for r in records[step.name])
            for need in step.predecessors():
                ended = max(float(r["ended"]) for r in records[need])
                assert began >= ended, f"{name}: {step.name} started before {need} ended"
            if step.input is not None and step.input.kind == "step":
                n = len(records[step.input.name])
                expected = " ".join(sorted(f"shard-{i}" for i in range(n)))
                for r in records[step.name]:
                    assert r["inputs"].split() == expected.split(), name


# --- hand-built plans -------------------------------------------------------------------------


def _catalog() -> Catalog:
    return Catalog(
        name="test",
        default_spot_preemptions_per_hour=0.1,
        instances=(
            InstanceType(
                instance_type="cpu2",
                accelerator=None,
                accelerator_count=0,
                vcpus=2,
                memory_gib=4,
                ondemand_usd_per_hour=0.1,
                spot_usd_per_hour=0.03,
                spot_preemptions_per_hour=0.1,
            ),
            InstanceType(
                instance_type="a100x4",
                accelerator="A100",
                accelerator_count=4,
                vcpus=32,
                memory_gib=256,
                ondemand_usd_per_hour=8,
                spot_usd_per_hour=3,
                spot_preemptions_per_hour=0.1,
            ),
        ),
    )


def plan_of(
    steps: list[Step],
    *,
    spot: bool = False,
    replicas: int = 1,
    gpu: bool = False,
    datasets: dict[str, Dataset] | None = None,
) -> tuple[Program, Plan]:
    sps = [
        StepPlan(
            name=s.name,
            instance_type="a100x4" if gpu else "cpu2",
            accelerator="A100" if gpu else None,
            accelerator_count=4 if gpu else 0,
            spot=spot,
            batch_size=1 if s.items else None,
            replicas=replicas,
            start_h=0,
            expected_duration_h=0.01,
            p_duration_h=0.02,
            expected_cost_usd=0.01,
        )
        for s in steps
    ]
    program = Program(workflow=Workflow(name="t"), steps=tuple(steps), datasets=datasets or {})
    plan = Plan(
        workflow="t",
        objective="cost",
        status="optimal",
        deadline_h=None,
        budget_usd=None,
        confidence=0.95,
        expected_cost_usd=0.01,
        makespan_h=0.02,
        lower_bound_usd=0.01,
        steps=sps,
    )
    return program, plan


def planned_in(folder: Path, program: Program, plan: Plan) -> tuple[PlannedWorkflow, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    wf = folder / "t.exo"
    wf.write_text("# stands for the workflow; the plan is built in the test\n")
    planned = PlannedWorkflow(program=program, plan=plan, catalog=_catalog(), base_dir=str(folder))
    return planned, wf


def _step(name: str, command: tuple[str, ...], **kw: object) -> Step:
    return Step(name=name, command=command, throughput=Throughput(flat={"cpu": 1.0}), **kw)  # type: ignore[arg-type]


def run_dir_of(report: RunReport, wf: Path) -> Path:
    (root,) = list((wf.parent / ".exo" / "slurm").iterdir())
    assert report.run_id is not None
    return root / report.run_id


CHECKPOINTING = r"""
ckpt=ckpt-$1
trap 'echo "saved by attempt $2" >"$ckpt"' USR1
echo "$2" >"$3/attempt"
if [ -e "$ckpt" ]; then cp "$ckpt" "$3/resumed"; fi
for _ in $(seq 40); do sleep 0.1; done
"""


def test_requeued_shard_completes_without_using_error_retries(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    """A running spot shard gets the checkpoint signal (as Slurm sends it before a
    preemption: USR1 to the batch shell), which reaches the command; then
    ``scontrol requeue`` kills it. It reruns as attempt 2 from its checkpoint, and
    completes although the step allows no error retries."""
    step = _step(
        "work",
        ("bash", "-c", CHECKPOINTING, "x", "{batch_index}", "{attempt}", "{output}"),
        items=2,
        retries=0,
    )
    program, plan = plan_of([step], spot=True, replicas=2)
    planned, wf = planned_in(tmp_path / "proj", program, plan)
    result: list[RunReport] = []
    thread = threading.Thread(
        target=lambda: result.append(SlurmBackend().run(planned, OPTIONS, context(wf, slurm_env)))
    )
    thread.start()
    try:
        state = tmp_path / "proj" / ".exo" / "slurm"
        wait_for(lambda: any(state.glob("*/*/jobs.tsv")), "the submission")
        (jobs_tsv,) = list(state.glob("*/*/jobs.tsv"))
        job = jobs_tsv.read_text().split()[1]
        wait_for(
            lambda: ["1", "RUNNING"] in [r[1:] for r in squeue(slurm_env, job)],
            "shard 1 to run",
        )
        time.sleep(0.5)
        subprocess.run(
            ["scancel", "--batch", "--signal=USR1", f"{job}_1"], env=slurm_env, check=True
        )
        wait_for((wf.parent / "ckpt-1").exists, "the command to checkpoint")
        subprocess.run(["scontrol", "requeue", f"{job}_1"], env=slurm_env, check=True)
    finally:
        thread.join(timeout=180)
    (report,) = result
    assert report.state == "done", report
    (progress,) = report.steps
    assert (progress.retries, progress.preemptions) == (0, 1)
    run = run_dir_of(report, wf)
    out = run / "outputs" / "work"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("shard")) == [
        "shard-0",
        "shard-1",
    ]
    assert (out / "shard-0" / "attempt").read_text() == "1\n"
    assert not (out / "shard-0" / "resumed").exists()
    assert (out / "shard-1" / "attempt").read_text() == "2\n"
    assert (out / "shard-1" / "resumed").read_text() == "saved by attempt 1\n"
    assert not (run / "state" / "work" / "shard-1.errors").exists()
    log = (run / "logs" / "work" / "shard-1.log").read_text()
    assert "USR1 (checkpoint signal) received" in log
    assert "not counted as an error" in log
    # The run ledger shows the preemption, the extra attempt and the extra replica-time.
    book = ledger.load(run / ledger.FILE_NAME)
    assert book.skipped == 0 and book.plan is not None
    by_shard = {i: [a for a in book.attempts if a.shard == i] for i in (0, 1)}
    assert [(a.attempt, a.outcome) for a in by_shard[0]] == [(1, "succeeded")]
    assert [(a.attempt, a.outcome) for a in by_shard[1]] == [(1, "preempted"), (2, "succeeded")]
    assert all(a.spot is True and a.instance_type for a in book.attempts)
    lifetimes = {i: sum(a.seconds or 0.0 for a in by_shard[i]) for i in (0, 1)}
    # Both attempts of the requeued shard count (no wall-clock comparison: timings flake under load).
    assert all(a.seconds and a.seconds > 0 for a in by_shard[1])
    act = actuals.compare(program, plan, _catalog(), book, report.run_id)
    (work,) = act.steps
    assert (work.attempts, work.preemptions, work.retries) == (3, 1, 0)
    assert work.actual.replica_hours == pytest.approx(sum(lifetimes.values()) / 3600.0)


def test_failing_step_cancels_dependents_and_reports_the_shard(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    """a fails for good on shard 1 -> b and c never run; d (independent) completes.
    Then the cause is fixed and ``run`` again resumes: only the missing work runs."""
    flaky = (
        "bash",
        "-c",
        'if [ "$1" = 1 ] && [ -e fail-flag ]; then echo boom >&2; exit 3; fi; date +%s.%N >"$2/t"',
        "x",
        "{batch_index}",
        "{output}",
    )
    ok = ("bash", "-c", 'date +%s.%N >"$1/t"', "x", "{output}")
    steps = [
        _step("a", flaky, items=3, retries=1),
        _step("b", ok, input=InputRef(kind="step", name="a")),
        _step("c", ok, after=("b",)),
        _step("d", ok),
    ]
    program, plan = plan_of(steps, replicas=3)
    planned, wf = planned_in(tmp_path / "proj", program, plan)
    (wf.parent / "fail-flag").write_text("")
    backend = SlurmBackend()
    report = backend.run(planned, OPTIONS, context(wf, slurm_env))
    assert report.state == "failed" and report.exit_code == 1
    states = {s.name: s.state for s in report.steps}
    assert states["a"] == "failed" and states["d"] == "done"
    assert states["b"] in ("blocked", "cancelled") and states["c"] in ("blocked", "cancelled")
    (failure,) = report.failures
    assert (failure.step, failure.shard, failure.attempts) == ("a", 1, 2)
    assert failure.reason == "exit code 3"
    assert failure.log is not None
    log = Path(failure.log).read_text()
    assert "boom" in log and "failed for good" in log
    assert any("shard 1 failed" in m and failure.log in m for m in report.messages)
    a = next(s for s in report.steps if s.name == "a")
    assert (a.shards_done, a.retries) == (2, 1)
    run = run_dir_of(report, wf)
    assert not (run / "outputs" / "b").exists() or not any((run / "outputs" / "b").iterdir())
    ids = slurm_runner.read_jobs(run)
    assert squeue(slurm_env, ",".join(ids.values())) == []
    status = backend.status(planned, OPTIONS, context(wf, slurm_env))
    assert status.state == "failed" and status.failures == report.failures
    kept = (run / "outputs" / "a" / "shard-0" / "t").read_text()

    (wf.parent / "fail-flag").unlink()
    again = backend.run(planned, OPTIONS, context(wf, slurm_env))
    assert again.state == "done", again
    assert again.run_id == report.run_id
    assert (run / "outputs" / "a" / "shard-0" / "t").read_text() == kept
    assert "already published" in (run / "logs" / "a" / "shard-0.log").read_text()
    assert sorted(p.name for p in (run / "outputs" / "a").iterdir() if p.name[0] != ".") == [
        "shard-0",
        "shard-1",
        "shard-2",
    ]


def test_a_step_timeout_is_recorded_as_timeout(slurm_env: dict[str, str], tmp_path: Path) -> None:
    """The step's ``timeout`` stops attempt 1, which sleeps too long: the ledger records it
    as ``timeout`` (not ``failed``), it counts as an error retry, and attempt 2 succeeds."""
    slow = ("bash", "-c", 'if [ "$1" = 1 ]; then exec sleep 60; fi', "x", "{attempt}")
    step = _step("slow", slow, items=1, retries=1, timeout_h=2 / 3600)
    program, plan = plan_of([step], replicas=1)
    planned, wf = planned_in(tmp_path / "proj", program, plan)
    report = SlurmBackend().run(planned, OPTIONS, context(wf, slurm_env))
    run = run_dir_of(report, wf)
    book = ledger.load(run / ledger.FILE_NAME)
    outcomes = [(a.attempt, a.outcome, a.exit_code) for a in book.attempts]
    assert report.state == "done", (report, outcomes)
    assert outcomes == [(1, "timeout", 143), (2, "succeeded", 0)]
    assert (book.attempts[0].seconds or 0.0) < 30  # TERM at the timeout, not the KILL later
    act = actuals.compare(program, plan, _catalog(), book, report.run_id)
    assert (act.steps[0].retries, act.steps[0].preemptions) == (1, 0)
    assert "timeout after" in (run / "logs" / "slow" / "shard-0.log").read_text()


TRICKY = [
    "two words",
    'it\'s "quoted"',
    "$(touch pwned-dollar)",
    "`touch pwned-backtick`",
    "line one\nline two",
    "$HOME ${PATH} * ? [a] ~ ; | & > <",
    "\\back\\slash",
    "",
    "tab\there",
    "{{literal braces}}",
]


def test_values_pass_through_literally(slurm_env: dict[str, str], tmp_path: Path) -> None:
    """Arguments, env values, dataset URIs and output paths with shell syntax in them
    reach the command exactly, and nothing in them is ever executed."""
    record = (
        "import json, os, sys\n"
        "keys = [k for k in os.environ if k.startswith(('EXO_', 'TRICKY_'))]\n"
        "seen = {'argv': sys.argv[1:], 'env': {k: os.environ[k] for k in keys}}\n"
        "out = os.environ['EXO_OUTPUT']\n"
        "open(os.path.join(out, 'seen.json'), 'w').write(json.dumps(seen))\n"
    )
    args = [*TRICKY, "--out={output}/x y", "pre-{batch_index}-post", "{unknown} {{x}}"]
    env = {f"TRICKY_{i}": v for i, v in enumerate(TRICKY)}
    env["TRICKY_PLACEHOLDER"] = "in {input} at {batch_start}"
    step = _step(
        "show",
        # Braces in a command are placeholder syntax: literal ones are doubled.
        ("python3", "-c", record.replace("{", "{{").replace("}", "}}"), *args),
        input=InputRef(kind="dataset", name="data"),
        items=2,
        env=env,
        output="out dir/$(touch pwned-out)/`x`",
    )
    data = Dataset(name="data", uri="/data/it's $(weird) `uri`\nhere", items=2)
    program, plan = plan_of([step], replicas=2, datasets={"data": data})
    planned, wf = planned_in(tmp_path / "my project $(x)", program, plan)
    report = SlurmBackend().run(planned, OPTIONS, context(wf, slurm_env))
    assert report.state == "done", report
    out = wf.parent / "out dir" / "$(touch pwned-out)" / "`x`"
    for i in range(2):
        seen = json.loads((out / f"shard-{i}" / "seen.json").read_text())
        exo = seen["env"]
        values = {name: exo[var] for name, var in ENVIRONMENT.items()}
        assert exo["EXO_SHARD_INDEX"] == exo["EXO_BATCH_INDEX"] == str(i)
        assert exo["EXO_SHARD_COUNT"] == "2"
        assert exo["EXO_CHECKPOINT"].endswith(f"/checkpoints/show/shard-{i}")
        assert exo["EXO_INPUT"] == data.uri
        assert exo["EXO_BATCH_INDEX"] == str(i)
        assert seen["argv"] == [expand(a, values) for a in args]
        assert seen["argv"][: len(TRICKY)] == [*TRICKY[:-1], "{literal braces}"]
        assert {k: v for k, v in exo.items() if k.startswith("TRICKY_")} == {
            k: expand(v, values) for k, v in env.items()
        }
    pwned = [p for p in tmp_path.rglob("pwned*") if p.name.startswith("pwned")]
    assert pwned == [], pwned


def test_status_and_cancel_of_a_submitted_run(slurm_env: dict[str, str], tmp_path: Path) -> None:
    step = _step("slow", ("sleep", "60"), items=3)
    program, plan = plan_of([step], replicas=1)
    planned, wf = planned_in(tmp_path / "proj", program, plan)
    backend = SlurmBackend()
    ctx = context(wf, slurm_env)
    assert backend.status(planned, OPTIONS, ctx).state == "none"
    result: list[RunReport] = []
    thread = threading.Thread(target=lambda: result.append(backend.run(planned, OPTIONS, ctx)))
    thread.start()
    try:

        def running() -> bool:
            rep = backend.status(planned, OPTIONS, ctx)
            return rep.state == "submitted" and rep.steps[0].shards_running == 1

        wait_for(running, "a running shard")
        cancelled = backend.cancel(planned, OPTIONS, ctx)
        assert cancelled.state == "cancelled"
    finally:
        thread.join(timeout=60)
    (report,) = result
    assert report.state == "cancelled" and report.exit_code == 0
    run = run_dir_of(report, wf)
    ids = slurm_runner.read_jobs(run)
    wait_for(lambda: squeue(slurm_env, ",".join(ids.values())) == [], "the queue to empty")
    assert backend.status(planned, OPTIONS, ctx).state == "cancelled"


CLI_WORKFLOW = """
workflow cli {
  deadline = 2h
  catalog  = "./cluster.csv"
}
dataset docs {
  uri   = "docs.jsonl"
  items = 4
}
step count {
  input    = docs
  command  = ["bash", "-c", "test ! -e fail-flag && echo $1-$2 > $3/range", "x",
              "{batch_start}", "{batch_end}", "{output}"]
  output   = "counted"
  cpu      = 2
  throughput { cpu = 1 }
  replicas = 1..2
  spot     = never
}
"""


def test_exoc_run_status_from_the_command_line(slurm_env: dict[str, str], tmp_path: Path) -> None:
    """The user's path: `exoc run/status --target slurm` with a flag, exit codes 1 then 0."""
    (tmp_path / "cluster.csv").write_text(
        "instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
        "ondemand_usd_per_hour,spot_usd_per_hour\ncpu4,,0,4,16,0.2,\n"
    )
    wf = tmp_path / "cli.exo"
    wf.write_text(CLI_WORKFLOW)
    (tmp_path / "fail-flag").write_text("")
    exoc = [sys.executable, "-m", "exo.compiler"]
    flags = ["--target", "slurm", "--slurm-poll-s", "1", "--slurm-partition", "cpu"]

    def exoc_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*exoc, *args], cwd=tmp_path, env=slurm_env, capture_output=True, text=True, check=False
        )

    failed = exoc_run("run", "cli.exo", *flags)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed" in failed.stdout and "shard-0.log" in failed.stdout
    (tmp_path / "fail-flag").unlink()
    done = exoc_run("run", "cli.exo", *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming run" in done.stdout
    shards = sorted(p.name for p in (tmp_path / "counted").iterdir())  # no .exo-staging left
    assert shards == [f"shard-{i}" for i in range(len(shards))] and shards
    ranges = [(tmp_path / "counted" / s / "range").read_text().strip() for s in shards]
    assert ranges[0].startswith("0-") and ranges[-1].endswith("-4")
    status = exoc_run("status", "cli.exo", *flags, "--format", "json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["state"] == "done"
    # #12: the output folder deleted after the run: the next run does its shards again
    # (it used to say "complete; nothing to submit" over an empty folder).
    shutil.rmtree(tmp_path / "counted")
    redone = exoc_run("run", "cli.exo", *flags)
    assert redone.returncode == 0, redone.stdout + redone.stderr
    assert f"{len(shards)} published shard(s) are missing" in redone.stdout, redone.stdout
    assert sorted(p.name for p in (tmp_path / "counted").iterdir()) == shards


def test_hostile_catalog_names_and_values_on_the_cluster(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 12's class, end to end on the real cluster: a catalog whose names use
    every character the catalog-name rule allows (the GRES type included), and
    command arguments, env values, a dataset URI and an output path full of shell
    syntax, compiled by the real front end, submitted with sbatch and run: every
    value arrives as written and nothing is executed. (Names the rule refuses
    never get this far: see tests/test_hostile_input.py.)"""
    from exo.compiler.frontend import compile_file
    from exo.compiler.optimizer import optimize

    from .test_hostile_input import HOSTILE, _workflow

    wf = _workflow(tmp_path / "proj $(x)")
    compiled = compile_file(wf)
    planned = PlannedWorkflow(
        program=compiled.program,
        plan=optimize(compiled.program, compiled.catalog),
        catalog=compiled.catalog,
        base_dir=str(compiled.base_dir),
    )
    scripts = {a.path: a.content for a in SlurmBackend().emit(planned, OPTIONS)}
    assert "--gres=gpu:a100-80gb:1" in scripts["steps/gpu.sbatch"]
    report = SlurmBackend().run(planned, OPTIONS, context(wf, slurm_env))
    assert report.state == "done", report
    out = wf.parent / "out dir" / "it's $(touch PWNED_out) `x` # é" / "shard-0"
    seen = json.loads((out / "seen.json").read_text("utf-8"))
    assert seen["argv"] == HOSTILE and seen["env"] == HOSTILE
    assert not list(tmp_path.rglob("PWNED*"))


# --- run-time conformance: shards, checkpoints, requeues, a killed runner ------------------

#: Runs a planned workflow with the Slurm backend (the follower a user's `exoc run` is).
FOLLOWER = """
import os, sys
from pathlib import Path
from exo.backends.api import PlannedWorkflow, RunContext
from exo.backends.slurm import SlurmBackend, SlurmOptions
planned = PlannedWorkflow.model_validate_json(Path(sys.argv[1]).read_text())
options = SlurmOptions(spot_partition="preempt", poll_s=0.5, backoff_s=0.2, backoff_max_s=1)
ctx = RunContext(workflow_file=sys.argv[2], state_dir=sys.argv[3], progress="plain",
                 environ=dict(os.environ))
report = SlurmBackend().run(planned, options, ctx)
print(report.model_dump_json())
sys.exit(report.exit_code)
"""


class SlurmDriver(ProcessDriver):
    """The follower in a child process; a preemption is `scontrol requeue` of the shard's task."""

    def command(self, workflow: Path) -> list[str]:
        planned_json = self.folder / "planned.json"
        if not planned_json.exists():
            planned, _ = plan_for(workflow, {})
            planned_json.write_text(planned.model_dump_json(), "utf-8")
        state = self.folder / "state"
        return [sys.executable, "-c", FOLLOWER, str(planned_json), str(workflow), str(state)]

    def run_dir(self) -> Path | None:
        found = sorted((self.folder / "state").glob("slurm/*/*/jobs.tsv"))
        return found[-1].parent if found else None

    def published(self, step: str) -> Path:
        return self.folder / "out" / step

    def checkpoint(self, step: str, index: int) -> Path | None:
        run = self.run_dir()
        return None if run is None else run / "checkpoints" / step / f"shard-{index}"

    def _ids(self) -> list[str]:
        run = self.run_dir()
        return list(slurm_runner.read_jobs(run).values()) if run is not None else []

    def preempt(self, step: str, index: int) -> None:
        run = self.run_dir()
        assert run is not None, "not submitted"
        job = slurm_runner.read_jobs(run)[step]
        assert self.env is not None
        task = f"{job}_{index}" if squeue(self.env, job)[0][1] != "N/A" else job
        subprocess.run(["scontrol", "requeue", task], env=self.env, check=True)

    def kill_runner(self) -> None:
        """SIGKILL the follower and cancel its jobs: only the shared file system remains."""
        super().kill_runner()
        assert self.env is not None
        env, ids = self.env, self._ids()
        subprocess.run(["scancel", *ids], env=env, check=True)
        wait_for(lambda: squeue(env, ",".join(ids)) == [], "the jobs to leave the queue")

    def close(self) -> None:
        super().close()
        if ids := self._ids():
            subprocess.run(["scancel", *ids], env=self.env, check=False)


class TestSlurmExecution(ExecutionConformance):
    env: dict[str, str]

    @pytest.fixture(autouse=True)
    def _cluster(self, slurm_env: dict[str, str]) -> None:
        self.env = slurm_env

    def driver(self, folder: Path) -> ShardDriver:
        return SlurmDriver(folder, self.env)
