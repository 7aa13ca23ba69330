"""The backend plugin API: entry-point discovery, validation, options, CLI flags.

Third-party plugins are found for real: the example package in
``tests/plugins/exo-hello-backend`` is made importable together with a
``.dist-info`` generated from its own ``pyproject.toml`` (what pip would write),
so ``importlib.metadata`` discovers its entry point like any installed plugin.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exo.backends.api import Artifact
from exo.backends.conformance import BackendConformance
from exo.backends.local import LocalBackend
from exo.backends.registry import (
    installed,
    load_entry_points,
    resolve_options,
    unknown_blocks,
)
from exo.compiler.cli import app
from exo.compiler.cli.compile import write_artifacts
from exo.compiler.diagnostics import CompileError, Severity

from .conftest import REPO, all_examples
from .localrun import HEADER, write

PLUGIN = REPO / "tests" / "plugins" / "exo-hello-backend"
EXOC = str(Path(sys.executable).parent / "exoc")


def install_as_dist(project: Path, target: Path) -> Path:
    """Copy a src-layout project into ``target`` with the dist-info pip would write."""
    meta = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))["project"]
    for package in (project / "src").iterdir():
        shutil.copytree(package, target / package.name)
    dist = target / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    lines = []
    for group, eps in meta.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in eps.items())
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return target


BROKEN_MODULE = """
from typing import ClassVar
from pydantic import BaseModel
from exo.backends.api import Artifact, Backend, Capabilities

class Opts(BaseModel):
    level: int = 1

class Good(Backend):
    name: ClassVar[str] = "x"
    Options: ClassVar[type[BaseModel]] = Opts
    def check(self, planned, options):
        return []
    def emit(self, planned, options):
        return [Artifact("a.txt", "a")]

NOT_A_CLASS = 42

class Plain:
    name = "plain"

class OldApi(Good):
    name: ClassVar[str] = "oldapi"
    api_version: ClassVar[int] = 99

class BadOptions(Good):
    name: ClassVar[str] = "badopts"
    Options = dict

class Misnamed(Good):
    name: ClassVar[str] = "something-else"

class Abstract(Backend):
    name: ClassVar[str] = "abstract"
    Options: ClassVar[type[BaseModel]] = Opts
    def check(self, planned, options):
        return []

class ClaimsRun(Good):
    name: ClassVar[str] = "claimsrun"
    capabilities: ClassVar[Capabilities] = Capabilities(run=True)

class Dup(Good):
    name: ClassVar[str] = "local"

class Fine(Good):
    name: ClassVar[str] = "fine"
