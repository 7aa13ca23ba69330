"""``exoc run/status/cancel --target slurm``: submit a plan and follow it to the end.

A run lives in one directory (``rundir.py``: its layout, ``latest``, the
scripts and job ids); the job scripts record how each shard ended
(``records.py``); ``follow.py`` polls the queue until the run leaves it. Jobs
keep running when the follower stops (Ctrl-C); ``exoc run`` attaches to them
again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from exo.compiler.diagnostics import CompileError, Diagnostic

from ..api import Artifact, RunReport
from ..runtime import failures, ledger
from ..runtime.progress import Reporter
from ..runtime.runs import new_run_id
from ..runtime.secrets import missing_secrets
from . import scheduler
from .follow import dependents, ended_states, follow
from .jobs import SlurmJob
from .records import Snapshot, failure_lines, overall, snapshot, step_files
from .records import _failure_reason as _failure_reason
from .rundir import (
    CANCELLED_MARK,
    RunConfig,
    forget_missing_outputs,
    forget_shards,
    latest_run,
    output_path,
    read_jobs,
    remove_empty_staging,
    set_latest,
    submission_lock,
    write_run,
)
from .scheduler import SlurmUnavailable, unavailable

#: Besides its own functions, the runner is where callers (the tests, tools) find the
#: run directory's and the records' names; they live in ``rundir.py`` and ``records.py``.
__all__ = [
    "RunConfig",
    "cancel",
    "dependents",
    "execute",
    "forget_missing_outputs",
    "forget_shards",
    "latest_run",
    "output_path",
    "overall",
    "read_jobs",
    "snapshot",
    "status",
    "step_files",
    "write_run",
]

#: How the Slurm runner passes secrets (the note of E704).
SECRETS_HOW = "secrets reach the jobs through sbatch's --export, by name"


def submit_run(
    config: RunConfig, run_dir: Path, run_id: str, plan_json: str | None = None
) -> tuple[dict[str, str], list[str]]:
    writer = ledger.LedgerWriter(run_dir / ledger.FILE_NAME)
    writer.run_started(time.time(), run_id, "slurm", plan_json)
    writer.close()
    proc = scheduler.submit(
        config.cluster,
        str(run_dir / "submit.sh"),
        {
            "EXO_RUN_ID": run_id,
            "EXO_RUN_DIR": str(run_dir),
            "EXO_WORKFLOW_DIR": str(config.base_dir),
        },
        cwd=str(config.base_dir),
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise CompileError(
            [
                Diagnostic(
                    "E702",
                    f"submitting run {run_id} failed (submit.sh exit code {proc.returncode})",
                    notes=tuple(lines[-10:]),
                )
            ]
        )
    return read_jobs(run_dir), [ln for ln in proc.stdout.splitlines() if ln.strip()]


def _check_array_sizes(config: RunConfig, jobs: Sequence[SlurmJob]) -> None:
    try:
        limit = scheduler.max_array_size(config.cluster)
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    if limit is None:
        return
    too_big = [
        Diagnostic(
            "E702",
            f"step `{j.step}` runs {j.shards} shards but the cluster's MaxArraySize is {limit}",
            help=("cap the step's `replicas`, or ask the admins to raise MaxArraySize",),
        )
        for j in jobs
        if j.shards > limit
    ]
    if too_big:
        raise CompileError(too_big)


def execute(
    jobs: Sequence[SlurmJob],
    artifacts: Sequence[Artifact],
    workflow: str,
    config: RunConfig,
    reporter: Reporter,
    plan_json: str | None = None,
) -> RunReport:
    """Submit (or resume, or attach to) the latest run and follow it to the end."""
    problems = missing_secrets(((j.step, j.secrets) for j in jobs), config.environ, how=SECRETS_HOW)
    if problems:
        raise CompileError(problems)
    _check_array_sizes(config, jobs)
    try:
        with submission_lock(config.root):
            run_dir, run_id, ids, messages = _submit_or_attach(config, jobs, artifacts, plan_json)
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    except OSError as err:  # the run folder: unwritable, on a full disk, a file in the way
        raise CompileError([failures.folder_unusable("", err)]) from None
    if ids is None:  # complete: nothing to submit
        snap = snapshot(run_dir, jobs, read_jobs(run_dir), [], {})
        return RunReport(
            workflow=workflow,
            run_id=run_id,
            state="done",
            steps=snap.steps,
            messages=[*messages, f"run directory: {run_dir}"],
        )
    for m in messages:
        reporter.message(m)
    try:
        snap = follow(config, run_dir, jobs, ids, reporter)
    except KeyboardInterrupt:
        reporter.end()
        return RunReport(
            workflow=workflow,
            run_id=run_id,
            state="interrupted",
            messages=[
                *messages,
                "stopped following; the jobs keep running in Slurm: `exoc status` shows them, "
                "`exoc run` follows them again, `exoc cancel` stops them",
            ],
        )
    reporter.end()
    return _followed(workflow, config, jobs, run_dir, snap, messages)


def _followed(
    workflow: str,
    config: RunConfig,
    jobs: Sequence[SlurmJob],
    run_dir: Path,
    snap: Snapshot,
    messages: list[str],
) -> RunReport:
    """The report of a run followed until it left the queue."""
    state = overall(snap, (run_dir / CANCELLED_MARK).exists())
    if state == "done":
        remove_empty_staging(run_dir, jobs, config.base_dir)
    messages.extend(failure_lines(snap.failures))
    if state == "failed":
        messages.append("published shards are kept; fix the problem and `exoc run` again to resume")
    messages.append(f"run directory: {run_dir}")
    return RunReport(
        workflow=workflow,
        run_id=run_dir.name,
        state=state,
        steps=snap.steps,
        failures=snap.failures,
        messages=messages,
    )


def _submit_or_attach(
    config: RunConfig,
    jobs: Sequence[SlurmJob],
    artifacts: Sequence[Artifact],
    plan_json: str | None,
) -> tuple[Path, str, dict[str, str] | None, list[str]]:
    """Submit a new run, resume the latest, or attach to its queued jobs (``ids`` None: done)."""
    messages: list[str] = []
    run_dir = None if config.fresh else latest_run(config)
    if run_dir is not None and (run_dir / CANCELLED_MARK).exists():
        run_dir = None
    if run_dir is None:
        run_id = new_run_id()
        run_dir = config.root / run_id
        write_run(run_dir, artifacts)
        set_latest(config, run_id)
        ids, out = submit_run(config, run_dir, run_id, plan_json)
        return run_dir, run_id, ids, [f"new run {run_id}", *out]
    run_id = run_dir.name
    ids = read_jobs(run_dir)
    if scheduler.queue(config.cluster, list(ids.values())):
        return run_dir, run_id, ids, [f"run {run_id} is still in the queue; following it"]
    changed = write_run(run_dir, artifacts)
    if changed:
        down = dependents(jobs)
        redo = sorted(set(changed) | {d for c in changed for d in down.get(c, ())})
        forget_shards(run_dir, jobs, redo, config.base_dir)
        messages.append("changed since the last submission, redone: " + ", ".join(redo))
    messages.extend(forget_missing_outputs(run_dir, jobs, config.base_dir))
    snap = snapshot(run_dir, jobs, ids, [], {})
    if all(s.state == "done" for s in snap.steps):
        return run_dir, run_id, None, [*messages, f"run {run_id} is complete; nothing to submit"]
    ids, out = submit_run(config, run_dir, run_id, plan_json)
    return (
        run_dir,
        run_id,
        ids,
        [*messages, f"resuming run {run_id}: published shards are kept", *out],
    )


def status(jobs: Sequence[SlurmJob], workflow: str, config: RunConfig) -> RunReport:
    run_dir = latest_run(config)
    if run_dir is None:
        return RunReport(
            workflow=workflow,
            run_id=None,
            state="none",
            messages=["no Slurm run of this workflow yet"],
        )
    ids = read_jobs(run_dir)
    try:
        queued = scheduler.queue(config.cluster, list(ids.values()))
        ended = ended_states(config.cluster, jobs, ids, queued, run_dir)
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    snap = snapshot(run_dir, jobs, ids, queued, ended)
    return RunReport(
        workflow=workflow,
        run_id=run_dir.name,
        state=overall(snap, (run_dir / CANCELLED_MARK).exists()),
        steps=snap.steps,
        failures=snap.failures,
        ledger=str(run_dir / ledger.FILE_NAME),
        messages=[
            f"run directory: {run_dir}",
            "jobs: " + (", ".join(f"{s}={i}" for s, i in ids.items()) or "none submitted"),
            *failure_lines(snap.failures),
        ],
    )


def cancel(jobs: Sequence[SlurmJob], workflow: str, config: RunConfig) -> RunReport:
    run_dir = latest_run(config)
    if run_dir is None:
        return status(jobs, workflow, config)
    ids = read_jobs(run_dir)
    (run_dir / CANCELLED_MARK).write_text("cancelled by exoc cancel\n", "utf-8")
    try:
        scheduler.cancel(config.cluster, list(ids.values()))
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    report = status(jobs, workflow, config)
    return report.model_copy(
        update={"messages": [*report.messages, f"cancelled jobs {', '.join(ids.values())}"]}
    )
