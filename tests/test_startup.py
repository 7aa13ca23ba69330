"""Start-up stays light (issue #16): each command imports only what it runs.

Structural, not timed: a fresh interpreter runs the command, then reports which
heavy libraries it imported. ``exoc --help`` and ``exoc check`` of a small file
must not load the optimizer's stack (numpy, scipy, cvxpy), the graph library,
jinja2, the Kubernetes client or the backends; the lazy command table of
``exoc --help`` must say what each command's own help says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from exo.compiler.cli import COMMANDS, QUICK_EXIT, app, command_of
from exo.compiler.cli.help import load_commands
from exo.compiler.cli.support import pydantic_plugins_off

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.exo"
OVERNIGHT = ROOT / "examples" / "overnight_classify.exo"

#: Never imported by ``--help``, ``--version`` or ``check`` (rich: not when nothing is
#: reported and stderr is not a terminal, as here).
HEAVY = ("numpy", "scipy", "cvxpy", "networkx", "jinja2", "kubernetes", "yaml", "rich")
#: Only needed once a command runs a stage.
STAGES = (
    "exo.compiler.optimizer",
    "exo.compiler.candidates",
    "exo.compiler.report.html",
    "exo.backends.api",
)

#: Runs ``exoc ARGS`` as the ``exoc`` script does (the quick exit included) and prints the
#: modules loaded from an ``atexit`` callback, which the quick exit runs too.
_PROBE = """
import atexit, json, sys
from exo.compiler.cli import main
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted(sys.modules))))
sys.argv = ["exoc", *json.loads(sys.argv[1])]
main()
"""


def imported_by(*args: str) -> tuple[int, set[str]]:
    """Exit code and modules loaded when a fresh ``exoc ARGS`` finishes."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("MODULES "))
    return out.returncode, set(json.loads(line.removeprefix("MODULES ")))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


@pytest.mark.parametrize(
    "args",
    [("--help",), ("--version",), ("check", str(QUICKSTART)), ("check", "--help")],
    ids=["help", "version", "check", "check-help"],
)
def test_light_commands_do_not_import_heavy_libraries(args: tuple[str, ...]) -> None:
    code, modules = imported_by(*args)
    assert code == 0
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, STAGES) == []


def test_help_and_version_do_not_load_the_front_end() -> None:
    for args in (("--help",), ("--version",)):
        _, modules = imported_by(*args)
        assert "exo.compiler.frontend" not in modules
        assert "lark" not in modules


def test_plan_still_loads_what_it_needs() -> None:
    """The lazy imports move work, they do not lose it: a plan that needs a model loads
    the solver (the cheapest option everywhere misses this workflow's deadline). Its
    relaxation goes to HiGHS as a matrix: cvxpy is for the exact quota model only."""
    code, modules = imported_by("plan", "--format", "json", str(OVERNIGHT))
    assert code == 0
    assert "highspy" in modules and "exo.compiler.optimizer" in modules
    assert "exo.compiler.milpmatrix" in modules


def test_a_quick_plan_with_no_time_for_a_model_does_not_load_the_solver() -> None:
    """The same workflow under a limit its options already spend: the search returns the
    quick plan (no model fits the time left), so cvxpy and HiGHS are never imported."""
    code, modules = imported_by("plan", "--format", "json", "--time-limit", "0.001", str(OVERNIGHT))
    assert code == 0
    assert "exo.compiler.solve" in modules  # the search ran: the quick proof did not hold
    assert _loaded(modules, ("cvxpy", "highspy")) == []


def test_backend_flags_do_not_load_the_kubernetes_client() -> None:
    """Every backend's options become flags of ``compile`` and ``run``, so
    every backend is registered at start-up; the Kubernetes client models load only when
    Kubernetes artifacts are emitted."""
    code, modules = imported_by("compile", "--help")
    assert code == 0
    assert "exo.backends.kubernetes.backend" in modules
    assert _loaded(modules, ("kubernetes", "kubernetes_validate", "yaml")) == []


def test_command_table_says_what_each_command_says() -> None:
    """``exoc --help`` lists commands from the table without importing them: each
    sentence there must be the command's own, and every command must be listed."""
    registered: dict[str, str] = {}
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        for name, command in load_commands(module).items():
            assert COMMANDS[name][0] == module, name
            registered[name] = command.get_short_help_str(limit=200)
    assert registered == {name: help for name, (_, help) in COMMANDS.items()}
    group = typer.main.get_command(app)
    assert group.list_commands(typer.Context(group)) == list(COMMANDS)  # type: ignore[attr-defined]


def test_plan_proven_by_the_trivial_bound_does_not_load_the_solver() -> None:
    """The quickstart's cheapest option everywhere meets every limit: no model, no cvxpy."""
    code, modules = imported_by("plan", str(QUICKSTART))
    assert code == 0
    assert _loaded(modules, ("cvxpy", "highspy")) == []


_RUN = """\
workflow noop {{
  deadline = 24h
}}

step noop {{
  command  = ["true"]
  items    = 4
  cpu      = 1
  throughput {{ cpu = 1 }}
  replicas = 4
  spot     = {spot}
}}
"""


