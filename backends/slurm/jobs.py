"""From a plan to Slurm jobs: one array job per step, a pure function of the plan.

Every decision the scripts encode is made here (partition, GRES, time limit,
shard formula, output location, argv words); the templates only lay it out.
Shard ranges, runtime placeholders, ``EXO_*`` variables and the output
contract are those of :mod:`exo.backends.api` and the local backend: one array
task per planned replica, each a long-lived shard over ``[floor(W*i/n),
floor(W*(i+1)/n))``; a shard writes into a fresh attempt directory
(``{output}``), which is renamed to ``<output>/shard-<index>`` when the command
succeeds; its checkpoint folder (``{checkpoint}``,
``<run dir>/checkpoints/<step>/shard-<index>``) survives requeues, error retries
and resubmissions, and is removed once the shard is published.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from exo.compiler.diagnostics import Diagnostic, Severity
from exo.compiler.ir import Step, step_order
from exo.compiler.plan import StepPlan

from ..api import (
    PlannedWorkflow,
    expand,
    micro_batch_size,
    output_placeholder_problem,
    shard_count,
    step_span,
)
from ..runtime.outputs import OutputDir, output_dir
from .options import MAX_TIME_MINUTES, SlurmOptions
from .shell import PLACEHOLDER_VARS, Shell, literal, quote, word

_JOB_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]")

#: Shell variables of the job script that hold its arguments.
RUN_DIR_VAR = "run_dir"
WORKFLOW_DIR_VAR = "workflow_dir"


@dataclass(frozen=True, slots=True)
class Tier:
    """Where a step's jobs go: partition, QOS and account (``None``: cluster default)."""

    partition: str | None
    qos: str | None
    account: str | None
    spot: bool
    #: The plan asks for spot but the options name no preemptible partition or QOS.
    spot_unmapped: bool = False


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One step as one (array) job; every ``Shell`` field is ready to paste into bash."""

    step: str
    #: Position in the submission order (topological, ties by declaration).
    position: int
    script: str
    job_name: str
    needs: tuple[str, ...]
    #: Array tasks: one per planned replica (DESIGN §6), each a long-lived shard.
    shards: int
    tier: Tier
    #: ``#SBATCH`` options, in order, each one line.
    directives: tuple[str, ...]
    time_minutes: int
    # what the script computes at run time
    items: int
    #: The micro-batch size (``None``: a shard is one micro-batch).
    batch_size: int | None
    retries: int
    preemption_retries: int
    timeout_s: int | None
    backoff_s: float
    backoff_max_s: float
    signal_seconds: int | None
    # shell words
    argv: tuple[Shell, ...]
    env: tuple[tuple[str, Shell], ...]
    secrets: tuple[str, ...]
    input: Shell
    output: Shell
    #: Where the output folder is (as the local backend decides it).
    output_dir: OutputDir
    #: Why the output is kept under the run directory, if it is.
    output_note: str | None
    # plan facts shown in the header comment
    summary: tuple[str, ...]


def job_name(workflow: str, step: str) -> str:
    return _JOB_NAME_BAD.sub("_", f"exo.{workflow}.{step}")


def submission_order(planned: PlannedWorkflow) -> list[str]:
    """Steps in dependency order, ties by declaration (as ``exoc run`` orders them), without
    loading networkx."""
    return step_order(planned.program)


def tier(step: Step, sp: StepPlan, options: SlurmOptions) -> Tier:
    keys = [sp.instance_type]
    if sp.accelerator:
        keys.append(sp.accelerator)
    else:
        keys.append("cpu")

    def lookup(table: dict[str, str]) -> str | None:
        for k in keys:
            if k in table:
                return table[k]
        return None

    on_demand = lookup(options.partitions) or options.partition
    if not sp.spot:
        return Tier(on_demand, options.qos, options.account, spot=False)
    spot_partition = lookup(options.spot_partitions) or options.spot_partition
    if spot_partition is not None:
        return Tier(spot_partition, options.spot_qos, options.account, spot=True)
    if options.spot_qos is not None:
        return Tier(on_demand, options.spot_qos, options.account, spot=True)
    return Tier(on_demand, options.qos, options.account, spot=True, spot_unmapped=True)


def time_limit_minutes(step: Step, sp: StepPlan, options: SlurmOptions) -> int:
    """``--time`` of one array task: every attempt of one shard plus the backoff between them.

    A shard is one replica's whole share of the step (DESIGN §6), so one attempt
    gets the step's P-duration (startup included) times ``1 + time_margin``, or
    the step's ``timeout``; the task gets ``retries + 1`` attempts. A requeue
    after a preemption starts the task again with its full time limit.
    """
    attempt_h = (
        step.timeout_h
        if step.timeout_h is not None
        else sp.p_duration_h * (1 + options.time_margin)
    )
    backoff_s = sum(
        min(options.backoff_s * 2.0**i, options.backoff_max_s) for i in range(step.retries)
    )
    total_min = attempt_h * 60 * (step.retries + 1) + backoff_s / 60
    if not math.isfinite(total_min) or total_min > MAX_TIME_MINUTES:
        return MAX_TIME_MINUTES + 1  # more than Slurm can hold: check() refuses it
    return max(options.min_time_minutes, math.ceil(total_min))


def format_time(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00"


def output_word(out: OutputDir, step: str) -> Shell:
    """The step's output folder as one shell word (``{step}`` is fixed, ``{run_id}`` is not)."""
    path = expand(out.path, {"step": step}).rstrip("/") or "/"
    tail = word(path, {"run_id": PLACEHOLDER_VARS["run_id"]})
    if out.root == "workflow":
        return Shell(f'"${{{WORKFLOW_DIR_VAR}}}"/{tail}')
    if out.root == "state":
        return Shell(f'"${{{RUN_DIR_VAR}}}"/{tail}')
    return tail


