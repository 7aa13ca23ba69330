"""The local runner's spawner: processes started off the loop's thread, as ``os.posix_spawn`` would.

The point of the spawner (``backends/local/spawner.py``) is that a start which
waits (for the scheduler, for a file action) does not stop the runner's loop:
the C library's ``posix_spawn`` is called without the interpreter lock. These
tests start real processes: one whose file action blocks on a FIFO until the
test itself (on the main thread) opens the FIFO's other end, which can only
happen if the start left the interpreter free; and the same requests through
the C library and through ``os.posix_spawn``, whose children must see the same
arguments, environment, files and session.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from exo.backends.local import procs, spawner
from exo.backends.runtime import escapes


def _wait_results(sp: spawner.Spawner, count: int) -> list[tuple[int, int | OSError]]:
    out: list[tuple[int, int | OSError]] = []
    while len(out) < count:
        ready, _, _ = select.select([sp.fileno()], [], [], 60)
        assert ready, "no start finished within a minute"
        out.extend(sp.results())
    return out


def _exit_code(pid: int) -> int:
    return procs.wait_exit_code(pid)


def _children() -> list[int]:
    """This process's children (``/proc``), a start's child before its ``exec`` included."""
    me, out = str(os.getpid()), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2 :].split()[1] == me:
                out.append(int(entry.name))
    return out


def test_a_start_that_waits_leaves_the_loop_free(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    log = tmp_path / "log"
    # If the start held the interpreter (as os.posix_spawn does), this thread could not
    # run until the start ended: a watchdog then feeds the FIFO, and the log says so.
    watchdog = subprocess.Popen(["sh", "-c", f"sleep 60; echo watchdog > '{fifo}'"])
    before = set(_children())
    sp = spawner.Spawner(2)
    try:
        req = spawner.Request(
            1,
            sys.executable,
            [sys.executable, "-c", "import sys; print(sys.stdin.read())"],
            dict(os.environ),
            [
                (os.POSIX_SPAWN_OPEN, 0, str(fifo), os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            ],
        )
        sp.submit(req)
        # The child exists, blocked in its open of the FIFO (no writer yet), before its
        # exec: its start has not finished, and this thread runs Python meanwhile.
        while not set(_children()) - before:
            select.select([], [], [], 0.01)
        assert sp.results() == []
        fd = os.open(fifo, os.O_WRONLY)  # lets the child's open (and so its start) finish
        os.write(fd, b"from the loop's thread\n")
        os.close(fd)
        [(token, pid)] = _wait_results(sp, 1)
        assert token == 1 and isinstance(pid, int)
        assert _exit_code(pid) == 0
        assert log.read_text() == "from the loop's thread\n\n"
    finally:
        watchdog.kill()
        watchdog.wait()
        assert sp.close() == []


PROBE = (
    "import os, sys; sys.stderr.write('err\\n'); "
    "print(sys.argv[1:], sorted(os.environ.items()), os.getsid(0) == os.getpid(), "
    f"os.read(0, 10), os.path.realpath('/proc/self/fd/{escapes.MARKER_FD}'))"
)


@pytest.mark.parametrize("libc", [True, False], ids=["libc", "os.posix_spawn"])
def test_the_child_gets_what_os_posix_spawn_gives(tmp_path: Path, libc: bool) -> None:
    marker = tmp_path / "marker"
    marker.write_text("")
    env = {"PATH": os.environ.get("PATH", os.defpath), "A": "é ünïcode", "EMPTY": ""}
    argv = [sys.executable, "-c", PROBE, "two words", "", "x=y"]
    launcher = procs.Launcher(str(marker))
    expected_log = tmp_path / "expected"
    pid = spawner._spawn_os(launcher.request(0, argv, env, str(expected_log)))  # on this thread
    assert _exit_code(pid) == 0
    log = tmp_path / "log"
    sp = spawner.Spawner(1)
    if not libc:
        sp._libc = None  # the fallback where the C library's function cannot be loaded
    try:
        sp.submit(launcher.request(1, argv, env, str(log)))
        [(_, got)] = _wait_results(sp, 1)
        assert isinstance(got, int)
        assert _exit_code(got) == 0
    finally:
        sp.close()
    assert log.read_text() == expected_log.read_text()
    assert "True" in log.read_text() and "err" in log.read_text()


def test_what_cannot_start_is_a_result_or_fails_at_once(tmp_path: Path) -> None:
    sp = spawner.Spawner(1)
    try:
        missing = str(tmp_path / "no-such-program")
        sp.submit(spawner.Request(7, missing, [missing], {}, []))
        [(token, err)] = _wait_results(sp, 1)
        assert token == 7 and isinstance(err, FileNotFoundError)
    finally:
        sp.close()
    with pytest.raises(ValueError, match="null"):
        spawner.Request(1, "/bin/true", ["true", "a\0b"], {}, [])
    with pytest.raises(ValueError, match="variable name"):
        spawner.Request(1, "/bin/true", ["true"], {"A=B": "c"}, [])
    with pytest.raises(FileNotFoundError):  # not on the PATH: raised before any thread
        procs.Launcher().request(1, ["no-such-program-anywhere"], {"PATH": str(tmp_path)}, "log")


def test_close_waits_for_the_starts_in_flight(tmp_path: Path) -> None:
    sp = spawner.Spawner(3)
    for i in range(10):
        sp.submit(spawner.Request(i, "/bin/true", ["true"], {}, []))
    results = sp.close()  # every request has exactly one result, even if none was read
    assert sorted(str(t) for t, _ in results) == sorted(str(i) for i in range(10))
    for _, pid in results:
        assert isinstance(pid, int)
        assert _exit_code(pid) == 0