@pytest.mark.parametrize("spot", ["never", "allowed"])
def test_run_loads_no_graph_library_and_scipy_only_for_spot(tmp_path: Path, spot: str) -> None:
    """``exoc run`` orders steps without networkx; scipy's Poisson tails load only when
    the plan weighs a spot option (``spot = never``: the run needs numpy alone)."""
    flow = tmp_path / "noop.exo"
    flow.write_text(_RUN.format(spot=spot))
    code, modules = imported_by("run", str(flow), "--fresh")
    assert code == 0
    assert _loaded(modules, ("networkx", "cvxpy", "jinja2", "kubernetes")) == []
    assert bool(_loaded(modules, ("scipy",))) == (spot == "allowed")


@pytest.mark.parametrize("verb", ["plan", "status", "simulate"])
def test_reports_order_steps_without_the_graph_library(verb: str) -> None:
    """The plan report's step graph (floats, edges, the greedy schedules' order) comes
    from ``compiler/toposort.py``: ``plan``, ``status`` and ``simulate`` load no networkx
    (a tenth of a second each)."""
    code, modules = imported_by(verb, str(QUICKSTART))
    assert code == 0
    assert _loaded(modules, ("networkx",)) == []


def test_status_of_a_kept_plan_loads_no_numerical_stack() -> None:
    """``exoc status`` after ``exoc plan``: the planned-vs-actual view draws with the SVG
    helpers, which no longer load the report's facts (the cost model, the greedy
    schedules' numpy) for a type annotation."""
    assert imported_by("plan", str(QUICKSTART))[0] == 0
    for args in ((), ("--format", "json")):
        code, modules = imported_by("status", str(QUICKSTART), *args)
        assert code == 0
        assert _loaded(modules, ("numpy", "scipy", "networkx", "exo.compiler.optimizer")) == []


def test_slurm_compile_orders_jobs_without_the_graph_library(tmp_path: Path) -> None:
    """The Slurm backend orders its submissions as ``exoc run`` orders steps
    (``compiler/toposort.py``), so compiling for it loads no networkx."""
    code, modules = imported_by("compile", "-t", "slurm", "-o", str(tmp_path), str(QUICKSTART))
    assert code == 0
    assert _loaded(modules, ("networkx",)) == []
    assert (tmp_path / "submit.sh").is_file()


