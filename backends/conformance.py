"""A reusable pytest test base that every backend runs, built-in or third-party.

Use it from a test module::

    from pathlib import Path
    from exo.backends.conformance import BackendConformance

    class TestMyBackendConformance(BackendConformance):
        backend_name = "mybackend"
        bad_options = [{"partition": 42}, {"no_such_option": True}]

        def example_files(self) -> list[Path]:
            return sorted(Path("examples").glob("*.exo"))

pytest collects the ``test_*`` methods below for the subclass (the base class
itself is not collected: its name does not start with ``Test``). What it checks:

- the backend is registered through the ``exo.backends`` entry-point group and
  passes validation (name, API version, pydantic ``Options``, capabilities);
- every example plans and emits without error diagnostics, with artifact
  paths that stay inside the output directory and are unique;
- emission is deterministic: twice in one process, and in two fresh
  interpreters with different hash seeds (catches set/dict-order leaks);
  artifacts hold no absolute path of the machine they were made on;
- every entry of ``bad_options`` (and an unknown option) is rejected with
  ``E701`` diagnostics, from a ``backend NAME { ... }`` block and from
  ``--NAME-FIELD`` flags on the command line;
- ``exoc compile --target NAME`` writes the same files the API returns.

The command-line cases run ``exoc`` as a user does, in a fresh interpreter
(``python -m exo.compiler``) that sees the same plugins as the test process: a
backend never imports the CLI (``tests/test_layers.py``).

Hooks: :meth:`example_files` (required), :attr:`good_options` (options every
example is emitted with), :attr:`bad_options`, :meth:`planned` (to plan
differently, e.g. with a catalog of your own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from exo.compiler.diagnostics import Diagnostic, Severity

from .api import Artifact, Backend, PlannedWorkflow
from .registry import flag_name, installed, resolve_options, validate_backend_class

_EMIT_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from exo.backends.registry import installed, resolve_options
from exo.compiler.pipeline import plan_for
name, good, files = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
backend = installed().backends[name]
out = {}
for f in files:
    planned, _ = plan_for(Path(f), {})
    options, _ = resolve_options(backend, planned.program.backend_options.get(name), good)
    for a in backend.emit(planned, options):
        out[f + "::" + a.path] = hashlib.sha256(a.content.encode()).hexdigest()
print(json.dumps(out, sort_keys=True))
"""


_PLANS: dict[Path, PlannedWorkflow] = {}


def _child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child that sees the same plugins (``sys.path``
    may have been extended, e.g. by ``monkeypatch.syspath_prepend``)."""
    path = os.pathsep.join(p for p in sys.path if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


@dataclass(frozen=True)
class ExocResult:
    """What ``exoc ARGS`` did: its exit code and its output (stdout, then stderr)."""

    exit_code: int
    output: str


def exoc(args: list[str]) -> ExocResult:
    """Run ``exoc ARGS`` in a fresh interpreter, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "exo.compiler", *args],
        capture_output=True,
        text=True,
        env=_child_env(COLUMNS="100"),
        check=False,
    )
    return ExocResult(proc.returncode, proc.stdout + proc.stderr)


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]