"""

BROKEN_ENTRY_POINTS = {
    "nomodule": "exo_no_such_module_anywhere:Backend",
    "notclass": "exo_broken_plugins:NOT_A_CLASS",
    "plain": "exo_broken_plugins:Plain",
    "oldapi": "exo_broken_plugins:OldApi",
    "badopts": "exo_broken_plugins:BadOptions",
    "misnamed": "exo_broken_plugins:Misnamed",
    "abstract": "exo_broken_plugins:Abstract",
    "claimsrun": "exo_broken_plugins:ClaimsRun",
    "raises": "exo_broken_raises:Backend",
    "local": "exo_broken_plugins:Dup",
    "fine": "exo_broken_plugins:Fine",
}

EXPECTED_PROBLEMS = {
    "nomodule": "ModuleNotFoundError",
    "notclass": "not a subclass",
    "plain": "not a subclass",
    "oldapi": "API version 99",
    "badopts": "not a pydantic model",
    "misnamed": "'something-else'",
    "abstract": "does not implement emit",
    "claimsrun": "not a RunnableBackend",
    "raises": "RuntimeError: plugin exploded",
    "local": "already registered",
}


@pytest.fixture(scope="module")
def hello_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_as_dist(PLUGIN, tmp_path_factory.mktemp("hello-plugin"))


@pytest.fixture(scope="module")
def broken_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("broken-plugins")
    (target / "exo_broken_plugins.py").write_text(BROKEN_MODULE)
    (target / "exo_broken_raises.py").write_text("raise RuntimeError('plugin exploded')\n")
    dist = target / "exo_broken_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: exo-broken-plugins\nVersion: 1.0\n"
    )
    eps = "\n".join(f"{k} = {v}" for k, v in BROKEN_ENTRY_POINTS.items())
    (dist / "entry_points.txt").write_text(f"[exo.backends]\n{eps}\n")
    return target


def _env_with(path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), *sys.path])}


# --- discovery and validation ------------------------------------------------------------


def test_builtin_local_is_found_through_its_entry_point() -> None:
    eps = metadata.entry_points(group="exo.backends")
    assert "local" in eps.names
    registry = installed()
    assert isinstance(registry.backends["local"], LocalBackend)
    assert not [d for d in registry.problems if "`local`" in d.message]


def test_broken_plugins_become_e703_diagnostics(broken_path: Path) -> None:
    eps = [
        ep
        for dist in metadata.distributions(path=[str(broken_path)])
        for ep in dist.entry_points
        if ep.group == "exo.backends"
    ]
    sys.path.insert(0, str(broken_path))
    try:
        registry = load_entry_points([*eps, *metadata.entry_points(group="exo.backends")])
    finally:
        sys.path.remove(str(broken_path))
    assert "fine" in registry.backends
    assert isinstance(registry.backends["local"], LocalBackend)  # the built-in wins
    messages = {d.message for d in registry.problems}
    assert all(d.code == "E703" for d in registry.problems)
    for name, fragment in EXPECTED_PROBLEMS.items():
        mine = [m for m in messages if f"`{name}`" in m]
        assert mine, f"no diagnostic for {name}: {messages}"
        assert any(fragment in m for m in mine), (name, mine)
        assert any("exo-broken-plugins 1.0" in m for m in mine)
    # A broken plugin asked for by name explains itself.
    found = registry.lookup("oldapi")
    assert isinstance(found, list) and found[0].code == "E703"


def test_exoc_backends_reports_broken_plugins_without_a_traceback(broken_path: Path) -> None:
    proc = subprocess.run(
        [EXOC, "backends"], capture_output=True, text=True, env=_env_with(broken_path), check=False
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error[E703]" in proc.stderr
    assert "local" in proc.stdout and "fine" in proc.stdout


# --- the example third-party plugin -------------------------------------------------------


def test_third_party_plugin_is_listed_and_gets_flags(
    hello_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(hello_path))
    runner = CliRunner()
    listing = runner.invoke(app, ["backends", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    data = {b["name"]: b for b in json.loads(listing.stdout)["backends"]}
    assert {"hello", "local"} <= set(data)
    flags = [o["flag"] for o in data["hello"]["options"]]
    assert flags == ["--hello-greeting", "--hello-width", "--hello-uppercase"]
    helptext = runner.invoke(app, ["compile", "--help"], terminal_width=200).stdout
    assert "--hello-greeting" in helptext and "--local-grace-s" in helptext


def test_third_party_plugin_compiles_with_block_and_flags(
    hello_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(hello_path))
    wf = write(
        tmp_path / "wf.exo",
        HEADER
        + """
step one {
  command  = ["echo", "{batch_index}"]
  duration = 1m
}

