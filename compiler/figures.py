"""How figures read in everything exo prints: money, hours, percentages, and a plan step's
tier, replicas and alternatives (plans, explanations, infeasibility help, every report
format).

Amounts stay numbers until they are written: :func:`money_figure` is the one rounding
rule (the decimals shown and the amount rounded to them), :func:`money` writes it, and
code that asks "do these read the same?" or "is this change nothing?" compares numbers
(:func:`money_figure`, :func:`negligible_usd`), never rendered text.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from exo.compiler.costmodel import option_label
from exo.compiler.plan import Plan, StepPlan

if TYPE_CHECKING:
    from exo.compiler.report.why import Alternative

#: The smallest amount money writes as digits: a smaller one reads ``<$0.000001``, and a
#: change smaller than it reads ``$0.00``.
SMALLEST_USD = 5e-7


def money_figure(usd: float) -> tuple[int | None, float]:
    """What :func:`money` writes for ``usd``, as numbers: the decimals shown and the amount
    rounded to them; from ten cents (rounded to a tenth of a cent) and for zero, two
    decimals; below, two significant digits (at most six decimals). An amount too small
    to show is ``(None, ±1.0)`` (its sign)."""
    x = abs(usd)
    if round(x, 3) >= 0.1 or x == 0.0:
        digits = 2
    elif x < SMALLEST_USD:
        return None, math.copysign(1.0, usd)
    else:
        digits = min(6, 1 - math.floor(math.log10(x)))
    return digits, round(usd, digits)


def money(usd: float | None) -> str:
    """``$1,234.56``; below ten cents two significant digits (``$0.0042``); ``-`` when unknown."""
    if usd is None:
        return "-"
    digits, value = money_figure(usd)
    sign = "-" if value < 0 else ""  # an amount that rounds to zero reads unsigned
    if digits is None:
        return f"{sign}<$0.000001"
    return f"{sign}${abs(value):,.{digits}f}"


def negligible_usd(usd: float) -> bool:
    """Whether a change of ``usd`` is no change: smaller than the smallest amount shown."""
    return abs(usd) < SMALLEST_USD


def signed_money(usd: float) -> str:
    """``+$3.10`` / ``-$0.40`` / ``$0.00``."""
    if negligible_usd(usd):
        return "$0.00"
    return ("+" if usd > 0 else "-") + money(abs(usd))


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
    if saved_usd < 0:  # any amount more reads as more than $0.00
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
