"""The local runner end to end: real processes, real files, real SQLite state."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exo.backends.api import RunContext
from exo.backends.local import LocalBackend, LocalOptions
from exo.backends.local.state import Store, exclusive_lock
from exo.compiler.cli import app
from exo.compiler.diagnostics import CompileError

from .localrun import HEADER, plan, py_command, run, sh_command, state_dir_of, write

#: Each shard records its range and environment; the join step concatenates them.
PIPELINE_BODY = """
dataset docs {{
  uri   = "data/docs.txt"
  items = 10
}}

step split {{
  input    = docs
  command  = {split}
  output   = "out/split"
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = 1..3
}}

step join {{
  input    = split
  command  = {join}
  output   = "out/join/{{run_id}}"
  duration = 1m
  env {{ WHO = "join of {{step}}" }}
}}
"""

SPLIT = py_command(
    "import json, os, sys; "
    "keys = ['EXO_BATCH_INDEX', 'EXO_BATCH_START', 'EXO_BATCH_END', 'EXO_BATCH_SIZE',"
    " 'EXO_ATTEMPT', 'EXO_RUN_ID', 'EXO_STEP', 'EXO_INPUT']; "
    "rec = {k: os.environ[k] for k in keys}; "
    "rec['argv'] = sys.argv[1:]; "
    "rec['out_is_env'] = sys.argv[1] == os.environ['EXO_OUTPUT']; "
    "open(os.path.join(sys.argv[1], 'rec.json'), 'w').write(json.dumps(rec)); "
    "open('executions.log', 'a').write(os.environ['EXO_BATCH_INDEX'] + chr(10))",
    "{output}",
    "{batch_index}",
    "{batch_start}",
    "{batch_end}",
    "{input}",
)
JOIN = sh_command(
    'cat "$1"/shard-*/rec.json > "$2/all.jsonl"; echo "$WHO" > "$2/who.txt"',
    "{input}",
    "{output}",
)


def pipeline_text() -> str:
    return HEADER + PIPELINE_BODY.format(split=SPLIT, join=JOIN)


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    return write(tmp_path / "wf.exo", pipeline_text())


def test_pipeline_runs_in_dependency_order_with_shard_ranges(pipeline: Path) -> None:
    planned = plan(pipeline)
    report = run(planned, pipeline)
    assert report.state == "done", report
    assert report.exit_code == 0
    split_dir = pipeline.parent / "out" / "split"
    shards = sorted(p.name for p in split_dir.iterdir())
    n = planned.step_plan("split").replicas
    assert shards == [f"shard-{i}" for i in range(n)]
    recs = [json.loads((split_dir / s / "rec.json").read_text()) for s in shards]
    # The ranges tile the 10 items, in order, and placeholders match the environment.
    assert recs[0]["EXO_BATCH_START"] == "0"
    assert int(recs[-1]["EXO_BATCH_END"]) == 10
    for i, r in enumerate(recs):
        assert r["EXO_BATCH_INDEX"] == str(i)
        assert r["argv"][1:4] == [r["EXO_BATCH_INDEX"], r["EXO_BATCH_START"], r["EXO_BATCH_END"]]
        assert r["argv"][4] == r["EXO_INPUT"] == "data/docs.txt"
        assert r["out_is_env"] is True
        assert r["EXO_ATTEMPT"] == "1"
        assert r["EXO_STEP"] == "split"
        assert r["EXO_RUN_ID"] == report.run_id
        if i:
            assert r["EXO_BATCH_START"] == recs[i - 1]["EXO_BATCH_END"]
    # The temporary output directory was private to the attempt, not the published one.
    assert all(str(split_dir) not in r["argv"][0] for r in recs)
    join_dir = pipeline.parent / "out" / "join" / str(report.run_id) / "shard-0"
    lines = (join_dir / "all.jsonl").read_text().count("EXO_BATCH_INDEX")
    assert lines == n
    assert (join_dir / "who.txt").read_text().strip() == "join of join"
    # Nothing left in staging.
    staging = state_dir_of(pipeline) / "staging"
    assert not staging.exists() or not any(staging.rglob("*"))


def test_rerun_of_a_finished_run_reruns_nothing(pipeline: Path) -> None:
    planned = plan(pipeline)
    first = run(planned, pipeline)
    executions = (pipeline.parent / "executions.log").read_text()
    second = run(planned, pipeline)
    assert second.state == "done"
    assert second.run_id == first.run_id
    assert (pipeline.parent / "executions.log").read_text() == executions
    assert any("nothing to do" in m for m in second.messages)


def test_fresh_starts_a_new_run_and_replaces_published_shards(pipeline: Path) -> None:
    planned = plan(pipeline)
    first = run(planned, pipeline)
    second = run(planned, pipeline, fresh=True)
    assert second.state == "done"
    assert second.run_id != first.run_id
    rec = json.loads((pipeline.parent / "out/split/shard-0/rec.json").read_text())
    assert rec["EXO_RUN_ID"] == second.run_id
    # Outputs with {run_id} in their path are kept per run.
    assert (pipeline.parent / "out/join" / str(first.run_id) / "shard-0").is_dir()
    assert (pipeline.parent / "out/join" / str(second.run_id) / "shard-0").is_dir()


def test_a_new_run_drops_the_earlier_runs_rows_not_their_ledgers(pipeline: Path) -> None:
    """Only a workflow's latest run is read back: the state holds no other (it grew by
    the plan, graph and shards of every run before, and every open checks all of it)."""
    planned = plan(pipeline)
    first = run(planned, pipeline)
    second = run(planned, pipeline, fresh=True)
    state = state_dir_of(pipeline)
    other = Store(state / "state.sqlite")
    try:
        other.create_run("other-1", "/elsewhere/other.exo", 1.0)
    finally:
        other.close()
    db = sqlite3.connect(state / "state.sqlite")
    try:
        runs = sorted(r[0] for r in db.execute("SELECT run_id FROM runs"))
        shard_runs = {r[0] for r in db.execute("SELECT run_id FROM shards")}
        step_runs = {r[0] for r in db.execute("SELECT run_id FROM steps")}
    finally:
        db.close()
    assert runs == sorted([str(second.run_id), "other-1"])  # another workflow's run stays
    assert shard_runs == step_runs == {second.run_id}
    ledgers = {p.stem for p in (state / "ledger").iterdir()}
    assert {first.run_id, second.run_id} <= ledgers
    third = run(planned, pipeline)  # and the latest run still resumes
    assert third.run_id == second.run_id and third.state == "done"


def test_changed_step_is_redone_with_its_dependents_only(tmp_path: Path) -> None:
    text = pipeline_text()
    wf = write(tmp_path / "wf.exo", text)
    first = run(plan(wf), wf)
    before = (tmp_path / "executions.log").read_text()
    # Change only the join step's environment: split keeps its shards.
    write(wf, text.replace('"join of {step}"', '"joined by {step}"'))
    second = run(plan(wf), wf)
    assert second.state == "done" and second.run_id == first.run_id
    assert (tmp_path / "executions.log").read_text() == before
    who = tmp_path / "out/join" / str(first.run_id) / "shard-0/who.txt"
    assert who.read_text().strip() == "joined by join"
    assert any("join: changed" in m for m in second.messages)


def test_step_without_output_publishes_under_the_state_dir(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step only {{
  command  = {sh_command('echo hi > "$1/x"', "{output}")}
  output   = "s3://bucket/prefix/"
  duration = 1m
}}
""",
    )
    report = run(plan(wf), wf)
    assert report.state == "done"
    published = state_dir_of(wf) / "outputs" / "only" / "shard-0" / "x"
    assert published.read_text() == "hi\n"


