"""Runs of a workflow on this machine: start or resume, status, cancel.

A state directory holds ``state.sqlite`` (runs, steps, shards), ``lock`` (one
runner at a time), ``logs/<run_id>/<step>/shard-<i>.attempt-<n>.log``,
``staging/`` (attempt directories before they are published),
``checkpoints/<run_id>/<step>/shard-<i>/`` (each shard's checkpoint folder,
kept over its attempts until it is published), ``lib/`` (the worker helper,
put on every shard's ``PYTHONPATH``) and ``outputs/`` (outputs of steps without
a local ``output``).

Resuming: ``exoc run`` continues the latest run of the workflow unless it was
cancelled or ``--fresh`` is given. A step whose definition (command, env,
shards, output, or anything upstream of it) changed since its shards were
published is redone; unchanged steps keep their published shards, which are
never run again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from exo.compiler.diagnostics import CompileError, Diagnostic

from ..api import RunReport, ShardFailure, StepProgress, TaskState
from ..runtime import checkpoints, escapes, failures, ledger, outlock, runs
from ..runtime.outputs import (
    STAGING,
    OutputDir,
    missing_note,
    output_folder,
    published,
    shard_name,
)
from ..runtime.progress import Reporter, step_state
from ..runtime.secrets import missing_secrets
from ..runtime.trash import Trash
from . import devices, procs
from .attempts import LoopSettings
from .loop import Loop
from .spot import SpotConfig
from .state import (
    ShardRow,
    StateCorrupt,
    StateLocked,
    StepRow,
    Store,
    exclusive_lock,
    is_locked,
    move_aside,
    process_start,
    same_process,
)
from .tasks import TaskGraph

DB_NAME = "state.sqlite"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs besides the task graph (no globals)."""

    #: Absolute path of the workflow file (the key of its runs in the state).
    workflow_file: Path
    #: The workflow file's folder: shards run there; relative outputs resolve there.
    base_dir: Path
    state_dir: Path
    jobs: int
    fresh: bool
    backoff_s: float
    backoff_max_s: float
    grace_s: float
    clean_env: bool
    environ: Mapping[str, str]
    #: Emulated spot and the deadline-aware fallback (``spot.py``); ``None``: neither.
    spot: SpotConfig | None = None
    #: The GPUs GPU steps' shards are spread over (``devices.py``); empty: they are not told.
    devices: tuple[str, ...] = ()
    #: GPUs per shard of each step the plan puts on an accelerator.
    gpus: Mapping[str, int] = field(default_factory=dict)
    #: The most GPUs the plan uses at once.
    gpu_demand: int = 0


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_jobs(graph: TaskGraph | None = None) -> int:
    """The CPU count, or more if a step plans more shards at once (they are replicas)."""
    widest = max((st.shard_count for st in graph.steps), default=1) if graph else 1
    return max(cpu_count(), widest)


def resolve_output(out: OutputDir, base_dir: Path, state_dir: Path, run_id: str, step: str) -> Path:
    return output_folder(
        out, workflow_dir=base_dir, state_dir=state_dir, run_id=run_id, step=step
    ).resolve()


def locked_diagnostic(err: StateLocked) -> Diagnostic:
    return Diagnostic(
        "E705",
        f"another runner is using the state directory {err.path.parent} ({err.holder})",
        help=(
            "wait for it to finish, stop it with `exoc cancel FILE`, or use another `--state-dir`",
        ),
    )


def _staging_for(state_dir: Path, output: Path, run_id: str, step: str) -> Path:
    """Attempt directories live where a rename into ``output`` is atomic."""
    preferred = state_dir / "staging" / run_id / step
    preferred.parent.mkdir(parents=True, exist_ok=True)
    if preferred.parent.stat().st_dev == output.stat().st_dev:
        return preferred
    return output / STAGING / run_id


def _kill_leftovers(store: Store, run_id: str, state_dir: Path) -> int:
    """Stop what a dead runner of ``run_id`` left running, escaped processes included."""
    marker = state_dir / "logs" / run_id / escapes.MARKER_NAME
    escaped = escapes.stop_holders(marker) if marker.is_file() else 0
    rows = store.shards(run_id)
    recorded = [r.pid for r in rows.values() if r.state == "running" and r.pid is not None]
    ours = {
        r.pid: same_process(r.pid, r.pid_start)
        for r in rows.values()
        if r.state == "running" and r.pid is not None
    }
    return escaped + procs.kill_orphans(run_id, recorded, ours)


