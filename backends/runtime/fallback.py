"""The deadline-aware fallback at run time: when a spot shard must move to on-demand.

The rule is :func:`exo.compiler.fallback.spot_attempt_fits`, the one the
simulator applies (``exoc simulate --policy fallback``; see docs/simulate.md):
before a spot shard starts an attempt, or while it waits for spot capacity, it
stays on spot while ``now + remaining + 2r + c <= due``; otherwise it moves to
the on-demand tier of the same plan, for good. Here the plan's figures become
run-time figures: each spot step's due time (hours after the run started, from
the plan's latest-finish schedule), its restart cost ``r``, checkpoint
interval ``c`` and work, and a shard's remaining work from the progress its
checkpoint folder records. Runners call :func:`must_fall_back` for a shard
that is waiting to (re)start on spot and move it when it says so; this module
has no I/O beyond reading a checkpoint folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exo.compiler.fallback import spot_attempt_fits

from ..api import PlannedWorkflow
from . import checkpoints
from .shards import shard_count, shard_range


@dataclass(frozen=True, slots=True)
class SpotStep:
    """What the rule needs of one spot step (hours; times after the run's start)."""

    name: str
    due_h: float
    restart_h: float
    checkpoint_h: float
    work_h: float
    items: int
    shards: int

    @property
    def saves(self) -> bool:
        """Whether a preemption keeps committed work (``c`` shorter than the work)."""
        return 0.0 < self.checkpoint_h < self.work_h


def spot_steps(planned: PlannedWorkflow) -> dict[str, SpotStep]:
    """The plan's spot steps with their due times (deadline, else planned makespan).

    Empty for a plan the cost model cannot reproduce (written by hand, or for
    another catalog): without its figures there is no due time to keep.
    """
    from exo.compiler.simsteps import due_times, plan_steps

    plan = planned.plan
    try:
        steps = plan_steps(planned.program, planned.catalog, plan)
    except (ValueError, KeyError):
        return {}
    target = plan.deadline_h if plan.deadline_h is not None else plan.makespan_h
    if target is None:
        return {}
    out: dict[str, SpotStep] = {}
    for s, due in zip(steps, due_times(steps, target), strict=True):
        if not s.on_spot:
            continue
        step = planned.program.step(s.name)
        items = (step.items or 0) if step.throughput is not None else 0
        n = shard_count(step, planned.step_plan(s.name))
        out[s.name] = SpotStep(s.name, due, s.startup_h, s.checkpoint_h, s.work_h, items, n)
    return out


def remaining_h(step: SpotStep, committed_items: int, shard_items: int) -> float:
    """Work (hours) a shard has not saved yet: all of it when nothing is checkpointed."""
    if not step.saves or shard_items <= 0:
        return step.work_h
    left = max(shard_items - committed_items, 0) / shard_items
    return step.work_h * left


def shard_remaining_h(step: SpotStep, checkpoint_root: Path, index: int) -> float:
    """The shard's remaining work, read from its checkpoint folder."""
    if not step.saves:  # all of it whatever the folder says (see remaining_h): no read
        return step.work_h
    shard = shard_range(step.items, step.shards, index) if step.items else None
    if shard is None:
        return step.work_h
    folder = checkpoints.shard_checkpoint(checkpoint_root, step.name, index)
    done = checkpoints.progress(folder, shard.start, shard.end).items_committed
    return remaining_h(step, done, shard.end - shard.start)


def must_fall_back(step: SpotStep, elapsed_h: float, remaining: float) -> bool:
    """True when a spot attempt may no longer start: move the shard to on-demand, for good."""
    return not spot_attempt_fits(
        elapsed_h, step.due_h, remaining, step.restart_h, step.checkpoint_h
    )


def run_started(path: Path, now: Callable[[], float] = time.time) -> float:
    """When the fallback's clock started (seconds since the epoch), kept in ``path``.

    Written on the first call, read afterwards, so a resumed run keeps its due times.
    """
    try:
        return float(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        t = now()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{t:.3f}\n", encoding="utf-8")
        return t


def describe(step: SpotStep, elapsed_h: float, remaining: float) -> str:
    """Why a shard moved, in the rule's terms (for logs and status)."""
    margin = 2 * step.restart_h + step.checkpoint_h
    return (
        f"{elapsed_h * 3600:.0f}s elapsed + {remaining * 3600:.0f}s of work left + "
        f"{margin * 3600:.0f}s margin (2r + c) > due at {step.due_h * 3600:.0f}s"
    )
