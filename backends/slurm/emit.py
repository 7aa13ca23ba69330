"""Render the Slurm artifacts: ``submit.sh`` and one ``steps/<step>.sbatch`` per step."""

from __future__ import annotations

import json

from exo.compiler.diagnostics import CompileError, Severity

from ..api import Artifact, PlannedWorkflow
from ..runtime import checkpoints
from . import jobs as jobs_mod
from .jobs import SlurmJob
from .options import SlurmOptions
from .shell import Shell, environment


def backoff_delays(job: SlurmJob) -> list[str]:
    """Seconds to wait before error retry 1, 2, ... (doubling, capped)."""
    out: list[str] = []
    for i in range(job.retries):
        delay = min(job.backoff_s * 2.0**i, job.backoff_max_s)
        out.append(f"{delay:g}")
    return out


def dependency_words(jobs: list[SlurmJob]) -> dict[str, Shell]:
    """``"${job_0}:${job_2}"`` (the ids submit.sh recorded) for each step's needs."""
    position = {j.step: j.position for j in jobs}
    out: dict[str, Shell] = {}
    for j in jobs:
        ids = ":".join(f"${{job_{position[n]}}}" for n in j.needs)
        out[j.step] = Shell(f'"{ids}"' if ids else "''")
    return out


def needed_positions(jobs: list[SlurmJob]) -> set[int]:
    """The positions of the jobs another job needs (submit.sh records their ids)."""
    needed = {n for j in jobs for n in j.needs}
    return {j.position for j in jobs if j.step in needed}


def ledger_tier(planned: PlannedWorkflow, step: str) -> str:
    """The planned tier as JSON members for the job's ledger lines (``spot`` is added at run time)."""
    sp = planned.step_plan(step)
    tier = {"instance_type": sp.instance_type, "batch_size": sp.batch_size}
    return json.dumps(tier, sort_keys=True, separators=(",", ":"))[1:-1]


def spot_check(job: SlurmJob) -> tuple[str, str] | None:
    """How a spot task tells, at run time, that it is not on the spot tier.

    ``("partition", "a,b")``: ``SLURM_JOB_PARTITION`` is none of these;
    ``("qos", q)``: ``SLURM_JOB_QOS`` is not ``q``; ``None``: only the runner's
    mark file (an on-demand step, or spot that the options do not map).
    """
    t = job.tier
    if not t.spot or t.spot_unmapped:
        return None
    if t.partition is not None:
        return ("partition", t.partition)
    return ("qos", t.qos) if t.qos is not None else None


def render(planned: PlannedWorkflow, options: SlurmOptions) -> list[Artifact]:
    errors = [d for d in jobs_mod.check(planned, options) if d.severity is Severity.ERROR]
    if errors:
        raise CompileError(errors)
    jobs = jobs_mod.build(planned, options)
    env = environment()
    workflow = planned.program.workflow.name
    step_template = env.get_template("step.sbatch.j2")
    artifacts = [
        Artifact(
            "submit.sh",
            env.get_template("submit.sh.j2").render(
                workflow=workflow,
                jobs=jobs,
                deps=dependency_words(jobs),
                referenced=needed_positions(jobs),
                secrets=sorted({s for j in jobs for s in j.secrets}),
            ),
            executable=True,
        )
    ]
    for job in jobs:
        artifacts.append(
            Artifact(
                job.script,
                step_template.render(
                    workflow=workflow,
                    job=job,
                    delays=backoff_delays(job),
                    ledger_tier=ledger_tier(planned, job.step),
                    spot_check=spot_check(job),
                ),
                executable=True,
            )
        )
    # The worker helper, which submit.sh copies beside the run for the shards' PYTHONPATH.
    for rel, text in checkpoints.helper_files().items():
        artifacts.append(Artifact(f"{checkpoints.HELPER_LIB}/{rel}", text))
    return sorted(artifacts, key=lambda a: a.path)
