"""The ``local`` backend: run the plan as real processes on this machine."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from exo.compiler.diagnostics import CompileError, Diagnostic
from exo.compiler.plan import Plan

from ..api import (
    Artifact,
    Capabilities,
    PlannedWorkflow,
    RunContext,
    RunnableBackend,
    RunReport,
)
from . import runner, tasks
from .progress import make_reporter


def program_fingerprint(planned: PlannedWorkflow) -> str:
    """Hash of the IR and catalog a plan was made from."""
    payload = planned.program.model_dump_json() + "\n" + planned.catalog.model_dump_json()
    return hashlib.sha256(payload.encode()).hexdigest()


class LocalOptions(BaseModel):
    """Options of the local backend (``--local-<field>`` or ``backend local { ... }``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backoff_s: float = Field(
        1.0,
        ge=0,
        le=86400,
        allow_inf_nan=False,
        description="delay before the first retry of a failed shard (doubles each time)",
    )
    backoff_max_s: float = Field(
        60.0, ge=0, le=86400, allow_inf_nan=False, description="longest delay between retries"
    )
    grace_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="time a shard gets after SIGTERM before SIGKILL",
    )
    clean_env: bool = Field(
        False,
        description="start shards from a minimal environment (PATH, HOME, LANG, ...) "
        "instead of the runner's",
    )


class LocalBackend(RunnableBackend):
    name: ClassVar[str] = "local"
    description: ClassVar[str] = (
        "Runs the plan on this machine as real processes: shards, retries, resumable state."
    )
    capabilities: ClassVar[Capabilities] = Capabilities(run=True, cancel=True)
    Options: ClassVar[type[BaseModel]] = LocalOptions

    def check(self, planned: PlannedWorkflow, options: BaseModel) -> list[Diagnostic]:
        return tasks.check(planned)

    def graph(self, planned: PlannedWorkflow) -> tasks.TaskGraph:
        problems = self.check(planned, LocalOptions())
        if problems:
            raise CompileError(problems)
        return tasks.build(planned)

    def emit(self, planned: PlannedWorkflow, options: BaseModel) -> list[Artifact]:
        """``local-plan.json``: every step's shards, command, env and output (no secret values)."""
        return [Artifact("local-plan.json", self.graph(planned).to_json())]

    def run(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        assert isinstance(options, LocalOptions)
        graph = self.graph(planned)
        config = runner.RunConfig(
            workflow_file=Path(ctx.workflow_file).resolve(),
            base_dir=Path(planned.base_dir).resolve(),
            state_dir=Path(ctx.state_dir).resolve(),
            jobs=ctx.jobs if ctx.jobs is not None else runner.default_jobs(graph),
            fresh=ctx.fresh,
            backoff_s=options.backoff_s,
            backoff_max_s=options.backoff_max_s,
            grace_s=options.grace_s,
            clean_env=options.clean_env,
            environ=ctx.environ,
        )
        reporter = make_reporter(ctx.progress, sys.stderr)
        program_hash = program_fingerprint(planned)
        stored = runner.resumable_plan(config)
        if stored is not None and stored.program_hash == program_hash:
            plan = Plan.model_validate_json(stored.plan_json)
            if plan != planned.plan:
                # Solver ties or time limits must not make a resumed run redo finished steps.
                reporter.message(
                    "the workflow is unchanged: resuming with the plan it started with"
                )
                planned = planned.model_copy(update={"plan": plan})
                graph = self.graph(planned)
        provenance = runner.Provenance(program_hash, planned.plan.model_dump_json())
        return runner.execute(graph, config, reporter, provenance)

    def status(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        return runner.status(
            self.graph(planned), Path(ctx.workflow_file).resolve(), Path(ctx.state_dir).resolve()
        )

    def cancel(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        assert isinstance(options, LocalOptions)
        return runner.cancel(
            self.graph(planned),
            Path(ctx.workflow_file).resolve(),
            Path(ctx.state_dir).resolve(),
            wait_s=options.grace_s + 10.0,
        )
