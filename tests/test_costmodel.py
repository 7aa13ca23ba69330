"""Cost model v1 (DESIGN §3): option rules, the E / P / cost formulas, and pruning."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import poisson

from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.costmodel import (
    Option,
    apply_quota,
    enumerate_options,
    explain_rejections,
    poisson_cdf,
    poisson_quantile,
    prune_dominated,
    quota_resources,
    usage,
)
from exo.compiler.ir import Checkpoint, Duration, Quota, ReplicaRange, Step, Throughput


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
    }
    base.update(kw)
    return Step.model_validate(base)


def find(opts: list[Option], **kw: object) -> Option:
    hits = [o for o in opts if all(getattr(o, k) == v for k, v in kw.items())]
    assert len(hits) == 1, hits
    return hits[0]


# --------------------------------------------------------------------------- formulas


def test_on_demand_figures_by_hand() -> None:
    step = gpu_step(startup_h=0.1, replicas=ReplicaRange(min=1, max=2))
    o = find(
        enumerate_options(step, CATALOG, 0.95),
        instance_type="g.small",
        spot=False,
        batch_size=16,
        replicas=2,
    )
    # T = S + W / (n θ 3600) = 0.1 + 36000 / (2 * 4 * 3600) = 1.35
    assert pytest.approx(1.35) == o.T
    assert o.E == o.P == o.T
    assert o.cost == pytest.approx(2 * 1.0 * 1.35)


def test_spot_with_batch_checkpoint_by_hand() -> None:
    step = gpu_step(startup_h=0.1, checkpoint=Checkpoint(kind="batch"))
    o = find(
        enumerate_options(step, CATALOG, 0.95), instance_type="g.small", spot=True, batch_size=16
    )
    t = 0.1 + 36_000 / (4 * 3600)  # 2.6
    c = 16 / 4 / 3600
    lam = 0.5
    assert pytest.approx(t) == o.T
    assert pytest.approx(t * (1 + lam * (c / 2 + 0.1))) == o.E
    k = 3  # PoissonCDF(2; 1.3) = 0.857, PoissonCDF(3; 1.3) = 0.957 >= 0.95
    assert poisson.cdf(k - 1, lam * t) < 0.95 <= poisson.cdf(k, lam * t)
    assert o.preemptions_at_confidence == k
    assert pytest.approx(t + k * (c + 0.1)) == o.P
    assert o.cost == pytest.approx(0.4 * o.E)


def test_spot_without_checkpoint_loses_the_replica() -> None:
    step = gpu_step(checkpoint=Checkpoint(kind="none"))
    o = find(
        enumerate_options(step, CATALOG, 0.9), instance_type="g.small", spot=True, batch_size=8
    )
    t = 36_000 / (2 * 3600)  # 5 h
    k = poisson.ppf(0.9, 0.5 * t)
    assert pytest.approx(t * (1 + 0.5 * (t / 2))) == o.E
    assert pytest.approx(t + k * t) == o.P


def test_spot_with_interval_checkpoint() -> None:
    step = gpu_step(checkpoint=Checkpoint(kind="interval", interval_h=0.5), startup_h=0.25)
    o = find(
        enumerate_options(step, CATALOG, 0.95), instance_type="g.small", spot=True, batch_size=8
    )
    t = 0.25 + 5.0
    k = poisson.ppf(0.95, 0.5 * t)
    assert pytest.approx(t * (1 + 0.5 * (0.25 + 0.25))) == o.E
    assert pytest.approx(t + k * (0.5 + 0.25)) == o.P


def test_duration_step_lookup_order_and_startup() -> None:
    step = Step(
        name="d",
        accelerators=("A10G", "g.big"),
        gpus=1,
        duration=Duration(default_h=3.0, per_key={"A10G": 2.0, "g.big": 0.5}),
        startup_h=0.25,
        spot="never",
    )
    opts = enumerate_options(step, CATALOG, 0.95)
    # the instance type's entry wins over its accelerator's
    assert pytest.approx(0.75) == find(opts, instance_type="g.big").T
    assert pytest.approx(2.25) == find(opts, instance_type="g.small").T
    assert all(o.batch_size is None and o.replicas == 1 for o in opts)


@pytest.mark.parametrize("mu", [0.0, 1e-6, 0.3, 1.0, 4.2, 37.5, 250.0, 900.0])
@pytest.mark.parametrize("conf", [0.5, 0.9, 0.95, 0.99, 0.999])
def test_poisson_quantile_matches_scipy(mu: float, conf: float) -> None:
    k = poisson_quantile(mu, conf)
    assert poisson.cdf(k, mu) >= conf - 1e-12
    if k > 0:
        assert poisson.cdf(k - 1, mu) < conf + 1e-12
    assert poisson_cdf(k, mu) == pytest.approx(poisson.cdf(k, mu), abs=1e-9)


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
    assert {o.replicas for o in opts} == {1, 2, 3}
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
    step = gpu_step(replicas=ReplicaRange(min=1, max=4))
    opts = enumerate_options(step, CATALOG, 0.95)
    kept, over = apply_quota(opts, Quota(accelerators={"A10G": 4}))
    # g.big holds 4 A10G per replica: only 1 replica fits; g.small up to 4
    assert {(o.instance_type, o.replicas) for o in kept if o.instance_type == "g.big"} == {
        ("g.big", 1)
    }
    assert {o.replicas for o in kept if o.instance_type == "g.small"} == {1, 2, 3, 4}
    assert over and all(r.kind == "quota" for r in over)
    assert "8 A10G" in next(
        r.message for r in over if r.replicas == 2 and r.instance_type == "g.big"
    )


def test_usage_counts_whole_instances() -> None:
    opts = enumerate_options(gpu_step(replicas=ReplicaRange(min=3, max=3)), CATALOG, 0.95)
    res = quota_resources(Quota(accelerators={"A10G": 100, "H100": 9}, cpu=1000))
    assert res == ("accel:A10G", "accel:H100", "cpu")
    big = next(o for o in opts if o.instance_type == "g.big")
    assert usage(big, res) == (12, 0, 144)


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


def test_pruning_with_quota_keeps_smaller_footprints() -> None:
    step = gpu_step(replicas=ReplicaRange(min=1, max=4), accelerators=("A10G",))
    opts = enumerate_options(step, CATALOG, 0.95)
    plain = prune_dominated(opts)
    res = quota_resources(Quota(accelerators={"A10G": 8}))
    with_quota = prune_dominated(opts, res)
    assert len(with_quota) >= len(plain)
    assert math.isclose(min(o.cost for o in with_quota), min(o.cost for o in opts))
    assert min(usage(o, res)[0] for o in with_quota) == 1
