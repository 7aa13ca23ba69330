"""The local runner's slots: processes started and waited for off the loop's thread.

The point of the slots (``backends/local/spawner.py``) is that a start which
waits (for the scheduler, for a file action) does not stop the runner's loop
(the C library's ``posix_spawn`` is called without the interpreter lock), and
that a slot starts its next request the moment its process ends. These
tests start real processes: one whose file action blocks on a FIFO until the
test itself (on the main thread) opens the FIFO's other end, which can only
happen if the start left the interpreter free; and the same requests through
the C library and through ``os.posix_spawn``, whose children must see the same
arguments, environment, files and session.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from exo.backends.local import commands, procs, spawner
from exo.backends.runtime import escapes


def _wait_events(sp: spawner.Slots, count: int) -> list[spawner.Event]:
    """The next ``count`` events, waited for as the loop does (a start wakes nobody: the
    loop looks every ``STARTED_LAG`` seconds while it has requests out)."""
    out: list[spawner.Event] = []
    deadline = time.monotonic() + 60
    while len(out) < count:
        assert time.monotonic() < deadline, "nothing happened within a minute"
        select.select([sp.fileno()], [], [], spawner.STARTED_LAG)
        out.extend(sp.events())
    return out


def _request(token: int, *argv: str, log: str | None = None) -> spawner.Request:
    actions = [(os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    return spawner.Request(token, argv[0], list(argv), {}, actions if log else [])


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
    sp = spawner.Slots(2)
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
        assert sp.events() == []
        fd = os.open(fifo, os.O_WRONLY)  # lets the child's open (and so its start) finish
        os.write(fd, b"from the loop's thread\n")
        os.close(fd)
        started, exited = _wait_events(sp, 2)
        assert isinstance(started, spawner.Started) and started.token == 1
        assert exited == spawner.Exited(1, 0)  # the slot waited for it and reaped it
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
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    log = tmp_path / "log"
    sp = spawner.Slots(1)
    if not libc:
        sp._libc = None  # the fallback where the C library's function cannot be loaded
    try:
        sp.submit(launcher.request(1, argv, env, str(log)))
        started, exited = _wait_events(sp, 2)
        assert isinstance(started, spawner.Started)
        assert exited == spawner.Exited(1, 0)
    finally:
        sp.close()
    assert log.read_text() == expected_log.read_text()
    assert "True" in log.read_text() and "err" in log.read_text()


def test_what_cannot_start_is_a_result_or_fails_at_once(tmp_path: Path) -> None:
    sp = spawner.Slots(1)
    try:
        missing = str(tmp_path / "no-such-program")
        sp.submit(spawner.Request(7, missing, [missing], {}, []))
        [ev] = _wait_events(sp, 1)
        assert isinstance(ev, spawner.NotStarted) and ev.token == 7 and not ev.fatal
        assert isinstance(ev.error, FileNotFoundError)
    finally:
        sp.close()
    with pytest.raises(ValueError, match="null"):
        spawner.Request(1, "/bin/true", ["true", "a\0b"], {}, [])
    with pytest.raises(ValueError, match="variable name"):
        spawner.Request(1, "/bin/true", ["true"], {"A=B": "c"}, [])
    with pytest.raises(FileNotFoundError):  # not on the PATH: raised before any thread
        procs.Launcher().request(1, ["no-such-program-anywhere"], {"PATH": str(tmp_path)}, "log")


def test_a_slot_starts_the_next_request_without_the_loop(tmp_path: Path) -> None:
    """Nobody reads the events: one slot still runs every request, in order (xargs -P 1)."""
    sp = spawner.Slots(1)
    try:
        out = tmp_path / "order"
        for i in range(5):
            sp.submit(_request(i, "/bin/sh", "-c", f"echo {i} >> '{out}'"))
        events = _wait_events(sp, 10)
    finally:
        sp.close()
    assert out.read_text().split() == ["0", "1", "2", "3", "4"]
    assert [(type(e).__name__, e.token) for e in events] == [
        (kind, i) for i in range(5) for kind in ("Started", "Exited")
    ]


def test_the_gate_decides_in_submission_order(tmp_path: Path) -> None:
    seen: list[int] = []

    def gate(token: int) -> tuple[bool, object]:
        seen.append(token)
        if token == 3:
            raise RuntimeError("the loop's own error")
        return token != 1, f"placed {token}"

    sp = spawner.Slots(2, gate)
    try:
        for i in range(4):
            sp.submit(_request(i, "/bin/true"))
        events = _wait_events(sp, 6)  # 0 and 2: Started, Exited; 1: Skipped; 3: NotStarted
    finally:
        sp.close()
    assert seen == [0, 1, 2, 3]
    by_token = {t: [e for e in events if e.token == t] for t in range(4)}
    assert by_token[1] == [spawner.Skipped(1, "placed 1")]
    [failed] = by_token[3]
    assert isinstance(failed, spawner.NotStarted) and failed.fatal
    assert isinstance(failed.error, RuntimeError)
    for t in (0, 2):
        started, exited = by_token[t]
        assert isinstance(started, spawner.Started) and started.admitted == f"placed {t}"
        assert exited == spawner.Exited(t, 0)


def test_an_attempts_output_folder_is_made_empty(tmp_path: Path) -> None:
    left = tmp_path / "left"  # left by an attempt that never started (a crash)
    left.mkdir()
    (left / "partial").write_text("x")
    commands.make_folder(str(left))
    assert left.is_dir() and list(left.iterdir()) == []
    with pytest.raises(FileNotFoundError):  # the loop's: it stops the run (E751)
        commands.make_folder(str(tmp_path / "no" / "such" / "parent"))


def test_one_byte_wakes_the_loop_for_every_event_up_to_its_read(tmp_path: Path) -> None:
    sp = spawner.Slots(2)
    try:
        for i in range(20):
            sp.submit(_request(i, "/bin/true"))
        events = _wait_events(sp, 40)  # every request's start and end, none missed
        assert sorted(e.token for e in events) == sorted(list(range(20)) * 2)
        assert sp.events() == []
    finally:
        sp.close()


def test_an_exit_takes_its_process_group_and_no_signal_follows(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    sp = spawner.Slots(1)
    try:
        sp.submit(_request(1, "/bin/sh", "-c", f"sleep 600 & echo $! > '{pidfile}'"))
        _, exited = _wait_events(sp, 2)
        assert exited == spawner.Exited(1, 0)
        orphan = int(pidfile.read_text())
        deadline = time.monotonic() + 30  # killed with the group; reaped by init
        while Path(f"/proc/{orphan}").exists() and _state(orphan) != "Z":
            assert time.monotonic() < deadline, "the shard's background process survived"
            time.sleep(0.01)
        sp.signal(1, signal.SIGKILL)  # reaped: the slot forgot it; nothing is signalled
        assert sp._pids == {}
    finally:
        sp.close()


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2]


def test_close_cancels_what_waits_and_kills_what_runs(tmp_path: Path) -> None:
    sp = spawner.Slots(3)
    for i in range(10):
        sp.submit(_request(i, "/bin/sleep", "600"))
    first = _wait_events(sp, 3)  # three slots: three started, the rest wait
    assert sorted(e.token for e in first) == [0, 1, 2]
    rest = sp.close()  # every request ends, even if nobody reads its events
    ends = {e.token: e for e in first + rest if not isinstance(e, spawner.Started)}
    assert sorted(ends) == list(range(10))
    assert {ends[t] for t in (0, 1, 2)} == {spawner.Exited(t, -9) for t in (0, 1, 2)}
    assert {ends[t] for t in range(3, 10)} == {spawner.Skipped(t, None) for t in range(3, 10)}


def test_a_process_reaped_elsewhere_ends_with_no_exit_status(tmp_path: Path) -> None:
    sp = spawner.Slots(1)
    try:
        sp.submit(_request(1, "/bin/sleep", "600"))
        [started] = _wait_events(sp, 1)
        assert isinstance(started, spawner.Started)
        with sp._lock:  # the slot cannot reap it meanwhile: something else does
            os.kill(started.pid, signal.SIGKILL)
            os.waitpid(started.pid, 0)
        assert _wait_events(sp, 1) == [spawner.Exited(1, None)]
    finally:
        sp.close()


def test_stop_skips_what_waits_and_terminates_a_start_under_way(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = set(_children())
    sp = spawner.Slots(1)
    try:
        # The start waits in its file actions (a FIFO nobody reads yet) when the run stops.
        sp.submit(_request(1, "/bin/sleep", "600", log=str(fifo)))
        sp.submit(_request(2, "/bin/true"))
        deadline = time.monotonic() + 60
        while not set(_children()) - before:  # request 1's child, before its exec
            assert time.monotonic() < deadline, "the start never began"
            time.sleep(0.01)
        sp.stop()
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the start finish
        try:
            events = _wait_events(sp, 3)
        finally:
            os.close(reader)
    finally:
        sp.close()
    started, exited, skipped = sorted(events, key=lambda e: (e.token, type(e) is spawner.Exited))
    assert isinstance(started, spawner.Started) and started.token == 1 and started.stopped
    assert exited == spawner.Exited(1, -signal.SIGTERM)  # terminated the moment it started
    assert skipped == spawner.Skipped(2, None)


@pytest.mark.parametrize("libc", [True, False], ids=["libc", "os"])
def test_reaping_and_waking_with_or_without_the_c_librarys_calls(libc: bool) -> None:
    sp = spawner.Slots(2)
    if not libc:  # where the C library cannot be loaded: os.waitpid, os.write
        sp._libc = None
    try:
        for i, code in enumerate([0, 3, 0, 7]):
            sp.submit(_request(i, "/bin/sh", "-c", f"exit {code}"))
        events = _wait_events(sp, 8)
    finally:
        sp.close()
    ends = {e.token: e for e in events if isinstance(e, spawner.Exited)}
    assert ends == {i: spawner.Exited(i, c) for i, c in enumerate([0, 3, 0, 7])}


def test_fewer_slots_when_the_system_gives_no_more_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[int] = []
    start = spawner._thread.start_new_thread

    def limited(function: Any, args: tuple[Any, ...]) -> int:
        if started:
            raise RuntimeError("can't start new thread")
        started.append(1)
        return start(function, args)

    monkeypatch.setattr(spawner._thread, "start_new_thread", limited)
    sp = spawner.Slots(4)
    try:
        for i in range(6):
            sp.submit(_request(i, "/bin/true"))
        events = _wait_events(sp, 12)  # one slot runs them all, one after another
    finally:
        sp.close()
    assert sp._started == 1 and sp._alive == 0
    assert sorted(e.token for e in events if isinstance(e, spawner.Exited)) == list(range(6))
