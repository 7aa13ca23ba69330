"""Shard processes started and waited for off the event loop's thread: one slot per job.

``posix_spawn`` clones the runner without copying it (``vfork``-style) and the
caller waits until the child has run its file actions and ``exec``'d. On a busy
machine that wait is the scheduler's, and ``os.posix_spawn`` holds the
interpreter lock through it, so a runner that started shards on its loop's
thread stood still at every start (85% of a 1,000-shard run's wall time inside
``os.posix_spawn`` at load 5; see docs/benchmarks.md, local runner, sixth round).

Here each of up to ``jobs`` slot threads takes the next request, asks the loop's
gate whether it may start now (the emulated spot capacity and the
deadline-aware fallback decide at the moment of the start, as before), calls
the C library's ``posix_spawn`` through ``ctypes`` (the interpreter lock
released for that call only), and then waits for the process itself
(``waitid``, the lock released): when it exits, the slot kills what is left
of its process group (the leader, an unreaped zombie, still holds the group
id), reaps it, and takes the next request at once, as ``xargs -P`` does. The
loop only decides what runs (the requests, two per slot ahead of them) and
records what happened (:class:`Started`, :class:`Exited`, ...), from a queue
and a byte on a pipe it watches (a start writes none: see
:data:`STARTED_LAG`); it sends
signals through :meth:`Slots.signal`, which never reaches a process once its
slot has reaped it (so never a recycled pid). The child gets exactly what
``os.posix_spawn`` gave it (program, arguments, environment, file actions, a
session of its own). Where the C library's function cannot be loaded, the
slots call ``os.posix_spawn`` (correct, without the overlap).
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import ctypes.util
import functools
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..runtime.launch import environment_entry

#: ``(os.POSIX_SPAWN_OPEN, fd, path, flags, mode)`` or ``(os.POSIX_SPAWN_DUP2, fd, fd2)``.
FileAction = tuple[Any, ...]
#: glibc's and musl's ``POSIX_SPAWN_SETSID``.
_SETSID = 0x80
#: Bigger than the C library's ``posix_spawn_file_actions_t`` / ``posix_spawnattr_t``.
_OPAQUE = 1024


_NAMES = (
    "posix_spawn",
    "posix_spawn_file_actions_init",
    "posix_spawn_file_actions_addopen",
    "posix_spawn_file_actions_adddup2",
    "posix_spawn_file_actions_destroy",
    "posix_spawnattr_init",
    "posix_spawnattr_setflags",
    "posix_spawnattr_destroy",
    "waitpid",
    "write",
)


class _Libc:
    """The C library's functions the slots call: :data:`_NAMES` as attributes."""


@functools.cache
def _libc_spawn() -> Any | None:
    """The C library's ``posix_spawn`` family, ``waitpid`` and ``write`` through ctypes,
    or ``None`` (then the slots call ``os``'s).

    ``posix_spawn`` itself is called without the interpreter lock (``CDLL``): it
    waits for the child's ``exec``. The others keep the lock (``PyDLL``): the calls
    that fill in its arguments take nanoseconds, and a slot calls ``waitpid`` and
    ``write`` where they return at once (a child that has ended; a byte on a
    non-blocking pipe). Handing the lock over around each of them (as ``os.waitpid``
    and ``os.write`` do) cost more than the call, and made the slot wait for the
    loop's thread to give it back before it could start its next shard (measured:
    docs/benchmarks.md).
    """
    # None: the C library the interpreter is linked with (no search for it); else look.
    for name in (None, "c"):
        path = name and ctypes.util.find_library(name)
        try:
            unlocked = ctypes.CDLL(path, use_errno=True)
            locked = ctypes.PyDLL(path, use_errno=True)
            funcs = {fn: getattr(locked, fn) for fn in _NAMES[1:]}
            funcs[_NAMES[0]] = getattr(unlocked, _NAMES[0])
        except (OSError, AttributeError):
            continue
        libc = _Libc()
        for fn_name, fn in funcs.items():
            fn.restype = ctypes.c_int
            setattr(libc, fn_name, fn)
        funcs["posix_spawnattr_setflags"].argtypes = [ctypes.c_void_p, ctypes.c_short]
        return libc
    return None


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
        env: Mapping[str, str] | Sequence[bytes],
        actions: Sequence[FileAction],
    ) -> None:
        self.token = token
        self.program = _encode(program)
        self.argv = [_encode(a) for a in argv]
        #: ``NAME=value`` entries: encoded here, or already (``StepEnvironment.entries``).
        self.env = (
            [environment_entry(k, v) for k, v in env.items()]
            if isinstance(env, Mapping)
            else list(env)
        )
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


