"""The deadline-aware fallback on Slurm: move waiting spot tasks to the on-demand partition.

While a run is followed, every poll looks at the pending tasks of spot steps
(waiting for their first start, or requeued after a preemption). A task whose
remaining work no longer fits its due time with the ``2r + c`` margin
(``backends/runtime/fallback.py``, the rule ``exoc simulate`` applies) is moved,
while still pending, to the on-demand tier of the same plan: ``scontrol update``
of that array task's partition (and QOS when the options give one), so it keeps
its place in the array and its dependents' ``afterok``. It never goes back:
``state/<step>/shard-<i>.ondemand`` records the move and why. The clock starts
when the run is first followed (``fallback-started`` in the run directory), so a
resumed ``exoc run`` keeps the original due times.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..api import PlannedWorkflow
from ..runtime import fallback
from ..runtime.progress import Reporter
from . import scheduler
from .jobs import Tier, tier
from .options import SlurmOptions
from .scheduler import Cluster, QueuedTask, SlurmUnavailable

STARTED = "fallback-started"
_RANGE = re.compile(r"^\[?([0-9,\-]+)(?:%\d+)?\]?$")


@dataclass(frozen=True, slots=True)
class SlurmFallback:
    steps: Mapping[str, fallback.SpotStep]
    #: The on-demand tier of each spot step.
    ondemand: Mapping[str, Tier]

    @staticmethod
    def of(planned: PlannedWorkflow, options: SlurmOptions) -> SlurmFallback | None:
        """The fallback of a plan (None with ``fallback = none`` or without spot steps)."""
        if options.fallback == "none":
            return None
        steps = fallback.spot_steps(planned)
        if not steps:
            return None
        od = {
            name: tier(
                planned.program.step(name),
                planned.step_plan(name).model_copy(update={"spot": False}),
                options,
            )
            for name in steps
        }
        return SlurmFallback(steps, od)

    def apply(
        self,
        cluster: Cluster,
        run_dir: Path,
        ids: Mapping[str, str],
        queued: Sequence[QueuedTask],
        reporter: Reporter,
        now: Callable[[], float] = time.time,
    ) -> None:
        """Move every pending spot task that no longer fits to on-demand."""
        elapsed_h = (now() - started(run_dir, now)) / 3600.0
        step_of = {job: step for step, job in ids.items() if step in self.steps}
        for q in queued:
            name = step_of.get(q.job_id)
            if name is None or q.state != "PENDING":
                continue
            for idx in pending_indices(q.task):
                self._consider(cluster, run_dir, name, q, idx, elapsed_h, reporter)

    def _consider(
        self,
        cluster: Cluster,
        run_dir: Path,
        name: str,
        q: QueuedTask,
        idx: int,
        elapsed_h: float,
        reporter: Reporter,
    ) -> None:
        mark = run_dir / "state" / name / f"shard-{idx}.ondemand"
        if mark.exists():
            return
        step = self.steps[name]
        left = fallback.shard_remaining_h(step, run_dir / "checkpoints", idx)
        if not fallback.must_fall_back(step, elapsed_h, left):
            return
        target = q.job_id if q.task is None else f"{q.job_id}_{idx}"
        why = fallback.describe(step, elapsed_h, left)
        try:
            move(cluster, target, self.ondemand[name])
        except SlurmUnavailable as err:
            reporter.message(f"{name}: shard {idx} could not move to on-demand: {err}")
            return
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(why + "\n", encoding="utf-8")
        reporter.message(f"{name}: shard {idx} moved to on-demand ({why})")


def started(run_dir: Path, now: Callable[[], float] = time.time) -> float:
    """When the run was first followed (written on the first call)."""
    return fallback.run_started(run_dir / STARTED, now)


def pending_indices(task: str | None) -> list[int]:
    """Array indices of a squeue ``%K`` field: ``4``, ``[3-9%2]``, ``[1,3-4]`` (None: a plain job)."""
    if task is None:
        return [0]
    m = _RANGE.match(task.strip())
    if m is None:
        return []
    out: list[int] = []
    for part in m.group(1).split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def move(cluster: Cluster, job: str, od: Tier) -> None:
    """``scontrol update`` of a pending task to the on-demand partition (and QOS)."""
    partition = od.partition or scheduler.default_partition(cluster)
    argv = ["scontrol", "update", f"JobId={job}"]
    if partition:
        argv.append(f"Partition={partition}")
    if od.qos:
        argv.append(f"QOS={od.qos}")
    if len(argv) == 3:
        raise SlurmUnavailable("no on-demand partition: set `partition` in the slurm options")
    proc = cluster.call(argv)
    if proc.returncode != 0:
        raise SlurmUnavailable(f"scontrol update {job}: {proc.stderr.strip() or proc.returncode}")
