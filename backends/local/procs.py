"""Processes: starting shards, signalling their process groups, finding orphans.

Every shard runs in its own session (so its process group id is its pid and a
terminal's Ctrl-C reaches only the runner, which then stops the shards itself).
Commands are argv lists handed to ``execve``: no shell ever sees them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Variables kept when ``clean_env`` is set (plus ``LC_*``).
BASE_ENV = ("HOME", "LANG", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "TZ", "USER")


def base_environment(environ: Mapping[str, str], clean: bool) -> dict[str, str]:
    if not clean:
        return dict(environ)
    return {k: v for k, v in environ.items() if k in BASE_ENV or k.startswith("LC_")}


def start(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """Start one shard attempt; stdout and stderr go to ``log``. Raises OSError."""
    with log.open("wb") as out:
        # A list argv and no shell: values are never interpreted (DESIGN §7).
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``pid`` (a shard and everything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"


def processes_with_env(name: str, value: str, exclude: set[int]) -> list[int]:
    """PIDs of this user's processes whose environment has ``name=value`` (Linux ``/proc``)."""
    needle = f"{name}={value}".encode()
    found: list[int] = []
    try:
        entries = [p.name for p in Path("/proc").iterdir()]
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in exclude:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:  # noqa: PTH123
                data = f.read()
        except OSError:
            continue
        if needle in data.split(b"\0"):
            found.append(pid)
    return found


def kill_orphans(run_id: str, recorded: Sequence[int], is_ours: Mapping[int, bool]) -> int:
    """Kill what a dead runner of ``run_id`` left running; returns how many were killed.

    Shards of a run carry ``EXO_RUN_ID`` in their environment, and so do their
    children, so they are found even when the runner died before recording a PID.
    ``recorded`` PIDs are killed as process groups when ``is_ours`` confirms them.
    """
    killed = 0
    me = {os.getpid()}
    for pid in recorded:
        if is_ours.get(pid):
            signal_group(pid, signal.SIGKILL)
            killed += 1
    for _ in range(50):
        pids = processes_with_env("EXO_RUN_ID", run_id, me)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)
    return killed