@dataclass(frozen=True, slots=True)
class Started:
    """The request's process started: ``wall`` is ``time.time()`` just before the start,
    ``clock`` the loop's clock then; ``admitted`` what the gate said; ``stopped``: the
    slots were stopping, and the slot sent it SIGTERM at once (:meth:`Slots.stop`)."""

    token: int
    pid: int
    wall: float
    clock: float
    admitted: object
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class Exited:
    """The process of a :class:`Started` ended and was reaped: its exit code, or minus
    the signal that killed it. What it left in its process group was killed first."""

    token: int
    #: ``None``: something else in the runner's process reaped it (its end is unknown).
    code: int | None


@dataclass(frozen=True, slots=True)
class NotStarted:
    """The start failed: ``error``. ``fatal``: not the command's fault (the gate raised,
    or the slot met an unexpected error): the loop raises it, as it would have."""

    token: int
    error: BaseException
    fatal: bool = False
    admitted: object = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """Not started: cancelled (``admitted`` is ``None``), or the gate said not now."""

    token: int
    admitted: object


Event = Started | Exited | NotStarted | Skipped
#: Longest time a :class:`Started` waits for the loop (it does not wake it: most
#: starts are followed by their end, or by another event, within it).
STARTED_LAG = 0.05
#: The loop's say, in the slot's thread, just before a start: (start now?, what it decided).
Gate = Callable[[int], tuple[bool, object]]