_LEAVE = """
import atexit, sys, threading, time
from pathlib import Path
from exo.compiler.cli import leave
atexit.register(lambda: Path(sys.argv[1]).write_text("atexit ran"))
sys.stdout.write("x" * 100_000)  # buffered: a pipe
if sys.argv[2] == "thread":
    threading.Thread(target=time.sleep, args=(0.2,)).start()
leave(3)
sys.stdout.write("returned")
"""


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "with-a-thread"])
def test_quick_exit_keeps_what_the_teardown_would_do(tmp_path: Path, thread: bool) -> None:
    """``leave`` skips only the teardown: buffered output is written and ``atexit``
    callbacks run; with another thread alive it returns and the interpreter ends as usual."""
    marker = tmp_path / "marker"
    out = subprocess.run(
        [sys.executable, "-c", _LEAVE, str(marker), "thread" if thread else "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stderr == ""
    assert out.stdout == "x" * 100_000 + ("returned" if thread else "")
    assert out.returncode == (0 if thread else 3)
    assert marker.read_text() == "atexit ran"


def test_quick_exit_writes_all_of_a_large_output() -> None:
    """``exoc ir`` through a pipe, left by the quick exit: the whole JSON arrives."""
    out = subprocess.run(
        [sys.executable, "-m", "exo.compiler", "ir", str(OVERNIGHT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["workflow"]


_HOLDING = """
import atexit, gc, json, sys
from exo.compiler.cli import main
def probe():
    held = getattr(sys.modules.get("exo.compiler.cli.frontend"), "_HELD", [])
    kinds = [type(x).__name__ for x in held]
    files = [sorted(x.loaded.sources) for x in held]
    print("\\nPROBE " + json.dumps([gc.isenabled(), kinds, files]))
atexit.register(probe)
sys.argv = ["exoc", *json.loads(sys.argv[1])]
main()
"""


@pytest.mark.parametrize("command", ["check", "ir"])
def test_check_keeps_its_front_end_to_the_end_without_the_collector(command: str) -> None:
    """``exoc check`` ends without freeing the syntax trees of the last file it compiled
    (``compile_file``'s ``hold``) and without the cyclic collector, which would walk them
    (``UNCOLLECTED``); the other commands keep the collector and hold nothing."""
    files = [OVERNIGHT, QUICKSTART] if command == "check" else [OVERNIGHT]
    out = subprocess.run(
        [sys.executable, "-c", _HOLDING, json.dumps([command, *map(str, files)])],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("PROBE "))
    enabled, kinds, held = json.loads(line.removeprefix("PROBE "))
    if command == "check":
        assert (enabled, kinds) == (False, ["FrontEnd"])
        assert held == [[str(QUICKSTART)]]  # the last file's: the first one's let go
    else:
        assert (enabled, kinds, held) == (True, [], [])


def test_the_command_is_the_first_argument_that_is_not_an_option() -> None:
    assert command_of(["--version"]) == ""
    assert command_of(["check", "--help"]) == "check"
    assert command_of(["-h", "run", "x.exo"]) == "run"
    assert {"", "check", "run"} <= QUICK_EXIT and "status" not in QUICK_EXIT


#: Runs ``exoc ARGS`` and prints, from an ``atexit`` callback, whether pydantic looked
#: for plugins and what ``PYDANTIC_DISABLE_PLUGINS`` is when the command has finished.
_PLUGIN_PROBE = """
import atexit, json, os, sys
from exo.compiler.cli import main
def show():
    loader = sys.modules.get("pydantic.plugin._loader")
    scanned = loader is not None and loader._plugins is not None
    print("\\nPLUGINS " + json.dumps([scanned, os.environ.get("PYDANTIC_DISABLE_PLUGINS")]))
atexit.register(show)
sys.argv = ["exoc", *json.loads(sys.argv[1])]
main()
"""


def run_without_plugin_setting(
    extra: dict[str, str], code: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``python -c CODE ARGS`` (exit 0 asserted) in an environment without the user's
    ``PYDANTIC_DISABLE_PLUGINS``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**env, **extra},
    )
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.parametrize("user_value", [None, "logfire"], ids=["unset", "user-set"])
def test_check_builds_its_models_without_pydantics_plugin_search(user_value: str | None) -> None:
    """``exoc check`` never reads every distribution's entry points for pydantic plugins,
    and leaves ``PYDANTIC_DISABLE_PLUGINS`` as it found it (a child process of ``exoc run``
    inherits nothing new)."""
    env = {"PYDANTIC_DISABLE_PLUGINS": user_value} if user_value is not None else {}
    out = run_without_plugin_setting(env, _PLUGIN_PROBE, json.dumps(["check", str(QUICKSTART)]))
    line = next(x for x in out.stdout.splitlines() if x.startswith("PLUGINS "))
    assert json.loads(line.removeprefix("PLUGINS ")) == [False, user_value]


def test_plugins_off_restores_the_environment_after_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "one,two")
    with pytest.raises(RuntimeError), pydantic_plugins_off():
        assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
        raise RuntimeError
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "one,two"
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS")
    with pydantic_plugins_off():
        pass
    assert "PYDANTIC_DISABLE_PLUGINS" not in os.environ


def test_check_does_not_import_the_package_metadata_reader() -> None:
    """pydantic's plugin loader (and with it :mod:`importlib.metadata`, ``email``, ...)
    is not imported by ``exoc check``: plugins are off while its models are built, and
    the stand-in answers that itself (:mod:`exo.compiler.cli.pydantic_loader`)."""
    code, modules = imported_by("check", str(QUICKSTART))
    assert code == 0
    assert "importlib.metadata" not in modules
    assert "pydantic.plugin._loader" in modules  # the stand-in, asked by every validator


def test_check_reads_the_packages_files_without_importlib_resources() -> None:
    """The grammar, the standard library and the built-in catalogs are read from their
    package's folder (:mod:`exo.compiler.packagedata`): ``exoc check`` imports neither
    :mod:`importlib.resources` nor its readers (``zipfile``)."""
    code, modules = imported_by("check", str(QUICKSTART))
    assert code == 0
    assert _loaded(modules, ("importlib.resources", "importlib.readers", "zipfile")) == []


_PLUGIN = """
class Probe:
    def new_schema_validator(self, schema, schema_type, path, kind, config, settings):
        print("PLUGIN", getattr(schema_type, "__name__", "?"))
        return None, None, None

plugin = Probe()
"""

_STAND_IN_PROBE = """
import os, sys
from exo.compiler.cli import pydantic_loader
assert pydantic_loader.install()
import pydantic
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "1"
pydantic.TypeAdapter(int)
print("METADATA", "importlib.metadata" in sys.modules)
del os.environ["PYDANTIC_DISABLE_PLUGINS"]
class Later(pydantic.BaseModel):
    x: int
print("REAL", sys.modules["pydantic.plugin._loader"].__name__, hasattr(
    sys.modules["pydantic.plugin._loader"], "entry_points"))
"""


def test_a_users_pydantic_plugin_still_sees_the_models_built_with_plugins_on(
    tmp_path: Path,
) -> None:
    """A real plugin (an installed distribution's ``pydantic`` entry point): while plugins
    are off nothing is scanned; the first model built with them on loads pydantic's own
    loader, which finds the plugin and shows it the model, as without the stand-in."""
    (tmp_path / "exo_probe_plugin.py").write_text(_PLUGIN, encoding="utf-8")
    info = tmp_path / "exo_probe_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: exo-probe-plugin\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[pydantic]\nprobe = exo_probe_plugin:plugin\n", encoding="utf-8"
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    out = run_without_plugin_setting({"PYTHONPATH": path}, _STAND_IN_PROBE)
    assert out.stdout.splitlines() == [
        "METADATA False",
        "PLUGIN Later",
        "REAL pydantic.plugin._loader True",
    ]
