"""Shards: how a step's items are split, the same way by every backend (DESIGN §6).

One long-lived shard per planned replica, each over ``[floor(W*i/n),
floor(W*(i+1)/n))`` of the step's ``W`` items; the Slurm job script and the
Kubernetes entrypoint compute the same range in shell arithmetic from the array
or completion index. ``exo.backends.api`` re-exports these names for plugins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exo.compiler.ir import CPU_KEY, Step
from exo.compiler.plan import StepPlan


@dataclass(frozen=True, slots=True)
class Shard:
    """A contiguous range of items ``[start, end)`` processed by one long-lived process."""

    index: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def shard_count(step: Step, sp: StepPlan) -> int:
    """How many shards a step runs (DESIGN §6): shards are replicas.

    A throughput step planned with ``n`` replicas runs ``n`` shards, one per
    replica, all at once; a duration step runs one.
    """
    if step.throughput is None:
        return 1
    return max(1, sp.replicas)


def shard_range(items: int, count: int, index: int) -> Shard:
    """Shard ``index`` of ``count`` over ``items``: ``[floor(W*i/n), floor(W*(i+1)/n))``.

    Every backend computes exactly this (the Slurm job script and the
    Kubernetes entrypoint in shell arithmetic, from the array or completion index).
    """
    return Shard(index, (items * index) // count, (items * (index + 1)) // count)


def shards(step: Step, sp: StepPlan) -> list[Shard]:
    items = step.items or 0
    n = shard_count(step, sp)
    return [shard_range(items, n, i) for i in range(n)]


def planned_throughput(step: Step, sp: StepPlan) -> float | None:
    """Items/s of one replica on the planned tier (DESIGN §3's lookup order), if known."""
    tp = step.throughput
    if tp is None:
        return None
    known = tp.keys()
    for key in (sp.instance_type, sp.accelerator or CPU_KEY):
        if key in known:
            return tp.rate(key, sp.batch_size)
    return None


def micro_batch_size(step: Step, sp: StepPlan) -> int | None:
    """The micro-batch a shard works (and commits) in: ``{batch_size}`` / ``EXO_BATCH_SIZE``.

    The planned batch size; for a batch-independent throughput step with an
    interval checkpoint, the items of one interval at the planned throughput
    (so committing every micro-batch checkpoints at the declared interval);
    otherwise ``None``: the whole shard is one micro-batch.
    """
    if sp.batch_size is not None:
        return sp.batch_size
    ck = step.checkpoint
    rate = planned_throughput(step, sp)
    if ck.kind == "interval" and ck.interval_h and rate:
        return max(1, math.ceil(rate * ck.interval_h * 3600.0))
    return None
