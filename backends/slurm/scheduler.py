"""The Slurm commands the runner uses: sbatch (through submit.sh), squeue, scontrol, scancel.

Accounting (``sacct``) is not needed: while a run is followed, ``squeue`` says
what is queued or running, and the job scripts record what finished in the run
directory. Every call has a timeout and reports failure as a value, never as a
traceback.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exo.compiler.diagnostics import CompileError, Diagnostic


class SlurmUnavailable(Exception):
    """A Slurm command is missing or the controller does not answer."""


def unavailable(err: SlurmUnavailable) -> CompileError:
    """What :class:`SlurmUnavailable` means to the user of ``exoc run/status/cancel`` (E702)."""
    return CompileError(
        [
            Diagnostic(
                "E702",
                f"cannot reach Slurm: {err}",
                help=("check `sinfo`, and SLURM_CONF if the cluster's config is not the default",),
            )
        ]
    )


@dataclass(frozen=True, slots=True)
class QueuedTask:
    job_id: str
    #: The array index, a pending range such as ``[3-9%2]``, or ``None`` for a plain job.
    task: str | None
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class Cluster:
    """How to reach the cluster: the environment its commands run with (``SLURM_CONF``, ``PATH``)."""

    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=self.env.get("PATH"))

    def call(
        self, argv: Sequence[str], *, timeout_s: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command; raises SlurmUnavailable if it is missing or hangs."""
        exe = self.which(argv[0])
        if exe is None:
            raise SlurmUnavailable(
                f"`{argv[0]}` is not on PATH: run on a Slurm login node (or install slurm-client)"
            )
        try:
            return subprocess.run(
                [exe, *argv[1:]],
                env=dict(self.env),
                capture_output=True,
                text=True,
                timeout=timeout_s or self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(
                f"`{argv[0]}` did not answer in {timeout_s or self.timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise SlurmUnavailable(f"cannot run `{argv[0]}`: {exc.strerror or exc}") from None


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else ""


def config_value(cluster: Cluster, key: str) -> str | None:
    """One value of ``scontrol show config`` (e.g. ``MaxArraySize``)."""
    proc = cluster.call(["scontrol", "show", "config"])
    if proc.returncode != 0:
        raise SlurmUnavailable(
            "the Slurm controller does not answer: "
            + (_first_line(proc.stderr) or "scontrol failed")
        )
    pattern = re.compile(rf"^{re.escape(key)}\s*=\s*(.*?)\s*$", re.MULTILINE)
    m = pattern.search(proc.stdout)
    return m.group(1) if m else None


def max_array_size(cluster: Cluster) -> int | None:
    value = config_value(cluster, "MaxArraySize")
    return int(value) if value and value.isdigit() else None


def default_partition(cluster: Cluster) -> str | None:
    """The cluster's default partition (``sinfo`` marks it with ``*``)."""
    proc = cluster.call(["sinfo", "--noheader", "--format=%P"])
    for line in proc.stdout.split():
        if line.endswith("*"):
            return line[:-1]
    return None


def queue(cluster: Cluster, job_ids: Sequence[str]) -> list[QueuedTask]:
    """What of ``job_ids`` is still pending or running (finished jobs are absent)."""
    if not job_ids:
        return []
    proc = cluster.call(
        [
            "squeue",
            "--noheader",
            "--states=all",
            f"--jobs={','.join(job_ids)}",
            "--format=%F|%K|%T|%r",
        ]
    )
    if proc.returncode != 0:
        # squeue fails when every listed job has left the controller's memory.
        if "Invalid job id" in proc.stderr:
            return []
        raise SlurmUnavailable(
            "squeue failed: " + (_first_line(proc.stderr) or f"exit {proc.returncode}")
        )
    out: list[QueuedTask] = []
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        job, task, state, reason = parts
        if state in _FINISHED:
            continue
        out.append(QueuedTask(job, None if task in ("N/A", "") else task, state, reason))
    return out


#: squeue states of jobs that will not run again (PREEMPTED is not one: with
#: PreemptMode=REQUEUE such a job goes back to PENDING).
_FINISHED = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)


def job_states(cluster: Cluster, job_id: str) -> dict[str, tuple[str, str]]:
    """``{task index or "": (JobState, Reason)}`` from ``scontrol show job`` (while Slurm
    still remembers the job, MinJobAge after it ended); empty when it does not."""
    proc = cluster.call(["scontrol", "--oneliner", "show", "job", job_id])
    if proc.returncode != 0:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobState" not in fields:
            continue
        out[fields.get("ArrayTaskId", "")] = (fields["JobState"], fields.get("Reason", ""))
    return out


def cancel(cluster: Cluster, job_ids: Sequence[str]) -> None:
    if job_ids:
        proc = cluster.call(["scancel", *job_ids])
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            raise SlurmUnavailable("scancel failed: " + (_first_line(proc.stderr) or "error"))


def submit(
    cluster: Cluster, script: str, env: Mapping[str, str], cwd: str
) -> subprocess.CompletedProcess[str]:
    """Run ``submit.sh`` with extra environment (run id and directories)."""
    bash = cluster.which("bash") or "/bin/bash"
    try:
        return subprocess.run(
            [bash, script],
            env={**cluster.env, **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=max(cluster.timeout_s, 600.0),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable("submit.sh did not finish in 10 minutes") from None
