"""A function raced in a forked child process against the caller's own work.

:class:`Rival` runs ``fn(stopped)`` in a child process (``fork``: nothing is
pickled on the way in, and the child starts in milliseconds with what the
caller has built), while the caller goes on with its own work and looks at
:meth:`Rival.answer` whenever it likes. What the child returns comes back
pickled through a pipe. The caller then either asks the child to stop
(:meth:`Rival.stop`: ``stopped()`` turns true in the child, whose answer, if it
sends one within the grace, comes back) or ends it at once (:meth:`Rival.kill`:
``SIGKILL``, and the child is reaped, so no process is left behind).

The child ignores Ctrl-C (``SIGINT`` goes to the whole foreground process
group): the caller decides when it stops. It also stops when the caller's
process is gone (its parent changes), so a caller killed outright leaves no
search running on. It never touches stdout: the caller's buffers are flushed
before the fork, so nothing written before is written twice.

A race needs a second core: :func:`usable_cores` says how many this process
may run on (its CPU affinity, not the machine's count).
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: How often :meth:`Rival.wait` looks at the caller's stop signal (seconds).
POLL_S = 0.05


def usable_cores() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``; the count where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class RivalFailed(RuntimeError):
    """The child raised: its traceback, as text."""


class Rival(Generic[T]):
    """``fn(stopped)`` running in a child process; its answer, once sent, read here."""

    def __init__(self, fn: Callable[[Callable[[], bool]], T]) -> None:
        ctx = multiprocessing.get_context("fork")
        #: One shared byte: the caller asks the child to stop by setting it.
        self._flag = mmap.mmap(-1, 1)
        recv, send = ctx.Pipe(duplex=False)
        sys.stdout.flush()
        sys.stderr.flush()
        # Ctrl-C between the fork and the child's own handler would raise in the child
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._proc = ctx.Process(
                target=_child, args=(fn, send, self._flag, os.getpid(), blocked), daemon=True
            )
            self._proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        send.close()
        #: The child's process id (it stays known after the child is reaped).
        assert self._proc.pid is not None
        self.pid: int = self._proc.pid
        self._recv: Any = recv
        self._got: tuple[T] | None = None
        self._gone = False
        self._ended = False
        #: The child's traceback when it raised (:class:`RivalFailed` for the caller to raise).
        self.error: str | None = None

    def answer(self) -> tuple[T] | None:
        """The child's answer (in a 1-tuple), if it has sent it; never blocks."""
        if self._got is None and not self._gone:
            self._receive(0.0)
        return self._got

    def wait(self, until: float | None, stopped: Callable[[], bool]) -> tuple[T] | None:
        """The child's answer, waiting for it until ``until`` (``time.perf_counter()``;
        ``None``: no limit) or until ``stopped()`` says the caller is done."""
        while True:
            got = self.answer()
            if got is not None or self._gone or stopped():
                return got
            step = POLL_S if until is None else min(POLL_S, until - time.perf_counter())
            if step <= 0.0:
                return None
            self._receive(step)

    def stop(self, grace_s: float) -> tuple[T] | None:
        """Ask the child to stop, take its answer if it comes within ``grace_s``, end it."""
        self._flag[0] = 1
        got = self.wait(time.perf_counter() + grace_s, lambda: False)
        self.kill()
        return got

    def kill(self) -> None:
        """End the child now (``SIGKILL``) and reap it; nothing is left running."""
        if self._ended:
            return
        self._ended = True
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()
        self._proc.close()
        self._recv.close()
        self._gone = True
        self._flag.close()

    def _receive(self, timeout_s: float) -> None:
        """Take the child's message if one comes within ``timeout_s``."""
        try:
            if self._recv.poll(timeout_s):
                self._take(self._recv.recv())
        except (EOFError, OSError):  # the child died without an answer
            self._gone = True

    def _take(self, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind == "error":  # raised by the caller at a safe point, not in a solver's callback
            self._gone = True
            self.error = value
        else:
            self._got = (value,)


def _child(
    fn: Callable[[Callable[[], bool]], Any],
    send: Any,
    flag: mmap.mmap,
    parent: int,
    mask: set[signal.Signals],
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def stopped() -> bool:
        return flag[0] != 0 or os.getppid() != parent

    try:
        message: tuple[str, Any] = ("ok", fn(stopped))
    except Exception:
        message = ("error", traceback.format_exc())
    send.send(message)
    send.close()