class BackendConformance:
    """Subclass as ``TestXxx`` and set :attr:`backend_name`."""

    #: The entry-point name of the backend under test.
    backend_name: ClassVar[str]
    #: Options applied to every example (as if given on the command line).
    good_options: ClassVar[Mapping[str, object]] = {}
    #: Option sets that must be rejected with E701 (one diagnostic at least each).
    bad_options: ClassVar[list[dict[str, object]]] = []

    # --- hooks ---------------------------------------------------------------------------

    def example_files(self) -> list[Path]:
        """Workflow files every backend must emit; override in the subclass."""
        raise NotImplementedError("override example_files() to list the .exo examples")

    def planned(self, path: Path) -> PlannedWorkflow:
        """The plan of an example (planned once per process; plans do not depend on backends)."""
        from exo.compiler.pipeline import plan_for

        key = path.resolve()
        if key not in _PLANS:
            _PLANS[key], _ = plan_for(path, {})
        return _PLANS[key]

    # --- helpers -------------------------------------------------------------------------

    def backend(self) -> Backend:
        registry = installed()
        assert self.backend_name in registry.backends, (
            f"backend {self.backend_name!r} is not registered; problems: "
            + "; ".join(d.message for d in registry.problems)
        )
        return registry.backends[self.backend_name]

    def options_for(self, planned: PlannedWorkflow) -> BaseModel:
        block = planned.program.backend_options.get(self.backend_name)
        options, problems = resolve_options(self.backend(), block, dict(self.good_options))
        assert options is not None, [d.message for d in problems]
        return options

    def emit(self, path: Path) -> list[Artifact]:
        planned = self.planned(path)
        backend = self.backend()
        options = self.options_for(planned)
        problems = errors(backend.check(planned, options))
        assert not problems, [d.message for d in problems]
        return backend.emit(planned, options)

    def _examples(self) -> list[Path]:
        files = self.example_files()
        assert files, "example_files() returned nothing"
        return files

    # --- the tests -----------------------------------------------------------------------

    def test_registered_through_entry_point(self) -> None:
        registry = installed()
        mine = list(registry.broken.get(self.backend_name, ()))
        assert not mine, [d.message for d in mine]
        backend = self.backend()
        checked = validate_backend_class(self.backend_name, type(backend), "conformance")
        assert isinstance(checked, Backend), checked

    def test_all_examples_emit(self) -> None:
        for path in self._examples():
            artifacts = self.emit(path)
            assert artifacts, f"{path}: no artifacts"
            paths = [a.path for a in artifacts]
            assert len(paths) == len(set(paths)), f"{path}: duplicate artifact paths"
            for a in artifacts:
                assert isinstance(a, Artifact)
                assert not a.path.startswith("/") and ".." not in a.path.split("/"), a.path
                assert isinstance(a.content, str)

    def test_emit_is_deterministic_in_process(self) -> None:
        for path in self._examples():
            first = self.emit(path)
            second = self.emit(path)
            assert first == second, f"{path}: two emissions differ"
            here = str(path.resolve().parent)
            for a in first:
                assert here not in a.content, f"{path}: {a.path} holds the machine path {here}"

    def test_emit_is_deterministic_across_interpreters(self) -> None:
        files = [str(p.resolve()) for p in self._examples()]
        results = []
        for seed in ("1", "2"):
            env = _child_env(PYTHONHASHSEED=seed)
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _EMIT_SCRIPT,
                    self.backend_name,
                    json.dumps(dict(self.good_options)),
                    *files,
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            results.append(json.loads(proc.stdout))
        assert results[0] == results[1]
        assert results[0], "nothing was emitted"

    def test_unknown_option_is_a_diagnostic(self) -> None:
        backend = self.backend()
        options, problems = resolve_options(backend, {"no_such_option_xyz": 1}, None)
        assert options is None
        assert problems and all(d.code == "E701" for d in problems)
        assert "no_such_option_xyz" in problems[0].message
        options, problems = resolve_options(backend, None, {"no_such_option_xyz": 1})
        assert options is None and problems[0].code == "E701"

    def test_bad_options_get_diagnostics(self) -> None:
        backend = self.backend()
        for bad in self.bad_options:
            for block, flags in ((bad, None), (None, bad)):
                options, problems = resolve_options(backend, block, flags)
                assert options is None, f"{bad} was accepted"
                assert problems, f"{bad}: no diagnostics"
                assert all(d.code == "E701" for d in problems), [d.code for d in problems]
                for key in bad:
                    mentioned = flag_name(self.backend_name, key) if flags else f"`{key}`"
                    assert any(mentioned in d.message for d in problems), (
                        mentioned,
                        [d.message for d in problems],
                    )

    def test_bad_option_flag_on_the_command_line(self, tmp_path: Path) -> None:
        if not self.bad_options:
            pytest.skip("no bad_options declared")
        bad = self.bad_options[0]
        args = ["compile", str(self._examples()[0]), "--target", self.backend_name]
        args += ["-o", str(tmp_path / "out")]
        for key, value in bad.items():
            flag = flag_name(self.backend_name, key)
            args += [flag, value if isinstance(value, str) else json.dumps(value)]
        result = exoc(args)
        # Unknown flags are usage errors (2); bad values are diagnostics (1).
        assert result.exit_code in (1, 2), result.output
        if result.exit_code == 1:
            assert "E701" in result.output
        assert not (tmp_path / "out").exists()

    def test_cli_compile_writes_the_artifacts(self, tmp_path: Path) -> None:
        path = self._examples()[0]
        args = ["compile", str(path), "--target", self.backend_name, "-o", str(tmp_path)]
        for key, value in self.good_options.items():
            flag = flag_name(self.backend_name, key)
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + flag[2:])
            else:
                args += [flag, value if isinstance(value, str) else json.dumps(value)]
        result = exoc(args)
        assert result.exit_code == 0, result.output
        expected: dict[str, Any] = {a.path: a.content for a in self.emit(path)}
        written = {
            p.relative_to(tmp_path).as_posix(): p.read_text("utf-8")
            for p in tmp_path.rglob("*")
            if p.is_file()
        }
        assert written == expected
