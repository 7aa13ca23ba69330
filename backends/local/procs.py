"""Processes: starting shards, signalling their process groups, finding orphans.

Every shard runs in its own session (so its process group id is its pid and a
terminal's Ctrl-C reaches only the runner, which then stops the shards itself).
Commands are argv lists handed to ``execve``: no shell ever sees them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..runtime import escapes
from . import spawner

#: Variables kept when ``clean_env`` is set (plus ``LC_*``).
BASE_ENV = ("HOME", "LANG", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "TZ", "USER")


def base_environment(environ: Mapping[str, str], clean: bool) -> dict[str, str]:
    if not clean:
        return dict(environ)
    return {k: v for k, v in environ.items() if k in BASE_ENV or k.startswith("LC_")}


class Launcher:
    """Starts shard processes with ``posix_spawn`` (no fork of the runner's memory).

    ``posix_spawn`` cannot change directory, so the runner works from the shards'
    directory while it runs (see :func:`working_directory`). Programs without a
    ``/`` are looked up on the ``PATH`` of the shard's own environment, as
    ``execvpe`` would.
    """

    def __init__(self, marker: str | None = None) -> None:
        self._found: dict[tuple[str, str], str | None] = {}
        #: Opened read-only at ``escapes.MARKER_FD`` in every shard (finds escaped processes).
        self._marker: list[tuple[int, int, str, int, int]] = (
            [(os.POSIX_SPAWN_OPEN, escapes.MARKER_FD, marker, os.O_RDONLY, 0)] if marker else []
        )

    def resolve(self, program: str, path: str) -> str | None:
        """``program`` as ``execvpe`` finds it on ``path`` (the shard's ``PATH``)."""
        if "/" in program:
            return program
        key = (program, path)
        if key not in self._found:
            self._found[key] = shutil.which(program, path=path)
        return self._found[key]

    def _program(self, argv: Sequence[str], path: str) -> str:
        program = self.resolve(argv[0], path)
        if program is None:
            raise FileNotFoundError(errno.ENOENT, "not found on PATH", argv[0])
        return program

    def _actions(self, log: str) -> list[tuple[Any, ...]]:
        return [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            *self._marker,
        ]

    def request(
        self,
        token: int,
        argv: Sequence[str],
        env: Mapping[str, str] | Sequence[bytes],
        log: str,
        *,
        path: str | None = None,
    ) -> spawner.Request:
        """What :class:`spawner.Slots` needs to start one shard attempt (stdout and
        stderr to ``log``, stdin ``/dev/null``, the marker, a session of its own).
        ``env``: a mapping, or its entries already encoded, and then ``path``, its
        ``PATH`` (``None``: none, ``os.defpath``).

        Raises OSError (a program not on the ``PATH``) or ValueError (a null byte) here.
        """
        if isinstance(env, Mapping):
            path = env.get("PATH")
        program = self._program(argv, os.defpath if path is None else path)
        return spawner.Request(token, program, argv, env, self._actions(log))


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run the block from ``path`` (the runner is single-threaded and uses absolute paths)."""
    before = Path.cwd()
    if before == path:
        yield
        return
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


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


def stop_for_the_machine(exc: OSError, log: str) -> None:
    """Re-raise what no retry can fix (a full disk, the log folder gone): the run stops (E751)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO):
        raise exc
    folder = os.path.dirname(log)  # noqa: PTH120
    if not os.path.isdir(folder):  # noqa: PTH112
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), folder) from exc
