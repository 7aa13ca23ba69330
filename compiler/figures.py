"""Number formatting shared by every report format (money, hours, tiers).

``money`` lives in :mod:`exo.compiler.formatting`, shared with the optimizer's
explanations, and is re-exported here.
"""

from __future__ import annotations

from exo.compiler.costmodel import option_label
from exo.compiler.formatting import money
from exo.compiler.plan import Plan, StepPlan
from exo.compiler.report.why import Alternative

__all__ = ["money"]


def signed_money(usd: float) -> str:
    """``+$3.10`` / ``-$0.40`` / ``$0.00``."""
    text = money(abs(usd))
    if text == "$0.00" or abs(usd) < 5e-7:
        return "$0.00"
    return ("+" if usd > 0 else "-") + text


def hours(h: float | None) -> str:
    """``2h54m``, ``45m``, ``0m``; ``-`` when unknown."""
    if h is None:
        return "-"
    minutes = round(abs(h) * 60)
    sign = "-" if h < 0 and minutes else ""
    hh, mm = divmod(minutes, 60)
    if hh == 0:
        return f"{sign}{mm}m"
    return f"{sign}{hh}h{mm:02d}m"


def signed_hours(h: float) -> str:
    """``+1h10m`` / ``-20m`` / ``0m``."""
    text = hours(h)
    if text == "0m" or text.startswith("-"):
        return text
    return "+" + text


def percent(fraction: float | None) -> str:
    if fraction is None:
        return "-"
    return f"{fraction * 100:.1f}%"


def saving(saved_usd: float, fraction: float | None) -> str:
    """``saves $13.89 (58.5%)`` or, when the plan costs more, ``costs $0.23 (29.3%) more``."""
    if saved_usd < 0 and money(-saved_usd) != "$0.00":
        frac = percent(-fraction) if fraction is not None else "-"
        return f"costs {money(-saved_usd)} ({frac}) more"
    return f"saves {money(max(saved_usd, 0.0))} ({percent(fraction)})"


def tier(step: StepPlan) -> str:
    """``g5.xlarge (A10G x1) spot``: the instance type and tier the step rents."""
    hw = f" ({step.accelerator} x{step.accelerator_count})" if step.accelerator else " (CPU)"
    return f"{step.instance_type}{hw} {'spot' if step.spot else 'on-demand'}"


def batch(step: StepPlan) -> str:
    return "-" if step.batch_size is None else str(step.batch_size)


def replicas(step: StepPlan) -> str:
    """``4``, or ``8 on 1`` when replicas share instances."""
    if step.instances == step.replicas:
        return str(step.replicas)
    return f"{step.replicas} on {step.instances}"


def instances(step: StepPlan) -> int:
    """Instances the step rents (the plan's ``instances``). Drawn as given; how they
    are counted is the cost model's business."""
    return step.instances


def replicas_long(step: StepPlan) -> str:
    """``1 replica``, ``5 replicas``, ``8 replicas on 2 instances``."""
    text = f"{step.replicas} replica{'s' if step.replicas != 1 else ''}"
    m = instances(step)
    if m != step.replicas:
        text += f" on {m} instance{'s' if m != 1 else ''}"
    return text


def step_label(step: StepPlan) -> str:
    return option_label(
        step.instance_type, step.spot, step.replicas, step.batch_size, step.instances
    )


_KINDS = {"cheaper": "cheaper", "other_tier": "other tier", "on_demand": "on-demand"}


def alternative(alt: Alternative, plan: Plan) -> str:
    """``cheaper: L4 spot x8, batch 64 (-$0.40, +2h06m; plan 9h18m, past the 8h00m deadline)``."""
    o = alt.option
    label = o.label()
    dt = (
        "same duration"
        if abs(alt.duration_delta_h) < 1 / 120
        else signed_hours(alt.duration_delta_h)
    )
    effects = f"{signed_money(alt.cost_delta_usd)}, {dt}"
    end = plan.makespan_h or 0.0
    if alt.misses_deadline and plan.deadline_h is not None:
        effects += (
            f"; plan {hours(alt.plan_makespan_h)}, past the {hours(plan.deadline_h)} deadline"
        )
    elif alt.over_budget and plan.budget_usd is not None:
        effects += f"; plan {money(alt.plan_cost_usd)}, over the {money(plan.budget_usd)} budget"
    elif alt.plan_makespan_h > end + 1 / 120:
        effects += f"; plan ends {hours(alt.plan_makespan_h - end)} later"
    return f"{_KINDS[alt.kind]}: {label} ({effects})"