def _output_note(step: Step, out: OutputDir) -> str | None:
    if out.root != "state":
        return None
    if step.output:
        return f"`{step.output}` is not a local path; the shards stay in the run directory"
    return "the step declares no output"


def check(planned: PlannedWorkflow, options: SlurmOptions) -> list[Diagnostic]:
    """What stops the Slurm backend from emitting this plan (``E702``), and tier warnings."""
    out: list[Diagnostic] = []
    if planned.plan.status == "infeasible":
        return [Diagnostic("E702", "the plan is infeasible; there is nothing to submit")]
    for step in planned.program.steps:
        sp = planned.plan.step(step.name)
        if sp is None:
            out.append(
                Diagnostic(
                    "E702", f"the plan has no placement for step `{step.name}`", step_span(step)
                )
            )
            continue
        if not step.command or not step.command[0].strip():
            out.append(
                Diagnostic(
                    "E702",
                    f"step `{step.name}` has no `command`; a Slurm job runs a command",
                    step_span(step),
                    help=("add `command = [...]` to the step",),
                )
            )
        if (problem := output_placeholder_problem(step)) is not None:
            out.append(problem)
        out.extend(_limit_problems(step, sp, options))
    return out


def _limit_problems(step: Step, sp: StepPlan, options: SlurmOptions) -> list[Diagnostic]:
    """What the cluster cannot hold (time limit, array size), and a spot tier with no home."""
    out: list[Diagnostic] = []
    n = shard_count(step, sp)
    if time_limit_minutes(step, sp, options) > MAX_TIME_MINUTES:
        out.append(
            Diagnostic(
                "E702",
                f"step `{step.name}` would need a time limit beyond the largest Slurm "
                f"can hold ({MAX_TIME_MINUTES} minutes)",
                step_span(step),
                help=("give the step a `timeout`, or allow more replicas",),
            )
        )
    if options.max_array_size is not None and n > options.max_array_size:
        out.append(
            Diagnostic(
                "E702",
                f"step `{step.name}` runs {n} shards but the cluster's MaxArraySize is "
                f"{options.max_array_size}",
                step_span(step),
                help=(
                    "cap the step's `replicas`, or raise MaxArraySize in slurm.conf "
                    "and pass --slurm-max-array-size",
                ),
            )
        )
    t = tier(step, sp, options)
    if t.spot_unmapped:
        out.append(
            Diagnostic(
                "E702",
                f"step `{step.name}` is planned on a spot tier ({sp.instance_type}) but no "
                "preemptible partition or QOS is configured; it is submitted with --requeue "
                "to the on-demand partition",
                step_span(step),
                help=(
                    "set `spot_partition`, `spot_partitions` or `spot_qos` in "
                    "`backend slurm { ... }` (or --slurm-spot-partition)",
                ),
                severity=Severity.WARNING,
            )
        )
    return out


