"""Crash safety: kill -9 the runner at random moments, rerun until done (DESIGN §7).

Every shard appends a line to a ledger when it starts, and notes a rerun if its
published folder already exists. After the loop: every shard is published
exactly once (one folder, exactly the files one execution wrote, matching a
ledger line), no published shard ever ran again, nothing is left in staging,
no process of the run is alive, and the downstream step saw the final outputs.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from exo.backends.local.procs import processes_with_env
from exo.backends.local.state import Store

from .localrun import HEADER, driver_command, plan, sh_command, state_dir_of, write

SHARDS = 40
T = TypeVar("T")
KILLS = 20

GEN = (
    'tok="$EXO_RUN_ID.$EXO_BATCH_INDEX.$EXO_ATTEMPT.$$"; '
    'if [ -e "out/gen/shard-$EXO_BATCH_INDEX" ]; then echo "RERUN $tok" >> ledger; fi; '
    'echo "gen $EXO_BATCH_INDEX $tok" >> ledger; '
    "sleep 0.1$(( $$ % 5 )); "
    'echo "$tok" > "$1/token"'
)
MERGE = (
    'echo "merge 0 $EXO_ATTEMPT.$$" >> ledger; '
    'if [ -e out/merge/shard-0 ]; then echo "RERUN merge" >> ledger; fi; '
    'cat "$2"/shard-*/token | sort > "$1/all"'
)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_9_at_random_moments_loses_nothing_and_reruns_nothing(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step gen {{
  command  = {sh_command(GEN, "{output}")}
  output   = "out/gen"
  items    = {SHARDS}
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = {SHARDS}
  retries  = 0
}}

step merge {{
  input    = gen
  command  = {sh_command(MERGE, "{output}", "{input}")}
  output   = "out/merge"
  duration = 1m
}}
""",
    )
    planned = plan(wf)
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    state = state_dir_of(wf)
    cmd = driver_command(planned_json, wf, state, 2)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    ledger = tmp_path / "ledger"
    kills = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=tmp_path)
        if rng.random() < 0.25:
            # Anywhere, including start-up, registration and reconciliation.
            time.sleep(rng.uniform(0.0, 0.8))
        else:
            # Soon after the k-th shard start of this runner: mid-shard or around publishing.
            start = _lines(ledger)
            k = rng.randint(1, 3)
            deadline = time.monotonic() + 30
            while _lines(ledger) < start + k and proc.poll() is None:
                assert time.monotonic() < deadline, "the runner made no progress"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    final = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert final.returncode == 0, (seed, final.stdout, final.stderr)

    print(f"seed {seed}: {kills} kills")
    # The loop must really have interrupted the work many times.
    assert kills >= 10, (seed, kills)
    lines = ledger.read_text().splitlines()
    assert not [line for line in lines if line.startswith("RERUN")], (seed, lines)
    executed = {line.split()[2] for line in lines if line.startswith("gen ")}
    gen = tmp_path / "out" / "gen"
    assert sorted(p.name for p in gen.iterdir()) == sorted(f"shard-{i}" for i in range(SHARDS))
    tokens = []
    for i in range(SHARDS):
        files = sorted(p.name for p in (gen / f"shard-{i}").iterdir())
        assert files == ["token"], (seed, i, files)
        token = (gen / f"shard-{i}" / "token").read_text().strip()
        assert token in executed, (seed, token)
        assert token.split(".")[1] == str(i)
        tokens.append(token)
    assert len(set(tokens)) == SHARDS
    merged = (tmp_path / "out" / "merge" / "shard-0" / "all").read_text().split()
    assert merged == sorted(tokens)
    assert sorted(p.name for p in (tmp_path / "out" / "merge").iterdir()) == ["shard-0"]
    staging = state / "staging"
    assert not staging.exists() or not any(staging.iterdir()), list(staging.rglob("*"))
    store = Store(state / "state.sqlite")
    run = store.latest_run(str(wf))
    assert run is not None and run.state == "done"
    assert {r.state for r in store.shards(run.run_id).values()} == {"done"}
    store.close()
    assert processes_with_env("EXO_RUN_ID", run.run_id, {os.getpid()}) == []