def _register_steps(
    store: Store,
    graph: TaskGraph,
    run_id: str,
    outputs: Mapping[str, Path],
    ckpt_root: Path,
    trash: Trash,
) -> list[str]:
    messages: list[str] = []
    known = store.steps(run_id)
    fingerprints = graph.fingerprints()
    changed: list[StepRow] = []
    for st in graph.steps:
        out = outputs[st.name]
        row = StepRow(st.name, fingerprints[st.name], str(out), st.shard_count)
        old = known.get(st.name)
        if old == row:
            continue
        if old is not None:
            trash.clear_shards(Path(old.output_dir))
            messages.append(f"{st.name}: changed since its shards were published; redoing it")
        trash.clear_shards(out)
        # Progress recorded for another definition of the step is not progress of this one.
        trash.discard(checkpoints.step_checkpoints(ckpt_root, st.name))
        changed.append(row)
    # Files first, then the database (one transaction): a crash in between repeats this
    # on resume, since the database still holds the steps as they were.
    store.replace_steps(run_id, changed)
    for name in sorted(set(known) - set(fingerprints)):
        trash.discard(checkpoints.step_checkpoints(ckpt_root, name))
        store.drop_step(run_id, name)
    return messages


def _reconcile(
    store: Store,
    run_id: str,
    outputs: Mapping[str, Path],
    ckpt_root: Path,
    messages: list[str],
) -> dict[tuple[str, int], ShardRow]:
    """Make rows agree with the disk after a crash; reset unfinished shards to pending.

    Checkpoint folders of unfinished shards are kept: their attempts resume from them.
    A shard recorded as published whose folder is gone (someone deleted it, or the
    whole output folder) is run again: the state never claims an output that is not there.
    """
    rows = store.shards(run_id)
    on_disk = {name: published(path) for name, path in outputs.items()}
    changed: list[ShardRow] = []
    lost: dict[str, int] = {}
    for key, row in rows.items():
        present = shard_name(row.idx) in on_disk[row.step]
        if row.state == "done" and not present:
            lost[row.step] = lost.get(row.step, 0) + 1
            rows[key] = row.with_(state="pending", retries=0, pid=None, pid_start=None)
            changed.append(rows[key])
            continue
        if present:
            # Published, then the runner may have died before removing the checkpoint.
            checkpoints.remove(checkpoints.shard_checkpoint(ckpt_root, row.step, row.idx))
        if row.state == "done":
            continue
        if present:
            # Renamed into place, then the runner died before recording it.
            new = row.with_(state="done", pid=None, pid_start=None, reason=None)
        else:
            new = row.with_(state="pending", retries=0, pid=None, pid_start=None)
        if new != row:
            rows[key] = new
            changed.append(new)
    store.save(run_id, changed)
    for step, count in sorted(lost.items()):
        messages.append(missing_note(step, count, outputs[step]))
    return rows


def _drop_other_checkpoints(state_dir: Path, run_id: str, trash: Trash) -> None:
    """Checkpoints of runs other than ``run_id``: no `exoc run` resumes those any more."""
    root = state_dir / checkpoints.CHECKPOINTS
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name != run_id:
            trash.discard(entry)


