"""Crash safety: kill -9 the runner at random moments, rerun until done (DESIGN §7).

Every shard appends a line to a ledger when it starts, and notes a rerun if its
published folder already exists. After the loop: every shard is published
exactly once (one folder, exactly the files one execution wrote, matching a
ledger line), no published shard ever ran again, nothing is left in staging,
no process of the run is alive, and the downstream step saw the final outputs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from exo.backends.local.procs import processes_with_env
from exo.backends.local.state import Store

from .localrun import HEADER, driver_command, plan, sh_command, state_dir_of, write

SHARDS = 40
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
