"""Independent checks of the optimizer: formulas, a schedule checker and a brute-force oracle.

Nothing here reuses the optimizer's code paths beyond the IR and catalog models:
the DESIGN §3 (cost model v2) formulas are written out again (packing, the exact
E with plain ``exp``, the confidence fixed point with scipy's Poisson CDF scanned
from k = 0), option legality is re-derived from the rules, every replica count is
enumerated (not only the undominated ones), and the oracle enumerates every
combination of options and, with quotas, every precedence-feasible order of a
serial schedule (the active schedules include an optimal one).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import poisson

from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import (
    Checkpoint,
    Duration,
    InputRef,
    Program,
    Quota,
    ReplicaRange,
    Step,
    Throughput,
    Workflow,
)
from exo.compiler.plan import Plan

TOL_H = 1e-6
TOL_USD = 1e-6


# --------------------------------------------------------------------------- formulas


def k_quantile(t: float, d: float, lam: float, q: float) -> int | None:
    """Smallest k >= 0 with PoissonCDF(k; λ(T + k d)) >= q, k <= 10,000 (DESIGN §3)."""
    if lam <= 0:
        return 0
    if lam * d >= 1:  # "always" no such k
        return None
    for k in range(10_001):
        if poisson.cdf(k, lam * (t + k * d)) >= q:
            return k
    return None


def expected(t: float, s: float, c: float, lam: float) -> float:
    """E of one instance: (e^{λS} - 1)/λ + (e^{λS}/λ)(j (e^{λc} - 1) + (e^{λρ} - 1))."""
    if lam <= 0:
        return t
    w = t - s
    j = math.floor(w / c) if 0 < c <= w else 0
    rho = w - j * c
    return (math.exp(lam * s) - 1) / lam + math.exp(lam * s) / lam * (
        j * (math.exp(lam * c) - 1) + (math.exp(lam * rho) - 1)
    )


def per_instance(step: Step, inst: InstanceType) -> int:
    """Replicas per instance: floor(accelerator_count / gpus), within vCPUs and memory."""
    if inst.accelerator is None or not step.gpus:
        return 1
    k = inst.accelerator_count // step.gpus
    if step.cpu:
        k = min(k, inst.vcpus // step.cpu)
    if step.memory_gib:
        k = min(k, int(inst.memory_gib // step.memory_gib))
    return max(k, 1)


def perf_key(step: Step, inst: InstanceType) -> str | None:
    keys = (
        [inst.instance_type, inst.accelerator] if inst.accelerator else [inst.instance_type, "cpu"]
    )
    if step.throughput is not None:
        have = set(step.throughput.per_batch) | set(step.throughput.flat)
        return next((k for k in keys if k in have), None)
    assert step.duration is not None
    hit = next((k for k in keys if k in step.duration.per_key), None)
    if hit is not None:
        return hit
    return "default" if step.duration.default_h is not None else None


def figures(
    step: Step, inst: InstanceType, spot: bool, batch: int | None, n: int, q_s: float
) -> tuple[int, float, float, float, float] | None:
    """(m, T, E, P, cost) by DESIGN §3, or None for a spot option that cannot be promised."""
    key = perf_key(step, inst)
    assert key is not None
    m = -(-n // per_instance(step, inst))
    theta: float | None = None
    if step.throughput is not None:
        if key in step.throughput.per_batch:
            assert batch is not None
            theta = step.throughput.per_batch[key][batch]
        else:
            theta = step.throughput.flat[key]
        t = step.startup_h + (step.items or 0) / (n * theta * 3600)
    else:
        assert step.duration is not None
        d = step.duration.default_h if key == "default" else step.duration.per_key[key]
        assert d is not None
        t = step.startup_h + d
    if not spot:
        return m, t, t, t, m * inst.ondemand_usd_per_hour * t
    lam = inst.spot_preemptions_per_hour
    r = step.startup_h
    if step.checkpoint.kind == "interval":
        assert step.checkpoint.interval_h is not None
        c = step.checkpoint.interval_h
    elif step.checkpoint.kind == "batch" and batch is not None and theta:
        c = batch / theta / 3600
    else:
        c = t - r
    k = k_quantile(t, c + r, lam, q_s ** (1 / m))
    if k is None:
        return None
    e = expected(t, r, c, lam)
    assert inst.spot_usd_per_hour is not None
    return m, t, e, t + k * (c + r), m * inst.spot_usd_per_hour * e


@dataclass(frozen=True)
class Choice:
    step: str
    inst: InstanceType
    spot: bool
    batch: int | None
    replicas: int
    instances: int
    T: float
    E: float
    P: float
    cost: float


def _candidates(step: Step, catalog: Catalog) -> list[tuple[InstanceType, int | None, bool]]:
    """(instance, batch, spot) triples the DESIGN §3 rules allow (replicas and quota aside)."""
    out: list[tuple[InstanceType, int | None, bool]] = []
    for inst in catalog.instances:
        if step.accelerators:
            if not (
                inst.instance_type in step.accelerators or inst.accelerator in step.accelerators
            ):
                continue
            if inst.accelerator_count < step.gpus:
                continue
        elif inst.accelerator is not None:
            continue
        if step.cpu is not None and inst.vcpus < step.cpu:
            continue
        if step.memory_gib is not None and inst.memory_gib < step.memory_gib:
            continue
        key = perf_key(step, inst)
        if key is None:
            continue
        if step.throughput is not None and key in step.throughput.per_batch:
            batches: list[int | None] = list(
                step.batch_sizes or sorted(step.throughput.per_batch[key])
            )
        else:
            batches = [None]
        spots = {"never": [False], "only": [True], "allowed": [False, True]}[step.spot]
        for b in batches:
            if (
                step.throughput is not None
                and b is not None
                and b not in step.throughput.per_batch[key]
            ):
                continue
            if inst.accelerator is not None and (step.model_memory_gib or step.memory_per_item_gib):
                need = (step.model_memory_gib or 0) + (b or 0) * (step.memory_per_item_gib or 0)
                if (
                    inst.accelerator_memory_gib is None
                    or need > step.gpus * inst.accelerator_memory_gib
                ):
                    continue
            for sp in spots:
                if sp and inst.spot_usd_per_hour is None:
                    continue
                out.append((inst, b, sp))
    return out


def step_share(program: Program, catalog: Catalog) -> float:
    """q_s = confidence^(1/N), N = steps with at least one spot option."""
    n = sum(1 for s in program.steps if any(sp for _, _, sp in _candidates(s, catalog)))
    return program.workflow.confidence ** (1 / max(n, 1))


def legal_choices(step: Step, catalog: Catalog, q_s: float, quota: Quota) -> list[Choice]:
    """Every option of a step by the DESIGN §3 rules, within the quota."""
    out: list[Choice] = []
    for inst, b, sp in _candidates(step, catalog):
        for n in range(step.replicas.min, step.replicas.max + 1):
            m = -(-n // per_instance(step, inst))
            if any(u > q for u, q in zip(hold(inst, m, quota), limits(quota), strict=True)):
                continue
            got = figures(step, inst, sp, b, n, q_s)
            if got is not None:
                out.append(Choice(step.name, inst, sp, b, n, *got))
    return out


# --------------------------------------------------------------------------- quotas, schedules


def limits(quota: Quota) -> list[int]:
    out = [quota.accelerators[a] for a in sorted(quota.accelerators)]
    if quota.cpu is not None:
        out.append(quota.cpu)
    return out


def hold(inst: InstanceType, m: int, quota: Quota) -> list[int]:
    """What m whole instances hold of each quota resource."""
    out = [
        m * inst.accelerator_count if inst.accelerator == a else 0
        for a in sorted(quota.accelerators)
    ]
    if quota.cpu is not None:
        out.append(m * inst.vcpus)
    return out


def preds_of(program: Program) -> dict[str, list[str]]:
    return {s.name: list(s.predecessors()) for s in program.steps}


def sgs(
    order: Sequence[str],
    dur: dict[str, float],
    use: dict[str, list[int]],
    cap: list[int],
    preds: dict[str, list[str]],
) -> dict[str, float]:
    """Serial schedule generation, written plainly: try every event time in order."""
    start: dict[str, float] = {}
    for j in order:
        est = max((start[i] + dur[i] for i in preds[j]), default=0.0)
        cands = sorted({est} | {start[i] + dur[i] for i in start if start[i] + dur[i] > est})
        for t in cands:
            ok = True
            for tau in sorted({t} | {start[i] for i in start if t < start[i] < t + dur[j]}):
                load = list(use[j])
                for i in start:
                    if start[i] <= tau < start[i] + dur[i]:
                        load = [a + b for a, b in zip(load, use[i], strict=True)]
                if any(a > b for a, b in zip(load, cap, strict=True)):
                    ok = False
                    break
            if ok:
                start[j] = t
                break
    return start


def min_makespan(program: Program, chosen: dict[str, Choice], quota: Quota) -> float:
    preds = preds_of(program)
    dur = {n: c.P for n, c in chosen.items()}
    cap = limits(quota)
    if not cap:
        start: dict[str, float] = {}
        for s in program.steps:
            start[s.name] = max((start[i] + dur[i] for i in preds[s.name]), default=0.0)
        return max(start[n] + dur[n] for n in start)
    use = {n: hold(c.inst, c.instances, quota) for n, c in chosen.items()}
    best = math.inf
    names = [s.name for s in program.steps]
    for perm in itertools.permutations(names):
        pos = {n: i for i, n in enumerate(perm)}
        if any(pos[p] > pos[n] for n in names for p in preds[n]):
            continue
        st = sgs(perm, dur, use, cap, preds)
        best = min(best, max(st[n] + dur[n] for n in names))
    return best


@dataclass(frozen=True)
class Optimum:
    cost: float
    makespan: float


def brute_force(program: Program, catalog: Catalog) -> Optimum | None:
    """The DESIGN §3 optimum by exhaustive search (cost, or time then cost)."""
    wf = program.workflow
    q_s = step_share(program, catalog)
    per_step = [legal_choices(s, catalog, q_s, wf.quota) for s in program.steps]
    if any(not c for c in per_step):
        return None
    plans: list[tuple[float, float]] = []
    for combo in itertools.product(*per_step):
        cost = sum(c.cost for c in combo)
        if wf.budget_usd is not None and cost > wf.budget_usd + TOL_USD:
            continue
        span = min_makespan(program, {c.step: c for c in combo}, wf.quota)
        if wf.deadline_h is not None and span > wf.deadline_h + TOL_H:
            continue
        plans.append((cost, span))
    if not plans:
        return None
    if wf.objective == "cost":
        c, m = min(plans)
        return Optimum(c, m)
    m_star = min(m for _, m in plans)
    c = min(c for c, m in plans if m <= m_star + TOL_H)
    return Optimum(c, m_star)


# --------------------------------------------------------------------------- plan checker


def check_plan(program: Program, catalog: Catalog, plan: Plan) -> list[str]:
    """Everything wrong with a plan: figures, legality, precedence, deadline, budget, quotas."""
    wf = program.workflow
    bad: list[str] = []
    if plan.status == "infeasible":
        return bad if not plan.steps else ["infeasible plan with steps"]
    by = {s.name: s for s in plan.steps}
    if set(by) != {s.name for s in program.steps}:
        return ["plan steps differ from the program's"]
    for step in program.steps:
        sp = by[step.name]
        inst = catalog.get(sp.instance_type)
        if inst is None:
            bad.append(f"{step.name}: unknown instance")
            continue
        legal = legal_choices(step, catalog, step_share(program, catalog), wf.quota)
        match = [
            c
            for c in legal
            if c.inst.instance_type == sp.instance_type
            and c.spot == sp.spot
            and c.batch == sp.batch_size
            and c.replicas == sp.replicas
        ]
        if not match:
            bad.append(f"{step.name}: not a legal option")
            continue
        c = match[0]
        for label, got, want in (
            ("E", sp.expected_duration_h, c.E),
            ("P", sp.p_duration_h, c.P),
            ("cost", sp.expected_cost_usd, c.cost),
        ):
            if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
                bad.append(f"{step.name}: {label} {got} != {want}")
        if sp.accelerator != inst.accelerator or sp.accelerator_count != inst.accelerator_count:
            bad.append(f"{step.name}: accelerator fields")
        if sp.instances != c.instances:
            bad.append(f"{step.name}: instances {sp.instances} != {c.instances}")
    preds = preds_of(program)
    finish = {n: by[n].start_h + by[n].p_duration_h for n in by}
    for n, ps in preds.items():
        if by[n].start_h < -1e-12:
            bad.append(f"{n} starts before 0")
        for p in ps:
            if by[n].start_h < finish[p] - 1e-9:
                bad.append(f"{n} starts before {p} ends")
    span = max(finish.values(), default=0.0)
    if plan.makespan_h is None or not math.isclose(
        plan.makespan_h, span, rel_tol=1e-9, abs_tol=1e-12
    ):
        bad.append(f"makespan {plan.makespan_h} != {span}")
    cost = sum(s.expected_cost_usd for s in plan.steps)
    if plan.expected_cost_usd is None or not math.isclose(
        plan.expected_cost_usd, cost, rel_tol=1e-9
    ):
        bad.append("total cost")
    if wf.deadline_h is not None and span > wf.deadline_h + TOL_H:
        bad.append("deadline missed")
    if wf.budget_usd is not None and cost > wf.budget_usd + TOL_USD:
        bad.append("over budget")
    cap = limits(wf.quota)
    if cap:
        for t in sorted({s.start_h for s in plan.steps}):
            load = [0] * len(cap)
            for s in plan.steps:
                if s.start_h <= t < s.start_h + s.p_duration_h:
                    inst = catalog.get(s.instance_type)
                    assert inst is not None
                    load = [
                        a + b for a, b in zip(load, hold(inst, s.instances, wf.quota), strict=True)
                    ]
            if any(a > b for a, b in zip(load, cap, strict=True)):
                bad.append(f"quota exceeded at t={t}: {load} > {cap}")
    if plan.lower_bound_usd is None or plan.lower_bound_usd > cost + 1e-9:
        bad.append("lower bound above the cost")
    if plan.status == "optimal" and plan.gap not in (0.0, None):
        bad.append("optimal with a gap")
    return bad


# --------------------------------------------------------------------------- random cases


def random_catalog(rng: random.Random) -> Catalog:
    rows: list[InstanceType] = []
    specs = [
        ("ga.1", "GA", 1, 4, 16, 24.0),
        ("ga.4", "GA", 4, 16, 64, 24.0),
        ("gb.1", "GB", 1, 8, 64, 80.0),
        ("gb.2", "GB", 2, 16, 128, 80.0),
        ("c.4", None, 0, 4, 8, None),
        ("c.8", None, 0, 8, 32, None),
    ]
    for name, acc, count, vcpus, mem, amem in specs:
        if rng.random() < 0.15:
            continue
        od = round(rng.uniform(0.1, 4.0) * max(count, 1), 3)
        spot = None if rng.random() < 0.25 else round(od * rng.uniform(0.2, 0.7), 3)
        rows.append(
            InstanceType(
                instance_type=name,
                accelerator=acc,
                accelerator_count=count,
                vcpus=vcpus,
                memory_gib=mem,
                ondemand_usd_per_hour=od,
                spot_usd_per_hour=spot,
                accelerator_memory_gib=amem,
                spot_preemptions_per_hour=round(rng.choice([0.0, 0.05, 0.2, 0.5, 1.5]), 3),
            )
        )
    if not any(r.accelerator is None for r in rows):
        rows.append(
            InstanceType(
                instance_type="c.2",
                accelerator=None,
                accelerator_count=0,
                vcpus=2,
                memory_gib=4,
                ondemand_usd_per_hour=0.1,
                spot_usd_per_hour=0.03,
                spot_preemptions_per_hour=0.1,
            )
        )
    return Catalog(name="random", default_spot_preemptions_per_hour=0.1, instances=tuple(rows))


def _random_step(rng: random.Random, name: str, preds: list[str]) -> Step:
    inp = InputRef(kind="step", name=preds[0]) if preds and rng.random() < 0.6 else None
    after = tuple(p for p in preds if inp is None or p != inp.name)
    common = {
        "name": name,
        "input": inp,
        "after": after,
        "spot": rng.choice(["allowed", "allowed", "allowed", "never", "only"]),
        "startup_h": rng.choice([0.0, 0.05, 0.25]),
    }
    kind = rng.choice(["gpu", "gpu", "cpu", "duration"])
    if kind == "gpu":
        batches = tuple(sorted(rng.sample([4, 8, 16, 32], rng.choice([1, 2]))))
        per = {
            a: {b: round(rng.uniform(0.5, 30.0), 3) for b in batches}
            for a in rng.sample(["GA", "GB"], rng.choice([1, 2]))
        }
        ck = rng.choice(["none", "batch", "interval"])
        return Step(
            **common,  # type: ignore[arg-type]
            items=rng.randrange(1_000, 200_000),
            accelerators=tuple(sorted(per)),
            gpus=rng.choice([1, 1, 2]),
            cpu=rng.choice([None, None, 8]),
            throughput=Throughput(per_batch=per),
            batch_sizes=batches,
            replicas=ReplicaRange(min=1, max=rng.choice([1, 2, 4])),
            model_memory_gib=rng.choice([None, 10.0, 20.0]),
            memory_per_item_gib=rng.choice([None, 0.5]),
            checkpoint=Checkpoint(kind=ck, interval_h=0.2 if ck == "interval" else None),  # type: ignore[arg-type]
        )
    if kind == "cpu":
        return Step(
            **common,  # type: ignore[arg-type]
            items=rng.randrange(1_000, 500_000),
            cpu=rng.choice([None, 4]),
            throughput=Throughput(flat={"cpu": round(rng.uniform(5.0, 200.0), 2)}),
            replicas=ReplicaRange(min=1, max=rng.choice([1, 2, 3])),
        )
    accels = rng.choice([(), ("GA",), ("GA", "GB")])
    return Step(
        **common,  # type: ignore[arg-type]
        accelerators=accels,
        gpus=1 if accels else 0,
        duration=Duration(
            default_h=round(rng.uniform(0.1, 3.0), 3),
            per_key={"GB": round(rng.uniform(0.1, 2.0), 3)} if "GB" in accels else {},
        ),
    )


def random_case(seed: int, *, n_steps: int = 3, quota: bool = False) -> tuple[Program, Catalog]:
    rng = random.Random(seed)
    catalog = random_catalog(rng)
    steps: list[Step] = []
    for i in range(n_steps):
        names = [s.name for s in steps]
        preds = sorted(rng.sample(names, rng.randrange(0, min(2, len(names)) + 1)))
        steps.append(_random_step(rng, f"s{i}", preds))
    q = Quota()
    if quota:
        q = Quota(
            accelerators={"GA": rng.choice([1, 2, 4]), "GB": rng.choice([1, 2])},
            cpu=rng.choice([None, 8, 16]),
        )
    objective = rng.choice(["cost", "cost", "time"])
    wf = Workflow(
        name=f"random-{seed}",
        deadline_h=rng.choice([None, round(rng.uniform(0.5, 20.0), 2)]),
        budget_usd=rng.choice([None, None, round(rng.uniform(1.0, 40.0), 2)]),
        objective=objective,  # type: ignore[arg-type]
        confidence=rng.choice([0.9, 0.95, 0.99]),
        quota=q,
    )
    return Program(workflow=wf, steps=tuple(steps)), catalog
