"""The run ledger: every attempt of every shard, as the runners saw it (plan vs actual, #13).

A ledger is a JSON Lines file kept with the run's state (the local backend:
``<state dir>/ledger/<run id>.jsonl``; Slurm: ``<run dir>/ledger.jsonl``). Each
line is one event, written with a single ``write(2)`` on a file opened with
``O_APPEND``, so concurrent writers (the Slurm array tasks) never interleave
and a runner killed at any moment (kill -9) leaves whole lines behind; a torn
last line (a power loss) is skipped by the reader. Events (``"v": 1``)::

    {"event": "run",   "t": ..., "run_id": ..., "backend": ..., "plan": {plan JSON}}
    {"event": "start", "t": ..., "step": ..., "shard": i, "attempt": n, "items": [start, end],
     "instance_type": ..., "spot": ..., "batch_size": ..., "host": ..., "committed": k,
     "fallback": "why"}
    {"event": "end",   "t": ..., "step": ..., "shard": i, "attempt": n, "exit": rc,
     "outcome": ..., "committed": k, "first_batch_at": ...}

``committed`` is what the shard's checkpoint folder held (items, through the
checkpoint contract of :mod:`exo.worker.contract`) when the attempt started and
ended; ``first_batch_at`` is when the command asked for its first micro-batch
(the worker helper's attempt record): the observed startup. ``outcome`` is one
of :data:`OUTCOMES`. Nothing else is written: no command, no environment, no
secret. Times are seconds since the Unix epoch. ``fallback`` is only on the start
of an attempt of a spot step that ran on on-demand after the deadline-aware
fallback moved its shard (``spot`` is then false): the reason, in the rule's terms.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from exo.worker.contract import Progress, committed_ranges, read_attempts, read_progress

FORMAT = 1
#: The file of a Slurm run's ledger, in its run directory.
FILE_NAME = "ledger.jsonl"
#: The folder of the local backend's ledgers, in its state directory (one file per run).
LOCAL_FOLDER = "ledger"

#: How an attempt ended. ``succeeded``: exit 0, published; ``failed``: an error
#: (counted against ``retries``); ``timeout``: stopped by the step's timeout (an
#: error too); ``preempted``: stopped from outside (a spot reclaim, a requeue);
#: ``stopped``: the runner stopped it (Ctrl-C, cancel); ``signalled``: it ended
#: on the checkpoint signal and was started again; ``lost``: no end was recorded
#: (the runner was killed; it ended by the time the run resumed).
OUTCOMES = ("succeeded", "failed", "timeout", "preempted", "stopped", "signalled", "lost")


@dataclass(frozen=True, slots=True)
class Tier:
    """Where an attempt ran: the instance type (or Slurm tier) and whether it was spot."""

    instance_type: str
    spot: bool
    batch_size: int | None = None


#: ``json.dumps(..., sort_keys=True)`` builds an encoder per call; this is the same encoder
#: (the same bytes), built once: the ledger writes two lines per shard attempt.
_ENCODER = json.JSONEncoder(sort_keys=True)


def _line(record: Mapping[str, Any]) -> bytes:
    return (_ENCODER.encode({"v": FORMAT, **record}) + "\n").encode("utf-8")


# The two lines of every attempt are built as text, field by field in the order ``sort_keys``
# gives, each value as ``_ENCODER`` writes it: the bytes of ``_line`` without a dict, its sort
# and the encoder's walk (see docs/benchmarks.md; tests/test_ledger_lines.py checks the bytes).


def _json(value: object) -> str:
    """``_ENCODER.encode(value)``: what a record holds for ``value``, fast for the usual types."""
    if type(value) is str:
        return encode_basestring_ascii(value)
    if type(value) is int:
        return repr(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _ENCODER.encode(value)  # NaN, infinities, subclasses, anything else


def _array(values: Sequence[object]) -> str:
    return "[" + ", ".join(map(_json, values)) + "]"


#: The last field of every line.
_V = f'"v": {FORMAT}}}\n'


def start_line(
    host: str,
    t: float,
    step: str,
    shard: int,
    attempt: int,
    items: Sequence[int],
    tier: Tier | None,
    committed: int,
    fallback: str | None,
) -> bytes:
    """The ``start`` event's line (:meth:`LedgerWriter.attempt_started`); ``host`` as JSON."""
    why = "" if fallback is None else f'"fallback": {_json(fallback)}, '
    batch = kind = spot = ""
    if tier is not None:
        batch = f'"batch_size": {_json(tier.batch_size)}, '
        kind = f'"instance_type": {_json(tier.instance_type)}, '
        spot = f'"spot": {_json(tier.spot)}, '
    return (
        f'{{"attempt": {_json(attempt)}, {batch}"committed": {_json(committed)}, '
        f'"event": "start", {why}"host": {host}, {kind}"items": {_array(items)}, '
        f'"shard": {_json(shard)}, {spot}"step": {_json(step)}, "t": {_json(t)}, {_V}'
    ).encode()