backend hello {
  greeting = "good evening"
  width    = 40
}
""",
    )
    out = tmp_path / "out"
    args = ["compile", str(wf), "--target", "hello", "-o", str(out), "--hello-uppercase"]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    sheet = (out / "run-sheet.txt").read_text()
    assert sheet.startswith("good evening, wf!\n" + "=" * 40 + "\n")
    assert "ONE: 1 shard(s)" in sheet
    # A flag overrides the block; a bad value is E701 naming the flag.
    bad = runner.invoke(app, [*args, "--hello-width", "5"])
    assert bad.exit_code == 1
    assert "error[E701]" in bad.output and "--hello-width" in bad.output


def test_installed_plugin_works_from_a_fresh_process(hello_path: Path, tmp_path: Path) -> None:
    """What a user sees: the plugin on the path of a new `exoc` process."""
    proc = subprocess.run(
        [EXOC, "backends"], capture_output=True, text=True, env=_env_with(hello_path), check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "hello" in proc.stdout and "--hello-width" in proc.stdout


class TestHelloConformance(BackendConformance):
    """The shared suite, run on the example third-party plugin."""

    backend_name = "hello"
    bad_options = [{"width": 3}, {"greeting": ""}, {"uppercase": "loudly"}]  # noqa: RUF012

    @pytest.fixture(autouse=True)
    def _plugin_on_path(self, hello_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        monkeypatch.syspath_prepend(str(hello_path))
        yield

    def example_files(self) -> list[Path]:
        return all_examples()


# --- options ---------------------------------------------------------------------------------


def test_flags_override_the_block() -> None:
    local = LocalBackend()
    options, problems = resolve_options(local, {"grace_s": 2, "backoff_s": 3}, {"grace_s": "7"})
    assert problems == []
    assert options is not None
    assert options.model_dump() == {
        "backoff_s": 3.0,
        "backoff_max_s": 60.0,
        "grace_s": 7.0,
        "clean_env": False,
        "fallback": "deadline",
        "spot_trace": None,
        "spot_rate": None,
        "spot_time_scale": 1.0,
        "spot_seed": 0,
        "gpus": "auto",
    }


def test_option_errors_say_where_the_value_came_from() -> None:
    local = LocalBackend()
    _, from_block = resolve_options(local, {"grace_s": -1}, None)
    assert from_block[0].code == "E701"
    assert "`grace_s` in `backend local { ... }`" in from_block[0].message
    assert "-1" in from_block[0].message
    _, from_flag = resolve_options(local, None, {"grace_s": "abc"})
    assert from_flag[0].message.startswith("--local-grace-s:")
    _, unknown = resolve_options(local, {"grace": 1}, None)
    assert unknown[0].help[0] == "did you mean `grace_s`?"


def test_blocks_for_backends_that_are_not_installed_are_warnings() -> None:
    [warning] = unknown_blocks(installed(), {"locl": {}, "local": {}})
    assert warning.code == "E701" and warning.severity is Severity.WARNING
    assert "did you mean `local`?" in warning.help


def test_artifacts_cannot_escape_the_output_directory(tmp_path: Path) -> None:
    local = LocalBackend()
    for bad in ("../x", "/etc/x", "a/../../x"):
        with pytest.raises(CompileError) as err:
            write_artifacts(local, [Artifact(bad, "x")], tmp_path / "out")
        assert err.value.diagnostics[0].code == "E703"
    assert not (tmp_path / "out").exists()
    written = write_artifacts(
        local, [Artifact("sub/run.sh", "#!/bin/sh\n", executable=True)], tmp_path / "out"
    )
    assert written == [tmp_path / "out" / "sub" / "run.sh"]
    assert os.access(written[0], os.X_OK)


# --- CLI verbs -------------------------------------------------------------------------------


def test_exoc_backends_lists_local_with_its_options() -> None:
    result = CliRunner().invoke(app, ["backends"])
    assert result.exit_code == 0, result.output
    assert "local" in result.output and "--local-grace-s" in result.output


def test_infeasible_plan_exits_3_with_the_explanation(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "wf.exo",
        """
workflow tight {
  deadline = 1m
}

step long {
  command  = ["true"]
  duration = 2h
}
""",
    )
    runner = CliRunner()
    for args in (
        ["compile", str(wf), "--target", "local", "-o", str(tmp_path / "o")],
        ["run", str(wf)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 3, result.output
        assert "no feasible plan" in result.output
    assert not (tmp_path / "o").exists()
    assert not (tmp_path / ".exo").exists()


def test_unknown_target_suggests_the_closest(tmp_path: Path) -> None:
    wf = write(tmp_path / "wf.exo", HEADER + 'step s {\n  command = ["true"]\n  duration = 1m\n}\n')
    result = CliRunner().invoke(app, ["compile", str(wf), "--target", "locl", "-o", "x"])
    assert result.exit_code == 1
    assert "unknown backend `locl`" in result.output and "did you mean `local`?" in result.output