def test_status_reports_the_last_run(pipeline: Path) -> None:
    planned = plan(pipeline)
    ctx = RunContext(workflow_file=str(pipeline), state_dir=str(state_dir_of(pipeline)))
    before = LocalBackend().status(planned, LocalOptions(), ctx)
    assert before.state == "none" and before.run_id is None
    done = run(planned, pipeline)
    after = LocalBackend().status(planned, LocalOptions(), ctx)
    assert after.state == "done" and after.run_id == done.run_id
    assert [(s.name, s.shards_done, s.shards_total) for s in after.steps] == [
        (s.name, s.shards_total, s.shards_total) for s in done.steps
    ]


def test_second_runner_on_the_same_state_is_refused(pipeline: Path) -> None:
    planned = plan(pipeline)
    with exclusive_lock(state_dir_of(pipeline)), pytest.raises(CompileError) as err:
        run(planned, pipeline)
    assert [d.code for d in err.value.diagnostics] == ["E705"]
    assert not (pipeline.parent / "executions.log").exists()


def test_missing_secret_is_an_error_before_anything_starts(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step use {{
  command  = {sh_command('echo "$API_TOKEN" > "$1/seen"', "{output}")}
  output   = "out"
  secrets  = ["API_TOKEN"]
  duration = 1m
}}
""",
    )
    planned = plan(wf)
    env = {k: v for k, v in os.environ.items() if k != "API_TOKEN"}
    with pytest.raises(CompileError) as err:
        run(planned, wf, environ=env)
    assert [d.code for d in err.value.diagnostics] == ["E704"]
    assert "API_TOKEN" in err.value.diagnostics[0].message
    assert not state_dir_of(wf).exists()


def test_secret_reaches_the_shard_but_no_log_state_or_artifact(tmp_path: Path) -> None:
    secret = "s3cr3t-value-7f1e"
    # The shard compares the secret with a file, so its value is nowhere in the workflow.
    (tmp_path / "token.txt").write_text(secret)
    script = 'test "$API_TOKEN" = "$(cat token.txt)" && echo match > "$1/seen"; env'
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step use {{
  command  = {sh_command(script, "{output}")}
  output   = "out"
  secrets  = ["API_TOKEN"]
  duration = 1m
}}
""",
    )
    planned = plan(wf)
    report = run(planned, wf, environ={**os.environ, "API_TOKEN": secret})
    assert report.state == "done", report
    assert (tmp_path / "out/shard-0/seen").read_text() == "match\n"
    emitted = LocalBackend().emit(planned, LocalOptions())
    assert all(secret not in a.content for a in emitted)
    assert "API_TOKEN" in emitted[0].content
    db = sqlite3.connect(state_dir_of(wf) / "state.sqlite")
    assert secret not in "\n".join(db.iterdump())
    db.close()
    # Only the shard's own log has it (the shard printed its environment on purpose).
    holders = [
        f.relative_to(state_dir_of(wf)).as_posix()
        for f in state_dir_of(wf).rglob("*")
        if f.is_file() and secret.encode() in f.read_bytes()
    ]
    assert holders == [f"logs/{report.run_id}/use/shard-0.attempt-1.log"]


