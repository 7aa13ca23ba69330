"""What-if: re-plan with other limits and show the trade-off.

``--what-if deadline=6h,12h`` re-plans the workflow once per value with that
deadline (``budget=$50,$100`` and ``confidence=0.9,0.99`` likewise; ``none``
lifts the limit), so a user sees what an extra hour or a tighter deadline costs.
The planner is passed in (:func:`run_sweep` never reads configuration itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from exo.compiler import figures
from exo.compiler.diagnostics import Span
from exo.compiler.ir import Program
from exo.compiler.literals import LiteralError, classify_number
from exo.compiler.plan import Plan, StepPlan
from exo.compiler.syntax import DurationLit, Num

Key = Literal["deadline", "budget", "confidence"]
KEYS: tuple[Key, ...] = ("deadline", "budget", "confidence")
#: At most this many values per sweep (each one is a full re-plan).
MAX_VALUES = 24

Planner = Callable[[Program], Plan]


class WhatIfError(ValueError):
    """A ``--what-if`` value that cannot be read (a usage error)."""


@dataclass(frozen=True, slots=True)
class Sweep:
    key: Key
    #: ``None`` lifts the limit (deadline and budget only).
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    value: float | None
    plan: Plan
    #: The plan as the workflow is written (the row the others are compared with).
    current: bool


@dataclass(frozen=True, slots=True)
class SweepResult:
    key: Key
    base: Plan
    scenarios: tuple[Scenario, ...]


# --------------------------------------------------------------------------- parsing

_SPAN = Span("--what-if", 1, 1, 1, 2)
_MONEY = re.compile(r"\$?\s*([0-9][0-9_,]*(?:\.[0-9]+)?)")


def _deadline(text: str) -> float:
    try:
        lit = classify_number(text, _SPAN)
    except LiteralError as e:
        raise WhatIfError(f"deadline {text!r}: {e.diagnostic.message}") from None
    if isinstance(lit, DurationLit):
        hours = lit.hours
    elif isinstance(lit, Num):
        hours = float(lit.value)
    else:
        raise WhatIfError(f"deadline {text!r} is not a duration (write e.g. 6h, 90m or 1h30m)")
    if hours <= 0:
        raise WhatIfError(f"deadline {text!r} must be positive")
    return hours


def _budget(text: str) -> float:
    m = _MONEY.fullmatch(text)
    if m is None:
        raise WhatIfError(f"budget {text!r} is not an amount (write e.g. $50 or 1_000)")
    value = float(m.group(1).replace("_", "").replace(",", ""))
    if value <= 0:
        raise WhatIfError(f"budget {text!r} must be positive")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise WhatIfError(f"confidence {text!r} is not a number (write e.g. 0.9 or 99%)") from None
    if not 0.0 < value < 1.0:
        raise WhatIfError(f"confidence {text!r} must be between 0 and 1 (exclusive)")
    return value


def parse_what_if(spec: str) -> Sweep:
    """``deadline=6h,12h`` → Sweep("deadline", (6.0, 12.0)); raises :class:`WhatIfError`."""
    key, sep, rest = spec.partition("=")
    key = key.strip().lower()
    if not sep or key not in KEYS:
        raise WhatIfError(f"expected KEY=V1,V2,... with KEY one of {', '.join(KEYS)}, got {spec!r}")
    texts = [t.strip() for t in rest.split(",") if t.strip()]
    if key == "budget":  # "$1,000" has a comma: rejoin thousands groups
        texts = _rejoin_thousands(texts)
    if not texts:
        raise WhatIfError(f"{key}: give at least one value, as in {key}={_example(key)}")
    if len(texts) > MAX_VALUES:
        raise WhatIfError(f"{key}: at most {MAX_VALUES} values (each one is a full re-plan)")
    values: list[float | None] = []
    for t in texts:
        if t.lower() == "none":
            if key == "confidence":
                raise WhatIfError("confidence cannot be lifted (none); give values such as 0.9")
            values.append(None)
        elif key == "deadline":
            values.append(_deadline(t))
        elif key == "budget":
            values.append(_budget(t))
        else:
            values.append(_confidence(t))
    unique = sorted(set(values), key=_order)
    return Sweep(key, tuple(unique))


def _rejoin_thousands(texts: list[str]) -> list[str]:
    out: list[str] = []
    for t in texts:
        if out and re.fullmatch(r"[0-9]{3}(?:\.[0-9]+)?", t) and re.search(r"[0-9]$", out[-1]):
            out[-1] += "," + t
        else:
            out.append(t)
    return out


def _example(key: Key) -> str:
    return {"deadline": "6h,12h", "budget": "$50,$100", "confidence": "0.9,0.99"}[key]


def _order(v: float | None) -> float:
    return float("inf") if v is None else v


# --------------------------------------------------------------------------- running


def current_value(program: Program, key: Key) -> float | None:
    wf = program.workflow
    if key == "deadline":
        return wf.deadline_h
    if key == "budget":
        return wf.budget_usd
    return wf.confidence


def with_value(program: Program, key: Key, value: float | None) -> Program:
    """The program with one workflow limit replaced."""
    field = {"deadline": "deadline_h", "budget": "budget_usd", "confidence": "confidence"}[key]
    wf = program.workflow.model_copy(update={field: value})
    return program.model_copy(update={"workflow": wf})


def run_sweep(program: Program, sweep: Sweep, base: Plan, planner: Planner) -> SweepResult:
    """Plan once per value (the current value reuses ``base``), ordered by value."""
    now = current_value(program, sweep.key)
    scenarios = [Scenario(now, base, True)]
    for v in sweep.values:
        if v == now:
            continue
        scenarios.append(Scenario(v, planner(with_value(program, sweep.key, v)), False))
    scenarios.sort(key=lambda s: _order(s.value))
    return SweepResult(sweep.key, base, tuple(scenarios))


# --------------------------------------------------------------------------- figures


def value_label(key: Key, value: float | None) -> str:
    if value is None:
        return "none"
    if key == "deadline":
        return figures.hours(value)
    if key == "budget":
        return figures.money(value)
    return f"{value:.3g}"


def _choice(s: StepPlan) -> tuple[str, bool, int | None, int]:
    return (s.instance_type, s.spot, s.batch_size, s.replicas)


def changes(base: Plan, other: Plan) -> list[str]:
    """Steps placed differently from ``base``: ``summarize → p4d.24xlarge spot x1, batch 64``."""
    old = {s.name: s for s in base.steps}
    out = []
    for s in other.steps:
        was = old.get(s.name)
        if was is None or _choice(was) != _choice(s):
            out.append(f"{s.name} → {figures.step_label(s)}")
    return out


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    current: bool
    status: str
    cost: str
    cost_delta: str
    makespan: str
    makespan_delta: str
    changes: tuple[str, ...]


def rows(result: SweepResult) -> list[Row]:
    base = result.base
    out = []
    for sc in result.scenarios:
        p = sc.plan
        feasible = p.status != "infeasible" and p.expected_cost_usd is not None
        cost_delta = makespan_delta = ""
        if feasible and not sc.current and base.expected_cost_usd is not None:
            cost_delta = figures.signed_money((p.expected_cost_usd or 0.0) - base.expected_cost_usd)
        if feasible and not sc.current and base.makespan_h is not None:
            makespan_delta = figures.signed_hours((p.makespan_h or 0.0) - base.makespan_h)
        moved: tuple[str, ...] = ()
        if not feasible:
            moved = tuple(p.explanation[:1])
        elif not sc.current and base.status != "infeasible":
            moved = tuple(changes(base, p))
        out.append(
            Row(
                label=value_label(result.key, sc.value),
                current=sc.current,
                status=p.status,
                cost=figures.money(p.expected_cost_usd) if feasible else "-",
                cost_delta=cost_delta,
                makespan=figures.hours(p.makespan_h) if feasible else "-",
                makespan_delta=makespan_delta,
                changes=moved,
            )
        )
    return out


def title(result: SweepResult) -> str:
    return f"what if the {result.key} were different"


def to_json(result: SweepResult) -> dict[str, Any]:
    """Plain data for ``--format json`` (an added ``what_if`` key, DESIGN §4 allows it)."""
    return {
        "key": result.key,
        "scenarios": [
            {
                "value": sc.value,
                "current": sc.current,
                "status": sc.plan.status,
                "expected_cost_usd": sc.plan.expected_cost_usd,
                "makespan_h": sc.plan.makespan_h,
                "steps": [
                    {
                        "name": s.name,
                        "instance_type": s.instance_type,
                        "spot": s.spot,
                        "batch_size": s.batch_size,
                        "replicas": s.replicas,
                        "instances": s.instances,
                    }
                    for s in sc.plan.steps
                ],
            }
            for sc in result.scenarios
        ],
    }
