"""The Plan: what the optimizer decided, in the shape of DESIGN §4 (normative).

``Plan.model_dump(mode="json")`` is exactly the object ``exoc plan --format
json`` prints. Keys may be added; none may be removed or renamed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from exo.compiler.frozen import Frozen, find_by


def _no_baselines() -> dict[str, Baseline | None]:
    return {"all_on_demand": None, "naive": None}


class StepPlan(Frozen):
    name: str
    instance_type: str
    accelerator: str | None
    accelerator_count: int
    spot: bool
    #: ``None`` for duration steps and batch-independent throughput.
    batch_size: int | None
    replicas: int
    start_h: float
    expected_duration_h: float
    p_duration_h: float
    expected_cost_usd: float
    # --- additions (allowed by §4) ---
    #: Instances rented: ``ceil(replicas / replicas per instance)`` (cost model v2 packing).
    #: A plan written before v2 has none: it rented one instance per replica.
    instances: int = 1
    vcpus: int = 0
    price_usd_per_hour: float = 0.0
    on_critical_path: bool = False

    @model_validator(mode="before")
    @classmethod
    def _v1_instances(cls, data: Any) -> Any:
        if isinstance(data, dict) and "instances" not in data and "replicas" in data:
            return {**data, "instances": data["replicas"]}
        return data


class Baseline(Frozen):
    expected_cost_usd: float
    makespan_h: float


class Plan(Frozen):
    workflow: str
    objective: Literal["cost", "time"]
    status: Literal["optimal", "feasible", "infeasible"]
    deadline_h: float | None
    budget_usd: float | None
    confidence: float
    expected_cost_usd: float | None
    makespan_h: float | None
    lower_bound_usd: float | None
    baselines: dict[str, Baseline | None] = Field(default_factory=_no_baselines)
    steps: list[StepPlan] = Field(default_factory=list)
    explanation: tuple[str, ...] = ()
    # --- additions (allowed by §4) ---
    catalog: str | None = None
    catalog_snapshot: str | None = None
    solve_time_s: float | None = None
    gap: float | None = None

    def step(self, name: str) -> StepPlan | None:
        return find_by(self.steps, "name", name)
