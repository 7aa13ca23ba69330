"""The backend plugin interface, shared shard semantics and runtime placeholders.

A backend is a class implementing :class:`Backend`, registered under the
entry-point group ``exo.backends`` (the built-ins register the same way, in
``pyproject.toml``). Backends never parse ``.exo`` files: they receive a
:class:`PlannedWorkflow` (IR + plan + catalog) and return artifacts.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from exo.compiler.diagnostics import Diagnostic, Span
from exo.compiler.frozen import Frozen
from exo.compiler.ir import CPU_KEY, RUNTIME_PLACEHOLDERS, Step
from exo.compiler.plan import StepPlan
from exo.compiler.planned import PlannedWorkflow as PlannedWorkflow  # made by the compiler

#: Version of this interface; a plugin declares the version it was written for.
API_VERSION = 1


class Capabilities(Frozen):
    #: ``exoc run --target NAME`` and ``exoc status`` are supported (the class
    #: must then implement :class:`RunnableBackend`).
    run: bool = False
    #: ``exoc cancel`` is supported (:meth:`RunnableBackend.cancel` is overridden).
    cancel: bool = False
    #: Honours spot/on-demand tiers.
    spot: bool = False
    #: Requests accelerators.
    accelerators: bool = False


@dataclass(frozen=True, slots=True)
class Artifact:
    """One emitted file; ``path`` is relative to the output directory."""

    path: str
    content: str
    executable: bool = False


class Backend(ABC):
    """The typed interface every backend implements."""

    name: ClassVar[str]
    api_version: ClassVar[int] = API_VERSION
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Options model; each field becomes ``--<backend>-<field>`` on the CLI and may
    #: also be set in a ``backend NAME { ... }`` block of the workflow.
    Options: ClassVar[type[BaseModel]]
    description: ClassVar[str] = ""

    @abstractmethod
    def check(self, planned: PlannedWorkflow, options: BaseModel) -> list[Diagnostic]:
        """Problems that stop this backend from emitting the plan (empty when fine)."""

    @abstractmethod
    def emit(self, planned: PlannedWorkflow, options: BaseModel) -> list[Artifact]:
        """Deterministic artifacts (no timestamps, sorted keys)."""


# --- running ----------------------------------------------------------------------------


class RunContext(Frozen):
    """Where and how ``exoc run`` / ``status`` / ``cancel`` act; built by the CLI.

    Everything a runner needs from the outside world is passed in here (no
    globals): the workflow file, the state directory, the concurrency bound, and
    the environment secrets are read from.
    """

    #: Absolute path of the entry ``.exo`` file (identifies the workflow's runs).
    workflow_file: str
    #: Absolute path of the state directory (default: ``.exo/<file stem>`` beside the file).
    state_dir: str
    #: Maximum concurrent tasks (``--jobs``); ``None`` means the backend's default.
    jobs: int | None = None
    #: Start a new run instead of resuming the unfinished one (``--fresh``).
    fresh: bool = False
    #: ``rich`` progress bars, ``plain`` lines, or ``none``.
    progress: Literal["rich", "plain", "none"] = "plain"
    #: The environment secrets are passed from, by name. Never logged, never stored.
    environ: dict[str, str] = Field(default_factory=dict, repr=False)


TaskState = Literal["pending", "running", "done", "failed", "blocked", "cancelled"]
RunState = Literal["none", "running", "submitted", "done", "failed", "interrupted", "cancelled"]


class ShardFailure(Frozen):
    """The shard that made a step fail for good, and where to look."""

    step: str
    shard: int
    attempts: int
    reason: str
    log: str | None = None


class StepProgress(Frozen):
    name: str
    state: TaskState
    shards_total: int
    shards_done: int = 0
    shards_running: int = 0
    #: Error retries used (non-zero exits, timeouts).
    retries: int = 0
    #: Preemptions seen (killed from outside), retried without using ``retries``.
    preemptions: int = 0


class RunReport(Frozen):
    """What :meth:`RunnableBackend.run`, ``status`` and ``cancel`` return."""

    workflow: str
    #: ``None`` when the state holds no run of this workflow (``state == "none"``).
    run_id: str | None
    state: RunState
    steps: list[StepProgress] = Field(default_factory=list)
    failures: list[ShardFailure] = Field(default_factory=list)
    #: Human-readable lines (where logs are, what was resumed, ...).
    messages: list[str] = Field(default_factory=list)
    #: The run's ledger file (``backends/runtime/ledger.py``), for ``exoc status``'s
    #: planned vs actual; not part of the report's JSON.
    ledger: str | None = Field(default=None, exclude=True)

    @property
    def exit_code(self) -> int:
        """The ``exoc`` exit code for this outcome (DESIGN §5)."""
        if self.state == "interrupted":
            return 130
        if self.state == "failed":
            return 1
        return 0


class RunnableBackend(Backend):
    """A backend that can also execute a plan (``capabilities.run = True``).

    User errors found before anything starts (a missing secret, a locked state
    directory, bad options) are raised as
    :class:`exo.compiler.diagnostics.CompileError`; failures of the work itself
    are reported in the returned :class:`RunReport`.
    """

    @abstractmethod
    def run(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        """Execute (or submit) the plan; resume an unfinished run unless ``ctx.fresh``."""

    @abstractmethod
    def status(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        """The state of the last run of this workflow (``state == "none"`` if there is none)."""

    def cancel(self, planned: PlannedWorkflow, options: BaseModel, ctx: RunContext) -> RunReport:
        """Stop the last run; override and set ``capabilities.cancel`` to support it."""
        raise NotImplementedError(f"backend {self.name!r} cannot cancel runs")


# --- shards ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shard:
    """A contiguous range of items ``[start, end)`` processed by one long-lived process."""

    index: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def shard_count(step: Step, sp: StepPlan) -> int:
    """How many shards a step runs (DESIGN §6): shards are replicas.

    A throughput step planned with ``n`` replicas runs ``n`` shards, one per
    replica, all at once; a duration step runs one.
    """
    if step.throughput is None:
        return 1
    return max(1, sp.replicas)


def shard_range(items: int, count: int, index: int) -> Shard:
    """Shard ``index`` of ``count`` over ``items``: ``[floor(W*i/n), floor(W*(i+1)/n))``.

    Every backend computes exactly this (the Slurm job script and the
    Kubernetes entrypoint in shell arithmetic, from the array or completion index).
    """
    return Shard(index, (items * index) // count, (items * (index + 1)) // count)


def shards(step: Step, sp: StepPlan) -> list[Shard]:
    items = step.items or 0
    n = shard_count(step, sp)
    return [shard_range(items, n, i) for i in range(n)]


def planned_throughput(step: Step, sp: StepPlan) -> float | None:
    """Items/s of one replica on the planned tier (DESIGN §3's lookup order), if known."""
    tp = step.throughput
    if tp is None:
        return None
    known = tp.keys()
    for key in (sp.instance_type, sp.accelerator or CPU_KEY):
        if key in known:
            return tp.rate(key, sp.batch_size)
    return None


def micro_batch_size(step: Step, sp: StepPlan) -> int | None:
    """The micro-batch a shard works (and commits) in: ``{batch_size}`` / ``EXO_BATCH_SIZE``.

    The planned batch size; for a batch-independent throughput step with an
    interval checkpoint, the items of one interval at the planned throughput
    (so committing every micro-batch checkpoints at the declared interval);
    otherwise ``None``: the whole shard is one micro-batch.
    """
    if sp.batch_size is not None:
        return sp.batch_size
    ck = step.checkpoint
    rate = planned_throughput(step, sp)
    if ck.kind == "interval" and ck.interval_h and rate:
        return max(1, math.ceil(rate * ck.interval_h * 3600.0))
    return None


# --- runtime placeholders -------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(template: str, values: Mapping[str, str]) -> str:
    """Fill runtime placeholders in an IR string; ``{{``/``}}`` become braces.

    Values are inserted literally: they are never expanded again or handed to a shell.
    Placeholders missing from ``values`` are left as written.
    """

    def sub(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        name = m.group(1)
        return values.get(name, whole)

    return _PLACEHOLDER.sub(sub, template)


def placeholders_in(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


#: Placeholders that are another name for a ``batch_*`` one (DESIGN §6).
ALIASES: dict[str, str] = {
    "shard_index": "batch_index",
    "shard_start": "batch_start",
    "shard_end": "batch_end",
}


def runtime_values(
    *,
    step: str,
    shard: Shard,
    shard_count: int,
    batch_size: int | None,
    run_id: str,
    attempt: int,
    input: str,
    output: str,
    checkpoint: str,
) -> dict[str, str]:
    """Values of every runtime placeholder for one shard attempt."""
    values = {
        "batch_index": str(shard.index),
        "batch_start": str(shard.start),
        "batch_end": str(shard.end),
        "batch_size": str(batch_size if batch_size is not None else shard.size),
        "shard_count": str(shard_count),
        "checkpoint": checkpoint,
        "input": input,
        "output": output,
        "run_id": run_id,
        "attempt": str(attempt),
        "step": step,
    }
    values.update({alias: values[name] for alias, name in ALIASES.items()})
    assert set(values) == set(RUNTIME_PLACEHOLDERS)
    return values


#: Runtime placeholder -> the ``EXO_*`` variable that holds its value in a shard's
#: environment (DESIGN §6; the ``shard_*`` aliases have their own names too).
ENVIRONMENT: dict[str, str] = {
    "batch_index": "EXO_BATCH_INDEX",
    "batch_start": "EXO_BATCH_START",
    "batch_end": "EXO_BATCH_END",
    "batch_size": "EXO_BATCH_SIZE",
    "shard_index": "EXO_SHARD_INDEX",
    "shard_start": "EXO_SHARD_START",
    "shard_end": "EXO_SHARD_END",
    "shard_count": "EXO_SHARD_COUNT",
    "checkpoint": "EXO_CHECKPOINT",
    "attempt": "EXO_ATTEMPT",
    "run_id": "EXO_RUN_ID",
    "step": "EXO_STEP",
    "input": "EXO_INPUT",
    "output": "EXO_OUTPUT",
}
assert set(ENVIRONMENT) == set(RUNTIME_PLACEHOLDERS)


def shard_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The ``EXO_*`` variables a shard sees (DESIGN §6)."""
    return {var: values[name] for name, var in ENVIRONMENT.items()}


#: Placeholders ``output`` may use: one output location holds every shard of a step.
OUTPUT_PLACEHOLDERS = frozenset({"run_id", "step"})


def step_span(step: Step) -> Span | None:
    """The step's name where it was declared, for a backend's diagnostics."""
    if step.loc is None:
        return None
    return Span.point(step.loc.file, step.loc.line, step.loc.column, len(step.name))


def output_placeholder_problem(step: Step) -> Diagnostic | None:
    """E702 when ``output`` uses a per-shard placeholder: the same rule for every backend."""
    if not step.output:
        return None
    bad = sorted(set(placeholders_in(step.output)) - OUTPUT_PLACEHOLDERS)
    if not bad:
        return None
    return Diagnostic(
        "E702",
        f"step `{step.name}`: `output` uses "
        + ", ".join(f"{{{b}}}" for b in bad)
        + "; one location holds all shards of a step",
        step_span(step),
        help=("only {run_id} and {step} may appear in `output`",),
    )


def expand_command(command: Sequence[str], values: Mapping[str, str]) -> list[str]:
    return [expand(arg, values) for arg in command]
