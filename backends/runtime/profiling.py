"""``exoc profile``: run a step's real command on a small sample here, per batch size (#13).

Each batch size gets one fresh shard of ``items`` items (``[0, items)``, one
replica, attempt 1) with its own checkpoint folder, output folder and the
worker helper on ``PYTHONPATH``, exactly as a runner starts a shard. What the
command records through the worker helper gives the figures:

- startup: from the launch to the first micro-batch asked for
  (``first_batch_at``), as the run ledger measures it;
- items/s: the items committed over the time from the first micro-batch to
  the last commit (one replica).

A command that does not use the worker helper records nothing; the
measurement then says so instead of guessing.

Stopping it (Ctrl-C, SIGTERM, SIGHUP) stops the command too: each run starts
in a session of its own, and on any interruption its whole process group gets
SIGTERM, then SIGKILL after a grace period, before the scratch folder is
removed and the interruption goes on up (``exoc`` exits 130).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from exo.compiler.ir import CPU_KEY, Step
from exo.worker.contract import read_progress

from . import checkpoints
from .launch import shard_env
from .placeholders import expand_command, runtime_values
from .shards import Shard


@dataclass(frozen=True, slots=True)
class Measurement:
    batch_size: int
    items: int
    exit_code: int
    #: Seconds from the launch to the first micro-batch (``None``: never asked for one).
    startup_s: float | None
    #: Items per second of the one replica (``None``: nothing committed).
    items_per_s: float | None
    wall_s: float
    log: str


def local_accelerators(
    run: Sequence[str] = ("nvidia-smi", "--query-gpu=name", "--format=csv,noheader"),
) -> list[str]:
    """Names of this machine's GPUs (empty when there is none, or no ``nvidia-smi``)."""
    try:
        proc = subprocess.run(list(run), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    return [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]


def matching_accelerator(step: Step, gpus: Sequence[str]) -> str | None:
    """The step's accelerator this machine has (a whole word of a GPU's name), if any."""
    for acc in step.accelerators:
        pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(acc)}(?![A-Za-z0-9])", re.IGNORECASE)
        if any(pattern.search(g) for g in gpus):
            return acc
    return None


def hardware_key(step: Step, gpus: Sequence[str]) -> str | None:
    """The throughput key measurements here stand for (``cpu`` for CPU steps), or ``None``."""
    if not step.accelerators:
        return CPU_KEY
    return matching_accelerator(step, gpus)


def _run_one(
    step: Step,
    batch_size: int,
    items: int,
    *,
    cwd: Path,
    input_path: str,
    environ: Mapping[str, str],
    timeout_s: float,
    work: Path,
) -> Measurement:
    folder = work / f"batch-{batch_size}"
    ckpt, out = folder / "checkpoint", folder / "output"
    out.mkdir(parents=True)
    lib = checkpoints.install_helper(work / checkpoints.HELPER_LIB)
    values = runtime_values(
        step=step.name,
        shard=Shard(0, 0, items),
        shard_count=1,
        batch_size=batch_size,
        run_id=f"profile-{batch_size}",
        attempt=1,
        input=input_path,
        output=str(out),
        checkpoint=str(ckpt),
    )
    env = shard_env(environ, step.env, values, secrets={}, helper_lib=str(lib))
    argv = expand_command(step.command, values)
    log = folder / "log.txt"
    launched = time.time()
    with log.open("wb") as f:
        try:
            rc = _run_in_own_group(argv, cwd=cwd, env=env, log=f, timeout_s=timeout_s)
        except OSError as e:
            f.write(f"exo: cannot start {argv[0]!r}: {e.strerror or e}\n".encode())
            rc = 127
    wall = time.time() - launched
    return _measurement(batch_size, ckpt, rc, (launched, wall), log)


#: Seconds a stopped command gets between SIGTERM and SIGKILL.
GRACE_S = 5.0


def _run_in_own_group(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: IO[bytes], timeout_s: float
) -> int:
    """Run ``argv`` in a session of its own; its exit code, or -1 when it ran past ``timeout_s``.

    Whatever ends the wait early (the time limit, Ctrl-C, SIGTERM turned into
    an exception by :func:`_signals_raise`) stops the command's whole process
    group, so nothing it started outlives the profile.
    """
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        return -1
    except BaseException:
        _stop_group(proc)
        raise


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group ``proc`` leads, SIGKILL after :data:`GRACE_S`; reap ``proc``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what it started and left behind
        return


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into ``KeyboardInterrupt`` (as Ctrl-C is) while profiling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in handled}

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        for s in handled:
            signal.signal(s, interrupt)
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _measurement(
    batch_size: int, ckpt: Path, rc: int, times: tuple[float, float], log: Path
) -> Measurement:
    """What one profiling run shows (its launch time and wall seconds), from its checkpoint."""
    launched, wall = times
    prog = read_progress(ckpt)
    firsts = [a.first_batch_at for a in prog.attempts if a.first_batch_at is not None]
    first = min(firsts) if firsts else None
    last = prog.last_commit_at
    rate = None
    if first is not None and last is not None and last > first and prog.items_committed:
        rate = prog.items_committed / (last - first)
    return Measurement(
        batch_size=batch_size,
        items=prog.items_committed,
        exit_code=rc,
        startup_s=None if first is None else max(0.0, first - launched),
        items_per_s=rate,
        wall_s=wall,
        log=log.read_text("utf-8", errors="replace")[-2000:],
    )


def profile(
    step: Step,
    batch_sizes: Sequence[int],
    items: int,
    *,
    cwd: Path,
    input_path: str,
    environ: Mapping[str, str],
    timeout_s: float = 600.0,
) -> list[Measurement]:
    """Run the step's command once per batch size on ``items`` items, in a scratch folder."""
    work = Path(tempfile.mkdtemp(prefix="exo-profile-"))
    try:
        with _signals_raise():
            return [
                _run_one(
                    step,
                    b,
                    items,
                    cwd=cwd,
                    input_path=input_path,
                    environ=environ,
                    timeout_s=timeout_s,
                    work=work,
                )
                for b in batch_sizes
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def os_environ() -> dict[str, str]:
    return dict(os.environ)
