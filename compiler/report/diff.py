"""Plan diff: what changed between two plans, per step and in total (Terraform style).

``exoc diff old.json new.json`` and ``exoc plan FILE --compare old.json`` both
come here. A step is *added*, *removed*, *changed* (tier, batch size, replicas,
instances, start, duration at confidence or cost moved) or *unchanged*. Differences below
what the reports print (a minute; a cent, or two significant digits below ten
cents) are not changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from exo.compiler import figures
from exo.compiler.diagnostics import CompileError, Diagnostic
from exo.compiler.inputs import MAX_PLAN_BYTES, InputRefused, read_regular_file
from exo.compiler.plan import Plan, StepPlan

Action = Literal["add", "remove", "change", "same"]
Value = str | float | int | bool | None


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old: Value
    new: Value
    #: How the reports print the old and new values, and the difference if numeric.
    old_text: str
    new_text: str
    delta_text: str = ""


@dataclass(frozen=True, slots=True)
class StepDiff:
    name: str
    action: Action
    changes: tuple[Change, ...]
    old: StepPlan | None
    new: StepPlan | None


@dataclass(frozen=True, slots=True)
class PlanDiff:
    old_label: str
    new_label: str
    old: Plan
    new: Plan
    steps: tuple[StepDiff, ...]
    totals: tuple[Change, ...]

    def count(self, action: Action) -> int:
        return sum(1 for s in self.steps if s.action == action)

    @property
    def changed(self) -> bool:
        return bool(self.totals) or any(s.action != "same" for s in self.steps)


# --------------------------------------------------------------------------- comparing


def _money(field: str, old: float | None, new: float | None) -> Change | None:
    if old is None and new is None:
        return None
    delta = ""
    if old is not None and new is not None:
        if figures.money_figure(old) == figures.money_figure(new) or figures.negligible_usd(
            new - old
        ):
            return None  # both read the same, or the change is too small to show
        delta = figures.signed_money(new - old)
        if old > 0:
            delta += f", {(new - old) / old * 100:+.1f}%"
    return Change(field, old, new, figures.money(old), figures.money(new), delta)


def _hours(field: str, old: float | None, new: float | None) -> Change | None:
    if old is None and new is None:
        return None
    if figures.hours(old) == figures.hours(new):
        return None
    if old is not None and new is not None and figures.hours(new - old) == "0m":
        return None
    delta = figures.signed_hours(new - old) if old is not None and new is not None else ""
    return Change(field, old, new, figures.hours(old), figures.hours(new), delta)


def _exact(field: str, old: Value, new: Value, show: Callable[[Value], str] = str) -> Change | None:
    if old == new:
        return None
    return Change(field, old, new, show(old), show(new))


def _opt(v: Value) -> str:
    return "-" if v is None else str(v)


def _step_changes(a: StepPlan, b: StepPlan) -> tuple[Change, ...]:
    found = [
        _exact("tier", figures.tier(a), figures.tier(b)),
        _exact("batch", a.batch_size, b.batch_size, _opt),
        _exact("replicas", a.replicas, b.replicas),
        None if _packed_alike(a, b) else _exact("instances", a.instances, b.instances),
        _hours("start", a.start_h, b.start_h),
        _hours("time", a.p_duration_h, b.p_duration_h),
        _money("cost", a.expected_cost_usd, b.expected_cost_usd),
        _exact(
            "critical path",
            a.on_critical_path,
            b.on_critical_path,
            lambda v: "yes" if v else "no",
        ),
    ]
    return tuple(c for c in found if c is not None)


def _packed_alike(a: StepPlan, b: StepPlan) -> bool:
    """One instance per replica on both sides: the replicas line says it all."""
    return a.instances == a.replicas and b.instances == b.replicas


def _full(s: StepPlan) -> tuple[Change, ...]:
    """Every field of an added or removed step (as if it changed from or to nothing)."""
    packed = (
        ()
        if s.instances == s.replicas
        else (Change("instances", None, s.instances, "-", str(s.instances)),)
    )
    return (
        Change("tier", None, figures.tier(s), "-", figures.tier(s)),
        Change("batch", None, s.batch_size, "-", figures.batch(s)),
        Change("replicas", None, s.replicas, "-", str(s.replicas)),
        *packed,
        Change("start", None, s.start_h, "-", figures.hours(s.start_h)),
        Change("time", None, s.p_duration_h, "-", figures.hours(s.p_duration_h)),
        Change("cost", None, s.expected_cost_usd, "-", figures.money(s.expected_cost_usd)),
    )


def _totals(a: Plan, b: Plan) -> tuple[Change, ...]:
    found = [
        _exact("status", a.status, b.status),
        _money("cost", a.expected_cost_usd, b.expected_cost_usd),
        _hours("makespan", a.makespan_h, b.makespan_h),
        _exact("objective", a.objective, b.objective),
        _hours("deadline", a.deadline_h, b.deadline_h),
        _money("budget", a.budget_usd, b.budget_usd),
        _exact("confidence", a.confidence, b.confidence),
        _exact("catalog", a.catalog, b.catalog, _opt),
        _exact("prices", a.catalog_snapshot, b.catalog_snapshot, _opt),
    ]
    return tuple(c for c in found if c is not None)


def diff_plans(old: Plan, new: Plan, old_label: str = "old", new_label: str = "new") -> PlanDiff:
    """Per-step and total differences; steps in the new plan's order, then removed ones."""
    before = {s.name: s for s in old.steps}
    after = {s.name: s for s in new.steps}
    steps: list[StepDiff] = []
    for s in new.steps:
        was = before.get(s.name)
        if was is None:
            steps.append(StepDiff(s.name, "add", _full(s), None, s))
            continue
        ch = _step_changes(was, s)
        steps.append(StepDiff(s.name, "change" if ch else "same", ch, was, s))
    for s in old.steps:
        if s.name not in after:
            steps.append(StepDiff(s.name, "remove", (), s, None))
    return PlanDiff(old_label, new_label, old, new, tuple(steps), _totals(old, new))


