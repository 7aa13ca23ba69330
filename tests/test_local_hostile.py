"""Hostile machines (#12): the local runner never falls over and never runs a shard twice.

Each class of the issue is reproduced with real processes, real files and,
where the kernel allows it here, real mounts (a tmpfs in a private mount
namespace for a full disk and a read-only folder): a broken state database,
unwritable or vanishing folders, two runners on one output folder through a
symbolic link, and processes that escaped their shard's process group. Each
ends in a diagnostic that names what happened and how to fix it (never E901),
and once the cause is fixed ``exoc run`` resumes with every shard published
exactly once.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from exo.backends.api import PlannedWorkflow, RunContext
from exo.backends.local import LocalBackend, LocalOptions
from exo.compiler.diagnostics import CompileError

from .localrun import HEADER, PY, driver_command, plan, run, sh_command, state_dir_of, write
from .test_local_failures import alive, wait_for

EXOC = str(Path(PY).parent / "exoc")
#: Every ``exoc`` child gets this long; a hang fails the test instead of the suite.
LIMIT_S = 120


def _workflow(tmp: Path, shards: int = 3, body: str = "") -> Path:
    """``gen``: ``shards`` shards that note each execution in ``ledger`` and write a file."""
    script = f'{body}echo "$EXO_BATCH_INDEX" >> ledger; echo ok > "$1/ok"'
    return write(
        tmp / "wf.exo",
        HEADER
        + f"""