def concurrency_notes(graph: TaskGraph, jobs: int) -> list[str]:
    """Steps whose shards cannot all run at once under ``--jobs`` (slower than planned)."""
    return [
        f"{st.name}: {st.shard_count} shards are planned to run at once, but --jobs is "
        f"{jobs}; it takes about {-(-st.shard_count // jobs)}x its planned time"
        for st in graph.steps
        if st.shard_count > jobs
    ]


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a run was started from, kept so that resuming reuses the same plan."""

    program_hash: str
    plan_json: str


def open_store(db: Path, *, fresh: bool = False, notes: list[str] | None = None) -> Store:
    """The state database. A broken one is E750, or with ``fresh`` kept aside and replaced."""
    try:
        return Store(db)
    except StateCorrupt as err:
        if not fresh:
            raise CompileError([failures.state_unreadable(err.path, err.problem)]) from None
        kept = move_aside(db, time.time())
        if notes is not None:
            notes.append(f"the run state could not be used ({err.problem}); kept as {kept}")
        return Store(db)


def resumable_plan(config: RunConfig) -> Provenance | None:
    """The program hash and plan of the run ``exoc run`` would resume (``None``: a new run)."""
    db = config.state_dir / DB_NAME
    if config.fresh or not db.exists():
        return None
    store = open_store(db)
    try:
        run = store.latest_run(str(config.workflow_file))
    finally:
        store.close()
    if run is None or run.state == "cancelled" or not run.program_hash or not run.plan_json:
        return None
    return Provenance(run.program_hash, run.plan_json)


def execute(
    graph: TaskGraph, config: RunConfig, reporter: Reporter, provenance: Provenance
) -> RunReport:
    """Start or resume a run of ``graph``. Raises CompileError (E704, E705) before starting."""
    problems = missing_secrets(
        ((st.name, st.secrets) for st in graph.steps),
        config.environ,
        how="secrets are passed to shards by name and never stored",
    )
    if problems:
        raise CompileError(problems)
    try:
        with exclusive_lock(config.state_dir), Trash(config.state_dir / "trash") as trash:
            return _execute_locked(graph, config, reporter, provenance, trash)
    except StateLocked as err:
        raise CompileError([locked_diagnostic(err)]) from None
    except outlock.OutputsLocked as err:
        raise CompileError([failures.outputs_locked(err.path, "another exoc run")]) from None
    except sqlite3.Error as err:  # a full disk or a read-only mount under the state
        raise CompileError(
            [failures.database_unwritable(config.state_dir / DB_NAME, err)]
        ) from None
    except OSError as err:  # the state or run folders: unwritable, full, removed
        raise CompileError([failures.folder_unusable("", err)]) from None


def _make_outputs(outputs: Mapping[str, Path]) -> None:
    """Create every output folder (again, if one was deleted); E751 for each that cannot be."""
    problems: list[Diagnostic] = []
    for name, path in outputs.items():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            problems.append(failures.folder_unusable(f"the output folder of step `{name}`", err))
    if problems:
        raise CompileError(problems)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A run made ready to start: its folders, and its shards agreeing with the disk."""

    run_id: str
    ckpt_root: Path
    outputs: Mapping[str, Path]
    staging: Mapping[str, Path]
    rows: dict[tuple[str, int], ShardRow]


def _execute_locked(
    graph: TaskGraph,
    config: RunConfig,
    reporter: Reporter,
    provenance: Provenance,
    trash: Trash,
) -> RunReport:
    messages: list[str] = []
    store = open_store(config.state_dir / DB_NAME, fresh=config.fresh, notes=messages)
    held = contextlib.ExitStack()
    try:
        run_id = _choose_run(store, config, messages)
        ready = _prepare(store, graph, config, run_id, trash, held, messages)
        if (note := devices.shortage(config.gpu_demand, config.devices)) is not None:
            messages.append(note)
        trash.flush()  # everything cleared so far goes while the shards run
        store.set_run(
            run_id,
            time.time(),
            state="running",
            runner_pid=os.getpid(),
            runner_start=process_start(os.getpid()),
            cancel_requested=0,
            program_hash=provenance.program_hash,
            plan_json=provenance.plan_json,
            graph_json=graph.model_dump_json(),  # read back by status; indented: 1 s at 10k steps
        )
        for m in messages:
            reporter.message(m)
        recorder = _recorder(config.state_dir, run_id, provenance, ready.ckpt_root)
        settings = _settings(graph, config, ready, recorder)
        try:
            outcome = Loop(graph, store, ready.rows, settings, reporter).run()
        finally:
            recorder.close()
        assert settings.marker is not None
        _finish(store, config, ready, (outcome.state, Path(settings.marker)), messages)
        if outcome.state == "done":
            messages.append(
                "outputs: "
                + ", ".join(f"{n} -> {ready.outputs[n]}" for n in (st.name for st in graph.steps))
            )
        return RunReport(
            workflow=graph.workflow,
            run_id=run_id,
            state=outcome.state,
            steps=outcome.steps,
            failures=outcome.failures,
            messages=messages,
        )
    finally:
        held.close()
        store.close()


