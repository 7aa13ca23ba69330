"""The ``slurm`` backend: emit sbatch scripts, or submit them and follow the run."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from exo.compiler.diagnostics import Diagnostic

from ..api import Artifact, Capabilities, PlannedWorkflow, RunContext, RunnableBackend, RunReport
from ..local.progress import make_reporter
from . import emit, jobs, runner
from .fallback import SlurmFallback
from .options import SlurmOptions
from .scheduler import Cluster


def _options(options: BaseModel) -> SlurmOptions:
    if isinstance(options, SlurmOptions):
        return options
    return SlurmOptions.model_validate(options.model_dump())


class SlurmBackend(RunnableBackend):
    name: ClassVar[str] = "slurm"
    description: ClassVar[str] = (
        "sbatch job arrays chained with afterok dependencies; tiers map to partitions/QOS; "
        "`exoc run` submits and follows the jobs."
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        run=True, cancel=True, spot=True, accelerators=True
    )
    Options: ClassVar[type[BaseModel]] = SlurmOptions

    def check(self, planned: PlannedWorkflow, options: BaseModel) -> list[Diagnostic]:
        return jobs.check(planned, _options(options))

    def emit(self, planned: PlannedWorkflow, options: BaseModel) -> list[Artifact]:
        """``submit.sh`` and ``steps/<step>.sbatch``; raises CompileError (E702) when
        :meth:`check` finds errors."""
        return emit.render(planned, _options(options))

    def _config(self, options: SlurmOptions, ctx: RunContext) -> runner.RunConfig:
        return runner.RunConfig(
            workflow_file=Path(ctx.workflow_file).resolve(),
            state_dir=Path(ctx.state_dir).resolve(),
            fresh=ctx.fresh,
            poll_s=options.poll_s,
            cluster=Cluster(env=dict(ctx.environ)),
            environ=ctx.environ,
        )

    def run(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        opts = _options(options)
        artifacts = emit.render(planned, opts)
        config = replace(self._config(opts, ctx), fallback=SlurmFallback.of(planned, opts))
        return runner.execute(
            jobs.build(planned, opts),
            artifacts,
            planned.program.workflow.name,
            config,
            make_reporter(ctx.progress, sys.stderr),
            plan_json=planned.plan.model_dump_json(),
        )

    def status(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        opts = _options(options)
        return runner.status(
            jobs.build(planned, opts), planned.program.workflow.name, self._config(opts, ctx)
        )

    def cancel(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        opts = _options(options)
        return runner.cancel(
            jobs.build(planned, opts), planned.program.workflow.name, self._config(opts, ctx)
        )