def _directives(
    step: Step, sp: StepPlan, options: SlurmOptions, job: tuple[str, Tier, int, int]
) -> tuple[list[str], int | None]:
    """The ``#SBATCH`` options of a step's job (name, tier, shards, minutes), and the
    seconds of warning a spot task gets before it is stopped (``None``: on-demand)."""
    name, t, n, minutes = job
    directives: list[str] = [f"--job-name={name}"]
    if t.partition:
        directives.append(f"--partition={t.partition}")
    if t.qos:
        directives.append(f"--qos={t.qos}")
    if t.account:
        directives.append(f"--account={t.account}")
    if n > 1:
        # One task per replica-shard, all at once (no throttle: shards are replicas).
        directives.append(f"--array=0-{n - 1}")
    directives.append(f"--time={format_time(minutes)}")
    directives.append("--nodes=1")
    directives.append("--ntasks=1")
    if step.cpu:
        directives.append(f"--cpus-per-task={step.cpu}")
    if step.memory_gib:
        directives.append(f"--mem={math.ceil(step.memory_gib * 1024)}M")
    if sp.accelerator:
        gpus = max(step.gpus, 1)
        gtype = options.gres_type(sp.accelerator)
        gres = f"{options.gres_name}:{gtype}:{gpus}" if gtype else f"{options.gres_name}:{gpus}"
        directives.append(f"--gres={gres}")
    signal_seconds: int | None = None
    if t.spot:
        signal_seconds = options.signal_seconds
        directives.append("--requeue")
        directives.append(f"--signal=B:USR1@{signal_seconds}")
    directives.append("--open-mode=append")
    directives.extend(options.extra_directives)
    return directives, signal_seconds


def _argv(step: Step, sp: StepPlan, options: SlurmOptions) -> list[Shell]:
    """The command as shell words, inside ``apptainer exec`` when the options ask for it."""
    argv = [word(a, PLACEHOLDER_VARS) for a in step.command]
    if options.container == "apptainer" and step.image:
        prefix = ["apptainer", "exec"]
        if sp.accelerator:
            prefix.append("--nv")
        prefix.append(f"docker://{step.image}")
        argv = [quote(p) for p in prefix] + argv
    return argv


def _input_word(planned: PlannedWorkflow, step: Step, outputs: dict[str, OutputDir]) -> Shell:
    if step.input is None:
        return literal("")
    if step.input.kind == "dataset":
        return literal(planned.program.datasets[step.input.name].uri or "")
    return output_word(outputs[step.input.name], step.input.name)


def _summary(step: Step, sp: StepPlan, n: int, options: SlurmOptions) -> list[str]:
    """The plan's facts for the job script's header comment."""
    summary = [
        f"plan: {sp.instance_type}"
        + (f" ({sp.accelerator_count} x {sp.accelerator})" if sp.accelerator else " (CPU)")
        + (", spot" if sp.spot else ", on-demand")
        + (f", batch size {sp.batch_size}" if sp.batch_size is not None else "")
        + f", {sp.replicas} replica(s)",
        f"shards: {n} (one per replica) over {step.items or 0} items; "
        f"P-duration {sp.p_duration_h:.3f} h, "
        f"expected cost ${sp.expected_cost_usd:.2f}",
    ]
    if step.image and options.container == "none":
        summary.append(f"image (not used, container = none): {step.image}")
    return summary


def build(planned: PlannedWorkflow, options: SlurmOptions) -> list[SlurmJob]:
    """The jobs of a plan that passed :func:`check`, in submission order."""
    program = planned.program
    wf = program.workflow.name
    outputs = {s.name: output_dir(s) for s in program.steps}
    jobs: list[SlurmJob] = []
    for position, name in enumerate(submission_order(planned)):
        step = program.step(name)
        sp = planned.step_plan(name)
        n = shard_count(step, sp)
        t = tier(step, sp, options)
        minutes = time_limit_minutes(step, sp, options)
        directives, signal_seconds = _directives(
            step, sp, options, (job_name(wf, name), t, n, minutes)
        )
        jobs.append(
            SlurmJob(
                step=name,
                position=position,
                script=f"steps/{name}.sbatch",
                job_name=job_name(wf, name),
                needs=step.predecessors(),
                shards=n,
                tier=t,
                directives=tuple(directives),
                time_minutes=minutes,
                items=step.items or 0,
                batch_size=micro_batch_size(step, sp),
                retries=step.retries,
                preemption_retries=step.preemption_retries,
                timeout_s=math.ceil(step.timeout_h * 3600) if step.timeout_h is not None else None,
                backoff_s=options.backoff_s,
                backoff_max_s=options.backoff_max_s,
                signal_seconds=signal_seconds,
                argv=tuple(_argv(step, sp, options)),
                env=tuple((k, word(v, PLACEHOLDER_VARS)) for k, v in sorted(step.env.items())),
                secrets=tuple(step.secrets),
                input=_input_word(planned, step, outputs),
                output=output_word(outputs[name], name),
                output_dir=outputs[name],
                output_note=_output_note(step, outputs[name]),
                summary=tuple(_summary(step, sp, n, options)),
            )
        )
    return jobs