# --------------------------------------------------------------------------- loading


def load_plan(path: Path) -> Plan:
    """A plan from ``exoc plan --format json`` output, or a CompileError (E001 / E602)."""
    label = str(path)
    try:
        text = read_regular_file(path, MAX_PLAN_BYTES).decode("utf-8")
    except InputRefused as e:
        raise CompileError(
            [Diagnostic("E001", f"cannot read the plan file {label}: it {e.reason}")]
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise CompileError(
            [Diagnostic("E001", f"cannot read the plan file {label}: {reason}")]
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CompileError(
            [
                Diagnostic(
                    "E602",
                    f"{label} is not a plan: invalid JSON at line {e.lineno}, column {e.colno}",
                    help=("to fix: save a plan with `exoc plan FILE --format json -o plan.json`",),
                )
            ]
        ) from None
    if isinstance(data, dict):  # keys added by newer versions or by --what-if / --compare
        data = {k: v for k, v in data.items() if k in Plan.model_fields}
    try:
        return Plan.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "the top level"
        raise CompileError(
            [
                Diagnostic(
                    "E602",
                    f"{label} is not a plan: {where}: {first['msg']}",
                    help=("to fix: save a plan with `exoc plan FILE --format json -o plan.json`",),
                )
            ]
        ) from None


# --------------------------------------------------------------------------- output


def to_json(d: PlanDiff) -> dict[str, Any]:
    def change(c: Change) -> dict[str, Value]:
        return {"old": c.old, "new": c.new}

    return {
        "old": d.old_label,
        "new": d.new_label,
        "changed": d.changed,
        "summary": {a: d.count(a) for a in ("add", "change", "remove", "same")},
        "steps": [
            {
                "name": s.name,
                "action": s.action,
                "changes": {c.field: change(c) for c in s.changes},
            }
            for s in d.steps
        ],
        "totals": {c.field: change(c) for c in d.totals},
    }


SIGN: dict[Action, str] = {"add": "+", "remove": "-", "change": "~", "same": " "}


def summary(d: PlanDiff) -> str:
    return (
        f"{d.count('add')} to add, {d.count('change')} to change, "
        f"{d.count('remove')} to remove, {d.count('same')} unchanged"
    )


def change_text(c: Change) -> str:
    text = f"{c.old_text} -> {c.new_text}"
    return f"{text} ({c.delta_text})" if c.delta_text else text