def _choose_run(store: Store, config: RunConfig, messages: list[str]) -> str:
    """Resume the workflow's last run, or start a new one; stop what a dead runner left."""
    key = str(config.workflow_file)
    last = store.latest_run(key)
    if last is not None:
        killed = _kill_leftovers(store, last.run_id, config.state_dir)
        if killed:
            messages.append(f"stopped {killed} process(es) left over from run {last.run_id}")
    if last is not None and not config.fresh and last.state != "cancelled":
        messages.append(f"resuming run {last.run_id}")
        return last.run_id
    run_id = runs.new_run_id()
    store.create_run(run_id, key, time.time())
    messages.append(f"new run {run_id}")
    return run_id


def _prepare(
    store: Store,
    graph: TaskGraph,
    config: RunConfig,
    run_id: str,
    trash: Trash,
    held: contextlib.ExitStack,
    messages: list[str],
) -> _Prepared:
    """Folders of the run (outputs locked in ``held``), steps registered, shards reconciled."""
    trash.discard(config.state_dir / "staging" / run_id)
    _drop_other_checkpoints(config.state_dir, run_id, trash)
    ckpt_root = config.state_dir / checkpoints.CHECKPOINTS / run_id
    trash.discard(ckpt_root / checkpoints.TRASH)
    outputs = {
        st.name: resolve_output(st.output, config.base_dir, config.state_dir, run_id, st.name)
        for st in graph.steps
    }
    _make_outputs(outputs)
    # Before anything is cleared or published: another runner may be writing them.
    held.enter_context(outlock.locked(outputs.values()))
    messages.extend(_register_steps(store, graph, run_id, outputs, ckpt_root, trash))
    rows = _reconcile(store, run_id, outputs, ckpt_root, messages)
    messages.extend(concurrency_notes(graph, max(1, config.jobs)))
    if rows and all(r.state == "done" for r in rows.values()):
        messages.append(
            f"run {run_id} is complete: nothing to do (`--fresh` runs everything again)"
        )
    staging = {
        name: _staging_for(config.state_dir, out, run_id, name) for name, out in outputs.items()
    }
    for path in staging.values():
        if path.name == run_id:  # inside an output folder: leftovers of a crash
            shutil.rmtree(path, ignore_errors=True)
    return _Prepared(run_id, ckpt_root, outputs, staging, rows)


def _settings(
    graph: TaskGraph, config: RunConfig, ready: _Prepared, recorder: ledger.Recorder
) -> LoopSettings:
    run_id = ready.run_id
    return LoopSettings(
        run_id=run_id,
        cwd=config.base_dir,
        outputs=ready.outputs,
        staging=ready.staging,
        logs=config.state_dir / "logs" / run_id,
        checkpoints=ready.ckpt_root,
        jobs=max(1, config.jobs),
        backoff_s=config.backoff_s,
        backoff_max_s=config.backoff_max_s,
        grace_s=config.grace_s,
        base_env=procs.base_environment(config.environ, config.clean_env),
        secrets={n: config.environ[n] for st in graph.steps for n in st.secrets},
        helper_lib=str(checkpoints.install_helper(config.state_dir / checkpoints.HELPER_LIB)),
        ledger=recorder,
        marker=str(escapes.marker_path(config.state_dir / "logs" / run_id)),
        spot=config.spot.start(ready.ckpt_root, time.monotonic()) if config.spot else None,
        devices=devices.DevicePool(config.devices) if config.devices and config.gpus else None,
        gpus=config.gpus,
    )


def _finish(
    store: Store,
    config: RunConfig,
    ready: _Prepared,
    ended: tuple[str, Path],
    messages: list[str],
) -> None:
    """Record how the run ended (its state, its marker file), stop what its shards left
    running, tidy its folders."""
    run_id = ready.run_id
    state, marker = ended
    escaped = escapes.stop_holders(marker)
    if escaped:  # started by shards, outside their process groups (setsid, daemons)
        messages.append(f"stopped {escaped} process(es) the shards left running")
    run = store.latest_run(str(config.workflow_file))
    cancelled = state == "interrupted" and run is not None and bool(run.cancel_requested)
    if cancelled:
        messages.append(f"run {run_id} cancelled; `exoc run` will start a new run")
    recorded = "cancelled" if cancelled else state
    store.set_run(run_id, time.time(), state=recorded, runner_pid=None, runner_start=None)
    shutil.rmtree(config.state_dir / "staging" / run_id, ignore_errors=True)
    if state == "done":  # every shard is published: no checkpoint is left to keep
        checkpoints.remove(ready.ckpt_root)
    for path in ready.staging.values():
        if path.name == run_id:
            shutil.rmtree(path.parent, ignore_errors=True)
    if state == "failed":
        messages.append("finished work is kept; fix the problem and run `exoc run` again to resume")
    elif state == "interrupted" and not cancelled:
        messages.append("interrupted; `exoc run` resumes where this run stopped")


