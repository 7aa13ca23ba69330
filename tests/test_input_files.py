"""Files a user names are regular files of bounded size, read with a bound, never shown.

The entry file, imports, catalogs and plan files go through one reader
(``exo.compiler.inputs``): a FIFO must not hang the compiler, a device must not
be read forever, a ``/proc`` pseudo-file (``/proc/self/environ``: the
environment, secrets included) must not be read at all, and no diagnostic may
echo what such a file holds. The CLI runs in a subprocess with a timeout, so a
hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exo.compiler.catalog import CatalogError, load_catalog
from exo.compiler.diagnostics import CompileError, render_all_text
from exo.compiler.frontend import compile_file
from exo.compiler.inputs import InputRefused, read_regular_file
from exo.compiler.report.diff import load_plan

SECRET = "hunter2-do-not-print"

WORKFLOW = """\
workflow w {{
  deadline = 2h
  catalog  = "{catalog}"
}}
step s {{ command = ["true"] cpu = 1 duration = 10m }}
"""


def exoc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``exoc`` in a subprocess, killed (and the test failed) if it runs past 60 s."""
    return subprocess.run(
        [sys.executable, "-m", "exo.compiler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def refused(path: Path, limit: int = 1 << 20) -> str:
    with pytest.raises(InputRefused) as info:
        read_regular_file(path, limit)
    return info.value.reason


def test_regular_files_are_read_whole(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(b"x" * 1000)
    assert read_regular_file(f, 1000) == b"x" * 1000
    link = tmp_path / "link.csv"
    link.symlink_to(f)
    assert read_regular_file(link, 1000) == b"x" * 1000  # a link to a regular file is fine


def test_special_files_are_refused_before_reading(tmp_path: Path) -> None:
    assert "folder" in refused(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "named pipe" in refused(fifo)  # returns at once: nothing opened the pipe
    assert "device" in refused(Path("/dev/zero"))
    assert "device" in refused(Path("/dev/null"))
    environ = Path("/proc/self/environ")
    if environ.exists():
        assert "pseudo-file" in refused(environ)
    big = tmp_path / "big"
    with big.open("wb") as f:
        f.truncate(2 << 20)  # sparse: its size alone refuses it
    assert "larger than 1 MiB" in refused(big)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing", 10)


def test_proc_environ_as_catalog_prints_no_environment(tmp_path: Path) -> None:
    """The issue's case: ``catalog = "/proc/self/environ"`` printed the environment."""
    (tmp_path / "wf.exo").write_text(WORKFLOW.format(catalog="/proc/self/environ"))
    result = exoc("check", "wf.exo", cwd=tmp_path, env={"EXO_TEST_SECRET": SECRET})
    assert result.returncode == 1, result
    assert SECRET not in result.stderr + result.stdout
    assert "error[E401]" in result.stderr and "pseudo-file" in result.stderr
    # The same through --catalog, and in JSON.
    result = exoc(
        "check",
        "wf.exo",
        "--catalog",
        "/proc/self/environ",
        "--diagnostics-format",
        "json",
        cwd=tmp_path,
        env={"EXO_TEST_SECRET": SECRET},
    )
    assert result.returncode == 1 and SECRET not in result.stdout + result.stderr


def _special_project(tmp_path: Path, kind: str) -> None:
    special = tmp_path / "special.exo"
    if kind == "fifo":
        os.mkfifo(special)
    elif kind == "folder":
        special.mkdir()
    else:
        special.symlink_to("/dev/zero")
    (tmp_path / "cat.exo").write_text(WORKFLOW.format(catalog="special.exo"))
    (tmp_path / "imp.exo").write_text(
        'import "./special.exo"\n' + WORKFLOW.format(catalog="aws/us-east-1")
    )


def test_fifo_catalogs_imports_and_entries_do_not_hang(tmp_path: Path) -> None:
    """A named pipe nobody writes to: reading it would block forever."""
    _special_project(tmp_path, "fifo")
    for args, code in (
        (["check", "cat.exo"], "E401"),
        (["check", "imp.exo"], "E001"),
        (["check", "special.exo"], "E001"),
    ):
        result = exoc(*args, cwd=tmp_path)  # the 60 s timeout catches a hang
        assert result.returncode == 1, (args, result)
        assert f"error[{code}]" in result.stderr and "named pipe" in result.stderr, args
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["device", "folder"])
def test_devices_and_folders_are_refused(tmp_path: Path, kind: str) -> None:
    _special_project(tmp_path, kind)
    # (a link to /dev/zero leaves the project: the import is refused for that first)
    for entry, code in (
        ("cat.exo", "E401"),
        ("imp.exo", "E110" if kind == "device" else "E001"),
        ("special.exo", "E001"),
    ):
        with pytest.raises(CompileError) as err:
            compile_file(tmp_path / entry)
        assert [d.code for d in err.value.diagnostics] == [code], entry


def test_oversized_sources_and_catalogs_are_refused_by_size(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(17 << 20)
    with pytest.raises(CatalogError) as info:
        load_catalog("big.csv", tmp_path)
    assert info.value.diagnostics[0].code == "E401"
    assert "larger than 16 MiB" in info.value.diagnostics[0].message
    entry = tmp_path / "big.exo"
    with entry.open("wb") as f:
        f.truncate(17 << 20)
    with pytest.raises(CompileError) as err:
        compile_file(entry)
    assert [d.code for d in err.value.diagnostics] == ["E012"]


def test_a_secrets_file_as_catalog_is_not_shown(tmp_path: Path) -> None:
    """A regular file that is not a catalog: say so, show nothing of it."""
    (tmp_path / ".env").write_text(f"API_KEY={SECRET}\nOTHER=x,y,z\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(".env", tmp_path)
    (d,) = info.value.diagnostics
    assert d.code == "E402" and "not a catalog" in d.message
    text = render_all_text(info.value.diagnostics, info.value.sources).plain
    assert SECRET not in text and "API_KEY" not in text


def test_a_catalog_error_shows_only_its_cell(tmp_path: Path) -> None:
    """Other cells of the offending row (here a token in `note`) are never shown."""
    (tmp_path / "c.csv").write_text(
        "instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
        "ondemand_usd_per_hour,spot_usd_per_hour,note\n"
        f"box,,0,eight,32,0.38,0.11,{SECRET}\n"
    )
    with pytest.raises(CatalogError) as info:
        load_catalog("c.csv", tmp_path)
    text = render_all_text(info.value.diagnostics, info.value.sources).plain
    assert "eight" in text and SECRET not in text and "box" not in text


def test_imports_name_exo_files(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"TOKEN={SECRET}\n")
    entry = tmp_path / "wf.exo"
    entry.write_text('import "./.env"\n' + WORKFLOW.format(catalog="aws/us-east-1"))
    with pytest.raises(CompileError) as err:
        compile_file(entry)
    assert [d.code for d in err.value.diagnostics] == ["E109"]
    text = render_all_text(err.value.diagnostics, err.value.sources).plain
    assert SECRET not in text and ".exo" in text


def test_plan_files_are_read_with_the_same_rule(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    with pytest.raises(CompileError) as err:
        load_plan(fifo)
    assert [d.code for d in err.value.diagnostics] == ["E001"]
    assert "named pipe" in err.value.diagnostics[0].message
