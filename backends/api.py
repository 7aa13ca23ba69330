"""The backend plugin interface: what a backend is given, what it returns.

A backend is a class implementing :class:`Backend`, registered under the
entry-point group ``exo.backends`` (the built-ins register the same way, in
``pyproject.toml``). Backends never parse ``.exo`` files: they receive a
:class:`PlannedWorkflow` (IR + plan + catalog) and return artifacts.

``Backend`` is generic over its options model: ``class MyBackend(Backend[MyOptions])``
receives ``MyOptions`` in every method (the registry validates the options
against ``Options`` before calling). A plugin that subclasses plain ``Backend``
and takes ``options: BaseModel`` is the same interface, written for version 1.

The shard and placeholder semantics every backend shares live in
``exo.backends.runtime`` (:mod:`~exo.backends.runtime.shards`,
:mod:`~exo.backends.runtime.placeholders`); they are re-exported here, the
names plugins import.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypeVar

from exo.compiler.diagnostics import Diagnostic
from exo.compiler.frozen import Frozen
from exo.compiler.planned import PlannedWorkflow as PlannedWorkflow  # made by the compiler

from .runtime.placeholders import (
    ALIASES,
    ENVIRONMENT,
    OUTPUT_PLACEHOLDERS,
    expand,
    expand_command,
    output_placeholder_problem,
    placeholders_in,
    runtime_values,
    shard_environment,
    step_span,
)
from .runtime.shards import (
    Shard,
    micro_batch_size,
    planned_throughput,
    shard_count,
    shard_range,
    shards,
)

__all__ = [
    "ALIASES",
    "API_VERSION",
    "ENVIRONMENT",
    "OUTPUT_PLACEHOLDERS",
    "Artifact",
    "Backend",
    "Capabilities",
    "OptionsT",
    "PlannedWorkflow",
    "RunContext",
    "RunReport",
    "RunState",
    "RunnableBackend",
    "Shard",
    "ShardFailure",
    "StepProgress",
    "TaskState",
    "expand",
    "expand_command",
    "micro_batch_size",
    "output_placeholder_problem",
    "placeholders_in",
    "planned_throughput",
    "runtime_values",
    "shard_count",
    "shard_environment",
    "shard_range",
    "shards",
    "step_span",
]

#: Version of this interface; a plugin declares the version it was written for.
#: Still 1 with ``Backend[OptionsT]``: a plugin written against plain ``Backend``
#: (``options: BaseModel``) loads and runs unchanged.
API_VERSION = 1

#: A backend's options model. Plain ``Backend`` means ``Backend[BaseModel]``: what a
#: version-1 plugin declares, and how the CLI sees a backend the registry found
#: (``Backend[Any]`` there: its options are whatever its ``Options`` validates).
OptionsT = TypeVar("OptionsT", bound=BaseModel, default=BaseModel)


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


class Backend(ABC, Generic[OptionsT]):
    """The typed interface every backend implements, generic over its options model."""

    name: ClassVar[str]
    api_version: ClassVar[int] = API_VERSION
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Options model; each field becomes ``--<backend>-<field>`` on the CLI and may
    #: also be set in a ``backend NAME { ... }`` block of the workflow. The methods
    #: receive an instance of exactly this model.
    Options: ClassVar[type[OptionsT]]
    description: ClassVar[str] = ""

    @abstractmethod
    def check(self, planned: PlannedWorkflow, options: OptionsT) -> list[Diagnostic]:
        """Problems that stop this backend from emitting the plan (empty when fine)."""

    @abstractmethod
    def emit(self, planned: PlannedWorkflow, options: OptionsT) -> list[Artifact]:
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


class RunnableBackend(Backend[OptionsT]):
    """A backend that can also execute a plan (``capabilities.run = True``).

    User errors found before anything starts (a missing secret, a locked state
    directory, bad options) are raised as
    :class:`exo.compiler.diagnostics.CompileError`; failures of the work itself
    are reported in the returned :class:`RunReport`.
    """

    @abstractmethod
    def run(self, planned: PlannedWorkflow, options: OptionsT, ctx: RunContext) -> RunReport:
        """Execute (or submit) the plan; resume an unfinished run unless ``ctx.fresh``."""

    @abstractmethod
    def status(self, planned: PlannedWorkflow, options: OptionsT, ctx: RunContext) -> RunReport:
        """The state of the last run of this workflow (``state == "none"`` if there is none)."""

    def cancel(self, planned: PlannedWorkflow, options: OptionsT, ctx: RunContext) -> RunReport:
        """Stop the last run; override and set ``capabilities.cancel`` to support it."""
        raise NotImplementedError(f"backend {self.name!r} cannot cancel runs")