def test_clean_env_passes_only_the_basics_and_secrets(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + f"""
step envdump {{
  command  = {py_command("import json, os, sys; json.dump(sorted(os.environ), open(sys.argv[1] + '/env.json', 'w'))", "{output}")}
  output   = "out"
  secrets  = ["API_TOKEN"]
  env {{ MINE = "1" }}
  duration = 1m
}}
""",
    )
    env = {"PATH": os.environ["PATH"], "API_TOKEN": "x", "UNRELATED_VAR": "y", "HOME": "/h"}
    report = run(plan(wf), wf, environ=env, clean_env=True)
    assert report.state == "done"
    names = json.loads((tmp_path / "out/shard-0/env.json").read_text())
    assert "UNRELATED_VAR" not in names
    assert {"PATH", "HOME", "API_TOKEN", "MINE", "EXO_RUN_ID", "EXO_OUTPUT"} <= set(names)


def test_cli_run_and_status(pipeline: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(pipeline), "--jobs", "2", "--local-backoff-s", "0"])
    assert result.exit_code == 0, result.output
    assert "done" in result.output
    status = runner.invoke(app, ["status", str(pipeline), "--format", "json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert data["state"] == "done"
    assert {s["name"]: s["state"] for s in data["steps"]} == {"split": "done", "join": "done"}


def test_cli_bad_option_in_block_and_flag(pipeline: Path) -> None:
    text = pipeline.read_text() + "\nbackend local {\n  grace_s = -3\n}\n"
    pipeline.write_text(text)
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(pipeline)])
    assert result.exit_code == 1
    assert "E701" in result.output and "grace_s" in result.output
    # The flag overrides the block.
    ok = runner.invoke(app, ["run", str(pipeline), "--local-grace-s", "0.5"])
    assert ok.exit_code == 0, ok.output
    other = runner.invoke(app, ["run", str(pipeline), "--local-grace-s", "1", "--slurm-x", "1"])
    assert other.exit_code == 2  # no such flag: a usage error


def test_cli_run_on_an_emit_only_target_is_refused(tmp_path: Path) -> None:
    from exo.backends.registry import installed

    emit_only = [n for n, b in installed().backends.items() if not b.capabilities.run]
    if not emit_only:
        pytest.skip("no emit-only backend installed")
    wf = write(tmp_path / "wf.exo", pipeline_text())
    result = CliRunner().invoke(app, ["run", str(wf), "--target", emit_only[0]])
    assert result.exit_code == 1
    assert "E702" in result.output


def test_plain_progress_lines(pipeline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planned = plan(pipeline)
    ctx = RunContext(
        workflow_file=str(pipeline),
        state_dir=str(state_dir_of(pipeline)),
        jobs=1,  # one shard after another: the step stays running in between
        progress="plain",
        environ=dict(os.environ),
    )
    report = LocalBackend().run(planned, LocalOptions(), ctx)
    err = capsys.readouterr().err
    n = planned.step_plan("split").replicas
    assert n > 1
    assert report.state == "done"
    states = [line for line in err.splitlines() if re.match(r"split: [a-z]+ \(", line)]
    assert states == [f"split: running (0/{n} shards)", f"split: done ({n}/{n} shards)"]
    assert err.index("split: done") < err.index("join: running")


def test_rich_progress_bars(pipeline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = RunContext(
        workflow_file=str(pipeline),
        state_dir=str(state_dir_of(pipeline)),
        progress="rich",
        environ=dict(os.environ),
    )
    report = LocalBackend().run(plan(pipeline), LocalOptions(), ctx)
    assert report.state == "done"
    err = capsys.readouterr().err
    assert "split" in err and "join" in err


def test_cli_status_text(pipeline: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(pipeline)]).exit_code == 0
    result = runner.invoke(app, ["status", str(pipeline)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("wf: done (run ")
    assert lines[1].split() == ["step", "state", "shards", "running", "retries", "preempted"]
    assert lines[2].split()[:2] == ["split", "done"]
