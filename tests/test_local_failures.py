"""Failures of the local runner: errors, preemptions, timeouts, Ctrl-C, cancel.

Shards are real processes; "preemptions" are real signals sent from outside the
runner by a watcher thread, as a spot reclaim or an OOM killer would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exo.backends.api import RunContext
from exo.backends.local import LocalBackend, LocalOptions

from .localrun import HEADER, PY, driver_command, plan, run, sh_command, state_dir_of, write

#: Records its pid as pids/<shard>.<attempt>, then runs the body.
PIDFILE = 'mkdir -p pids; echo $$ > "pids/$EXO_BATCH_INDEX.$EXO_ATTEMPT.tmp"; '
PIDFILE += 'mv "pids/$EXO_BATCH_INDEX.$EXO_ATTEMPT.tmp" "pids/$EXO_BATCH_INDEX.$EXO_ATTEMPT"; '


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@contextmanager
def killer(pids: Path, plan_: dict[str, signal.Signals]) -> Iterator[list[str]]:
    """Send ``plan_[name]`` to the process whose pid file ``pids/name`` appears."""
    killed: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        pending = dict(plan_)
        while pending and not stop.is_set():
            for name in list(pending):
                f = pids / name
                if f.exists():
                    os.kill(int(f.read_text()), pending.pop(name))
                    killed.append(name)
            time.sleep(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield killed
    finally:
        stop.set()
        t.join()


def ledger(tmp: Path) -> list[str]:
    f = tmp / "ledger"
    return f.read_text().split() if f.exists() else []


def test_failing_shard_exhausts_retries_blocks_dependents_and_resumes(tmp_path: Path) -> None:
    work = (
        'echo "$EXO_BATCH_INDEX" >> ledger; '
        'if [ "$EXO_BATCH_INDEX" = 2 ] && [ ! -e fixed ]; then echo "boom on 2" >&2; exit 3; fi; '
        'echo ok > "$1/ok"'
    )
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step work {{
  command  = {sh_command(work, "{output}")}
  output   = "out/work"
  items    = 4
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = 4
  retries  = 2
}}

step after {{
  input    = work
  command  = {sh_command('echo after >> ledger; echo x > "$1/x"', "{output}")}
  output   = "out/after"
  duration = 1m
}}

step side {{
  command  = {sh_command('echo side >> ledger; echo x > "$1/x"', "{output}")}
  output   = "out/side"
  duration = 1m
}}
""",
    )
    planned = plan(wf)
    report = run(planned, wf)
    assert report.state == "failed" and report.exit_code == 1
    steps = {s.name: s for s in report.steps}
    assert steps["work"].state == "failed"
    assert steps["after"].state == "blocked"
    assert steps["side"].state == "done"
    assert steps["work"].shards_done == 3
    assert steps["work"].retries == 2
    [failure] = report.failures
    assert (failure.step, failure.shard, failure.attempts) == ("work", 2, 3)
    assert failure.reason == "exit code 3"
    assert failure.log is not None and "boom on 2" in Path(failure.log).read_text()
    runs = ledger(tmp_path)
    assert runs.count("2") == 3 and "after" not in runs
    assert sorted(p.name for p in (tmp_path / "out/work").iterdir()) == [
        "shard-0",
        "shard-1",
        "shard-3",
    ]
    assert not (tmp_path / "out/after").exists() or not any((tmp_path / "out/after").iterdir())

    # Fix the cause and run again: only the failed shard and the blocked step run.
    (tmp_path / "fixed").touch()
    again = run(planned, wf)
    assert again.state == "done" and again.run_id == report.run_id
    new = ledger(tmp_path)[len(runs) :]
    assert sorted(new) == ["2", "after"]


def test_preempted_shards_are_retried_without_using_retries(tmp_path: Path) -> None:
    body = PIDFILE + 'if [ "$EXO_ATTEMPT" = 1 ]; then exec sleep 60; fi; echo ok > "$1/ok"'
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step work {{
  command  = {sh_command(body, "{output}")}
  output   = "out"
  items    = 3
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = 3
  retries  = 0
  preemption_retries = 2
}}
""",
    )
    planned = plan(wf)
    # Shard 2's first attempt sleeps too: the killer handles it last, with SIGKILL.
    with killer(
        tmp_path / "pids",
        {"0.1": signal.SIGTERM, "1.1": signal.SIGKILL, "2.1": signal.SIGTERM},
    ) as killed:
        report = run(planned, wf, jobs=3)
    assert sorted(killed) == ["0.1", "1.1", "2.1"]
    assert report.state == "done", report
    [step] = report.steps
    assert step.preemptions == 3 and step.retries == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"shard-{i}" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "pids").iterdir()) == [
        "0.1",
        "0.2",
        "1.1",
        "1.2",
        "2.1",
        "2.2",
    ]


def test_too_many_preemptions_fail_the_shard(tmp_path: Path) -> None:
    body = PIDFILE + "exec sleep 60"
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step work {{
  command  = {sh_command(body, "{output}")}
  output   = "out"
  duration = 1m
  retries  = 5
  preemption_retries = 1
}}
""",
    )
    with killer(tmp_path / "pids", {"0.1": signal.SIGKILL, "0.2": signal.SIGKILL}):
        report = run(plan(wf), wf)
    assert report.state == "failed"
    [failure] = report.failures
    assert failure.reason == "killed by SIGKILL from outside 2 times"
    assert report.steps[0].retries == 0 and report.steps[0].preemptions == 2


