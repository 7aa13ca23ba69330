"""Starting shard processes off the event loop's thread, so that the loop never waits for one.

``posix_spawn`` clones the runner without copying it (``vfork``-style) and the
caller waits until the child has run its file actions and ``exec``'d. On a busy
machine that wait is the scheduler's: the new child queues behind other work
for a slice (milliseconds), and ``os.posix_spawn`` holds the interpreter lock
through it, so the whole runner stood still at every start: no shard reaped,
no other slot refilled (measured: 85% of a 1,000-shard run's wall time inside
``os.posix_spawn`` at load 5; see docs/benchmarks.md, local runner, sixth round).

Here helper threads call the C library's ``posix_spawn`` through ``ctypes``,
which releases the interpreter lock for the call: the loop goes on reaping,
publishing and starting other shards while a start waits. A finished start is
handed back through a queue and a byte on a pipe the loop watches. The child
gets exactly what ``os.posix_spawn`` gave it (program, arguments, environment,
file actions, a session of its own). Where the C library's function cannot be
loaded, the threads call ``os.posix_spawn`` (correct, without the overlap).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import queue
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

#: ``(os.POSIX_SPAWN_OPEN, fd, path, flags, mode)`` or ``(os.POSIX_SPAWN_DUP2, fd, fd2)``.
FileAction = tuple[Any, ...]
#: glibc's and musl's ``POSIX_SPAWN_SETSID``.
_SETSID = 0x80
#: Bigger than the C library's ``posix_spawn_file_actions_t`` / ``posix_spawnattr_t``.
_OPAQUE = 1024
#: Encoded ``NAME=value`` entries of environments, by (name, value): runs repeat them.
_ENTRIES: dict[tuple[str, str], bytes] = {}


_NAMES = (
    "posix_spawn",
    "posix_spawn_file_actions_init",
    "posix_spawn_file_actions_addopen",
    "posix_spawn_file_actions_adddup2",
    "posix_spawn_file_actions_destroy",
    "posix_spawnattr_init",
    "posix_spawnattr_setflags",
    "posix_spawnattr_destroy",
)


@functools.cache
def _libc_spawn() -> Any | None:
    """The C library's ``posix_spawn`` family through ctypes (GIL released), or ``None``."""
    # None: the C library the interpreter is linked with (no search for it); else look.
    for name in (None, "c"):
        try:
            libc = ctypes.CDLL(name and ctypes.util.find_library(name), use_errno=True)
            funcs = [getattr(libc, fn) for fn in _NAMES]
        except (OSError, AttributeError):
            continue
        for fn in funcs:
            fn.restype = ctypes.c_int
        libc.posix_spawnattr_setflags.argtypes = [ctypes.c_void_p, ctypes.c_short]
        return libc
    return None


def _entry(name: str, value: str) -> bytes:
    """``NAME=value`` as ``os.posix_spawn`` encodes it (the same checks)."""
    key = (name, value)
    data = _ENTRIES.get(key)
    if data is None:
        raw_name, raw_value = os.fsencode(name), os.fsencode(value)
        if not raw_name or b"=" in raw_name:
            raise ValueError("illegal environment variable name")
        data = raw_name + b"=" + raw_value
        if b"\0" in data:
            raise ValueError("embedded null byte")
        if len(_ENTRIES) < 4096:  # the base environment first; per-shard values fill the rest
            _ENTRIES[key] = data
    return data


def _strings(items: Sequence[bytes]) -> Any:
    """A NULL-terminated ``char *[]``."""
    return (ctypes.c_char_p * (len(items) + 1))(*items, None)


def _encode(value: str) -> bytes:
    data = os.fsencode(value)
    if b"\0" in data:
        raise ValueError("embedded null byte")
    return data


class Request:
    """One start, encoded on the loop's thread (so that bad input fails there, at once)."""

    __slots__ = ("actions", "argv", "env", "program", "token")

    def __init__(
        self,
        token: int,
        program: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        actions: Sequence[FileAction],
    ) -> None:
        self.token = token
        self.program = _encode(program)
        self.argv = [_encode(a) for a in argv]
        self.env = [_entry(k, v) for k, v in env.items()]
        self.actions = [
            (a[0], a[1], _encode(a[2]), a[3], a[4]) if a[0] == os.POSIX_SPAWN_OPEN else a
            for a in actions
        ]


def _spawn_c(libc: Any, req: Request) -> int:
    """``posix_spawn`` of the C library (the calling thread waits, not the others)."""
    actions = ctypes.create_string_buffer(_OPAQUE)
    attr = ctypes.create_string_buffer(_OPAQUE)
    libc.posix_spawn_file_actions_init(actions)
    libc.posix_spawnattr_init(attr)
    try:
        for act in req.actions:
            if act[0] == os.POSIX_SPAWN_OPEN:
                err = libc.posix_spawn_file_actions_addopen(actions, act[1], act[2], act[3], act[4])
            else:
                err = libc.posix_spawn_file_actions_adddup2(actions, act[1], act[2])
            if err:
                raise OSError(err, os.strerror(err))
        err = libc.posix_spawnattr_setflags(attr, _SETSID)
        if err:
            raise OSError(err, os.strerror(err))
        pid = ctypes.c_int()
        err = libc.posix_spawn(
            ctypes.byref(pid), req.program, actions, attr, _strings(req.argv), _strings(req.env)
        )
        if err:
            raise OSError(err, os.strerror(err), os.fsdecode(req.program))
        return pid.value
    finally:
        libc.posix_spawn_file_actions_destroy(actions)
        libc.posix_spawnattr_destroy(attr)


def _spawn_os(req: Request) -> int:
    env = dict(e.split(b"=", 1) for e in req.env)
    actions = [
        (a[0], a[1], os.fsdecode(a[2]), a[3], a[4]) if a[0] == os.POSIX_SPAWN_OPEN else a
        for a in req.actions
    ]
    return os.posix_spawn(req.program, req.argv, env, file_actions=actions, setsid=True)


class Spawner:
    """Threads that start processes; results come back through :meth:`results`.

    The loop waits on :meth:`fileno` (readable when a start has finished). Every
    request gets exactly one result: a pid, or the ``OSError`` that kept the
    process from starting. :meth:`close` waits for the starts in flight.
    """

    def __init__(self, threads: int) -> None:
        self._libc = _libc_spawn()
        self._requests: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._done: deque[tuple[int, int | OSError]] = deque()
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._threads = [
            threading.Thread(target=self._work, name=f"exo-spawn-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for th in self._threads:
            th.start()

    def fileno(self) -> int:
        return self._read

    def submit(self, req: Request) -> None:
        self._requests.put(req)

    def _work(self) -> None:
        while (req := self._requests.get()) is not None:
            result: int | OSError
            try:
                result = _spawn_c(self._libc, req) if self._libc else _spawn_os(req)
            except OSError as exc:
                result = exc
            self._done.append((req.token, result))
            with contextlib.suppress(BlockingIOError):  # a byte already waits: enough
                os.write(self._write, b"\0")

    def results(self) -> list[tuple[int, int | OSError]]:
        """The starts finished since the last call (drains the pipe first: none is missed)."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def close(self) -> list[tuple[int, int | OSError]]:
        """Stop the threads once the starts in flight are done; their results."""
        for _ in self._threads:
            self._requests.put(None)
        for th in self._threads:
            th.join()
        out = self.results()
        os.close(self._read)
        os.close(self._write)
        return out
