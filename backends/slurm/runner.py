"""``exoc run/status/cancel --target slurm``: submit a plan and follow it to the end.

A run lives in one directory, ``<state dir>/slurm/<workflow key>/<run id>/``:
the emitted ``submit.sh``, ``steps/*.sbatch`` and ``lib/`` (the worker helper),
``jobs.tsv`` (step -> Slurm job id), ``logs/<step>/shard-<i>.log``,
``state/<step>/shard-<i>.{done,failed,errors,restarts}`` (written by the job
scripts), ``checkpoints/<step>/shard-<i>/`` (each unpublished shard's checkpoint
folder) and ``outputs/`` for steps without a local ``output``. ``latest`` next to the run directories names
the run ``exoc run`` resumes, ``status`` shows and ``cancel`` stops.

Following needs no accounting database: ``squeue`` says what is still queued
or running and the state files say how each shard ended. Jobs keep running
when the follower stops (Ctrl-C); ``exoc run`` attaches to them again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from exo.compiler.diagnostics import CompileError, Diagnostic

from ..api import Artifact, RunReport, RunState, ShardFailure, StepProgress, TaskState
from ..local.progress import Reporter
from ..runtime import checkpoints, failures, ledger
from . import scheduler
from .fallback import SlurmFallback
from .jobs import SlurmJob
from .scheduler import Cluster, QueuedTask, SlurmUnavailable

CANCELLED_MARK = "cancelled"
#: Give up following after this long without an answer from the controller.
LOST_CONTACT_S = 300.0


@dataclass(frozen=True, slots=True)
class RunConfig:
    workflow_file: Path
    state_dir: Path
    fresh: bool
    poll_s: float
    cluster: Cluster
    environ: Mapping[str, str]
    #: The deadline-aware fallback to on-demand (None: off, or no spot step).
    fallback: SlurmFallback | None = None

    @property
    def base_dir(self) -> Path:
        return self.workflow_file.parent

    @property
    def root(self) -> Path:
        """Runs of this workflow file (several workflows may share a state directory)."""
        digest = hashlib.sha256(str(self.workflow_file).encode()).hexdigest()[:10]
        return self.state_dir / "slurm" / f"{self.workflow_file.stem}-{digest}"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


#: What :func:`new_run_id` writes; anything else in ``latest`` was not written by a runner.
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def _broken(path: Path, problem: str) -> CompileError:
    return CompileError([failures.state_unreadable(path, problem, fresh=failures.FRESH_REPLACES)])


def latest_run(config: RunConfig) -> Path | None:
    """The run ``latest`` names (``None``: none yet, or its folder is gone); E750 if unreadable."""
    path = config.root / "latest"
    try:
        data = path.read_bytes()[:4096]
    except FileNotFoundError:
        return None
    except OSError as err:  # a folder, unreadable
        raise _broken(path, err.strerror or str(err)) from None
    run_id = data.decode("utf-8", "replace").strip()
    if not _RUN_ID.match(run_id):
        raise _broken(path, "it does not name a run (it is damaged, or not exo's)")
    run_dir = config.root / run_id
    return run_dir if run_dir.is_dir() else None


def _set_latest(config: RunConfig, run_id: str) -> None:
    config.root.mkdir(parents=True, exist_ok=True)
    tmp = config.root / "latest.tmp"
    tmp.write_text(run_id + "\n", "utf-8")
    tmp.replace(config.root / "latest")


def read_jobs(run_dir: Path) -> dict[str, str]:
    """step -> Slurm job id of the last submission (empty before the first)."""
    try:
        text = (run_dir / "jobs.tsv").read_text("utf-8")
    except OSError:
        return {}
    except UnicodeDecodeError:
        raise _broken(run_dir / "jobs.tsv", "it is not text (damaged?)") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        step, _, job = line.partition("\t")
        if step and job:
            if not job.isdigit():  # never hand squeue or scancel something else
                raise _broken(run_dir / "jobs.tsv", f"{job[:20]!r} is not a Slurm job id")
            out[step] = job
    return out


def dependents(jobs: Sequence[SlurmJob]) -> dict[str, set[str]]:
    g: nx.DiGraph[str] = nx.DiGraph()
    for j in jobs:
        g.add_node(j.step)
        for n in j.needs:
            g.add_edge(n, j.step)
    return {n: set(nx.descendants(g, n)) for n in g.nodes}


# --- what the job scripts recorded ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepFiles:
    done: frozenset[int]
    #: shard -> the ``.failed`` record (``attempts=N exit=RC``).
    failed: dict[int, dict[str, str]]
    errors: int
    restarts: int


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text("utf-8").strip() or 0)
    except (OSError, ValueError):
        return 0


def step_files(run_dir: Path, step: str) -> StepFiles:
    done: set[int] = set()
    failed: dict[int, dict[str, str]] = {}
    errors = restarts = 0
    directory = run_dir / "state" / step
    try:
        entries = list(os.scandir(directory))
    except OSError:
        entries = []
    for entry in entries:
        stem, _, kind = entry.name.partition(".")
        if not stem.startswith("shard-") or not stem[6:].isdigit():
            continue
        idx = int(stem[6:])
        if kind == "done":
            done.add(idx)
        elif kind == "failed":
            try:
                text = Path(entry.path).read_bytes()[:4096].decode("utf-8", "replace")
            except OSError:
                text = ""
            failed[idx] = dict(p.partition("=")[::2] for p in text.split() if "=" in p)
        elif kind == "errors":
            errors += _read_int(Path(entry.path))
        elif kind == "restarts":
            restarts += _read_int(Path(entry.path))
    return StepFiles(frozenset(done), failed, errors, restarts)


def log_path(run_dir: Path, step: str, shard: int) -> Path:
    return run_dir / "logs" / step / f"shard-{shard}.log"


# --- progress ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    steps: list[StepProgress]
    failures: list[ShardFailure]
    #: Any job of the run still pending or running.
    active: bool


def _failure_reason(rec: dict[str, str]) -> str:
    why = rec.get("reason")
    if why == "missing-secret":
        return "a secret was not set in the job's environment"
    if why == "preempted":
        return f"requeued {rec.get('attempts', '?')} times (more than preemption_retries)"
    if why == "timeout":
        return f"the step's timeout stopped it (exit code {rec.get('exit', '?')})"
    return f"exit code {rec.get('exit', '?')}"


def snapshot(
    run_dir: Path,
    jobs: Sequence[SlurmJob],
    ids: Mapping[str, str],
    queued: Sequence[QueuedTask],
    ended: Mapping[str, dict[str, tuple[str, str]]],
) -> Snapshot:
    """Per-step progress from the state files and the queue.

    ``ended`` holds ``scontrol`` states of jobs that left the queue without
    recording every shard (timeouts, cancelled dependents), to explain them.
    """
    by_job: dict[str, list[QueuedTask]] = {}
    for q in queued:
        by_job.setdefault(q.job_id, []).append(q)
    states: dict[str, TaskState] = {}
    steps: list[StepProgress] = []
    failures: list[ShardFailure] = []
    for j in jobs:
        files = step_files(run_dir, j.step)
        job_id = ids.get(j.step)
        mine = by_job.get(job_id, []) if job_id else []
        running = sum(1 for q in mine if q.state in ("RUNNING", "COMPLETING"))
        state: TaskState
        if len(files.done) >= j.shards:
            state = "done"
        elif files.failed:
            state = "failed"
        elif any(states.get(n) in ("failed", "blocked", "cancelled") for n in j.needs):
            state = "blocked"
        elif mine or job_id is None:
            # Started once a shard has run; pending while only waiting in the queue.
            state = "running" if running or files.done or files.restarts else "pending"
        else:
            # Left the queue with shards unrecorded: cancelled, timed out, node failure...
            info = ended.get(job_id, {})
            slurm_states = {s for s, _ in info.values()}
            state = "cancelled" if slurm_states == {"CANCELLED"} else "failed"
            if state == "failed":
                missing = sorted(set(range(j.shards)) - files.done)
                idx = missing[0] if missing else 0
                key = str(idx) if j.shards > 1 else ""
                slurm_state, reason = info.get(key, ("", ""))
                what = slurm_state or "ended without recording a result"
                failures.append(
                    ShardFailure(
                        step=j.step,
                        shard=idx,
                        attempts=0,
                        reason=f"Slurm job {job_id}: {what}"
                        + (f" ({reason})" if reason and reason != "None" else ""),
                        log=str(log_path(run_dir, j.step, idx)),
                    )
                )
        for idx, rec in sorted(files.failed.items()):
            failures.append(
                ShardFailure(
                    step=j.step,
                    shard=idx,
                    attempts=int(rec.get("attempts", "0") or 0),
                    reason=_failure_reason(rec),
                    log=str(log_path(run_dir, j.step, idx)),
                )
            )
        states[j.step] = state
        steps.append(
            StepProgress(
                name=j.step,
                state=state,
                shards_total=j.shards,
                shards_done=len(files.done),
                shards_running=running,
                # Errors minus the last one of each shard that failed for good.
                retries=max(files.errors - len(files.failed), 0),
                preemptions=files.restarts,
            )
        )
    return Snapshot(steps, failures, active=bool(queued))


def overall(snap: Snapshot, cancelled: bool) -> RunState:
    if cancelled:
        return "cancelled"
    if snap.active:
        return "submitted"
    if all(s.state == "done" for s in snap.steps):
        return "done"
    if any(s.state in ("failed", "blocked") for s in snap.steps) or snap.failures:
        return "failed"
    return "cancelled"


# --- submitting --------------------------------------------------------------------------------


def write_run(run_dir: Path, artifacts: Sequence[Artifact]) -> list[str]:
    """Write the scripts; returns the steps whose script changed since the last write."""
    changed: list[str] = []
    for a in artifacts:
        path = run_dir / a.path
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_text("utf-8") if path.exists() else None
        if old is not None and old != a.content and a.path.startswith("steps/"):
            changed.append(Path(a.path).stem)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(a.content, "utf-8")
        tmp.chmod(0o755 if a.executable else 0o644)
        tmp.replace(path)
    return changed


def output_path(job: SlurmJob, run_dir: Path, workflow_dir: Path, run_id: str) -> Path:
    """The folder ``job`` publishes shards into, as its script computes it."""
    out = job.output_dir
    path = out.path.replace("{step}", job.step).replace("{run_id}", run_id)
    if out.root == "workflow":
        return workflow_dir / path
    if out.root == "state":
        return run_dir / path
    return Path(path)


def forget_shards(
    run_dir: Path, jobs: Sequence[SlurmJob], steps: Sequence[str], workflow_dir: Path
) -> None:
    """Steps whose definition changed since their shards were published: redo them."""
    run_id = run_dir.name
    for job in jobs:
        if job.step not in steps:
            continue
        shutil.rmtree(run_dir / "state" / job.step, ignore_errors=True)
        shutil.rmtree(
            checkpoints.step_checkpoints(run_dir / checkpoints.CHECKPOINTS, job.step),
            ignore_errors=True,
        )
        out = output_path(job, run_dir, workflow_dir, run_id)
        if out.is_dir():
            for entry in out.iterdir():
                if entry.name.startswith("shard-") and entry.name[6:].isdigit():
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)


def forget_missing_outputs(
    run_dir: Path, jobs: Sequence[SlurmJob], workflow_dir: Path
) -> list[str]:
    """Shards recorded as done whose published folder is gone are done again (on resume).

    The job script skips a shard with a ``.done`` record, so a deleted output
    folder would otherwise stay missing while the run says it is complete.
    """
    messages: list[str] = []
    for job in jobs:
        out = output_path(job, run_dir, workflow_dir, run_dir.name)
        try:
            present = set(os.listdir(out))  # noqa: PTH208 - names only, once per step
        except OSError:
            present = set()
        lost = [
            i for i in sorted(step_files(run_dir, job.step).done) if f"shard-{i}" not in present
        ]
        for i in lost:
            (run_dir / "state" / job.step / f"shard-{i}.done").unlink(missing_ok=True)
        if lost:
            messages.append(
                f"{job.step}: {len(lost)} published shard(s) are missing from {out}; "
                "running them again"
            )
    return messages


@contextlib.contextmanager
def submission_lock(root: Path) -> Iterator[None]:
    """One ``exoc run`` decides and submits at a time; a second waits, then follows the jobs."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def missing_secrets(jobs: Sequence[SlurmJob], environ: Mapping[str, str]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for j in jobs:
        for name in j.secrets:
            if name not in environ:
                out.append(
                    Diagnostic(
                        "E704",
                        f"step `{j.step}` needs the secret `{name}`, which is not set in the "
                        "environment",
                        help=(f"set it before running, e.g. `export {name}=...`",),
                        notes=("secrets reach the jobs through sbatch's --export, by name",),
                    )
                )
    return out


