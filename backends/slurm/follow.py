"""Following a submitted Slurm run: poll the queue until no job of the run is left.

Each poll applies the deadline-aware fallback, reads the run's progress
(``records.py``), reports it, and cancels the steps that can never run because
a step they need failed. Jobs keep running when the follower stops (Ctrl-C);
``exoc run`` attaches to them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..runtime.progress import Reporter
from ..runtime.runs import downstream
from . import scheduler
from .jobs import SlurmJob
from .records import Snapshot, snapshot, step_files
from .rundir import RunConfig
from .scheduler import Cluster, QueuedTask, SlurmUnavailable, unavailable


def dependents(jobs: Sequence[SlurmJob]) -> dict[str, set[str]]:
    """For each step, every step downstream of it."""
    return downstream((j.step, j.needs) for j in jobs)


#: Give up following after this long without an answer from the controller.
LOST_CONTACT_S = 300.0


def follow(
    config: RunConfig,
    run_dir: Path,
    jobs: Sequence[SlurmJob],
    ids: Mapping[str, str],
    reporter: Reporter,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """Poll until no job of the run is queued; cancel steps that can never run."""
    below = dependents(jobs)
    cancelled_steps: set[str] = set()
    last_contact = time.monotonic()
    first = True
    while True:
        try:
            queued = scheduler.queue(config.cluster, list(ids.values()))
            last_contact = time.monotonic()
        except SlurmUnavailable as err:
            if time.monotonic() - last_contact > LOST_CONTACT_S:
                raise unavailable(err) from None
            sleep(config.poll_s)
            continue
        if config.fallback is not None:
            config.fallback.apply(config.cluster, run_dir, ids, queued, reporter)
        ended = ended_states(config.cluster, jobs, ids, queued, run_dir)
        snap = snapshot(run_dir, jobs, ids, queued, ended)
        if first:
            reporter.begin(snap.steps)
            first = False
        for s in snap.steps:
            reporter.update(s)
        doomed = {
            d
            for s in snap.steps
            if s.state == "failed"
            for d in below[s.name]
            if d not in cancelled_steps
        }
        doomed_ids = [ids[d] for d in sorted(doomed) if d in ids and _is_queued(ids[d], queued)]
        if doomed_ids:
            reporter.message("cancelling steps that can never run: " + ", ".join(sorted(doomed)))
            try:
                scheduler.cancel(config.cluster, doomed_ids)
            except SlurmUnavailable as err:
                reporter.message(str(err))
        cancelled_steps |= doomed
        if not snap.active:
            return snap
        sleep(config.poll_s)


def _is_queued(job_id: str, queued: Sequence[QueuedTask]) -> bool:
    return any(q.job_id == job_id for q in queued)


def ended_states(
    cluster: Cluster,
    jobs: Sequence[SlurmJob],
    ids: Mapping[str, str],
    queued: Sequence[QueuedTask],
    run_dir: Path,
) -> dict[str, dict[str, tuple[str, str]]]:
    """scontrol states of jobs that left the queue with shards neither done nor failed."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    in_queue = {q.job_id for q in queued}
    for j in jobs:
        job_id = ids.get(j.step)
        if job_id is None or job_id in in_queue:
            continue
        files = step_files(run_dir, j.step)
        if len(files.done) >= j.shards or files.failed:
            continue
        try:
            out[job_id] = scheduler.job_states(cluster, job_id)
        except SlurmUnavailable:
            out[job_id] = {}
    return out
