"""The ``local`` backend: run the plan as real processes on this machine."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exo.compiler.diagnostics import CompileError, Diagnostic
from exo.compiler.plancache import program_digest

from ..api import (
    Artifact,
    Capabilities,
    PlannedWorkflow,
    RunContext,
    RunnableBackend,
    RunReport,
)
from . import devices

if TYPE_CHECKING:
    from . import tasks
    from .spot import SpotConfig

# The task graph (networkx), the runner and spot emulation (numpy) load when a method
# needs them: every `exoc run` and `compile` registers every backend for its options' flags.


def program_fingerprint(planned: PlannedWorkflow) -> str:
    """Hash of the IR and catalog a plan was made from."""
    return program_digest(planned.program, planned.catalog)


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
    fallback: Literal["deadline", "none"] = Field(
        "deadline",
        description="move a spot shard to on-demand when its remaining work no longer fits "
        "its due time (see docs/simulate.md)",
    )
    spot_trace: str | None = Field(
        None,
        description="emulate spot from a spot trace file (the format of `exoc simulate "
        "--trace`): spot shards are killed when its capacity ends and wait while it has none",
    )
    spot_rate: float | None = Field(
        None,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="emulate spot preemptions at this Poisson rate (per trace hour)",
    )
    spot_time_scale: float = Field(
        1.0,
        gt=0,
        le=1e6,
        allow_inf_nan=False,
        description="trace seconds per real second when emulating spot",
    )
    spot_seed: int = Field(0, ge=0, description="seed of the emulated spot preemptions")
    gpus: str = Field(
        "auto",
        description="the GPUs a GPU step's shards are spread over, each attempt told its own in "
        "CUDA_VISIBLE_DEVICES: auto (exoc's CUDA_VISIBLE_DEVICES, else nvidia-smi -L), none "
        "(shards are not told), or device indices or UUIDs, e.g. 0,1,2,3",
    )

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, value: str) -> str:
        devices.parse(value)  # a ValueError is the option's error
        return value


def gpu_config(
    planned: PlannedWorkflow, options: LocalOptions, ctx: RunContext
) -> tuple[tuple[str, ...], dict[str, int], int]:
    """The GPUs shards are spread over, each GPU step's GPUs per shard, and the most
    GPUs the plan uses at once (``RunConfig``'s ``devices``, ``gpus``, ``gpu_demand``)."""
    gpus = devices.plan_gpus(planned)
    pool = devices.parse(options.gpus) if gpus else ()  # no GPU step: no nvidia-smi either
    if pool is None:
        pool = devices.discover(ctx.environ)
    return pool, gpus, devices.plan_demand(planned, gpus)


def spot_config(planned: PlannedWorkflow, options: LocalOptions) -> SpotConfig | None:
    """Emulated spot and the fallback for a run (``None``: no spot step, or neither asked)."""
    emulate = options.spot_trace is not None or options.spot_rate is not None
    if options.fallback == "none" and not emulate:
        return None
    if not any(sp.spot for sp in planned.plan.steps):
        return None  # checked first: the cost model (scipy, networkx) loads only for spot
    from ..runtime import fallback
    from .spot import SpotConfig

    steps = fallback.spot_steps(planned)
    if not steps:
        return None
    trace = None
    if options.spot_trace is not None:  # numpy loads only here, for a trace
        from exo.compiler import spot_traces

        (trace,) = spot_traces.load_traces([Path(options.spot_trace)])
    return SpotConfig(
        steps,
        options.fallback == "deadline",
        trace,
        options.spot_rate,
        options.spot_time_scale,
        options.spot_seed,
    )


class LocalBackend(RunnableBackend[LocalOptions]):
    name: ClassVar[str] = "local"
    description: ClassVar[str] = (
        "Runs the plan on this machine as real processes: shards, retries, resumable state."
    )
    capabilities: ClassVar[Capabilities] = Capabilities(run=True, cancel=True)
    Options: ClassVar[type[LocalOptions]] = LocalOptions

    def check(self, planned: PlannedWorkflow, options: LocalOptions) -> list[Diagnostic]:
        from . import tasks

        return tasks.check(planned)

    def graph(self, planned: PlannedWorkflow) -> tasks.TaskGraph:
        from . import tasks

        problems = self.check(planned, LocalOptions())
        if problems:
            raise CompileError(problems)
        return tasks.build(planned)

    def emit(self, planned: PlannedWorkflow, options: LocalOptions) -> list[Artifact]:
        """``local-plan.json``: every step's shards, command, env and output (no secret values)."""
        return [Artifact("local-plan.json", self.graph(planned).to_json())]

    def run(self, planned: PlannedWorkflow, options: LocalOptions, ctx: RunContext) -> RunReport:
        from exo.compiler.plan import Plan

        from ..runtime.progress import make_reporter
        from . import runner

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
        pool, gpus, demand = gpu_config(planned, options, ctx)
        spot = spot_config(planned, options)
        config = replace(config, spot=spot, devices=pool, gpus=gpus, gpu_demand=demand)
        return runner.execute(graph, config, reporter, provenance)

    def status(self, planned: PlannedWorkflow, options: LocalOptions, ctx: RunContext) -> RunReport:
        from . import runner

        return runner.status(
            self.graph(planned), Path(ctx.workflow_file).resolve(), Path(ctx.state_dir).resolve()
        )

    def cancel(self, planned: PlannedWorkflow, options: LocalOptions, ctx: RunContext) -> RunReport:
        from . import runner

        return runner.cancel(
            self.graph(planned),
            Path(ctx.workflow_file).resolve(),
            Path(ctx.state_dir).resolve(),
            wait_s=options.grace_s + 10.0,
        )
