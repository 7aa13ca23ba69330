"""Signals to the event loop: SIGINT, SIGTERM and SIGHUP through a wake-up socket.

The loop sleeps in ``select``; a signal writes its number to a socket the loop
watches, so it wakes at once and stops its shards (a second signal: at once,
with SIGKILL). Outside the main thread (tests, embedding) no handler is
installed and only the socket is made.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator


def drain(sock: socket.socket) -> bool:
    got = False
    while True:
        try:
            data = sock.recv(256)
        except BlockingIOError:
            return got
        if not data:
            return got
        got = True


@contextlib.contextmanager
def signals() -> Iterator[socket.socket]:
    """Route SIGINT/SIGTERM/SIGHUP to a wake-up socket while the loop runs."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    if threading.current_thread() is not threading.main_thread():
        try:
            yield reader
        finally:
            reader.close()
            writer.close()
        return
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in handled}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def note(signum: int, frame: object) -> None:
        # The wake-up fd already carries the signal number; nothing else to do here.
        return None

    try:
        for s in handled:
            signal.signal(s, note)
        yield reader
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(old_fd)
        reader.close()
        writer.close()
