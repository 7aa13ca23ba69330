"""Packaging and set-up: a silent build that ships every data file, and an install
that `make plan` redoes only when something it depends on changed."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup_py() -> ModuleType:
    return _load(REPO / "setup.py", "exo_setup_py")


@pytest.fixture(scope="module")
def installer() -> ModuleType:
    return _load(REPO / "scripts" / "install.py", "exo_install_script")


def test_every_folder_with_files_is_a_package(setup_py: ModuleType) -> None:
    """setuptools warns about a data folder that is not a package: there is none."""
    packages = set(setup_py.packages())
    for name, folder in setup_py.package_dirs().items():
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.parent.relative_to(REPO / folder).parts
                assert ".".join((name, *rel)) in packages, path
    assert {"exo.compiler.report.templates", "exo.stdlib.catalogs.aws"} <= packages


def test_a_new_top_level_package_is_one_line(setup_py: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "worker" / "sub").mkdir(parents=True)
    (tmp_path / "worker" / "__init__.py").write_text("")
    (tmp_path / "worker" / "sub" / "data.json").write_text("{}")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools.package-dir]\n"exo.worker" = "worker"\n'
    )
    assert setup_py.packages(tmp_path) == ["exo.worker", "exo.worker.sub"]


def _source_copy(dest: Path) -> Path:
    """What a build reads: the packaging files and every package folder pyproject lists."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, dest / name)
    for folder in _load(REPO / "setup.py", "exo_setup_py_copy").package_dirs().values():
        shutil.copytree(REPO / folder, dest / folder, ignore=ignore)
    return dest


def test_the_build_is_silent_and_ships_the_data(tmp_path: Path) -> None:
    """A real wheel build (no network: the test extra brings setuptools)."""
    pytest.importorskip("setuptools", minversion="77")
    src = tmp_path / "src"
    src.mkdir()
    _source_copy(src)
    out = tmp_path / "wheel"
    r = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation"),
            *("--no-index", "-w", str(out), str(src)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    assert "absent from the `packages` configuration" not in log
    assert "SetuptoolsDeprecationWarning" not in log
    (wheel,) = out.glob("exoc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in (
        "exo/compiler/exo.lark",
        "exo/compiler/report/templates/report.html.j2",
        "exo/backends/slurm/templates/step.sbatch.j2",
        "exo/stdlib/catalogs/index.json",
        "exo/stdlib/catalogs/aws/us-east-1.csv",
        "exo/stdlib/std/llm.exo",
        "exo/compiler/py.typed",
    ):
        assert data in names, data


def test_only_packaging_changes_need_a_new_install(installer: ModuleType, tmp_path: Path) -> None:
    """The install is editable: sources, new files included, are seen without one."""
    root = _source_copy(tmp_path)
    key = installer.install_key(root)
    (root / "compiler" / "cli.py").write_text("# edited\n", encoding="utf-8")
    (root / "compiler" / "new_module.py").write_text("", encoding="utf-8")
    assert installer.install_key(root) == key
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    (root / "pyproject.toml").write_text(text + "\n# changed\n", encoding="utf-8")
    assert installer.install_key(root) != key
    moved = tmp_path / "moved"
    shutil.copytree(root, moved, ignore=shutil.ignore_patterns("moved"))
    assert installer.install_key(moved) != installer.install_key(root)  # a moved checkout


def test_an_up_to_date_install_runs_no_pip(installer: ModuleType, tmp_path: Path) -> None:
    """The second `make plan`: the stamp matches, so nothing is installed.

    The virtualenv here has a `bin/python` that cannot run: any install attempt fails.
    """
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("not a program\n", encoding="utf-8")
    (venv / "bin" / "exoc").write_text("not a program\n", encoding="utf-8")
    stamp = venv / installer.STAMP
    stamp.write_text(json.dumps({"key": installer.install_key(), "extras": ["test"]}), "utf-8")
    assert installer.main([str(venv)]) == 0
    assert installer.main([str(venv), "--extra", "test"]) == 0
    assert sorted(p.name for p in venv.iterdir()) == sorted(["bin", installer.STAMP])
    stamp.write_text(json.dumps({"key": installer.install_key(), "extras": []}), "utf-8")
    with pytest.raises((subprocess.CalledProcessError, OSError)):
        installer.main([str(venv), "--extra", "test"])  # a missing extra does install
    stamp.write_text(json.dumps({"key": "stale", "extras": ["test"]}), "utf-8")
    with pytest.raises((subprocess.CalledProcessError, OSError)):
        installer.main([str(venv)])  # so does a stale stamp


def test_the_typecheck_tree_maps_import_names_to_folders(
    installer: ModuleType, tmp_path: Path
) -> None:
    installer.typecheck_tree(tmp_path)
    installer.typecheck_tree(tmp_path)  # again: nothing to redo
    for name, folder in installer.package_dirs().items():
        link = tmp_path.joinpath(*name.split("."))
        assert link.is_symlink() and link.resolve() == (REPO / folder).resolve()
        assert (link / "__init__.py").is_file()


def test_the_makefile_installs_through_the_stamped_script() -> None:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "scripts/install.py $(VENV)\n" in text
    assert "pip install" not in text  # every install goes through the stamp