def _recorder(
    state_dir: Path, run_id: str, provenance: Provenance, ckpt_root: Path
) -> ledger.Recorder:
    """The run's ledger (``ledger/<run id>.jsonl``), opened with this invocation's header."""
    writer = ledger.LedgerWriter(ledger.local_path(state_dir, run_id))
    writer.run_started(time.time(), run_id, "local", provenance.plan_json)
    return ledger.Recorder(writer, ledger.tiers_from_plan(provenance.plan_json), ckpt_root)


# --- status and cancel ---------------------------------------------------------------------


def _step_progress(
    graph: TaskGraph, rows: Mapping[tuple[str, int], ShardRow], live: bool
) -> list[StepProgress]:
    out: list[StepProgress] = []
    states: dict[str, TaskState] = {}
    for st in graph.steps:
        mine = [r for (name, _), r in rows.items() if name == st.name]
        done = sum(r.state == "done" for r in mine)
        running = sum(r.state == "running" for r in mine) if live else 0
        state = step_state(
            done=bool(mine) and done == st.shard_count,
            failed=any(r.state == "failed" for r in mine),
            needs=(states.get(n) for n in st.needs),
            running=bool(running),
        )
        states[st.name] = state
        out.append(
            StepProgress(
                name=st.name,
                state=state,
                shards_total=st.shard_count,
                shards_done=done,
                shards_running=running,
                retries=sum(r.retries for r in mine),
                preemptions=sum(r.preemptions for r in mine),
            )
        )
    return out


def status(graph: TaskGraph, workflow_file: Path, state_dir: Path) -> RunReport:
    db = state_dir / DB_NAME
    none = RunReport(workflow=graph.workflow, run_id=None, state="none")
    if not db.exists():
        return none.model_copy(update={"messages": ["no run of this workflow yet"]})
    store = open_store(db)
    try:
        run = store.latest_run(str(workflow_file))
        if run is None:
            return none.model_copy(update={"messages": ["no run of this workflow yet"]})
        if run.graph_json:
            graph = TaskGraph.model_validate_json(run.graph_json)
        live = run.state == "running" and is_locked(state_dir)
        rows = store.shards(run.run_id)
        messages: list[str] = [f"run {run.run_id}, logs in {state_dir / 'logs' / run.run_id}"]
        state = run.state
        if run.state == "running" and not live:
            state = "interrupted"
            messages.append("its runner stopped without finishing; `exoc run` resumes it")
        failures = [
            ShardFailure(
                step=r.step, shard=r.idx, attempts=r.attempts, reason=r.reason or "", log=r.log
            )
            for (_, _), r in sorted(rows.items())
            if r.state == "failed"
        ]
        return RunReport(
            workflow=graph.workflow,
            run_id=run.run_id,
            state=state,
            steps=_step_progress(graph, rows, live),
            failures=failures,
            messages=messages,
            ledger=str(ledger.local_path(state_dir, run.run_id)),
        )
    finally:
        store.close()


def cancel(
    graph: TaskGraph, workflow_file: Path, state_dir: Path, wait_s: float = 30.0
) -> RunReport:
    """Stop the running runner (as Ctrl-C would) and mark its run cancelled."""
    db = state_dir / DB_NAME
    if not db.exists():
        return status(graph, workflow_file, state_dir)
    store = open_store(db)
    try:
        run = store.latest_run(str(workflow_file))
        if run is None or run.state in ("done", "cancelled"):
            return status(graph, workflow_file, state_dir)
        store.set_run(run.run_id, time.time(), cancel_requested=1)
        if is_locked(state_dir) and same_process(run.runner_pid, run.runner_start):
            assert run.runner_pid is not None
            os.kill(run.runner_pid, signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            while is_locked(state_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
        if not is_locked(state_dir):
            _kill_leftovers(store, run.run_id, state_dir)
            store.set_run(run.run_id, time.time(), state="cancelled", runner_pid=None)
    finally:
        store.close()
    report = status(graph, workflow_file, state_dir)
    return report.model_copy(update={"messages": [*report.messages, "cancelled"]})
