"""Finding a run's processes that escaped their process group, to stop them before a resume.

A shard runs in its own session, and the runner stops its process group; a
process can leave that group (``setsid``, a daemonising fork) and clear its
environment (``env -i``), so neither the group nor ``EXO_RUN_ID`` finds it once
the runner that started it was killed. Every shard therefore starts holding
one more open file, the run's *marker* (``MARKER_FD``, read-only): children
inherit it through ``fork``, ``exec``, ``setsid`` and ``env -i`` alike, and a
later runner finds every process that still holds it in ``/proc/<pid>/fd``.
The marker names the run, so a PID reused by an unrelated process is never
mistaken for a shard. What is left out: a process that closes every inherited
descriptor *and* clears its environment *and* leaves its session (a deliberate
daemon); see docs/security.md.

Plain ``os`` calls on strings: a scan reads every process's descriptor table.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

#: The descriptor number the marker is opened at in every shard.
MARKER_FD = 3
#: File name of a run's marker in its log folder.
MARKER_NAME = ".processes"


def marker_path(log_root: Path) -> Path:
    """The run's marker (created empty if missing; a regular file the runner owns)."""
    path = log_root / MARKER_NAME
    if not path.is_file():
        log_root.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return path


def holders(marker: Path, exclude: set[int]) -> list[int]:
    """PIDs of processes holding ``marker`` open (Linux ``/proc``), other than ``exclude``."""
    try:
        st = marker.stat()
    except OSError:
        return []
    target = (st.st_dev, st.st_ino)
    text = str(marker)
    found: list[int] = []
    try:
        entries = os.listdir("/proc")  # noqa: PTH208
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) in exclude:
            continue
        if _holds(f"/proc/{entry}/fd", text, target):
            found.append(int(entry))
    return found


def _holds(fd_dir: str, text: str, target: tuple[int, int]) -> bool:
    try:
        fds = os.listdir(fd_dir)  # noqa: PTH208
    except OSError:
        return False
    for fd in fds:
        link = f"{fd_dir}/{fd}"
        try:
            if os.readlink(link) != text:  # noqa: PTH115
                continue
            st = os.stat(link)  # noqa: PTH116
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == target:
            return True
    return False


def stop_holders(marker: Path, rounds: int = 50) -> int:
    """SIGKILL every process holding ``marker`` (and the group it leads); how many were found."""
    me = {os.getpid()}
    own_group = os.getpgrp()
    killed = 0
    for _ in range(rounds):
        pids = holders(marker, me)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid and pid != own_group:
                    os.killpg(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.01)
    return killed