step gen {{
  command  = {sh_command(script, "{output}")}
  output   = "out/gen"
  items    = {shards}
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = {shards}
  retries  = 0
}}
""",
    )


def _exoc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXOC, *args], capture_output=True, text=True, cwd=cwd, timeout=LIMIT_S, check=False
    )


def _codes(err: CompileError) -> list[str]:
    return [d.code for d in err.diagnostics]


def _executions(tmp: Path) -> list[str]:
    return sorted((tmp / "ledger").read_text().split())


# --- a broken state database ---------------------------------------------------------------


def _garbage(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 50)


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2 + 100])


def _foreign(db: Path) -> None:
    db.unlink()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE bookmarks (url TEXT)")
    con.commit()
    con.close()


def _newer(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    con.commit()
    con.close()


def _folder(db: Path) -> None:
    db.unlink()
    db.mkdir()


def _symlink(db: Path) -> None:
    db.unlink()
    db.symlink_to("/dev/null")


BREAKAGES = {
    "garbage": (_garbage, "SQLite says"),
    "truncated": (_truncated, "malformed"),
    "foreign": (_foreign, "not an exo run state"),
    "newer": (_newer, "schema version"),
    "folder": (_folder, "folder"),
    "symlink": (_symlink, "symbolic link"),
}


@pytest.mark.parametrize("kind", sorted(BREAKAGES))
def test_broken_state_database_is_e750_and_fresh_recovers(tmp_path: Path, kind: str) -> None:
    wf = _workflow(tmp_path, shards=40)
    planned = plan(wf)
    assert run(planned, wf).state == "done"
    db = state_dir_of(wf) / "state.sqlite"
    con = sqlite3.connect(db)  # fold the journal into the file, as a finished runner leaves it
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    published = sorted(p.name for p in (tmp_path / "out/gen").iterdir())
    breakage, says = BREAKAGES[kind]
    breakage(db)

    ctx = RunContext(workflow_file=str(wf), state_dir=str(state_dir_of(wf)))
    verbs: dict[str, Callable[[], object]] = {
        "run": lambda: run(planned, wf),
        "status": lambda: LocalBackend().status(planned, LocalOptions(), ctx),
        "cancel": lambda: LocalBackend().cancel(planned, LocalOptions(), ctx),
    }
    for verb, call in verbs.items():
        with pytest.raises(CompileError) as caught:
            call()
        assert _codes(caught.value) == ["E750"], verb
        [diag] = caught.value.diagnostics
        assert says in diag.message and any("--fresh" in h for h in diag.help), diag
    # Nothing was touched: the published outputs are all there, no shard ran again.
    assert sorted(p.name for p in (tmp_path / "out/gen").iterdir()) == published
    assert len(_executions(tmp_path)) == 40

    again = run(planned, wf, fresh=True)
    assert again.state == "done", again
    assert any("kept as" in m for m in again.messages), again.messages
    kept = [p.name for p in db.parent.iterdir() if p.name.startswith("state.sqlite.broken-")]
    assert len(kept) == 1
    assert len(_executions(tmp_path)) == 80
    assert any("nothing to do" in m for m in run(planned, wf).messages)


def test_broken_state_database_through_the_cli(tmp_path: Path) -> None:
    wf = _workflow(tmp_path, shards=1)
    db = state_dir_of(wf) / "state.sqlite"
    db.parent.mkdir(parents=True)
    _garbage(db)
    proc = _exoc("status", str(wf), cwd=tmp_path)
    assert proc.returncode == 1
    assert "error[E750]" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "exoc run --fresh" in proc.stderr and f"mv {db}" in proc.stderr, proc.stderr


# --- folders that cannot be written, or vanish --------------------------------------------


def test_output_under_a_regular_file_is_e751_then_resumes(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    planned = plan(wf)
    (tmp_path / "out").write_text("a file where the output folder's parent should be\n")
    with pytest.raises(CompileError) as caught:
        run(planned, wf)
    assert _codes(caught.value) == ["E751"]
    [diag] = caught.value.diagnostics
    assert "out/gen" in diag.message and "regular file" in diag.message, diag
    (tmp_path / "out").unlink()
    assert run(planned, wf).state == "done"
    assert _executions(tmp_path) == ["0", "1", "2"]


def test_state_dir_under_a_regular_file_is_e751(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    (tmp_path / "blocker").write_text("x\n")
    with pytest.raises(CompileError) as caught:
        run(plan(wf), wf, state_dir=tmp_path / "blocker" / "state")
    assert _codes(caught.value) == ["E751"]
    assert "blocker" in caught.value.diagnostics[0].message


def test_output_folder_deleted_after_a_run_is_redone(tmp_path: Path) -> None:
    """A deleted output folder used to block every later run (E901): now its shards are redone."""
    wf = _workflow(tmp_path)
    planned = plan(wf)
    assert run(planned, wf).state == "done"
    shutil.rmtree(tmp_path / "out")
    report = run(planned, wf)
    assert report.state == "done", report
    assert any("3 published shard(s) are missing" in m for m in report.messages), report.messages
    assert sorted(p.name for p in (tmp_path / "out/gen").iterdir()) == [
        "shard-0",
        "shard-1",
        "shard-2",
    ]
    assert _executions(tmp_path) == ["0", "0", "1", "1", "2", "2"]


def test_output_folder_deleted_mid_run_stops_with_e751_then_resumes(tmp_path: Path) -> None:
    # Shard 2 deletes the step's output folder (once) while shards 0 and 1 are published.
    body = 'if [ "$EXO_BATCH_INDEX" = 2 ] && [ ! -e deleted ]; then touch deleted; rm -rf out; fi; '
    wf = _workflow(tmp_path, shards=4, body=body)
    planned = plan(wf)
    with pytest.raises(CompileError) as caught:
        run(planned, wf, jobs=1)
    assert _codes(caught.value) == ["E751"]
    message = caught.value.diagnostics[0].message
    assert "out/gen" in message and "removed while the run was using it" in message
    report = run(planned, wf, jobs=1)
    assert report.state == "done", report
    assert sorted(p.name for p in (tmp_path / "out/gen").iterdir()) == [
        f"shard-{i}" for i in range(4)
    ]
    # Each published shard comes from exactly one execution of the resumed run.
    for i in range(4):
        assert (tmp_path / f"out/gen/shard-{i}/ok").read_text() == "ok\n"


def _namespace_run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as root of a private user and mount namespace (a tmpfs needs no root)."""
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
        capture_output=True,
        timeout=LIMIT_S,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=LIMIT_S,
        check=False,
    )


def _driver(tmp: Path, wf: Path, state: Path) -> tuple[str, object]:
    planned = plan(wf)
    planned_json = tmp / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    return shlex.join(driver_command(planned_json, wf, state, 1)), planned


def _diagnostics(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)  # the shell's `echo`
    assert "rc=1" in proc.stdout and "Traceback" not in proc.stderr, (proc.stdout, proc.stderr)
    found: list[dict[str, object]] = json.loads(proc.stdout.splitlines()[0])["diagnostics"]
    return found