def test_timeout_kills_the_shard_and_counts_as_an_error(tmp_path: Path) -> None:
    # The shard ignores SIGTERM (and so does its sleep): only SIGKILL after the grace works.
    body = PIDFILE + "trap '' TERM; while :; do sleep 0.05; done"
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step slow {{
  command  = {sh_command(body, "{output}")}
  output   = "out"
  duration = 1m
  timeout  = 1s
  retries  = 1
}}
""",
    )
    report = run(plan(wf), wf, grace_s=0.3)
    assert report.state == "failed"
    [failure] = report.failures
    assert failure.reason == "timed out after 1s"
    assert failure.attempts == 2
    assert report.steps[0].retries == 1 and report.steps[0].preemptions == 0
    pids = [int((tmp_path / "pids" / f"0.{a}").read_text()) for a in (1, 2)]
    assert not any(alive(p) for p in pids)


def test_missing_program_is_an_error_with_a_log(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + """
step nothing {
  command  = ["./no-such-program-here", "{output}"]
  output   = "out"
  duration = 1m
  retries  = 1
}
""",
    )
    report = run(plan(wf), wf)
    assert report.state == "failed"
    [failure] = report.failures
    assert failure.attempts == 2
    assert "cannot start './no-such-program-here'" in failure.reason
    assert failure.log is not None and "no-such-program-here" in Path(failure.log).read_text()


def _sleepy_workflow(tmp_path: Path, shards: int) -> Path:
    """Shards hang while the file ``hold`` exists."""
    (tmp_path / "hold").touch()
    body = PIDFILE + 'if [ -e hold ]; then exec sleep 60; fi; echo ok > "$1/ok"'
    return write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step work {{
  command  = {sh_command(body, "{output}")}
  output   = "out"
  items    = {shards}
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = {shards}
}}
""",
    )


def test_ctrl_c_terminates_children_records_state_and_exits_130(tmp_path: Path) -> None:
    wf = _sleepy_workflow(tmp_path, 4)
    proc = subprocess.Popen(
        [str(Path(PY).parent / "exoc"), "run", str(wf), "--jobs", "2", "--local-grace-s", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    pids = tmp_path / "pids"
    wait_for(lambda: pids.is_dir() and len(list(pids.glob("*.1"))) == 2, timeout=120)
    started = [int(p.read_text()) for p in sorted(pids.glob("*.1"))]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in out
    assert not any(alive(p) for p in started)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    planned = plan(wf)
    ctx = RunContext(workflow_file=str(wf), state_dir=str(state_dir_of(wf)))
    status = LocalBackend().status(planned, LocalOptions(), ctx)
    assert status.state == "interrupted"
    (tmp_path / "hold").unlink()
    # Resuming finishes the work; the interrupted attempts did not use up retries (0).
    report = run(planned, wf, jobs=2)
    assert report.state == "done", report
    assert report.steps[0].retries == 0


def test_cancel_stops_a_running_runner(tmp_path: Path) -> None:
    wf = _sleepy_workflow(tmp_path, 2)
    planned = plan(wf)
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    state = state_dir_of(wf)
    proc = subprocess.Popen(
        driver_command(planned_json, wf, state, 2, grace_s=1.0),
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = tmp_path / "pids"
    wait_for(lambda: pids.is_dir() and len(list(pids.glob("*.1"))) == 2, timeout=60)
    ctx = RunContext(workflow_file=str(wf), state_dir=str(state))
    report = LocalBackend().cancel(planned, LocalOptions(grace_s=1.0), ctx)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert json.loads(out)["state"] == "interrupted"
    assert report.state == "cancelled"
    (tmp_path / "hold").unlink()
    again = run(planned, wf)
    assert again.state == "done" and again.run_id != report.run_id


def test_interrupted_runner_children_do_not_outlive_it(tmp_path: Path) -> None:
    """kill -9 of the runner leaves shards running; the next runner stops them first."""
    wf = _sleepy_workflow(tmp_path, 2)
    planned = plan(wf)
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    proc = subprocess.Popen(driver_command(planned_json, wf, state_dir_of(wf), 2))
    pids = tmp_path / "pids"
    wait_for(lambda: pids.is_dir() and len(list(pids.glob("*.1"))) == 2, timeout=60)
    orphans = [int(p.read_text()) for p in sorted(pids.glob("*.1"))]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(alive(p) for p in orphans)
    (tmp_path / "hold").unlink()
    report = run(planned, wf)
    assert report.state == "done"
    assert any("left over" in m for m in report.messages)
    assert not any(alive(p) for p in orphans)


@pytest.mark.skipif(sys.platform != "linux", reason="pidfd and /proc are Linux features")
def test_signals_from_the_runner_are_not_preemptions(tmp_path: Path) -> None:
    """A shard the runner stops (Ctrl-C) is re-queued, not counted as preempted."""
    wf = _sleepy_workflow(tmp_path, 1)
    planned = plan(wf)
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    proc = subprocess.Popen(
        driver_command(planned_json, wf, state_dir_of(wf), 1, grace_s=1.0),
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (tmp_path / "pids" / "0.1").exists(), timeout=60)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    data = json.loads(out)
    assert data["state"] == "interrupted"
    assert data["steps"][0]["preemptions"] == 0 and data["steps"][0]["retries"] == 0
