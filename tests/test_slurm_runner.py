"""The Slurm runner's bookkeeping and the job script's own logic, without a cluster.

How a run is read (state files + queue -> progress, failures, outcome), and the
generated job script run directly by bash with the ``SLURM_*`` variables slurmd
would set (retries, publication, requeue limit, TERM). tests/test_slurm_cluster.py
runs the same code against real jobs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from exo.backends.api import Artifact, PlannedWorkflow
from exo.backends.slurm import SlurmBackend, SlurmOptions, runner
from exo.backends.slurm.jobs import SlurmJob, build
from exo.backends.slurm.scheduler import QueuedTask
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import InputRef, Program, Step, Throughput, Workflow
from exo.compiler.plan import Plan, StepPlan


def _planned(tmp_path: Path, a_command: tuple[str, ...] = ("x",), **a: object) -> PlannedWorkflow:
    """a (3 shards) -> b (1 shard) -> c (after b); d independent; b writes to a relative path."""
    cpu = Throughput(flat={"cpu": 1.0})
    steps = (
        Step(name="a", items=3, command=a_command, throughput=cpu, **a),  # type: ignore[arg-type]
        Step(
            name="b",
            command=("x",),
            throughput=cpu,
            input=InputRef(kind="step", name="a"),
            output="out/{run_id}/{step}",
        ),
        Step(name="c", command=("x",), throughput=cpu, after=("b",)),
        Step(name="d", command=("x",), throughput=cpu),
    )
    sps = [
        StepPlan(
            name=s.name,
            instance_type="cpu1",
            accelerator=None,
            accelerator_count=0,
            spot=False,
            batch_size=1 if s.items else None,
            replicas=3 if s.items else 1,
            start_h=0,
            expected_duration_h=0.1,
            p_duration_h=0.1,
            expected_cost_usd=0.01,
        )
        for s in steps
    ]
    plan = Plan(
        workflow="w",
        objective="cost",
        status="optimal",
        deadline_h=None,
        budget_usd=None,
        confidence=0.9,
        expected_cost_usd=0.04,
        makespan_h=0.3,
        lower_bound_usd=0.04,
        steps=sps,
    )
    catalog = Catalog(
        name="c",
        default_spot_preemptions_per_hour=0.1,
        instances=(
            InstanceType(
                instance_type="cpu1",
                accelerator=None,
                accelerator_count=0,
                vcpus=1,
                memory_gib=1,
                ondemand_usd_per_hour=0.1,
                spot_usd_per_hour=None,
                spot_preemptions_per_hour=0.1,
            ),
        ),
    )
    return PlannedWorkflow(
        program=Program(workflow=Workflow(name="w"), steps=steps),
        plan=plan,
        catalog=catalog,
        base_dir=str(tmp_path),
    )


def _jobs(tmp_path: Path) -> list[SlurmJob]:
    return build(_planned(tmp_path), SlurmOptions())


def _record(run: Path, step: str, shard: int, kind: str, text: str = "") -> None:
    d = run / "state" / step
    d.mkdir(parents=True, exist_ok=True)
    (d / f"shard-{shard}.{kind}").write_text(text)


IDS = {"a": "10", "b": "11", "c": "12", "d": "13"}


def test_progress_while_running(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    run = tmp_path / "run"
    _record(run, "a", 0, "done")
    _record(run, "a", 0, "restarts", "1\n")
    _record(run, "a", 1, "errors", "1\n")
    queued = [
        QueuedTask("10", "1", "RUNNING", "None"),
        QueuedTask("10", "[2]", "PENDING", "JobArrayTaskLimit"),
        QueuedTask("11", None, "PENDING", "Dependency"),
        QueuedTask("12", None, "PENDING", "Dependency"),
        QueuedTask("13", None, "PENDING", "Resources"),
    ]
    snap = runner.snapshot(run, jobs, IDS, queued, {})
    by = {s.name: s for s in snap.steps}
    a = by["a"]
    assert (a.state, a.shards_done, a.shards_running, a.retries, a.preemptions) == (
        "running",
        1,
        1,
        1,
        1,
    )
    assert [by[n].state for n in "bcd"] == ["pending", "pending", "pending"]
    assert snap.active and snap.failures == []
    assert runner.overall(snap, cancelled=False) == "submitted"


def test_a_failed_shard_blocks_what_follows_and_names_its_log(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    run = tmp_path / "run"
    for i in (0, 2):
        _record(run, "a", i, "done")
    _record(run, "a", 1, "errors", "3\n")
    _record(run, "a", 1, "failed", "attempts=3 exit=7\n")
    _record(run, "d", 0, "done")
    snap = runner.snapshot(run, jobs, IDS, [], {"11": {}, "12": {}})
    by = {s.name: s for s in snap.steps}
    assert [by[n].state for n in "abcd"] == ["failed", "blocked", "blocked", "done"]
    assert by["a"].retries == 2  # 3 errors, the last one was not followed by a retry
    (f,) = snap.failures
    assert (f.step, f.shard, f.attempts, f.reason) == ("a", 1, 3, "exit code 7")
    assert f.log == str(run / "logs" / "a" / "shard-1.log")
    assert runner.overall(snap, cancelled=False) == "failed"


def test_a_job_that_left_the_queue_unrecorded_is_explained(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    run = tmp_path / "run"
    for i in range(3):
        _record(run, "a", i, "done")
    ended = {"11": {"": ("TIMEOUT", "TimeLimit")}, "13": {"": ("CANCELLED", "None")}}
    snap = runner.snapshot(run, jobs, IDS, [], ended)
    by = {s.name: s for s in snap.steps}
    assert [by[n].state for n in "abcd"] == ["done", "failed", "blocked", "cancelled"]
    (f,) = snap.failures
    assert (f.step, f.shard) == ("b", 0)
    assert f.reason == "Slurm job 11: TIMEOUT (TimeLimit)"


def test_all_done_and_cancelled_outcomes(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    run = tmp_path / "run"
    for j in jobs:
        for i in range(j.shards):
            _record(run, j.step, i, "done")
    snap = runner.snapshot(run, jobs, IDS, [], {})
    assert runner.overall(snap, cancelled=False) == "done"
    assert runner.overall(snap, cancelled=True) == "cancelled"


def test_output_paths_follow_the_local_rules(tmp_path: Path) -> None:
    jobs = {j.step: j for j in _jobs(tmp_path)}
    run, wd = tmp_path / "run", tmp_path / "wd"
    assert runner.output_path(jobs["a"], run, wd, "r1") == run / "outputs" / "a"
    assert runner.output_path(jobs["b"], run, wd, "r1") == wd / "out" / "r1" / "b"


def test_changed_scripts_are_detected_and_their_shards_forgotten(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    run = tmp_path / "run"
    arts = [Artifact("submit.sh", "s\n", True), Artifact("steps/a.sbatch", "one\n", True)]
    assert runner.write_run(run, arts) == []
    assert (run / "steps" / "a.sbatch").stat().st_mode & 0o111
    assert runner.write_run(run, arts) == []
    changed = [arts[0], Artifact("steps/a.sbatch", "two\n", True)]
    assert runner.write_run(run, changed) == ["a"]
    out = run / "outputs" / "a"
    (out / "shard-0").mkdir(parents=True)
    (out / ".exo-staging").mkdir()
    _record(run, "a", 0, "done")
    runner.forget_shards(run, jobs, ["a"], tmp_path)
    assert not (out / "shard-0").exists() and (out / ".exo-staging").exists()
    assert not (run / "state" / "a").exists()


def test_jobs_file_and_dependents(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    (tmp_path / "jobs.tsv").write_text("a\t10\nb\t11\n\nbroken\n")
    assert runner.read_jobs(tmp_path) == {"a": "10", "b": "11"}
    assert runner.read_jobs(tmp_path / "missing") == {}
    assert runner.dependents(jobs) == {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": set()}


# --- the job script itself, run by bash as slurmd would (SLURM_* in the environment) ---------

FLAKY = (
    "bash",
    "-c",
    "n=$(cat tries 2>/dev/null || echo 0); echo $((n + 1)) >tries; "
    'if [ "$n" -lt "$1" ]; then exit 5; fi; echo "$2" >"$3/attempt"',
    "x",
    "{batch_index}",
    "{attempt}",
    "{output}",
)


def _script(tmp_path: Path, command: tuple[str, ...], **a: object) -> Path:
    planned = _planned(tmp_path, command, **a)
    out = tmp_path / "emitted"
    for art in SlurmBackend().emit(planned, SlurmOptions(backoff_s=0, backoff_max_s=0)):
        p = out / art.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(art.content)
    return out / "steps" / "a.sbatch"


def _run_task(
    script: Path, run: Path, wd: Path, index: int, restarts: int = 0
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "SLURM_ARRAY_TASK_ID": str(index),
        "SLURM_RESTART_COUNT": str(restarts),
        "SLURM_JOB_ID": "99",
    }
    wd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["bash", str(script), str(run), "r1", str(wd)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_job_script_retries_errors_then_publishes_once(tmp_path: Path) -> None:
    script = _script(tmp_path, FLAKY, retries=2)
    run, wd = tmp_path / "run", tmp_path / "wd"
    (wd).mkdir()
    (wd / "tries").write_text("0")  # fail twice (index 2 => $1 = 2), then succeed
    proc = _run_task(script, run, wd, 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = run / "outputs" / "a"
    assert sorted(p.name for p in out.iterdir()) == [".exo-staging", "shard-2"]
    assert (out / "shard-2" / "attempt").read_text() == "3\n"
    assert (run / "state" / "a" / "shard-2.errors").read_text() == "2\n"
    assert (run / "state" / "a" / "shard-2.done").exists()
    assert "retry 1 of 2" in proc.stdout and "retry 2 of 2" in proc.stdout
    again = _run_task(script, run, wd, 2)
    assert again.returncode == 0 and "already published" in again.stdout
    assert (wd / "tries").read_text() == "3\n"  # the command did not run again


def test_job_script_fails_for_good_after_its_retries(tmp_path: Path) -> None:
    script = _script(tmp_path, FLAKY, retries=1)
    run, wd = tmp_path / "run", tmp_path / "wd"
    proc = _run_task(script, run, wd, 2)  # needs 2 failures before success; has 1 retry
    assert proc.returncode == 5
    assert (run / "state" / "a" / "shard-2.failed").read_text() == "attempts=2 exit=5\n"
    assert not (run / "outputs" / "a" / "shard-2").exists()
    assert list((run / "outputs" / "a" / ".exo-staging").iterdir()) == []


def test_job_script_gives_up_after_too_many_requeues(tmp_path: Path) -> None:
    script = _script(tmp_path, FLAKY, preemption_retries=2)
    run, wd = tmp_path / "run", tmp_path / "wd"
    ok = _run_task(script, run, wd, 0, restarts=2)
    assert ok.returncode == 0, ok.stdout
    assert (run / "outputs" / "a" / "shard-0" / "attempt").read_text() == "3\n"
    too_many = _run_task(script, run, wd, 1, restarts=3)
    assert too_many.returncode == 1
    assert "reason=preempted" in (run / "state" / "a" / "shard-1.failed").read_text()


def test_job_script_term_is_not_an_error(tmp_path: Path) -> None:
    script = _script(tmp_path, ("bash", "-c", "touch started; sleep 30"), retries=0)
    run, wd = tmp_path / "run", tmp_path / "wd"
    wd.mkdir()
    env = {"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": "0"}
    proc = subprocess.Popen(
        ["bash", str(script), str(run), "r1", str(wd)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (wd / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert "not counted as an error" in out
    assert not (run / "state" / "a" / "shard-0.errors").exists()
    assert not (run / "state" / "a" / "shard-0.failed").exists()


def test_a_shard_stopped_by_the_steps_timeout_says_so() -> None:
    """The job script writes ``reason=timeout`` into the shard's failure record."""
    rec = {"attempts": "2", "exit": "143", "reason": "timeout"}
    assert runner._failure_reason(rec) == "the step's timeout stopped it (exit code 143)"
    assert runner._failure_reason({"exit": "3"}) == "exit code 3"
