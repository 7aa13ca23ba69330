"""Infeasible workflows: the explanation names what binds and a value that works."""

from __future__ import annotations

import re

import pytest

from exo.compiler.catalog import Catalog, InstanceType
from exo.compiler.ir import Duration, Program, Quota, ReplicaRange, Step, Throughput, Workflow
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan


def _gpu(
    name: str,
    accel: str,
    od: float,
    *,
    count: int = 1,
    spot: float | None = None,
    mem: float = 24.0,
) -> InstanceType:
    return InstanceType(
        instance_type=name,
        accelerator=accel,
        accelerator_count=count,
        vcpus=8 * count,
        memory_gib=64 * count,
        ondemand_usd_per_hour=od,
        spot_usd_per_hour=spot,
        accelerator_memory_gib=mem,
        spot_preemptions_per_hour=0.3,
    )


CAT = Catalog(
    name="t",
    default_spot_preemptions_per_hour=0.3,
    instances=(
        _gpu("slow.1", "SLOW", 1.0, spot=0.3),
        _gpu("fast.1", "FAST", 5.0),
        _gpu("fast.8", "FAST", 40.0, count=8),
    ),
)


def _dur(name: str, slow: float, fast: float, **kw: object) -> Step:
    return Step.model_validate(
        {
            "name": name,
            "accelerators": ("SLOW", "FAST"),
            "gpus": 1,
            "duration": Duration(per_key={"SLOW": slow, "FAST": fast}),
            "spot": "never",
            **kw,
        }
    )


CHAIN = (
    _dur("prep", 2.0, 1.0),
    _dur("train", 6.0, 2.0, after=("prep",)),
    _dur("side", 1.0, 0.5),
)


def _program(steps: tuple[Step, ...] = CHAIN, **wf: object) -> Program:
    return Program(workflow=Workflow.model_validate({"name": "t", **wf}), steps=steps)


def _text(plan: Plan) -> str:
    return "\n".join(plan.explanation)


def _number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, text
    return float(m.group(1).replace(",", ""))


def test_deadline_below_the_fastest_plan_names_the_chain_and_the_minimum() -> None:
    plan = optimize(_program(deadline_h=2.5), CAT)
    assert plan.status == "infeasible"
    assert plan.steps == [] and plan.expected_cost_usd is None and plan.lower_bound_usd is None
    text = _text(plan)
    assert "deadline of 2.50 h cannot be met" in text
    assert "fastest possible plan takes 3.00 h" in text
    assert "`prep` -> `train`" in text
    least = _number(r"deadline of at least ([\d.]+) h", text)
    assert optimize(_program(deadline_h=least), CAT).status == "optimal"


def test_budget_below_the_cheapest_plan_gives_the_minimum() -> None:
    plan = optimize(_program(budget_usd=5.0), CAT)
    assert plan.status == "infeasible"
    text = _text(plan)
    assert "budget of $5.00 cannot be met" in text
    assert "cheapest possible plan costs $9.00" in text
    least = _number(r"budget of at least \$([\d.,]+)", text)
    assert optimize(_program(budget_usd=least), CAT).status == "optimal"


def test_budget_below_the_cheapest_plan_that_meets_the_deadline() -> None:
    # The cheapest plan of all (8 h, $9) misses the 4 h deadline; with a $5 budget
    # both bind. The advice must be the least budget that meets the deadline *too*
    # ($13: train on FAST), not the $9 at which the deadline would fail next.
    plan = optimize(_program(deadline_h=4.0, budget_usd=5.0), CAT)
    assert plan.status == "infeasible"
    text = _text(plan)
    assert "cheapest possible plan costs $9.00" in text
    assert "also meets the deadline of 4.00 h costs $13.00" in text
    least = _number(r"budget of at least \$([\d.,]+)", text)
    assert least == pytest.approx(13.0)
    replanned = optimize(_program(deadline_h=4.0, budget_usd=least), CAT)
    assert replanned.status == "optimal"
    assert replanned.expected_cost_usd == pytest.approx(13.0)


def test_deadline_and_budget_together() -> None:
    # fastest: 3 h for $20.5; cheapest: 8 h for $9. Deadline 4 h: train must be fast.
    plan = optimize(_program(deadline_h=4.0, budget_usd=12.0), CAT)
    assert plan.status == "infeasible"
    text = _text(plan)
    need_budget = _number(r"raise the budget to \$([\d.,]+)", text)
    need_deadline = _number(r"raise the deadline to ([\d.]+) h", text)
    assert need_budget == pytest.approx(2.0 + 10.0 + 1.0)
    assert need_deadline == pytest.approx(7.0)  # prep fast ($5) + train slow + side slow = $12
    assert optimize(_program(deadline_h=4.0, budget_usd=need_budget), CAT).status == "optimal"
    assert optimize(_program(deadline_h=need_deadline, budget_usd=12.0), CAT).status == "optimal"


def test_memory_fit_that_rules_out_every_option() -> None:
    step = Step(
        name="llm",
        items=1000,
        accelerators=("SLOW",),
        gpus=1,
        throughput=Throughput(per_batch={"SLOW": {8: 1.0, 16: 2.0}}),
        batch_sizes=(8, 16),
        model_memory_gib=20.0,
        memory_per_item_gib=1.0,
    )
    plan = optimize(_program(steps=(step,)), CAT)
    assert plan.status == "infeasible"
    text = _text(plan)
    assert "step `llm` has no option" in text
    assert "does not fit in accelerator memory" in text
    assert "28 GiB" in text and "24 GiB" in text


def test_quota_smaller_than_one_replica() -> None:
    step = _dur("big", 1.0, 1.0, accelerators=("FAST",), gpus=8)
    plan = optimize(_program(steps=(step,), quota=Quota(accelerators={"FAST": 4})), CAT)
    assert plan.status == "infeasible"
    text = _text(plan)
    assert "step `big` has no option" in text
    assert "more than the quota" in text and "8 FAST" in text and "quota of 4" in text


def test_quota_that_rules_out_the_fast_options_is_named() -> None:
    step = Step(
        name="embed",
        items=360_000,
        accelerators=("FAST",),
        gpus=1,
        throughput=Throughput(per_batch={"FAST": {8: 10.0}}),
        batch_sizes=(8,),
        replicas=ReplicaRange(min=1, max=8),
        spot="never",
    )
    # 10 h with one replica; 4 replicas (quota) take 2.5 h; the deadline wants 2 h
    plan = optimize(
        _program(steps=(step,), deadline_h=2.0, quota=Quota(accelerators={"FAST": 4})), CAT
    )
    assert plan.status == "infeasible"
    text = _text(plan)
    assert "fastest possible plan takes 2.50 h" in text
    assert "the quota rules out faster options" in text


def test_spot_only_without_a_spot_price() -> None:
    step = _dur("x", 1.0, 1.0, accelerators=("FAST",), spot="only")
    plan = optimize(_program(steps=(step,)), CAT)
    assert plan.status == "infeasible"
    assert "no spot price" in _text(plan)


def test_quota_that_makes_the_deadline_unreachable() -> None:
    steps = tuple(_dur(n, 3.0, 1.0, accelerators=("FAST",)) for n in ("a", "b", "c"))
    plan = optimize(
        _program(steps=steps, deadline_h=2.0, quota=Quota(accelerators={"FAST": 1})), CAT
    )
    assert plan.status == "infeasible"
    text = _text(plan)
    assert "quota (FAST = 1)" in text
    assert "shortest schedule within the quota takes 3.00 h" in text
    assert "without the quota: 1.00 h" in text