def end_line(
    t: float,
    step: str,
    shard: int,
    attempt: int,
    exit_code: int | None,
    outcome: str,
    committed: int,
    first_batch_at: float | None,
) -> bytes:
    """The ``end`` event's line (:meth:`LedgerWriter.attempt_ended`)."""
    return (
        f'{{"attempt": {_json(attempt)}, "committed": {_json(committed)}, "event": "end", '
        f'"exit": {_json(exit_code)}, "first_batch_at": {_json(first_batch_at)}, '
        f'"outcome": {_json(outcome)}, "shard": {_json(shard)}, "step": {_json(step)}, '
        f'"t": {_json(t)}, {_V}'
    ).encode()


class LedgerWriter:
    """Appends events to one ledger file (created ``0600``); every method is one write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.host = socket.gethostname()
        self._host = _json(self.host)

    def append(self, record: Mapping[str, Any]) -> None:
        self._write(_line(record))

    def _write(self, data: bytes) -> None:
        # One write: O_APPEND places it whole at the end (a regular file's write is not
        # split by a signal once it has started). A failure must not stop the run.
        # (try/except, not contextlib.suppress: no context manager made per line.)
        try:  # noqa: SIM105
            os.write(self.fd, data)
        except OSError:
            pass

    def run_started(self, t: float, run_id: str, backend: str, plan_json: str | None) -> None:
        plan = json.loads(plan_json) if plan_json else None
        self.append({"event": "run", "t": t, "run_id": run_id, "backend": backend, "plan": plan})

    def attempt_started(
        self,
        t: float,
        step: str,
        shard: int,
        attempt: int,
        items: tuple[int, int],
        tier: Tier | None,
        committed: int,
        fallback: str | None = None,
    ) -> None:
        self._write(
            start_line(self._host, t, step, shard, attempt, items, tier, committed, fallback)
        )

    def attempt_ended(
        self,
        t: float,
        step: str,
        shard: int,
        attempt: int,
        *,
        exit_code: int | None,
        outcome: str,
        committed: int,
        first_batch_at: float | None,
    ) -> None:
        self._write(
            end_line(t, step, shard, attempt, exit_code, outcome, committed, first_batch_at)
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def tiers_from_plan(plan_json: str | None) -> dict[str, Tier]:
    """Each step's planned tier, from a plan's JSON (DESIGN §4)."""
    if not plan_json:
        return {}
    data = json.loads(plan_json)
    out: dict[str, Tier] = {}
    for sp in data.get("steps") or ():
        if isinstance(sp, dict) and isinstance(sp.get("name"), str):
            batch = sp.get("batch_size")
            out[sp["name"]] = Tier(
                str(sp.get("instance_type", "")),
                bool(sp.get("spot")),
                batch if isinstance(batch, int) else None,
            )
    return out


class Recorder:
    """What a runner that watches its shards' processes calls (the local backend).

    It reads each shard's checkpoint folder (the items committed, the first
    batch) when an attempt starts and ends, so the record holds what the
    attempt did even after the folder is removed on publication.
    """

    def __init__(self, writer: LedgerWriter, tiers: Mapping[str, Tier], checkpoints: Path) -> None:
        self.writer = writer
        self.tiers = tiers
        self.checkpoints = checkpoints
        self._root = str(checkpoints)
        #: Per step, the shard folders there were when its first attempt here started.
        self._kept: dict[str, frozenset[str]] = {}
        #: Shards with an attempt started here (their folder may exist since).
        self._tried: set[tuple[str, int]] = set()

    def _may_hold(self, step: str, shard: int) -> bool:
        """Whether the shard's folder can exist: it did when the step's first attempt
        here started (an earlier run's), or an attempt of the shard started here since.
        Nothing else writes there while this runner holds the run (one listing per
        step instead of a ``stat`` per attempt, for the many shards that keep nothing)."""
        kept = self._kept.get(step)
        if kept is None:
            try:
                kept = frozenset(os.listdir(f"{self._root}/{step}"))  # noqa: PTH208
            except OSError:
                kept = frozenset()
            self._kept[step] = kept
        tried = (step, shard) in self._tried
        self._tried.add((step, shard))
        return tried or f"shard-{shard}" in kept

    def _folder(self, step: str, shard: int) -> str:
        # A string, not a Path: this runs twice per attempt (see docs/benchmarks.md).
        return f"{self._root}/{step}/shard-{shard}"

    def started(
        self,
        step: str,
        shard: int,
        attempt: int,
        items: tuple[int, int],
        t: float,
        fallback: str | None = None,
    ) -> None:
        """Attempt ``attempt`` of a shard was launched at ``t`` (before its process started).

        ``fallback``: the shard runs on on-demand after the deadline-aware fallback
        moved it (the reason); the planned tier is recorded with ``spot`` false.
        """
        folder = self._folder(step, shard)
        committed = 0
        if self._may_hold(step, shard) and os.path.isdir(folder):  # noqa: PTH112
            ranges = committed_ranges(folder)
            committed = sum(e - s for s, e in ranges if items[0] <= s and e <= items[1])
        tier = self.tiers.get(step)
        if fallback is not None and tier is not None:
            tier = replace(tier, spot=False)
        self.writer.attempt_started(t, step, shard, attempt, items, tier, committed, fallback)

    def ended(
        self,
        step: str,
        shard: int,
        attempt: int,
        items: tuple[int, int],
        rc: int | None,
        outcome: str,
    ) -> bool:
        """Record an attempt's end; whether the shard's checkpoint folder is there (a
        shard that kept nothing needs no removal: its attempt has ended for good)."""
        now = time.time()
        folder = self._folder(step, shard)
        kept = os.path.isdir(folder)  # noqa: PTH112  (what read_progress looks at first)
        if kept:
            committed, first = observed(read_progress(folder).within(*items), attempt)
        else:  # read_progress's answer without the folder: nothing committed, no batch asked
            committed, first = 0, None
        self.writer.attempt_ended(
            now,
            step,
            shard,
            attempt,
            exit_code=rc,
            outcome=outcome,
            committed=committed,
            first_batch_at=first,
        )
        return kept

    def close(self) -> None:
        self.writer.close()


def observed(progress: Progress, attempt: int) -> tuple[int, float | None]:
    """Items committed in a checkpoint folder, and when ``attempt`` asked for its first batch."""
    first = None
    for a in progress.attempts:
        if a.attempt == attempt and a.first_batch_at is not None:
            first = a.first_batch_at if first is None else min(first, a.first_batch_at)
    return progress.items_committed, first


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunHeader:
    t: float
    run_id: str
    backend: str
    plan: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AttemptEntry:
    """One attempt of one shard, start and end joined."""

    step: str
    shard: int
    attempt: int
    items_start: int
    items_end: int
    instance_type: str | None
    spot: bool | None
    batch_size: int | None
    host: str
    started_at: float
    #: ``None``: still running, or the end is unknown (see ``outcome``).
    ended_at: float | None
    exit_code: int | None
    #: One of :data:`OUTCOMES`, or ``running`` (no end yet and no later run began).
    outcome: str
    #: Items this attempt committed (for an attempt that succeeded without
    #: committing through the checkpoint contract: the rest of its shard).
    items_committed: int
    first_batch_at: float | None
    #: Why a spot step's attempt ran on on-demand (the deadline-aware fallback), else ``None``.
    fallback: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)

    @property
    def startup_s(self) -> float | None:
        """Observed startup: from the attempt's start to its first micro-batch."""
        if self.first_batch_at is None:
            return None
        return max(0.0, self.first_batch_at - self.started_at)


@dataclass(frozen=True, slots=True)
class Ledger:
    runs: tuple[RunHeader, ...]
    attempts: tuple[AttemptEntry, ...]
    #: Lines that could not be read (a torn last line after a power loss).
    skipped: int = 0

    @property
    def plan(self) -> dict[str, Any] | None:
        """The plan of the latest invocation that recorded one."""
        for h in reversed(self.runs):
            if h.plan is not None:
                return h.plan
        return None

    @property
    def started_at(self) -> float | None:
        times = [h.t for h in self.runs] + [a.started_at for a in self.attempts]
        return min(times) if times else None

    def of_step(self, step: str) -> list[AttemptEntry]:
        return [a for a in self.attempts if a.step == step]


def _events(path: Path) -> tuple[list[dict[str, Any]], int]:
    try:
        raw = path.read_bytes()
    except OSError:
        return [], 0
    out: list[dict[str, Any]] = []
    skipped = 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(ev, dict) and isinstance(ev.get("event"), str):
            out.append(ev)
        else:
            skipped += 1
    return out, skipped


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _join(
    start: Mapping[str, Any], end: Mapping[str, Any] | None, later_run: float | None
) -> AttemptEntry:
    items = start.get("items")
    lo, hi = items if isinstance(items, list) and len(items) == 2 else (0, 0)
    lo, hi = _int(lo), _int(hi)
    before = _int(start.get("committed"))
    if end is None:
        outcome = "lost" if later_run is not None else "running"
        ended, exit_code, committed, first = later_run, None, 0, None
    else:
        outcome = str(end.get("outcome", "failed"))
        ended, exit_code = _num(end.get("t")), end.get("exit")
        after = _int(end.get("committed"))
        committed = max(0, after - before)
        if outcome == "succeeded" and committed == 0:
            committed = max(0, (hi - lo) - before)  # a command that keeps no checkpoint
        first = _num(end.get("first_batch_at"))
    spot = start.get("spot")
    host = start.get("host")
    why = start.get("fallback")
    return AttemptEntry(
        step=str(start.get("step", "")),
        shard=_int(start.get("shard")),
        attempt=_int(start.get("attempt")),
        items_start=lo,
        items_end=hi,
        instance_type=start.get("instance_type")
        if isinstance(start.get("instance_type"), str)
        else None,
        spot=spot if isinstance(spot, bool) else None,
        batch_size=start.get("batch_size") if isinstance(start.get("batch_size"), int) else None,
        host=host if isinstance(host, str) else "",
        started_at=_num(start.get("t")) or 0.0,
        ended_at=ended,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        outcome=outcome,
        items_committed=committed,
        first_batch_at=first,
        fallback=why if isinstance(why, str) else None,
    )


def _header(ev: Mapping[str, Any]) -> RunHeader:
    plan = ev.get("plan")
    return RunHeader(
        _num(ev.get("t")) or 0.0,
        str(ev.get("run_id", "")),
        str(ev.get("backend", "")),
        plan if isinstance(plan, dict) else None,
    )


def read(path: Path, first_batches: Mapping[tuple[str, int, int], float] | None = None) -> Ledger:
    """Read a ledger; ``first_batches`` fills ``first_batch_at`` the end events lack (Slurm).

    An end belongs to the latest start of the same step, shard and attempt
    number (a step redone after a change numbers its attempts again).
    """
    events, skipped = _events(path)
    runs: list[RunHeader] = []
    pairs: list[list[Any]] = []  # [start event, end event or None]
    open_: dict[tuple[str, int, int], list[Any]] = {}
    for ev in events:
        kind = ev["event"]
        if kind == "run":
            runs.append(_header(ev))
            continue
        key = (str(ev.get("step", "")), _int(ev.get("shard")), _int(ev.get("attempt")))
        if kind == "start":
            pair = [ev, None]
            pairs.append(pair)
            open_[key] = pair
        elif kind == "end" and key in open_:
            open_.pop(key)[1] = ev
    run_times = sorted(h.t for h in runs)
    attempts: list[AttemptEntry] = []
    for start, end in pairs:
        t0 = _num(start.get("t")) or 0.0
        later = next((t for t in run_times if t > t0), None)
        entry = _join(start, end, later)
        key = (entry.step, entry.shard, entry.attempt)
        if entry.first_batch_at is None and first_batches and key in first_batches:
            entry = _with_first_batch(entry, first_batches[key])
        attempts.append(entry)
    return Ledger(tuple(runs), tuple(attempts), skipped)


def _with_first_batch(entry: AttemptEntry, at: float) -> AttemptEntry:
    return replace(entry, first_batch_at=at)


def local_path(state_dir: Path, run_id: str) -> Path:
    return state_dir / LOCAL_FOLDER / f"{run_id}.jsonl"


def first_batches_from(
    folder: Path, step_shards: Sequence[tuple[str, int]]
) -> dict[tuple[str, int, int], float]:
    """First-batch times from copies of the worker helper's attempt records (Slurm).

    ``folder/<step>/shard-<i>/attempts/*.json``, copied there by the job script
    before the checkpoint folder is removed.
    """
    out: dict[tuple[str, int, int], float] = {}
    for step, idx in step_shards:
        for a in read_attempts(folder / step / f"shard-{idx}"):
            if a.first_batch_at is not None:
                key = (step, idx, a.attempt)
                out[key] = min(out.get(key, a.first_batch_at), a.first_batch_at)
    return out


#: Beside a Slurm run's ledger: copies of the helper's attempt records, per shard.
OBSERVED = "observed"


def load(path: Path) -> Ledger:
    """A run's ledger, with the first-batch times a Slurm run keeps beside it."""
    base = read(path)
    folder = path.parent / OBSERVED
    if not folder.is_dir():
        return base
    keys = sorted({(a.step, a.shard) for a in base.attempts})
    return read(path, first_batches_from(folder, keys))