class Slots:
    """Up to ``slots`` threads, each starting one process and waiting for it to end.

    Requests are taken in the order they were submitted, one thread at a time
    (the gate is called in that order too). Every request ends in exactly one of
    :class:`Exited` (after its :class:`Started`), :class:`NotStarted` or
    :class:`Skipped`; :meth:`events` gives them in the order they happened for
    each request. The loop waits on :meth:`fileno`, readable when an event other
    than a start is ready, and looks at least every :data:`STARTED_LAG` seconds
    while it has requests out.
    """

    def __init__(
        self, slots: int, gate: Gate | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._libc = _libc_spawn()
        self._gate = gate
        self._clock = clock
        self._most = max(1, slots)
        self._requests: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._events: deque[Event] = deque()
        #: A byte is on the pipe that :meth:`events` has not read: no need for another.
        self._woken = False
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        #: Slot threads started, and those not yet ended (``_ended`` is set at none).
        self._started = 0
        self._alive = 0
        self._ended = threading.Event()
        self._ended.set()
        #: One thread takes (and gates) a request at a time: submission order.
        self._take = threading.Lock()
        #: Guards ``_pids``, ``_cancelled`` and the flags; held around every signal
        #: and every reap, so that no signal reaches a process after it was reaped.
        self._lock = threading.Lock()
        self._pids: dict[int, int] = {}
        self._cancelled: set[int] = set()
        self._stopping = False
        self._closing = False

    def fileno(self) -> int:
        return self._read

    def submit(self, req: Request) -> None:
        if self._started < self._most:  # one more thread, until there are ``slots``
            self._grow()
        self._requests.put(req)

    def _grow(self) -> None:
        """One more slot thread. ``_thread``, not ``threading.Thread``: its ``start``
        waits for the new thread to run, and a run of 1,000 shards at once (the default
        ``--jobs``) spent 0.15 s of the loop's thread there against 0.04 s."""
        with self._lock:
            self._alive += 1
            self._ended.clear()
        try:
            _thread.start_new_thread(self._slot, ())
        except RuntimeError:  # no more threads for this user (ulimit -u): fewer slots
            self._slot_ended()
            if not self._started:
                raise
            self._most = self._started
        else:
            self._started += 1

    def _slot(self) -> None:
        try:
            self._work()
        finally:
            self._slot_ended()

    def _slot_ended(self) -> None:
        with self._lock:
            self._alive -= 1
            if not self._alive:
                self._ended.set()

    def cancel(self, tokens: Iterable[int]) -> None:
        """Requests no thread has taken yet end :class:`Skipped` (the others go on)."""
        with self._lock:
            self._cancelled.update(tokens)

    def stop(self) -> None:
        """Nothing more starts: what no thread has taken ends :class:`Skipped`, and
        a start already under way is sent SIGTERM the moment it has started."""
        with self._lock:
            self._stopping = True

    def signal(self, token: int, sig: signal.Signals) -> bool:
        """Signal the process group of a started request, unless its slot reaped it
        (then ``False``: it ended by itself, and its :class:`Exited` is on its way)."""
        with self._lock:
            pid = self._pids.get(token)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
        return pid is not None

    def _emit(self, event: Event) -> None:
        self._events.append(event)
        # A start does not wake the loop: it looks at least every STARTED_LAG seconds
        # while it has requests out, and takes every event whenever it wakes.
        if type(event) is Started:
            return
        # One byte wakes the loop for every event up to its next read; the flag is set
        # before the write, and cleared by the loop after it drains the pipe and before
        # it takes the events: an event is taken, or has a byte of its own on the way.
        if not self._woken:
            self._woken = True
            _poke(self._libc, self._write)

    def _next(self) -> tuple[Request, object] | None:
        """The next request to start, and what the gate said (``None``: the slot closes).

        A request not to start ends here: :class:`Skipped`, or :class:`NotStarted`
        when the gate raised (the loop raises it)."""
        while True:
            with self._take:
                req = self._requests.get()
                if req is None:
                    return None
                with self._lock:
                    skip = self._stopping or self._closing or req.token in self._cancelled
                    self._cancelled.discard(req.token)
                if skip:
                    self._emit(Skipped(req.token, None))
                    continue
                try:
                    go, admitted = self._gate(req.token) if self._gate else (True, None)
                except Exception as exc:
                    self._emit(NotStarted(req.token, exc, fatal=True))
                    continue
            if go:
                return req, admitted
            self._emit(Skipped(req.token, admitted))

    def _work(self) -> None:
        while (taken := self._next()) is not None:
            req, admitted = taken
            try:
                pid = self._start(req, admitted)
            except Exception as exc:  # not the command's doing: the loop raises it
                self._emit(NotStarted(req.token, exc, fatal=True))
                continue
            if pid is not None:
                self._emit(Exited(req.token, self._reap(req.token, pid)))

    def _start(self, req: Request, admitted: object) -> int | None:
        wall, clock = time.time(), self._clock()
        try:
            pid = _spawn_c(self._libc, req) if self._libc else _spawn_os(req)
        except OSError as exc:
            self._emit(NotStarted(req.token, exc, admitted=admitted))
            return None
        with self._lock:
            self._pids[req.token] = pid
            closing, stopping = self._closing, self._stopping
        if closing:  # started as the slots close: nobody will stop it but this
            self.signal(req.token, signal.SIGKILL)
        elif stopping:  # started as the run stops: stopped with the others
            self.signal(req.token, signal.SIGTERM)
        self._emit(Started(req.token, pid, wall, clock, admitted, stopped=stopping))
        return pid

    def _reap(self, token: int, pid: int) -> int | None:
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # ended; not reaped yet
            with self._lock:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # what it left in its group goes with it
                del self._pids[token]
                status = _reap_now(self._libc, pid)
        except OSError:  # reaped by something else in this process: the end is unknown
            self.signal(token, signal.SIGKILL)  # (and if it was not, it does not run on)
            with self._lock:
                self._pids.pop(token, None)
            return None
        return os.waitstatus_to_exitcode(status)

    def events(self) -> list[Event]:
        """What happened since the last call (drains the pipe first: none is missed)."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        self._woken = False
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out

    def close(self) -> list[Event]:
        """Cancel what no thread has taken, kill what runs (and what starts meanwhile),
        wait for every thread: the events not yet read."""
        with self._lock:
            self._closing = True
            running = list(self._pids)
        for token in running:
            self.signal(token, signal.SIGKILL)
        for _ in range(self._started):
            self._requests.put(None)
        self._ended.wait()
        out = self.events()
        os.close(self._read)
        os.close(self._write)
        return out


def _reap_now(libc: Any | None, pid: int) -> int:
    """``waitpid`` of a child that has ended: its wait status (OSError as os.waitpid)."""
    if libc is None:
        return os.waitpid(pid, 0)[1]
    status = ctypes.c_int()
    if libc.waitpid(pid, ctypes.byref(status), 0) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return status.value


def _poke(libc: Any | None, fd: int) -> None:
    """One byte on the loop's non-blocking pipe (full: a byte already waits, enough)."""
    if libc is not None:
        libc.write(fd, b"\0", 1)
        return
    with contextlib.suppress(BlockingIOError):
        os.write(fd, b"\0")
