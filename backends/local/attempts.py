"""What the event loop (``loop.py``) keeps per run and per attempt: plain records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..api import ShardFailure, StepProgress
from ..runtime.ledger import Recorder
from .devices import DevicePool
from .spot import SpotEmulation
from .tasks import LocalStep


@dataclass(frozen=True, slots=True)
class LoopSettings:
    run_id: str
    #: Working directory of every shard (the workflow file's folder).
    cwd: Path
    #: Resolved output directory of each step.
    outputs: Mapping[str, Path]
    #: Where attempt directories are created, per step (same file system as the output).
    staging: Mapping[str, Path]
    logs: Path
    #: The run's checkpoint root: ``<root>/<step>/shard-<i>`` survives every attempt.
    checkpoints: Path
    jobs: int
    backoff_s: float
    backoff_max_s: float
    grace_s: float
    #: Environment every shard starts from (before step env, secrets and EXO_*).
    base_env: Mapping[str, str]
    #: Secret values by name, taken from the runner's environment; never stored.
    secrets: Mapping[str, str] = field(repr=False)
    #: A PYTHONPATH entry holding the worker helper (``exo.worker``), put first.
    helper_lib: str | None = None
    #: Where every attempt's start and end are recorded (the run ledger).
    ledger: Recorder | None = None
    #: The run's marker file, held open by every shard (see ``runtime/escapes.py``).
    marker: str | None = None
    #: Emulated spot and the deadline-aware fallback (``None``: every tier runs as planned).
    spot: SpotEmulation | None = None
    #: This machine's GPUs, handed to GPU steps' attempts (``None``: shards are not told).
    devices: DevicePool | None = None
    #: GPUs per shard of each GPU step (CPU steps are absent).
    gpus: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Attempt:
    step: LocalStep
    idx: int
    attempt: int
    pid: int
    #: The token of the request it was started by (signals go through its slot).
    token: int
    staging: str
    log: str
    deadline: float | None
    #: The shard's items ``(start, end)`` (computed once per attempt, for the ledger).
    items: tuple[int, int]
    #: Why the runner signalled it: ``timeout`` or ``stop`` (``None``: not signalled).
    signalled: str | None = None
    kill_at: float | None = None
    #: When emulated spot reclaims it (SIGKILL from outside: a preemption).
    preempt_at: float | None = None
    #: The GPUs it was handed (``CUDA_VISIBLE_DEVICES``), given back when it ends.
    devices: str | None = None


@dataclass(frozen=True, slots=True)
class Launching:
    """An attempt requested from the slots and not started yet (see ``spawner.py``)."""

    step: LocalStep
    idx: int
    attempt: int
    staging: str
    log: str
    argv: list[str]
    items: tuple[int, int]
    devices: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    state: str  # "done" | "failed" | "interrupted"
    failures: list[ShardFailure]
    steps: list[StepProgress]
