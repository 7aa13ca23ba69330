"""A minimal exo backend: one plain-text run sheet listing what would run where.

It shows every part of the plugin interface: a name, the API version, the
capabilities, an options model (``--hello-greeting``, ``--hello-width``,
``--hello-uppercase``), ``check`` returning diagnostics and a deterministic
``emit``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from exo.backends.api import (
    API_VERSION,
    Artifact,
    Backend,
    Capabilities,
    PlannedWorkflow,
    shards,
)
from exo.compiler.diagnostics import Diagnostic


class HelloOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    greeting: str = Field("hello", min_length=1, description="first word of the sheet")
    width: int = Field(72, ge=20, le=200, description="line width of the sheet")
    uppercase: bool = Field(False, description="shout the step names")


class HelloBackend(Backend):
    name: ClassVar[str] = "hello"
    api_version: ClassVar[int] = API_VERSION
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type[BaseModel]] = HelloOptions
    description: ClassVar[str] = "Example plugin: a plain-text run sheet of the plan."

    def check(self, planned: PlannedWorkflow, options: BaseModel) -> list[Diagnostic]:
        problems = []
        for step in planned.program.steps:
            if planned.plan.step(step.name) is None:
                problems.append(Diagnostic("E702", f"the plan has no step `{step.name}`"))
        return problems

    def emit(self, planned: PlannedWorkflow, options: BaseModel) -> list[Artifact]:
        assert isinstance(options, HelloOptions)
        lines = [f"{options.greeting}, {planned.program.workflow.name}!", "=" * options.width]
        for step in planned.program.steps:
            sp = planned.step_plan(step.name)
            title = step.name.upper() if options.uppercase else step.name
            where = sp.instance_type + (" (spot)" if sp.spot else "")
            lines.append(f"{title}: {len(shards(step, sp))} shard(s) on {sp.replicas} x {where}")
            lines.append("  " + " ".join(step.command)[: options.width - 2])
        return [Artifact("run-sheet.txt", "\n".join(lines) + "\n")]