def unavailable(err: SlurmUnavailable) -> CompileError:
    return CompileError(
        [
            Diagnostic(
                "E702",
                f"cannot reach Slurm: {err}",
                help=("check `sinfo`, and SLURM_CONF if the cluster's config is not the default",),
            )
        ]
    )


def submit_run(
    config: RunConfig, run_dir: Path, run_id: str, plan_json: str | None = None
) -> tuple[dict[str, str], list[str]]:
    writer = ledger.LedgerWriter(run_dir / ledger.FILE_NAME)
    writer.run_started(time.time(), run_id, "slurm", plan_json)
    writer.close()
    proc = scheduler.submit(
        config.cluster,
        str(run_dir / "submit.sh"),
        {
            "EXO_RUN_ID": run_id,
            "EXO_RUN_DIR": str(run_dir),
            "EXO_WORKFLOW_DIR": str(config.base_dir),
        },
        cwd=str(config.base_dir),
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise CompileError(
            [
                Diagnostic(
                    "E702",
                    f"submitting run {run_id} failed (submit.sh exit code {proc.returncode})",
                    notes=tuple(lines[-10:]),
                )
            ]
        )
    return read_jobs(run_dir), [ln for ln in proc.stdout.splitlines() if ln.strip()]


# --- the follow loop ----------------------------------------------------------------------------


def follow(
    config: RunConfig,
    run_dir: Path,
    jobs: Sequence[SlurmJob],
    ids: Mapping[str, str],
    reporter: Reporter,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """Poll until no job of the run is queued; cancel steps that can never run."""
    downstream = dependents(jobs)
    cancelled_steps: set[str] = set()
    last_contact = time.monotonic()
    first = True
    while True:
        try:
            queued = scheduler.queue(config.cluster, list(ids.values()))
            last_contact = time.monotonic()
        except SlurmUnavailable as err:
            if time.monotonic() - last_contact > LOST_CONTACT_S:
                raise unavailable(err) from None
            sleep(config.poll_s)
            continue
        if config.fallback is not None:
            config.fallback.apply(config.cluster, run_dir, ids, queued, reporter)
        ended = _ended_states(config.cluster, jobs, ids, queued, run_dir)
        snap = snapshot(run_dir, jobs, ids, queued, ended)
        if first:
            reporter.begin(snap.steps)
            first = False
        for s in snap.steps:
            reporter.update(s)
        doomed = {
            d
            for s in snap.steps
            if s.state == "failed"
            for d in downstream[s.name]
            if d not in cancelled_steps
        }
        doomed_ids = [ids[d] for d in sorted(doomed) if d in ids and _is_queued(ids[d], queued)]
        if doomed_ids:
            reporter.message("cancelling steps that can never run: " + ", ".join(sorted(doomed)))
            try:
                scheduler.cancel(config.cluster, doomed_ids)
            except SlurmUnavailable as err:
                reporter.message(str(err))
        cancelled_steps |= doomed
        if not snap.active:
            return snap
        sleep(config.poll_s)


def _is_queued(job_id: str, queued: Sequence[QueuedTask]) -> bool:
    return any(q.job_id == job_id for q in queued)


def _ended_states(
    cluster: Cluster,
    jobs: Sequence[SlurmJob],
    ids: Mapping[str, str],
    queued: Sequence[QueuedTask],
    run_dir: Path,
) -> dict[str, dict[str, tuple[str, str]]]:
    """scontrol states of jobs that left the queue with shards neither done nor failed."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    in_queue = {q.job_id for q in queued}
    for j in jobs:
        job_id = ids.get(j.step)
        if job_id is None or job_id in in_queue:
            continue
        files = step_files(run_dir, j.step)
        if len(files.done) >= j.shards or files.failed:
            continue
        try:
            out[job_id] = scheduler.job_states(cluster, job_id)
        except SlurmUnavailable:
            out[job_id] = {}
    return out


# --- run, status, cancel -----------------------------------------------------------------------


def _failure_lines(failures: Sequence[ShardFailure]) -> list[str]:
    out: list[str] = []
    for f in failures:
        tries = f" after {f.attempts} attempt(s)" if f.attempts else ""
        out.append(f"step {f.step}, shard {f.shard} failed: {f.reason}{tries}; log: {f.log}")
    return out


def _check_array_sizes(config: RunConfig, jobs: Sequence[SlurmJob]) -> None:
    try:
        limit = scheduler.max_array_size(config.cluster)
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    if limit is None:
        return
    too_big = [
        Diagnostic(
            "E702",
            f"step `{j.step}` runs {j.shards} shards but the cluster's MaxArraySize is {limit}",
            help=("cap the step's `replicas`, or ask the admins to raise MaxArraySize",),
        )
        for j in jobs
        if j.shards > limit
    ]
    if too_big:
        raise CompileError(too_big)


def execute(
    jobs: Sequence[SlurmJob],
    artifacts: Sequence[Artifact],
    workflow: str,
    config: RunConfig,
    reporter: Reporter,
    plan_json: str | None = None,
) -> RunReport:
    """Submit (or resume, or attach to) the latest run and follow it to the end."""
    problems = missing_secrets(jobs, config.environ)
    if problems:
        raise CompileError(problems)
    _check_array_sizes(config, jobs)
    try:
        with submission_lock(config.root):
            run_dir, run_id, ids, messages = _submit_or_attach(config, jobs, artifacts, plan_json)
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    except OSError as err:  # the run folder: unwritable, on a full disk, a file in the way
        raise CompileError([failures.folder_unusable("", err)]) from None
    if ids is None:  # complete: nothing to submit
        snap = snapshot(run_dir, jobs, read_jobs(run_dir), [], {})
        return RunReport(
            workflow=workflow,
            run_id=run_id,
            state="done",
            steps=snap.steps,
            messages=[*messages, f"run directory: {run_dir}"],
        )
    for m in messages:
        reporter.message(m)
    try:
        snap = follow(config, run_dir, jobs, ids, reporter)
    except KeyboardInterrupt:
        reporter.end()
        return RunReport(
            workflow=workflow,
            run_id=run_id,
            state="interrupted",
            messages=[
                *messages,
                "stopped following; the jobs keep running in Slurm: `exoc status` shows them, "
                "`exoc run` follows them again, `exoc cancel` stops them",
            ],
        )
    reporter.end()
    state = overall(snap, (run_dir / CANCELLED_MARK).exists())
    if state == "done":
        _remove_empty_staging(run_dir, jobs, config.base_dir)
    messages.extend(_failure_lines(snap.failures))
    if state == "failed":
        messages.append("published shards are kept; fix the problem and `exoc run` again to resume")
    messages.append(f"run directory: {run_dir}")
    return RunReport(
        workflow=workflow,
        run_id=run_id,
        state=state,
        steps=snap.steps,
        failures=snap.failures,
        messages=messages,
    )


def _submit_or_attach(
    config: RunConfig,
    jobs: Sequence[SlurmJob],
    artifacts: Sequence[Artifact],
    plan_json: str | None,
) -> tuple[Path, str, dict[str, str] | None, list[str]]:
    """Submit a new run, resume the latest, or attach to its queued jobs (``ids`` None: done)."""
    messages: list[str] = []
    run_dir = None if config.fresh else latest_run(config)
    if run_dir is not None and (run_dir / CANCELLED_MARK).exists():
        run_dir = None
    if run_dir is None:
        run_id = new_run_id()
        run_dir = config.root / run_id
        write_run(run_dir, artifacts)
        _set_latest(config, run_id)
        ids, out = submit_run(config, run_dir, run_id, plan_json)
        return run_dir, run_id, ids, [f"new run {run_id}", *out]
    run_id = run_dir.name
    ids = read_jobs(run_dir)
    if scheduler.queue(config.cluster, list(ids.values())):
        return run_dir, run_id, ids, [f"run {run_id} is still in the queue; following it"]
    changed = write_run(run_dir, artifacts)
    if changed:
        down = dependents(jobs)
        redo = sorted(set(changed) | {d for c in changed for d in down.get(c, ())})
        forget_shards(run_dir, jobs, redo, config.base_dir)
        messages.append("changed since the last submission, redone: " + ", ".join(redo))
    messages.extend(forget_missing_outputs(run_dir, jobs, config.base_dir))
    snap = snapshot(run_dir, jobs, ids, [], {})
    if all(s.state == "done" for s in snap.steps):
        return run_dir, run_id, None, [*messages, f"run {run_id} is complete; nothing to submit"]
    ids, out = submit_run(config, run_dir, run_id, plan_json)
    return (
        run_dir,
        run_id,
        ids,
        [*messages, f"resuming run {run_id}: published shards are kept", *out],
    )


def _remove_empty_staging(run_dir: Path, jobs: Sequence[SlurmJob], workflow_dir: Path) -> None:
    """The attempt folders' parent, once every shard is published (it is empty then)."""
    for job in jobs:
        staging = output_path(job, run_dir, workflow_dir, run_dir.name) / ".exo-staging"
        with contextlib.suppress(OSError):
            staging.rmdir()


def status(jobs: Sequence[SlurmJob], workflow: str, config: RunConfig) -> RunReport:
    run_dir = latest_run(config)
    if run_dir is None:
        return RunReport(
            workflow=workflow,
            run_id=None,
            state="none",
            messages=["no Slurm run of this workflow yet"],
        )
    ids = read_jobs(run_dir)
    try:
        queued = scheduler.queue(config.cluster, list(ids.values()))
        ended = _ended_states(config.cluster, jobs, ids, queued, run_dir)
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    snap = snapshot(run_dir, jobs, ids, queued, ended)
    return RunReport(
        workflow=workflow,
        run_id=run_dir.name,
        state=overall(snap, (run_dir / CANCELLED_MARK).exists()),
        steps=snap.steps,
        failures=snap.failures,
        ledger=str(run_dir / ledger.FILE_NAME),
        messages=[
            f"run directory: {run_dir}",
            "jobs: " + (", ".join(f"{s}={i}" for s, i in ids.items()) or "none submitted"),
            *_failure_lines(snap.failures),
        ],
    )


def cancel(jobs: Sequence[SlurmJob], workflow: str, config: RunConfig) -> RunReport:
    run_dir = latest_run(config)
    if run_dir is None:
        return status(jobs, workflow, config)
    ids = read_jobs(run_dir)
    (run_dir / CANCELLED_MARK).write_text("cancelled by exoc cancel\n", "utf-8")
    try:
        scheduler.cancel(config.cluster, list(ids.values()))
    except SlurmUnavailable as err:
        raise unavailable(err) from None
    report = status(jobs, workflow, config)
    return report.model_copy(
        update={"messages": [*report.messages, f"cancelled jobs {', '.join(ids.values())}"]}
    )