def test_full_disk_under_the_state_is_e751_then_resumes(tmp_path: Path) -> None:
    # Each shard logs 200 kB: the third log fills the state's 256 kB disk.
    wf = _workflow(tmp_path, shards=4, body="head -c 200000 /dev/zero; ")
    state = tmp_path / "state"
    state.mkdir()
    driver, planned = _driver(tmp_path, wf, state)
    script = f"mount -t tmpfs -o size=256k tmpfs {state} && {driver}; echo rc=$?"
    [diag] = _diagnostics(_namespace_run(script, tmp_path))
    assert diag["code"] == "E751", diag
    assert "disk is full" in str(diag["message"]) and "free some space" in str(diag["help"])
    # The state was on the private tmpfs, gone with the namespace: the real disk resumes it.
    assert isinstance(planned, PlannedWorkflow)
    assert run(planned, wf, state_dir=state).state == "done"


def test_read_only_output_folder_is_e751(tmp_path: Path) -> None:
    wf = _workflow(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    driver, _ = _driver(tmp_path, wf, state_dir_of(wf))
    script = f"mount -t tmpfs tmpfs {out} && mount -o remount,ro {out} && {driver}; echo rc=$?"
    [diag] = _diagnostics(_namespace_run(script, tmp_path))
    assert diag["code"] == "E751" and "read-only file system" in str(diag["message"]), diag


# --- two runners on one output folder -------------------------------------------------------


def test_symlinked_double_run_is_refused_by_the_output_lock(tmp_path: Path) -> None:
    """The same file through a symbolic link has another state dir; the outputs are one."""
    wf = _workflow(tmp_path, shards=2, body="while [ ! -e release ]; do sleep 0.05; done; ")
    link = tmp_path / "link.exo"
    link.symlink_to(wf.name)
    planned = plan(wf)
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    first = subprocess.Popen(
        driver_command(planned_json, wf, state_dir_of(wf), 2), stdout=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(list((state_dir_of(wf) / "staging").glob("*/gen/*"))) == 2, LIMIT_S)
        for other in (state_dir_of(link), tmp_path / "elsewhere"):
            with pytest.raises(CompileError) as caught:
                run(planned, link, state_dir=other)
            assert _codes(caught.value) == ["E752"]
            assert "out/gen" in caught.value.diagnostics[0].message
    finally:
        (tmp_path / "release").touch()
        out, _ = first.communicate(timeout=LIMIT_S)
    assert first.returncode == 0, out
    assert _executions(tmp_path) == ["0", "1"]


# --- processes that escaped their process group ---------------------------------------------


def test_escaped_processes_of_a_killed_runner_are_stopped_before_resuming(tmp_path: Path) -> None:
    # The shard starts a grandchild in a new session with an empty environment, then waits.
    escape = (
        "env -i setsid /bin/sh -c 'echo $$ > escaped.tmp; mv escaped.tmp escaped; "
        "exec /bin/sleep 300' </dev/null >/dev/null 2>&1 & "
        "while [ ! -e escaped ] || [ ! -e release ]; do sleep 0.05; done; "
    )
    wf = _workflow(tmp_path, shards=1, body=escape)
    planned = plan(wf)
    planned_json = tmp_path / "planned.json"
    planned_json.write_text(planned.model_dump_json())
    runner = subprocess.Popen(driver_command(planned_json, wf, state_dir_of(wf), 1))
    marker = tmp_path / "escaped"
    wait_for(marker.exists, LIMIT_S)
    escaped = int(marker.read_text())
    runner.kill()
    runner.wait(timeout=LIMIT_S)
    assert alive(escaped)  # outside the shard's group and environment: the old way missed it
    marker.unlink()
    (tmp_path / "release").touch()  # the resumed shard escapes again, then finishes
    report = run(planned, wf)
    assert report.state == "done"
    assert any("left over" in m for m in report.messages), report.messages
    assert not alive(escaped)
    # The resumed shard escaped again; the runner stopped that one when the run ended.
    assert not alive(int(marker.read_text()))
    assert any("the shards left running" in m for m in report.messages), report.messages
