"""What a Slurm run's job scripts recorded, read back as progress.

Following needs no accounting database: ``squeue`` says what is still queued
or running and the state files the job scripts write
(``state/<step>/shard-<i>.{done,failed,errors,restarts}``) say how each shard
ended; ``scontrol`` explains jobs that left the queue without recording one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..api import RunState, ShardFailure, StepProgress, TaskState
from ..runtime.progress import step_state
from .jobs import SlurmJob
from .scheduler import QueuedTask


@dataclass(frozen=True, slots=True)
class StepFiles:
    done: frozenset[int]
    #: shard -> the ``.failed`` record (``attempts=N exit=RC``).
    failed: dict[int, dict[str, str]]
    errors: int
    restarts: int


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text("utf-8").strip() or 0)
    except (OSError, ValueError):
        return 0


def step_files(run_dir: Path, step: str) -> StepFiles:
    done: set[int] = set()
    failed: dict[int, dict[str, str]] = {}
    errors = restarts = 0
    directory = run_dir / "state" / step
    try:
        entries = list(os.scandir(directory))
    except OSError:
        entries = []
    for entry in entries:
        stem, _, kind = entry.name.partition(".")
        if not stem.startswith("shard-") or not stem[6:].isdigit():
            continue
        idx = int(stem[6:])
        if kind == "done":
            done.add(idx)
        elif kind == "failed":
            try:
                text = Path(entry.path).read_bytes()[:4096].decode("utf-8", "replace")
            except OSError:
                text = ""
            failed[idx] = dict(p.partition("=")[::2] for p in text.split() if "=" in p)
        elif kind == "errors":
            errors += _read_int(Path(entry.path))
        elif kind == "restarts":
            restarts += _read_int(Path(entry.path))
    return StepFiles(frozenset(done), failed, errors, restarts)


def log_path(run_dir: Path, step: str, shard: int) -> Path:
    return run_dir / "logs" / step / f"shard-{shard}.log"


@dataclass(frozen=True, slots=True)
class Snapshot:
    steps: list[StepProgress]
    failures: list[ShardFailure]
    #: Any job of the run still pending or running.
    active: bool


def _failure_reason(rec: dict[str, str]) -> str:
    why = rec.get("reason")
    if why == "missing-secret":
        return "a secret was not set in the job's environment"
    if why == "preempted":
        return f"requeued {rec.get('attempts', '?')} times (more than preemption_retries)"
    if why == "timeout":
        return f"the step's timeout stopped it (exit code {rec.get('exit', '?')})"
    return f"exit code {rec.get('exit', '?')}"


def snapshot(
    run_dir: Path,
    jobs: Sequence[SlurmJob],
    ids: Mapping[str, str],
    queued: Sequence[QueuedTask],
    ended: Mapping[str, dict[str, tuple[str, str]]],
) -> Snapshot:
    """Per-step progress from the state files and the queue.

    ``ended`` holds ``scontrol`` states of jobs that left the queue without
    recording every shard (timeouts, cancelled dependents), to explain them.
    """
    by_job: dict[str, list[QueuedTask]] = {}
    for q in queued:
        by_job.setdefault(q.job_id, []).append(q)
    states: dict[str, TaskState] = {}
    steps: list[StepProgress] = []
    failures: list[ShardFailure] = []
    for j in jobs:
        files = step_files(run_dir, j.step)
        job_id = ids.get(j.step)
        mine = by_job.get(job_id, []) if job_id else []
        running = sum(1 for q in mine if q.state in ("RUNNING", "COMPLETING"))
        state = _step_state(j, files, job_id, (bool(mine), running), states)
        if state == "ended":
            # Left the queue with shards unrecorded: cancelled, timed out, node failure...
            assert job_id is not None
            info = ended.get(job_id, {})
            state = "cancelled" if {s for s, _ in info.values()} == {"CANCELLED"} else "failed"
            if state == "failed":
                failures.append(_ended_failure(run_dir, j, files, job_id, info))
        failures.extend(_recorded_failures(run_dir, j.step, files))
        states[j.step] = state
        steps.append(
            StepProgress(
                name=j.step,
                state=state,
                shards_total=j.shards,
                shards_done=len(files.done),
                shards_running=running,
                # Errors minus the last one of each shard that failed for good.
                retries=max(files.errors - len(files.failed), 0),
                preemptions=files.restarts,
            )
        )
    return Snapshot(steps, failures, active=bool(queued))


def _step_state(
    job: SlurmJob,
    files: StepFiles,
    job_id: str | None,
    queue: tuple[bool, int],
    before: Mapping[str, TaskState],
) -> TaskState | Literal["ended"]:
    """A step's state from its records and the queue: whether its job is in it, how many
    of its tasks run (``ended``: the job left the queue with shards unrecorded)."""
    queued, running = queue
    state = step_state(
        done=len(files.done) >= job.shards,
        failed=bool(files.failed),
        needs=(before.get(n) for n in job.needs),
        # Started once a shard has run; pending while only waiting in the queue.
        running=bool(running or files.done or files.restarts),
    )
    if state in ("running", "pending") and not queued and job_id is not None:
        return "ended"
    return state


def _ended_failure(
    run_dir: Path, job: SlurmJob, files: StepFiles, job_id: str, info: Mapping[str, tuple[str, str]]
) -> ShardFailure:
    """The first unrecorded shard of a job that left the queue, with Slurm's word on it."""
    missing = sorted(set(range(job.shards)) - files.done)
    idx = missing[0] if missing else 0
    slurm_state, reason = info.get(str(idx) if job.shards > 1 else "", ("", ""))
    what = slurm_state or "ended without recording a result"
    return ShardFailure(
        step=job.step,
        shard=idx,
        attempts=0,
        reason=f"Slurm job {job_id}: {what}"
        + (f" ({reason})" if reason and reason != "None" else ""),
        log=str(log_path(run_dir, job.step, idx)),
    )


def _recorded_failures(run_dir: Path, step: str, files: StepFiles) -> list[ShardFailure]:
    """The shards whose job script recorded a failure for good."""
    return [
        ShardFailure(
            step=step,
            shard=idx,
            attempts=int(rec.get("attempts", "0") or 0),
            reason=_failure_reason(rec),
            log=str(log_path(run_dir, step, idx)),
        )
        for idx, rec in sorted(files.failed.items())
    ]


def overall(snap: Snapshot, cancelled: bool) -> RunState:
    if cancelled:
        return "cancelled"
    if snap.active:
        return "submitted"
    if all(s.state == "done" for s in snap.steps):
        return "done"
    if any(s.state in ("failed", "blocked") for s in snap.steps) or snap.failures:
        return "failed"
    return "cancelled"


def failure_lines(failures: Sequence[ShardFailure]) -> list[str]:
    out: list[str] = []
    for f in failures:
        tries = f" after {f.attempts} attempt(s)" if f.attempts else ""
        out.append(f"step {f.step}, shard {f.shard} failed: {f.reason}{tries}; log: {f.log}")
    return out
