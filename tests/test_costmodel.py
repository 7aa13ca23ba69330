"""Cost model v2 (DESIGN §3): option rules, packing, the E / P / cost formulas, and pruning."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import special
from scipy.stats import poisson

from exo.compiler import costmodel
from exo.compiler.candidates import Family, Rejection, families, replicas_per_instance
from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.costmodel import (
    Option,
    apply_quota,
    checkpoint_hours,
    enumerate_options,
    enumerate_step,
    enumerate_steps,
    explain_rejections,
    instance_counts,
    make_option,
    prune_dominated,
    quota_resources,
    usage,
    workflow_confidence,
)
from exo.compiler.ir import (
    Checkpoint,
    Program,
    Quota,
    ReplicaRange,
    Step,
    Throughput,
    Workflow,
)
from exo.compiler.preemption import (
    Confidence,
    expected_hours,
    expected_hours_array,
    intervals,
    preemption_quantile,
    preemption_quantiles,
)


def inst(
    name: str,
    accel: str | None,
    count: int = 1,
    *,
    vcpus: int = 8,
    mem: float = 32.0,
    od: float = 1.0,
    spot: float | None = 0.4,
    amem: float | None = 24.0,
    lam: float = 0.2,
) -> InstanceType:
    return InstanceType(
        instance_type=name,
        accelerator=accel,
        accelerator_count=count if accel else 0,
        vcpus=vcpus,
        memory_gib=mem,
        ondemand_usd_per_hour=od,
        spot_usd_per_hour=spot,
        accelerator_memory_gib=amem if accel else None,
        spot_preemptions_per_hour=lam,
    )


CATALOG = Catalog(
    name="test",
    default_spot_preemptions_per_hour=0.2,
    instances=(
        inst("g.small", "A10G", 1, vcpus=4, mem=16, od=1.0, spot=0.4, amem=24, lam=0.5),
        inst("g.big", "A10G", 4, vcpus=48, mem=192, od=5.0, spot=1.5, amem=24, lam=0.5),
        inst("h.one", "H100", 1, vcpus=16, mem=128, od=9.0, spot=None, amem=80),
        inst("c.small", None, vcpus=4, mem=8, od=0.2, spot=0.07, lam=0.1),
        inst("c.big", None, vcpus=16, mem=64, od=0.8, spot=None),
    ),
)


def gpu_step(**kw: object) -> Step:
    base: dict[str, object] = {
        "name": "s",
        "items": 36_000,
        "accelerators": ("A10G", "H100"),
        "gpus": 1,
        "throughput": Throughput(
            per_batch={"A10G": {8: 2.0, 16: 4.0}, "H100": {8: 10.0, 16: 20.0}}
        ),
        "batch_sizes": (8, 16),
        "checkpoint": Checkpoint(kind="batch"),
    }
    base.update(kw)
    return Step.model_validate(base)


def find(opts: list[Option], **kw: object) -> Option:
    hits = [o for o in opts if all(getattr(o, k) == v for k, v in kw.items())]
    assert len(hits) == 1, hits
    return hits[0]


# --------------------------------------------------------------------------- formulas
#
# Cost model v2 (DESIGN §3). Each case is written out by hand: the numbers in the
# comments can be redone with a calculator, and the formulas are restated here
# independently of exo.compiler.preemption.


def e_by_hand(t: float, s: float, c: float, lam: float) -> float:
    """E = (e^{λS} - 1)/λ + (e^{λS}/λ) (j (e^{λc} - 1) + (e^{λρ} - 1))."""
    w = t - s
    j = math.floor(w / c) if c <= w else 0
    rho = w - j * c
    return math.expm1(lam * s) / lam + math.exp(lam * s) / lam * (
        j * math.expm1(lam * c) + math.expm1(lam * rho)
    )


def k_by_hand(t: float, d: float, lam: float, q: float) -> int | None:
    """Smallest k with PoissonCDF(k; λ(T + k d)) >= q, scanning k = 0..10,000."""
    for k in range(10_001):
        if poisson.cdf(k, lam * (t + k * d)) >= q:
            return k
    return None


def test_on_demand_figures_by_hand() -> None:
    step = gpu_step(startup_h=0.1, replicas=ReplicaRange(min=1, max=2))
    o = find(
        enumerate_options(step, CATALOG, 0.95),
        instance_type="g.small",
        spot=False,
        batch_size=16,
        replicas=2,
    )
    # T = S + W / (n θ 3600) = 0.1 + 36000 / (2 * 4 * 3600) = 1.35; two 1-GPU instances
    assert pytest.approx(1.35) == o.T
    assert o.E == o.P == o.T
    assert o.instances == 2
    assert o.cost == pytest.approx(2 * 1.0 * 1.35)


def test_packing_rents_whole_instances_by_hand() -> None:
    # g.big: 4 A10G per instance, gpus = 1 -> k = 4 replicas per instance.
    step = gpu_step(startup_h=0.1, replicas=ReplicaRange(min=1, max=6), spot="never")
    opts = [o for o in enumerate_options(step, CATALOG, 0.95) if o.instance_type == "g.big"]
    # 1..6 replicas: 1 instance holds up to 4 (the most it holds wins), 2 hold 6 (capped)
    assert {(o.replicas, o.instances) for o in opts} == {(4, 1), (6, 2)}
    o = find(opts, replicas=4, batch_size=16)
    # T = 0.1 + 36000 / (4 * 4 * 3600) = 0.725 h; cost = m * $5.00 * T = $3.625
    assert pytest.approx(0.725) == o.T
    assert o.cost == pytest.approx(1 * 5.0 * 0.725)
    assert o.per_instance == 4
    res = quota_resources(Quota(accelerators={"A10G": 100}, cpu=1000))
    assert usage(find(opts, replicas=6, batch_size=16), res) == (8, 96)  # 2 instances


def test_packing_respects_cpu_and_memory_per_replica() -> None:
    step = gpu_step(cpu=20, spot="never", replicas=ReplicaRange(min=1, max=8))
    big = inst("g.big", "A10G", 4, vcpus=48, mem=192)
    assert replicas_per_instance(step, big) == 2  # 48 // 20 vCPUs, not 4 // 1 GPUs
    step = gpu_step(memory_gib=100.0)
    assert replicas_per_instance(step, big) == 1
    assert replicas_per_instance(gpu_step(gpus=2), big) == 2
    cpu = Step(name="c", items=10, throughput=Throughput(flat={"cpu": 1.0}), cpu=1)
    assert replicas_per_instance(cpu, inst("c.big", None, vcpus=16)) == 1


def test_spot_with_batch_checkpoint_by_hand() -> None:
    step = gpu_step(startup_h=0.1, checkpoint=Checkpoint(kind="batch"))
    o = find(
        enumerate_options(step, CATALOG, 0.95), instance_type="g.small", spot=True, batch_size=16
    )
    t = 0.1 + 36_000 / (4 * 3600)  # 2.6 h
    c = 16 / 4 / 3600  # one batch: 0.0011111 h; j = 2250, rho = 0
    lam = 0.5
    assert pytest.approx(t) == o.T
    # E = (e^{0.05} - 1)/0.5 + e^{0.05}/0.5 * 2250 * (e^{0.00055556} - 1)
    #   = 0.102542 + 2.102542 * 1.250347 = 2.731450 h
    assert pytest.approx(e_by_hand(t, 0.1, c, lam), rel=1e-12) == o.E
    assert pytest.approx(2.731450, abs=1e-6) == o.E
    # one instance: q = 0.95; μ = λ(T + k d) with d = c + r = 0.101111:
    # k = 3: μ = 1.4517, CDF = 0.9403 < 0.95; k = 4: μ = 1.5022, CDF = 0.9813
    assert o.preemptions_at_confidence == 4 == k_by_hand(t, c + 0.1, lam, 0.95)
    assert pytest.approx(t + 4 * (c + 0.1)) == o.P
    assert o.cost == pytest.approx(0.4 * o.E)


def test_spot_without_checkpoint_loses_all_the_work() -> None:
    step = gpu_step(checkpoint=Checkpoint(kind="none"), items=1800, startup_h=0.1)
    o = find(
        enumerate_options(step, CATALOG, 0.9), instance_type="g.small", spot=True, batch_size=8
    )
    t = 0.1 + 1800 / (2 * 3600)  # 0.35 h; c = T - S = 0.25 h, c + r = T
    assert o.checkpoint_h == pytest.approx(0.25)
    # E = (e^{λT} - 1)/λ = (e^{0.175} - 1)/0.5 = 0.382492 h
    assert pytest.approx(math.expm1(0.5 * t) / 0.5, rel=1e-12) == o.E
    assert pytest.approx(0.382492, abs=1e-6) == o.E
    # k = 0: CDF(0; 0.175) = 0.8395 < 0.9; k = 1: CDF(1; 0.35) = 0.9513
    k = k_by_hand(t, t, 0.5, 0.9)
    assert k == o.preemptions_at_confidence == 1
    assert pytest.approx(2 * t) == o.P


def test_spot_that_cannot_be_promised_is_dropped() -> None:
    # 5 h of work without checkpoints at λ = 0.5/h: λ (c + r) = 2.5 >= 1, no k exists.
    step = gpu_step(checkpoint=Checkpoint(kind="none"))
    assert not any(o.spot for o in enumerate_options(step, CATALOG, 0.9))
    why = [r for r in explain_rejections(step, CATALOG, 0.9) if r.kind == "unpromisable"]
    assert why and all(r.spot and r.cost is not None for r in why)
    assert "cannot promise" in why[0].message and "add checkpoints" in why[0].message


def test_more_replicas_make_no_checkpoint_spot_promisable() -> None:
    step = gpu_step(
        checkpoint=Checkpoint(kind="none"), accelerators=("A10G",), replicas=ReplicaRange(max=8)
    )
    spot = [o for o in enumerate_options(step, CATALOG, 0.9) if o.spot]
    # 36,000 items at 2/s: T = 5 h / n; only when λT < 1 can spot be promised
    assert spot and all(0.5 * o.T < 1.0 for o in spot)
    assert {o.replicas for o in spot if o.instance_type == "g.small"} >= {6, 7, 8}


def test_spot_with_interval_checkpoint_by_hand() -> None:
    step = gpu_step(checkpoint=Checkpoint(kind="interval", interval_h=0.5), startup_h=0.25)
    o = find(
        enumerate_options(step, CATALOG, 0.95), instance_type="g.small", spot=True, batch_size=8
    )
    t = 0.25 + 5.0  # W = 5 h: j = 10 intervals of 0.5 h, rho = 0
    assert pytest.approx(e_by_hand(t, 0.25, 0.5, 0.5), rel=1e-12) == o.E
    # E = (e^{0.125} - 1)/0.5 + e^{0.125}/0.5 * 10 (e^{0.25} - 1)
    #   = 0.266297 + 2.266297 * 2.840254 = 6.703156 h
    assert pytest.approx(6.703156, abs=1e-6) == o.E
    k = k_by_hand(t, 0.75, 0.5, 0.95)
    assert o.preemptions_at_confidence == k
    assert pytest.approx(t + k * 0.75) == o.P


def test_interval_longer_than_the_work_has_a_remainder_only() -> None:
    # j = 0, rho = W: E = (e^{λS} - 1)/λ + e^{λS} (e^{λW} - 1)/λ = (e^{λT} - 1)/λ
    assert expected_hours(2.0, 0.5, 10.0, 0.3) == pytest.approx(math.expm1(0.6) / 0.3)
    assert intervals(1.5, 10.0) == (0, 1.5)
    assert intervals(1.5, 0.5) == (3, 0.0)
    j, rho = intervals(1.6, 0.5)
    assert j == 3 and rho == pytest.approx(0.1)


@pytest.mark.parametrize("lam", [1e-300, 1e-200, 1e-12, 1e-8, 1e-5])
def test_expected_hours_tends_to_t_as_the_rate_vanishes(lam: float) -> None:
    for t, s, c in [(5.0, 0.1, 0.01), (5.0, 0.0, 5.0), (1e9, 1.0, 0.25), (0.3, 0.3, 1.0)]:
        e = expected_hours(t, s, c, lam)
        # E - T is first order in λ: between 0 and λ T^2 (every preemption loses < T)
        assert t * (1 - 1e-15) <= e <= t * (1 + lam * t) * (1 + 1e-15)
    assert expected_hours(4.0, 0.1, 0.01, 0.0) == 4.0


def test_expected_hours_is_exact_against_a_sum_for_moderate_rates() -> None:
    for t, s, c, lam in [(4.0, 0.1, 0.01, 0.47), (4.0, 0.1, 3.9, 0.47), (10.0, 1.0, 0.7, 0.2)]:
        assert expected_hours(t, s, c, lam) == pytest.approx(e_by_hand(t, s, c, lam), rel=1e-12)


def test_large_rates_do_not_overflow() -> None:
    assert expected_hours(10.0, 1.0, 10.0, 1e300) == math.inf
    assert expected_hours(1e9, 0.0, 1e9, 5.0) == math.inf
    assert preemption_quantile(1e9, 1e9, 5.0, 0.05) is None
    assert preemption_quantile(10.0, 1e-12, 1e300, 0.05) is None
    assert preemption_quantile(1e300, 1e-3, 1.0, 0.05) is None


@pytest.mark.parametrize("t", [0.0, 1e-6, 0.3, 2.0, 40.0, 900.0])
@pytest.mark.parametrize("d", [0.0, 0.01, 0.3])
@pytest.mark.parametrize("miss", [0.6, 0.1, 0.05, 1e-3, 1e-9])
def test_preemption_quantile_matches_a_plain_scan(t: float, d: float, miss: float) -> None:
    lam = 1.1
    k = preemption_quantile(t, d, lam, miss)
    want = k_by_hand(t, d, lam, 1 - miss) if lam * d < 1 else None
    if want is not None and k != want:  # only a rounding tie may differ
        mu = lam * (t + want * d)
        assert poisson.sf(want, mu) == pytest.approx(miss, rel=1e-9)
    else:
        assert k == want


def test_preemption_quantile_rules() -> None:
    assert preemption_quantile(5.0, 0.1, 0.0, 0.05) == 0  # on demand / λ = 0
    assert preemption_quantile(5.0, 1.0, 1.0, 0.05) is None  # λ (c + r) = 1
    assert preemption_quantile(5.0, 2.0, 0.5, 0.05) is None
    # a huge expected count needs more than 10,000 preemptions
    assert preemption_quantile(20_000.0, 0.0, 1.0, 0.05) is None
    k = preemption_quantile(9_000.0, 0.0, 1.0, 0.05)
    assert k is not None and poisson.cdf(k, 9_000.0) >= 0.95 > poisson.cdf(k - 1, 9_000.0)


def test_confidence_is_shared_by_steps_and_instances() -> None:
    conf = Confidence(0.95, 3)
    assert conf.step == pytest.approx(0.95 ** (1 / 3))
    assert conf.instance(4) == pytest.approx(0.95 ** (1 / 12))
    assert conf.miss(4) == pytest.approx(1 - 0.95 ** (1 / 12))
    # a million instances: 1 - q is still exact to many digits (no cancellation)
    assert Confidence(0.95, 1).miss(10**6) == pytest.approx(-math.log(0.95) / 1e6, rel=1e-6)
    assert Confidence(0.9, 0).step == pytest.approx(0.9)


def test_multi_instance_spot_keeps_each_instance_at_q() -> None:
    step = gpu_step(
        startup_h=0.1, checkpoint=Checkpoint(kind="batch"), replicas=ReplicaRange(max=4)
    )
    conf = Confidence(0.95, 2)
    o = find(
        enumerate_options(step, CATALOG, conf),
        instance_type="g.small",
        spot=True,
        batch_size=16,
        replicas=4,
    )
    q = (0.95 ** (1 / 2)) ** (1 / 4)  # q_s = 0.95^(1/2), q = q_s^(1/4)
    t = 0.1 + 36_000 / (4 * 4 * 3600)
    c = 16 / 4 / 3600
    assert o.instances == 4
    assert o.preemptions_at_confidence == k_by_hand(t, c + 0.1, 0.5, q)


def test_workflow_confidence_counts_steps_with_a_spot_option() -> None:
    a = gpu_step(name="a")
    b = gpu_step(name="b", spot="never")
    c = Step(name="c", items=10, throughput=Throughput(flat={"cpu": 1.0}))  # c.small has spot
    prog = Program(workflow=Workflow(name="w", confidence=0.9), steps=(a, b, c))
    conf = workflow_confidence(prog, CATALOG)
    assert conf.spot_steps == 2 and conf.step == pytest.approx(0.9**0.5)


def test_huge_replica_ranges_are_walked_by_instance_counts() -> None:
    counts, gaps = instance_counts(1, 8, 4)
    assert counts == [(1, 4), (2, 8)] and gaps == []
    counts, gaps = instance_counts(3, 3, 8)
    assert counts == [(1, 3)]
    counts, gaps = instance_counts(1, 10**9, 1, first_useful=500)
    ms = [m for m, _ in counts]
    assert len(ms) <= 2 + 192 + 65
    assert ms[0] == 1 and ms[-1] == 10**9 and set(range(500, 692)) <= set(ms)
    covered = set(ms)
    assert sum(b - a + 1 for a, b in gaps) + len(covered) == 10**9
    assert all(a <= b for a, b in gaps)


# --------------------------------------------------------------------------- option rules


def test_candidates_hardware_and_spot_flags() -> None:
    step = gpu_step(gpus=2)
    opts = enumerate_options(step, CATALOG, 0.95)
    # only g.big has 2+ A10G; h.one has a single H100; no spot price on h.one
    assert {o.instance_type for o in opts} == {"g.big"}
    why = explain_rejections(step, CATALOG, 0.95)
    assert {(r.instance_type, r.kind) for r in why} == {
        ("g.small", "accelerator_count"),
        ("h.one", "accelerator_count"),
    }


def test_spot_never_only_and_missing_spot_price() -> None:
    never = enumerate_options(gpu_step(spot="never"), CATALOG, 0.95)
    assert not any(o.spot for o in never)
    only = enumerate_options(gpu_step(spot="only"), CATALOG, 0.95)
    assert only and all(o.spot for o in only)
    assert "h.one" not in {o.instance_type for o in only}
    kinds = {r.kind for r in explain_rejections(gpu_step(spot="only"), CATALOG, 0.95)}
    assert "no_spot_price" in kinds
    allowed = enumerate_options(gpu_step(), CATALOG, 0.95)
    assert {(o.instance_type, o.spot) for o in allowed if o.instance_type == "h.one"} == {
        ("h.one", False)
    }


def test_memory_fit_boundary_is_inclusive() -> None:
    # 16 + 8 * 1 = 24 fits 1 x 24 GiB exactly; 16 + 16 * 1 = 32 does not
    step = gpu_step(model_memory_gib=16.0, memory_per_item_gib=1.0, accelerators=("A10G",))
    opts = enumerate_options(step, CATALOG, 0.95)
    assert {o.batch_size for o in opts} == {8}
    why = [r for r in explain_rejections(step, CATALOG, 0.95) if r.kind == "accelerator_memory"]
    assert why and all(r.batch_size == 16 for r in why)
    assert "32 GiB" in why[0].message and "24 GiB" in why[0].message


def test_memory_fit_uses_gpus_times_accelerator_memory() -> None:
    step = gpu_step(model_memory_gib=40.0, memory_per_item_gib=1.0, accelerators=("A10G",), gpus=2)
    opts = enumerate_options(step, CATALOG, 0.95)
    assert {(o.instance_type, o.batch_size) for o in opts} == {("g.big", 8)}


def test_unknown_accelerator_memory_rejects_with_a_fix() -> None:
    cat = CATALOG.model_copy(update={"instances": (inst("x.1", "X9", amem=None),)})
    step = gpu_step(
        accelerators=("X9",),
        throughput=Throughput(per_batch={"X9": {8: 1.0}}),
        batch_sizes=(8,),
        model_memory_gib=1.0,
    )
    assert enumerate_options(step, cat, 0.95) == []
    (r,) = explain_rejections(step, cat, 0.95)
    assert r.kind == "accelerator_memory_unknown" and "accelerator_memory_gib" in r.message


def test_cpu_steps_use_cpu_instances_and_host_limits() -> None:
    step = Step(
        name="c",
        items=1000,
        cpu=8,
        memory_gib=16.0,
        throughput=Throughput(flat={"cpu": 10.0}),
        replicas=ReplicaRange(min=1, max=3),
    )
    opts = enumerate_options(step, CATALOG, 0.95)
    assert {o.instance_type for o in opts} == {"c.big"}
    assert {(o.replicas, o.instances) for o in opts} == {(1, 1), (2, 2), (3, 3)}
    assert all(o.batch_size is None and not o.spot for o in opts)  # c.big has no spot price
    kinds = {(r.instance_type, r.kind) for r in explain_rejections(step, CATALOG, 0.95)}
    assert ("c.small", "vcpus") in kinds


def test_missing_throughput_entry_is_not_an_option() -> None:
    step = gpu_step(throughput=Throughput(per_batch={"A10G": {8: 2.0, 16: 4.0}}))
    opts = enumerate_options(step, CATALOG, 0.95)
    assert "h.one" not in {o.instance_type for o in opts}
    assert any(
        r.kind == "no_performance_entry" and r.instance_type == "h.one"
        for r in explain_rejections(step, CATALOG, 0.95)
    )


def test_quota_rules_out_options_alone() -> None:
    step = gpu_step(replicas=ReplicaRange(min=1, max=8))
    opts = enumerate_options(step, CATALOG, 0.95)
    kept, over = apply_quota(opts, Quota(accelerators={"A10G": 4}))
    # g.big holds 4 A10G per instance (4 replicas): one instance fits; g.small up to 4
    assert {(o.instance_type, o.replicas) for o in kept if o.instance_type == "g.big"} == {
        ("g.big", 4)
    }
    assert {o.replicas for o in kept if o.instance_type == "g.small"} == {1, 2, 3, 4}
    assert over and all(r.kind == "quota" for r in over)
    assert "8 A10G" in next(
        r.message for r in over if r.replicas == 8 and r.instance_type == "g.big"
    )


def test_usage_counts_whole_instances() -> None:
    opts = enumerate_options(gpu_step(replicas=ReplicaRange(min=5, max=5)), CATALOG, 0.95)
    res = quota_resources(Quota(accelerators={"A10G": 100, "H100": 9}, cpu=1000))
    assert res == ("accel:A10G", "accel:H100", "cpu")
    big = next(o for o in opts if o.instance_type == "g.big")
    assert big.instances == 2  # 5 replicas, 4 per instance
    assert usage(big, res) == (8, 0, 96)


# --------------------------------------------------------------------------- pruning


def _dominates(a: Option, b: Option, res: tuple[str, ...]) -> bool:
    return (
        a.cost <= b.cost
        and a.P <= b.P
        and all(x <= y for x, y in zip(usage(a, res), usage(b, res), strict=True))
    )


@pytest.mark.parametrize("seed", range(25))
def test_pruning_keeps_exactly_the_undominated(seed: int) -> None:
    rng = random.Random(seed)
    step = gpu_step(
        items=rng.randrange(1000, 100_000),
        replicas=ReplicaRange(min=1, max=rng.choice([1, 3, 6])),
        checkpoint=Checkpoint(kind=rng.choice(["batch", "none"])),
        startup_h=rng.choice([0.0, 0.2]),
        throughput=Throughput(
            per_batch={
                "A10G": {8: rng.uniform(1, 5), 16: rng.uniform(1, 9)},
                "H100": {8: rng.uniform(3, 20), 16: rng.uniform(3, 30)},
            }
        ),
    )
    opts = enumerate_options(step, CATALOG, 0.95)
    for res in ((), quota_resources(Quota(accelerators={"A10G": 64}, cpu=512))):
        kept = prune_dominated(opts, res)
        kept_keys = {o.key for o in kept}
        for o in opts:
            if o.key in kept_keys:
                # no other kept option dominates it (ties keep exactly one)
                assert not any(
                    k.key != o.key and _dominates(k, o, res) and not _dominates(o, k, res)
                    for k in kept
                )
            else:
                assert any(_dominates(k, o, res) for k in kept)
        # equal figures keep one representative
        sigs = [(o.cost, o.P, usage(o, res)) for o in kept]
        assert len(sigs) == len(set(sigs))
        assert kept == sorted(kept, key=lambda o: o.key)


@pytest.mark.parametrize("seed", range(40))
def test_pruning_is_the_definition_with_ties_and_incomparable_usages(seed: int) -> None:
    """Synthetic options with many equal costs and durations and usages that neither
    hold less than the other: kept is exactly what no other option beats (equal
    figures keep the first by key), against the O(n^2) definition."""
    rng = random.Random(seed)
    kinds = [("a1", "A10G", 1, 8), ("a4", "A10G", 4, 48), ("h1", "H100", 1, 16), ("c", None, 0, 4)]
    opts = []
    for i in range(rng.randrange(2, 60)):
        it, acc, count, vcpus = rng.choice(kinds)
        cost, p = float(rng.randrange(1, 6)), float(rng.randrange(1, 6))
        opts.append(
            Option(
                "s", it, acc, count, vcpus, rng.random() < 0.5, rng.choice([None, 8, 16]), i,
                1.0, None, it, 0.0, 0.0, 0, p, p, p, cost, rng.randrange(1, 4), 1,
            )
        )  # fmt: skip
    res = quota_resources(Quota(accelerators={"A10G": 8, "H100": 8}, cpu=64))
    for r in ((), res, res[:1], res[1:]):

        def beats(a: Option, b: Option, r: tuple[str, ...] = r) -> bool:
            fa, fb = (a.cost, a.P, usage(a, r)), (b.cost, b.P, usage(b, r))
            return _dominates(a, b, r) and (fa != fb or a.key < b.key)

        want = sorted((o for o in opts if not any(beats(a, o) for a in opts)), key=lambda o: o.key)
        assert prune_dominated(opts, r) == want
        assert prune_dominated(list(reversed(opts)), r) == want


def test_pruning_with_quota_keeps_smaller_footprints() -> None:
    step = gpu_step(replicas=ReplicaRange(min=1, max=4), accelerators=("A10G",))
    opts = enumerate_options(step, CATALOG, 0.95)
    plain = prune_dominated(opts)
    res = quota_resources(Quota(accelerators={"A10G": 8}))
    with_quota = prune_dominated(opts, res)
    assert len(with_quota) >= len(plain)
    assert math.isclose(min(o.cost for o in with_quota), min(o.cost for o in opts))
    assert min(usage(o, res)[0] for o in with_quota) == 1


# --------------------------------------------------------------------------- docs


@pytest.mark.parametrize(
    ("checkpoint", "e", "k", "p", "cost"),
    [
        (Checkpoint(kind="batch"), 1.416996, 3, 1.653333, 1.133597),
        (Checkpoint(kind="interval", interval_h=0.5), 1.576843, 5, 4.35, 1.261475),
        (Checkpoint(kind="none"), 1.928066, 29, 40.5, 1.542453),
    ],
)
def test_docs_worked_examples(
    checkpoint: Checkpoint, e: float, k: int, p: float, cost: float
) -> None:
    """docs/cost-model.md §3.1, figure by figure."""
    cat = Catalog(
        name="docs",
        default_spot_preemptions_per_hour=0.5,
        instances=(inst("g", "A10G", 1, od=1.0, spot=0.4, lam=0.5),),
    )
    step = gpu_step(
        accelerators=("A10G",),
        throughput=Throughput(per_batch={"A10G": {16: 4.0}}),
        batch_sizes=(16,),
        replicas=ReplicaRange(min=2, max=2),
        startup_h=0.1,
        checkpoint=checkpoint,
        spot="only",
    )
    (o,) = enumerate_options(step, cat, Confidence(0.95, 1))
    assert (o.instances, o.T) == (2, pytest.approx(1.35))
    assert pytest.approx(e, abs=1e-6) == o.E
    assert o.preemptions_at_confidence == k
    assert pytest.approx(p, abs=1e-6) == o.P
    assert o.cost == pytest.approx(cost, abs=1e-6)


def _one_by_one(step: Step, conf: Confidence) -> tuple[list[Option], list[Rejection]]:
    """The reference: :func:`make_option` on every candidate, one call each.

    Rejections: the candidates' (hardware, entries) first, then the options'.
    """
    opts: list[Option] = []
    early: list[Rejection] = []
    rejected: list[Rejection] = []
    for fam in families(step, CATALOG):
        if not isinstance(fam, Family):
            early.append(fam)
            continue
        counts = [(1, 1)]
        if fam.throughput is not None:
            counts, _ = instance_counts(step.replicas.min, step.replicas.max, fam.per_instance)
        for _, n in counts:
            for spot in fam.flags:
                t = step.startup_h + (
                    fam.duration_h
                    if fam.throughput is None
                    else (step.items or 0) / (n * fam.throughput * 3600.0)
                )
                c = checkpoint_hours(step, fam.batch_size, fam.throughput, t)
                lam = fam.inst.spot_preemptions_per_hour
                got = make_option(
                    step,
                    fam.inst,
                    spot=spot,
                    batch_size=fam.batch_size,
                    replicas=n,
                    throughput=fam.throughput,
                    t=t,
                    perf_key=fam.perf_key,
                    confidence=conf,
                    per_instance=fam.per_instance,
                    expected=expected_hours_array([t], step.startup_h, [c], [lam])[0],
                )
                (opts if isinstance(got, Option) else rejected).append(got)  # type: ignore[arg-type]
    return sorted(opts, key=lambda o: o.key), early + rejected


def test_options_of_many_steps_at_once_are_the_reference_to_the_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The array pass gives every step what make_option gives each candidate, bit for bit
    (in passes of 7 steps here, so that steps meet in and across passes)."""
    monkeypatch.setattr(costmodel, "STEPS_AT_ONCE", 7)
    rng = random.Random(11)
    steps = []
    for i in range(40):
        kind = rng.choice(["batch", "none", "interval"])
        steps.append(
            gpu_step(
                name=f"s{i}",
                items=rng.choice([10, 36_000, 5_000_000, 10**9]),
                startup_h=rng.choice([0.0, 0.1, 0.5]),
                replicas=ReplicaRange(min=rng.choice([1, 2]), max=rng.choice([1, 4, 9, 300])),
                spot=rng.choice(["allowed", "never", "only"]),
                checkpoint=Checkpoint(kind=kind, interval_h=0.25 if kind == "interval" else None),
                throughput=Throughput(
                    per_batch={
                        "A10G": {8: rng.uniform(0.01, 5), 16: rng.uniform(0.01, 9)},
                        "H100": {8: rng.uniform(1, 20), 16: rng.uniform(1, 30)},
                    }
                ),
            )
        )
    conf = Confidence(0.95, len(steps))
    together = enumerate_steps(steps, CATALOG, conf)
    for step, got in zip(steps, together, strict=True):
        want_opts, want_rejected = _one_by_one(step, conf)
        assert got.options == want_opts
        assert got.rejections == want_rejected
        assert got == enumerate_step(step, CATALOG, conf)