WAIT_THEN_WRITE = (
    "while [ ! -e go ]; do sleep 0.02; done; "
    'echo "gen $EXO_BATCH_INDEX $EXO_ATTEMPT $$" >> ledger; '
    'echo "$EXO_BATCH_INDEX" > "$1/out"'
)


def _wait_for(found: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + 60
    while (value := found()) is None:
        assert time.monotonic() < deadline, f"no {what} within a minute"
        time.sleep(0.01)
    return value


def _program(pid: int) -> str | None:
    try:
        return str(Path(f"/proc/{pid}/exe").readlink())
    except OSError:  # gone
        return None


def _unexeced_child(runner: int) -> int | None:
    """A child of ``runner`` still running the runner's program: a start before its exec."""
    exe = _program(runner)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == runner and (
                str((entry / "exe").readlink()) == exe
            ):
                return int(entry.name)
        except OSError:
            continue
    return None


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_a_runner_stopped_while_a_start_waits_recovers(tmp_path: Path, how: str) -> None:
    """kill -9 or Ctrl-C while a shard's start is in flight (its log a FIFO nobody reads
    yet, so the child waits in its file actions, before its exec): a killed runner leaves
    what a runner killed inside ``posix_spawn`` left, an interrupted one stops and records
    the shard once its start ends; the next run recovers either way."""
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step gen {{
  command  = {sh_command(WAIT_THEN_WRITE, "{output}")}
  output   = "out/gen"
  items    = 2
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = 2
  retries  = 0
}}
""",
    )
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(plan(wf).model_dump_json())
    state = state_dir_of(wf)
    cmd = driver_command(planned_json, wf, state, 1)  # one at a time: shard 1 after shard 0
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=tmp_path)
    reader = None
    try:
        logs = _wait_for(
            lambda: next((p for p in (state / "logs").glob("*/gen") if p.is_dir()), None),
            "log folder",
        )
        fifo = logs / "shard-1.attempt-1.log"
        os.mkfifo(fifo)
        (tmp_path / "go").touch()  # shard 0 ends, shard 1's start opens the FIFO and waits
        shard_0 = tmp_path / "out" / "gen" / "shard-0"
        _wait_for(lambda: shard_0 if shard_0.exists() else None, "shard 0 published")
        # Only now is a start before its exec shard 1's (shard 0's own start is one too).
        waiting = _wait_for(lambda: _unexeced_child(proc.pid), "start in flight")
        runner_program = _program(proc.pid)
        if how == "kill -9":
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # Let the orphaned start go on: it execs the command, as a killed runner's would.
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            _wait_for(lambda: None if _program(waiting) == runner_program else True, "exec")
        else:
            proc.send_signal(signal.SIGINT)  # the runner waits for the start in flight
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            assert proc.wait(timeout=60) == 130
            assert _program(waiting) is None  # stopped, and reaped
            assert not (tmp_path / "out" / "gen" / "shard-1").exists()
            ended = [
                json.loads(line)
                for line in next((state / "ledger").glob("*.jsonl")).read_text().splitlines()
            ]
            assert [(e["shard"], e["outcome"]) for e in ended if e["event"] == "end"] == [
                (0, "succeeded"),
                (1, "stopped"),
            ]
        final = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if reader is not None:
            os.close(reader)
    assert final.returncode == 0, (final.stdout, final.stderr)
    gen = tmp_path / "out" / "gen"
    assert sorted(p.name for p in gen.iterdir()) == ["shard-0", "shard-1"]
    assert [(gen / f"shard-{i}" / "out").read_text() for i in (0, 1)] == ["0\n", "1\n"]
    lines = (tmp_path / "ledger").read_text().splitlines()
    assert len([line for line in lines if line.startswith("gen 0 ")]) == 1, lines  # not rerun
    staging = state / "staging"
    assert not staging.exists() or not any(staging.rglob("shard-*")), list(staging.rglob("*"))
    store = Store(state / "state.sqlite")
    run = store.latest_run(str(wf))
    assert run is not None and run.state == "done"
    assert {r.state for r in store.shards(run.run_id).values()} == {"done"}
    store.close()
    assert processes_with_env("EXO_RUN_ID", run.run_id, {os.getpid()}) == []
