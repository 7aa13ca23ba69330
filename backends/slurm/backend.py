"""The ``slurm`` backend: emit sbatch scripts, or submit them and follow the run."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from exo.compiler.diagnostics import Diagnostic

from ..api import Artifact, Capabilities, PlannedWorkflow, RunContext, RunnableBackend, RunReport
from .options import SlurmOptions

if TYPE_CHECKING:
    from . import runner

# The scripts' templates (jinja2), the job graph and the runner load when a method needs
# them: every `exoc run` and `compile` registers every backend for its options' flags.


class SlurmBackend(RunnableBackend[SlurmOptions]):
    name: ClassVar[str] = "slurm"
    description: ClassVar[str] = (
        "sbatch job arrays chained with afterok dependencies; tiers map to partitions/QOS; "
        "`exoc run` submits and follows the jobs."
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        run=True, cancel=True, spot=True, accelerators=True
    )
    Options: ClassVar[type[SlurmOptions]] = SlurmOptions

    def check(self, planned: PlannedWorkflow, options: SlurmOptions) -> list[Diagnostic]:
        from . import jobs

        return jobs.check(planned, options)

    def emit(self, planned: PlannedWorkflow, options: SlurmOptions) -> list[Artifact]:
        """``submit.sh`` and ``steps/<step>.sbatch``; raises CompileError (E702) when
        :meth:`check` finds errors."""
        from . import emit

        return emit.render(planned, options)

    def _config(self, options: SlurmOptions, ctx: RunContext) -> runner.RunConfig:
        from . import runner
        from .scheduler import Cluster

        return runner.RunConfig(
            workflow_file=Path(ctx.workflow_file).resolve(),
            state_dir=Path(ctx.state_dir).resolve(),
            fresh=ctx.fresh,
            poll_s=options.poll_s,
            cluster=Cluster(env=dict(ctx.environ)),
            environ=ctx.environ,
        )

    def run(self, planned: PlannedWorkflow, options: SlurmOptions, ctx: RunContext) -> RunReport:
        from ..runtime.progress import make_reporter
        from . import emit, jobs, runner
        from .fallback import SlurmFallback

        artifacts = emit.render(planned, options)
        config = replace(self._config(options, ctx), fallback=SlurmFallback.of(planned, options))
        return runner.execute(
            jobs.build(planned, options),
            artifacts,
            planned.program.workflow.name,
            config,
            make_reporter(ctx.progress, sys.stderr),
            plan_json=planned.plan.model_dump_json(),
        )

    def status(self, planned: PlannedWorkflow, options: SlurmOptions, ctx: RunContext) -> RunReport:
        from . import jobs, runner

        return runner.status(
            jobs.build(planned, options), planned.program.workflow.name, self._config(options, ctx)
        )

    def cancel(self, planned: PlannedWorkflow, options: SlurmOptions, ctx: RunContext) -> RunReport:
        from . import jobs, runner

        return runner.cancel(
            jobs.build(planned, options), planned.program.workflow.name, self._config(options, ctx)
        )
