"""The run ledger (#13): written by the local runner, read after a kill -9, no secrets in it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from exo.backends.runtime import ledger
from exo.backends.runtime.ledger import LedgerWriter, Tier

from .localrun import HEADER, driver_command, plan, py_command, run, state_dir_of, write


def _ledger_files(state: Path) -> list[Path]:
    return sorted((state / ledger.LOCAL_FOLDER).glob("*.jsonl"))


def test_round_trip_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    w = LedgerWriter(path)
    w.run_started(100.0, "r1", "local", json.dumps({"steps": []}))
    w.attempt_started(101.0, "a", 0, 1, (0, 10), Tier("c6i.xlarge", True, 5), 0)
    w.attempt_ended(
        104.0, "a", 0, 1, exit_code=-9, outcome="preempted", committed=5, first_batch_at=102.0
    )
    w.attempt_started(105.0, "a", 0, 2, (0, 10), Tier("c6i.xlarge", True, 5), 5)
    w.attempt_ended(
        107.0, "a", 0, 2, exit_code=0, outcome="succeeded", committed=10, first_batch_at=106.5
    )
    w.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with path.open("ab") as f:
        f.write(b'{"v": 1, "event": "start", "step"')  # a power loss mid-line
    book = ledger.read(path)
    assert book.skipped == 1
    assert book.plan == {"steps": []}
    first, second = book.attempts
    assert (first.outcome, first.items_committed, first.seconds, first.startup_s) == (
        "preempted",
        5,
        3.0,
        1.0,
    )
    assert (first.instance_type, first.spot, first.batch_size) == ("c6i.xlarge", True, 5)
    assert (second.outcome, second.items_committed, second.startup_s) == ("succeeded", 5, 1.5)


def test_an_attempt_without_an_end_is_lost_once_a_later_run_began(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    w = LedgerWriter(path)
    w.run_started(100.0, "r1", "local", None)
    w.attempt_started(101.0, "a", 0, 1, (0, 4), None, 0)
    w.attempt_started(101.0, "a", 1, 1, (4, 8), None, 0)
    w.run_started(150.0, "r1", "local", None)
    w.attempt_started(151.0, "a", 0, 2, (0, 4), None, 0)
    w.close()
    book = ledger.read(path)
    by_key = {(a.shard, a.attempt): a for a in book.attempts}
    assert by_key[(0, 1)].outcome == "lost" and by_key[(0, 1)].ended_at == 150.0
    assert by_key[(1, 1)].outcome == "lost"
    assert by_key[(0, 2)].outcome == "running" and by_key[(0, 2)].ended_at is None
    # A command that keeps no checkpoint and succeeds committed its whole shard.
    w = LedgerWriter(path)
    w.attempt_ended(
        152.0, "a", 0, 2, exit_code=0, outcome="succeeded", committed=0, first_batch_at=None
    )
    w.close()
    done = next(a for a in ledger.read(path).attempts if a.attempt == 2)
    assert (done.outcome, done.items_committed) == ("succeeded", 4)


WORK = (
    "import os, sys, time; from exo.worker import shard; s = shard(); "
    "[(time.sleep(0.02), b.commit({'x': 'y'})) for b in s]; s.assemble(); "
    "sys.exit(3 if os.environ['EXO_ATTEMPT'] == '1' and s.index == 0 else 0)"
)


def test_local_runs_record_every_attempt_and_no_secret(tmp_path: Path) -> None:
    secret = "hunter2-very-secret-value"
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step work {{
  items      = 8
  command    = {py_command(WORK)}
  cpu        = 1
  throughput {{ cpu = {{ 2: 100 }} }}
  replicas   = 2
  retries    = 1
  checkpoint = batch
  secrets    = ["API_TOKEN"]
  env {{ MODE = "x" }}
}}
""",
    )
    rep = run(plan(wf), wf, environ={**os.environ, "API_TOKEN": secret})
    assert rep.state == "done"
    (path,) = _ledger_files(state_dir_of(wf))
    text = path.read_text("utf-8")
    assert secret not in text and "API_TOKEN" not in text
    book = ledger.read(path)
    outcomes = sorted((a.shard, a.attempt, a.outcome) for a in book.attempts)
    assert outcomes == [(0, 1, "failed"), (0, 2, "succeeded"), (1, 1, "succeeded")]
    for a in book.attempts:
        assert a.instance_type and a.spot is not None and a.batch_size == 2
        assert a.ended_at is not None and a.ended_at >= a.started_at
        # The helper's first batch (the observed startup), when there was a batch to do.
        assert (a.first_batch_at is not None) == (a.items_committed > 0)
    by = {(a.shard, a.attempt): a for a in book.attempts}
    # The failed attempt committed its 4 items; the retry found them committed.
    assert by[(0, 1)].items_committed == 4 and by[(0, 2)].items_committed == 0
    assert by[(1, 1)].items_committed == 4
    assert book.plan is not None and book.plan["steps"][0]["name"] == "work"


def test_a_command_that_cannot_start_is_a_failed_attempt(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + """
step gone {
  command  = ["./no-such-program"]
  duration = 1m
  retries  = 1
}
""",
    )
    assert run(plan(wf), wf).state == "failed"
    (path,) = _ledger_files(state_dir_of(wf))
    book = ledger.read(path)
    assert [(a.attempt, a.outcome, a.exit_code) for a in book.attempts] == [
        (1, "failed", None),
        (2, "failed", None),
    ]


def test_the_ledger_survives_a_kill_9_of_the_runner(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step slow {{
  items    = 2
  command  = {py_command("import time; time.sleep(30)")}
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = 2
}}
""",
    )
    planned = plan(wf)
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    state = state_dir_of(wf)
    proc = subprocess.Popen(driver_command(planned_json, wf, state, 2), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            files = _ledger_files(state)
            if files and len(ledger.read(files[0]).attempts) == 2:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (path,) = _ledger_files(state)
    book = ledger.read(path)
    assert book.skipped == 0
    assert sorted(a.shard for a in book.attempts) == [0, 1]
    assert all(a.outcome == "running" for a in book.attempts)
    # The shards the dead runner left are stopped by the next `exoc run`; its ledger says so.
    planned_quick = planned.model_copy(
        update={
            "program": planned.program.model_copy(
                update={
                    "steps": tuple(
                        s.model_copy(update={"command": (s.command[0], "-c", "pass")})
                        for s in planned.program.steps
                    )
                }
            )
        }
    )
    rep = run(planned_quick, wf)
    assert rep.state == "done"
    book = ledger.read(path)
    assert len(book.runs) == 2
    first, second = book.attempts[:2], book.attempts[2:]
    assert [a.outcome for a in first] == ["lost", "lost"]
    assert all(a.ended_at == book.runs[1].t for a in first)
    # The changed step is redone: its attempts are numbered again, and paired correctly.
    assert sorted((a.shard, a.attempt, a.outcome) for a in second) == [
        (0, 1, "succeeded"),
        (1, 1, "succeeded"),
    ]
