"""The house's import rules, read from the source (``ast``), so that they stay true.

- The compiler never imports the backends, except its CLI room (``compiler/cli/``,
  which drives them): the stages are pure and know nothing of how a plan runs.
- A backend (``local``, ``slurm``, ``kubernetes``) never imports another backend:
  what they share lives in ``backends/api.py`` and ``backends/runtime/``.
- No module under ``backends/`` imports the CLI (``exo.compiler.cli``): the CLI
  calls the backends, never the other way round.

Every import counts, also one inside a function (a lazy import is still a
dependency), and relative imports are resolved to their absolute names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Repository folder -> import name (``[tool.setuptools.package-dir]``).
PACKAGES = {"compiler": "exo.compiler", "backends": "exo.backends"}
BACKENDS = ("local", "slurm", "kubernetes")


def module_name(path: Path) -> str:
    """``backends/slurm/jobs.py`` -> ``exo.backends.slurm.jobs``."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str, is_package: bool = False) -> Iterator[str]:
    """Every module name ``source`` (the text of ``module``) imports, absolute.

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def imports_of(folder: str) -> dict[str, set[str]]:
    """Module name -> what it imports, for every module under ``folder``."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        name = module_name(path)
        text = path.read_text("utf-8")
        out[name] = set(imported(text, name, path.name == "__init__.py"))
    return out


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(
    modules: dict[str, set[str]], exempt: str | None, forbidden: str
) -> set[tuple[str, str]]:
    """(module, import) pairs where a module outside ``exempt`` imports ``forbidden``."""
    return {
        (m, i)
        for m, names in modules.items()
        if exempt is None or not within(m, exempt)
        for i in names
        if within(i, forbidden)
    }


def test_the_compiler_imports_backends_only_in_its_cli() -> None:
    modules = imports_of("compiler")
    assert "exo.compiler.cli.runs" in modules  # the walk sees the CLI room ...
    assert violations(modules, "exo.compiler.cli", "exo.backends") == set()
    # ... and the CLI room is where the backends are driven from
    assert violations(modules, None, "exo.backends")


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_backend_imports_another_backend(backend: str) -> None:
    modules = {
        m: names
        for m, names in imports_of("backends").items()
        if within(m, f"exo.backends.{backend}")
    }
    assert modules, backend
    found = {
        (m, f"exo.backends.{other}")
        for other in BACKENDS
        if other != backend
        for m, _ in violations(modules, None, f"exo.backends.{other}")
    }
    assert found == set()


def test_the_shared_runtime_imports_no_backend() -> None:
    modules = {m: n for m, n in imports_of("backends").items() if within(m, "exo.backends.runtime")}
    assert modules
    for backend in BACKENDS:
        assert violations(modules, None, f"exo.backends.{backend}") == set(), backend


def test_no_backend_imports_the_cli() -> None:
    found = violations(imports_of("backends"), None, "exo.compiler.cli")
    assert found == set()
    # ``from exo.compiler import cli`` names the CLI too
    names = set(imported("from exo.compiler import cli", "m"))
    assert violations({"m": names}, None, "exo.compiler.cli")


def test_relative_and_lazy_imports_are_seen() -> None:
    source = "def f():\n    from ..local import tasks\n    import exo.backends.api\n"
    names = set(imported(source, "exo.backends.slurm.jobs"))
    assert {"exo.backends.local", "exo.backends.local.tasks", "exo.backends.api"} <= names
    assert "exo.backends.local" in set(imported("from .. import local", "exo.backends.slurm", True))