def test_vectorised_quantiles_match_the_scalar_search() -> None:
    rng = random.Random(5)
    for lam in (0.0, 0.05, 0.47, 1.5, 40.0):
        ts = [rng.choice([0.0, 0.01, 0.5, 3.0, 40.0, 900.0, 2e4]) for _ in range(60)]
        loss = [rng.choice([0.0, 0.001, 0.1, 0.6, 2.0]) for _ in range(60)]
        miss = [rng.choice([0.7, 0.4, 0.05, 1e-4, 1e-12]) for _ in range(60)]
        got = preemption_quantiles(ts, loss, lam, miss)
        want = [preemption_quantile(t, d, lam, q) for t, d, q in zip(ts, loss, miss, strict=True)]
        assert got == want


def test_quantile_search_is_the_first_k_of_a_full_scan() -> None:
    """Bisection after the CDF turns monotone finds the same k as scanning all 10,001."""
    rng = random.Random(9)
    ks = np.arange(10_001, dtype=np.float64)
    cases: list[tuple[float, float, float]] = []
    wants: list[int | None] = []
    for _ in range(300):
        b = rng.choice(
            [rng.random() * 0.5, 1 - 10 ** rng.uniform(-4, -0.3), 10 ** rng.uniform(-6, 0)]
        )
        b = min(b, 0.999999)
        a = 10 ** rng.uniform(-4, 4.2)
        miss = rng.choice([0.9, 0.5, 0.05, 10 ** rng.uniform(-14, -1)])
        hits = np.flatnonzero(special.pdtrc(ks, a + b * ks) <= miss)
        want = int(hits[0]) if hits.size else None
        assert preemption_quantile(a, b, 1.0, miss) == want, (a, b, miss)
        cases.append((a, b, miss))
        wants.append(want)
    got = preemption_quantiles(
        [c[0] for c in cases], [c[1] for c in cases], 1.0, [c[2] for c in cases]
    )
    assert got == wants


def test_vectorised_expected_hours_match_the_scalar_formula() -> None:
    rng = random.Random(3)
    cases = [
        (
            rng.choice([0.0, 0.3, 2.0, 40.0, 1e9]),
            rng.choice([0.0, 0.05, 0.3]),
            rng.choice([0.0, 1e-4, 0.01, 0.5, 3.0, 1e12]),
            rng.choice([0.0, 1e-300, 1e-6, 0.47, 3.0, 1e300]),
        )
        for _ in range(400)
    ]
    for s in (0.0, 0.05, 0.3):
        rows = [(t + s, c, lam) for t, _, c, lam in cases]
        got = expected_hours_array(
            [r[0] for r in rows], s, [r[1] for r in rows], [r[2] for r in rows]
        )
        want = [expected_hours(t, s, c, lam) for t, c, lam in rows]
        assert got == pytest.approx(want, rel=1e-12)
