"""A Slurm run's directory: where it is, what the runner writes there and reads back.

A run lives in one directory, ``<state dir>/slurm/<workflow key>/<run id>/``:
the emitted ``submit.sh``, ``steps/*.sbatch`` and ``lib/`` (the worker helper),
``jobs.tsv`` (step -> Slurm job id), ``logs/<step>/shard-<i>.log``,
``state/<step>/shard-<i>.{done,failed,errors,restarts}`` (written by the job
scripts, read by ``records.py``), ``checkpoints/<step>/shard-<i>/`` (each
unpublished shard's checkpoint folder) and ``outputs/`` for steps without a
local ``output``. ``latest`` next to the run directories names the run ``exoc
run`` resumes, ``status`` shows and ``cancel`` stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from exo.compiler.diagnostics import CompileError

from ..api import Artifact
from ..runtime import checkpoints, failures
from ..runtime.outputs import (
    STAGING,
    missing_note,
    output_folder,
    published,
    shard_index,
    shard_name,
)
from ..runtime.runs import RUN_ID
from .fallback import SlurmFallback
from .jobs import SlurmJob
from .records import step_files
from .scheduler import Cluster

#: In a run directory: ``exoc cancel`` stopped the run (``exoc run`` starts a new one).
CANCELLED_MARK = "cancelled"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Where a workflow's Slurm runs live and how the cluster is reached (no globals)."""

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
    if not RUN_ID.match(run_id):
        raise _broken(path, "it does not name a run (it is damaged, or not exo's)")
    run_dir = config.root / run_id
    return run_dir if run_dir.is_dir() else None


def set_latest(config: RunConfig, run_id: str) -> None:
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
    return output_folder(
        job.output_dir, workflow_dir=workflow_dir, state_dir=run_dir, run_id=run_id, step=job.step
    )


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
                if shard_index(entry.name) is not None:
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
            present = published(out)
        except OSError:  # not a folder, unreadable: nothing published can be seen there
            present = set()
        lost = [
            i for i in sorted(step_files(run_dir, job.step).done) if shard_name(i) not in present
        ]
        for i in lost:
            (run_dir / "state" / job.step / f"shard-{i}.done").unlink(missing_ok=True)
        if lost:
            messages.append(missing_note(job.step, len(lost), out))
    return messages


def remove_empty_staging(run_dir: Path, jobs: Sequence[SlurmJob], workflow_dir: Path) -> None:
    """The attempt folders' parent, once every shard is published (it is empty then)."""
    for job in jobs:
        staging = output_path(job, run_dir, workflow_dir, run_dir.name) / STAGING
        with contextlib.suppress(OSError):
            staging.rmdir()


@contextlib.contextmanager
def submission_lock(root: Path) -> Iterator[None]:
    """One ``exoc run`` decides and submits at a time; a second waits, then follows the jobs."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
