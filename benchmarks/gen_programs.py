"""Generate large optimizer problems: IR programs on the built-in AWS catalog.

A program is a deterministic function of (steps, seed, deadline kind, quota).
Steps come in groups of ten that form a small pipeline DAG (a generate -> filter
-> embed -> ... chain with fan-in); one step in five also waits for a step of an
earlier group, so the groups interlock. Every step has at least 24 options
before pruning:

- GPU steps: two to four accelerator types, three or four batch sizes, replicas
  1..4 or 1..8 (1..16 or 1..32 when every accelerator comes in 8-GPU instances
  only: replicas pack onto instances), spot allowed, batch / none / interval checkpoints, GPU memory
  fit from ``model_memory`` and ``memory_per_item``;
- CPU steps: three CPU instance types, replicas 1..8, spot allowed or not.

Throughputs follow the accelerators' relative speed with noise, so faster
hardware is usually but not always worth its price. Deadlines sit between the
fastest possible makespan (every step at its fastest option, no quota) and the
makespan of the cheapest plan: ``tight`` at 15 % of that range, ``loose`` at 60 %.
With ``quota``, accelerators and vCPUs are capped at a fraction of what the
fastest plan would hold at its peak, and the deadline is taken on the same
scale from a quota-respecting schedule of the fastest plan, so that it can be met.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from exo.compiler.candidates import has_spot_candidate
from exo.compiler.catalog import Catalog, load_catalog
from exo.compiler.costmodel import enumerate_options, quota_limits, quota_resources, usage
from exo.compiler.ir import (
    Checkpoint,
    Dataset,
    InputRef,
    Program,
    Quota,
    ReplicaRange,
    Step,
    Throughput,
    Workflow,
)
from exo.compiler.preemption import Confidence
from exo.compiler.schedule import Jobs, makespan, priority_order, serial_sgs

DeadlineKind = Literal["tight", "loose", "none"]

#: Relative speed of each accelerator (A10G = 1), from public BF16/FP16 figures.
SPEED = {
    "T4": 0.45,
    "L4": 0.9,
    "A10G": 1.0,
    "V100": 1.3,
    "A100": 2.6,
    "A100-80GB": 2.9,
    "H100": 6.0,
    "H200": 6.8,
}
GPU_SETS: tuple[tuple[str, ...], ...] = (
    ("L4", "A10G"),
    ("T4", "L4", "A10G"),
    ("A10G", "A100"),
    ("L4", "A10G", "A100"),
    ("A100", "A100-80GB", "H100"),
    ("A100-80GB", "H100", "H200"),
    ("T4", "V100", "A10G", "L4"),
)
#: Accelerators AWS sells only in 8-GPU instances: replicas pack 8 to an instance, so
#: their steps get 4x the replica range (1..16 or 1..32), i.e. 2 or 4 instance counts.
EIGHT = frozenset({"A100", "A100-80GB", "H100", "H200"})
BATCHES: tuple[tuple[int, ...], ...] = ((8, 16, 32, 64), (16, 32, 64), (32, 64, 128), (4, 8, 16))
GROUP = 10


def _gpu_step(rng: random.Random, name: str, preds: Sequence[str]) -> Step:
    accels = rng.choice(GPU_SETS)
    batches = rng.choice(BATCHES)
    base = rng.uniform(0.5, 20.0)  # items/s on an A10G at the smallest batch
    per_batch: dict[str, dict[int, float]] = {}
    for a in accels:
        speed = SPEED[a] * rng.uniform(0.8, 1.25)
        per_batch[a] = {
            b: round(base * speed * (1.0 + 0.9 * i) ** 0.8, 4) for i, b in enumerate(batches)
        }
    kind = rng.choice(("batch", "batch", "none", "interval"))
    ck = Checkpoint(kind=kind, interval_h=0.5 if kind == "interval" else None)  # type: ignore[arg-type]
    return Step(
        name=name,
        input=InputRef(kind="step", name=preds[0])
        if preds
        else InputRef(kind="dataset", name="corpus"),
        after=tuple(preds[1:]),
        items=rng.randrange(20_000, 400_000, 1000),
        accelerators=accels,
        gpus=1,
        throughput=Throughput(per_batch=per_batch),
        batch_sizes=batches,
        replicas=ReplicaRange(min=1, max=rng.choice((4, 8)) * (4 if set(accels) <= EIGHT else 1)),
        startup_h=rng.choice((0.05, 0.1, 0.2)),
        model_memory_gib=rng.choice((6.0, 10.0, 14.0)),
        memory_per_item_gib=rng.choice((0.05, 0.1, 0.15)),
        checkpoint=ck,
    )


def _cpu_step(rng: random.Random, name: str, preds: Sequence[str]) -> Step:
    return Step(
        name=name,
        input=InputRef(kind="step", name=preds[0])
        if preds
        else InputRef(kind="dataset", name="corpus"),
        after=tuple(preds[1:]),
        items=rng.randrange(20_000, 400_000, 1000),
        cpu=4,
        memory_gib=8.0,
        throughput=Throughput(flat={"cpu": round(rng.uniform(20.0, 400.0), 2)}),
        replicas=ReplicaRange(min=1, max=8),
        spot=rng.choice(("allowed", "allowed", "never")),
    )


def _skeleton(n_steps: int, seed: int) -> list[Step]:
    rng = random.Random(seed)
    steps: list[Step] = []
    for i in range(n_steps):
        g, k = divmod(i, GROUP)
        name = f"g{g}_s{k}"
        preds: list[str] = []
        if k:
            preds.append(f"g{g}_s{rng.randrange(max(0, k - 3), k)}")
            if k >= 3 and rng.random() < 0.3:
                other = f"g{g}_s{rng.randrange(0, k)}"
                if other not in preds:
                    preds.append(other)
        if g and rng.random() < 0.2:
            earlier = f"g{rng.randrange(max(0, g - 5), g)}_s{rng.randrange(GROUP)}"
            if earlier not in preds:
                preds.append(earlier)
        make = _gpu_step if rng.random() < 0.65 else _cpu_step
        steps.append(make(rng, name, preds))
    return steps


def _preds(steps: Sequence[Step]) -> tuple[tuple[int, ...], ...]:
    pos = {s.name: i for i, s in enumerate(steps)}
    return tuple(tuple(sorted(pos[p] for p in s.predecessors())) for s in steps)


def generate(
    n_steps: int,
    *,
    seed: int = 1,
    deadline: DeadlineKind = "loose",
    quota: bool = False,
    catalog: Catalog | None = None,
) -> tuple[Program, Catalog]:
    """A program of ``n_steps`` steps and the catalog it is planned on."""
    cat = catalog or load_catalog("aws/us-east-1", Path.cwd())
    steps = _skeleton(n_steps, seed)
    preds = _preds(steps)
    # the workflow's confidence, shared among its steps with a spot option (DESIGN §3)
    conf = Confidence(0.95, max(1, sum(1 for s in steps if has_spot_candidate(s, cat))))
    fastest = []
    cheapest = []
    for s in steps:
        opts = enumerate_options(s, cat, conf)
        fastest.append(min(opts, key=lambda o: (o.P, o.cost)))
        cheapest.append(min(opts, key=lambda o: (o.cost, o.P)))
    q = Quota()
    if quota:
        q = _quota_for(fastest, preds)
    lo = _span(fastest, preds, q)
    hi = max(_span(cheapest, preds, q), lo)
    frac = {"tight": 0.15, "loose": 0.6}.get(deadline)
    deadline_h = None if frac is None else round(lo + frac * (hi - lo), 3)
    wf = Workflow(
        name=f"bench-{n_steps}-{deadline}{'-quota' if quota else ''}",
        deadline_h=deadline_h,
        budget_usd=None,
        objective="cost",
        confidence=conf.confidence,
        quota=q,
    )
    program = Program(
        workflow=wf,
        datasets={"corpus": Dataset(name="corpus", items=100_000)},
        steps=tuple(steps),
    )
    return program, cat


def _span(opts: Sequence[object], preds: tuple[tuple[int, ...], ...], q: Quota) -> float:
    from exo.compiler.costmodel import Option

    chosen = [o for o in opts if isinstance(o, Option)]
    resources = quota_resources(q)
    jobs = Jobs(
        tuple(o.P for o in chosen),
        preds,
        tuple(usage(o, resources) for o in chosen) if resources else (),
        quota_limits(q) if resources else (),
    )
    order = priority_order(jobs, [float(i) for i in range(jobs.size)])
    return makespan(jobs, serial_sgs(jobs, order))


def _quota_for(fastest: Sequence[object], preds: tuple[tuple[int, ...], ...]) -> Quota:
    """Half of what the fastest plan would hold at its ASAP peak, per resource."""
    from exo.compiler.costmodel import Option

    chosen = [o for o in fastest if isinstance(o, Option)]
    accels = sorted({o.accelerator for o in chosen if o.accelerator})
    probe = Quota(accelerators={a: 10**9 for a in accels}, cpu=10**9)
    resources = quota_resources(probe)
    jobs = Jobs(tuple(o.P for o in chosen), preds)
    from exo.compiler.schedule import asap

    starts = asap(jobs)
    # sweep: usage changes only at starts (+) and finishes (-); finishes first on ties
    events: list[tuple[float, int, int]] = []
    for i, o in enumerate(chosen):
        events.append((starts[i], 1, i))
        events.append((starts[i] + o.P, 0, i))
    events.sort()
    load = [0] * len(resources)
    peak = [0] * len(resources)
    for _, kind, i in events:
        u = usage(chosen[i], resources)
        sign = 1 if kind else -1
        load = [a + sign * b for a, b in zip(load, u, strict=True)]
        peak = [max(a, b) for a, b in zip(peak, load, strict=True)]
    biggest = [max(usage(o, resources)[r] for o in chosen) for r in range(len(resources))]
    limits = [max(b, p // 4) for b, p in zip(biggest, peak, strict=True)]
    acc = {a: limits[i] for i, a in enumerate(accels)}
    return Quota(accelerators=acc, cpu=limits[-1])
