"""Which packages the distribution holds; everything else is in ``pyproject.toml``.

The repository keeps the spec's top-level folders (``compiler/``, ``backends/``,
``stdlib/``, ...); ``[tool.setuptools] package-dir`` in ``pyproject.toml`` maps
each to an import name under ``exo``, and is the only list of them. Here every
folder below them becomes a package (folders that only hold data, such as
``templates/`` or ``catalogs/aws/``, as namespace packages), so that their data
files ship without setuptools warnings and a new subfolder needs no listing. A
new top-level package is one more line in ``package-dir``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).resolve().parent


def package_dirs(root: Path = ROOT) -> dict[str, str]:
    """``package-dir`` of ``pyproject.toml``: import name -> folder."""
    with (root / "pyproject.toml").open("rb") as f:
        table: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return table


def packages(root: Path = ROOT) -> list[str]:
    """Every top-level package of ``package-dir`` and every folder below it."""
    found: list[str] = []
    for name, folder in sorted(package_dirs(root).items()):
        found.append(name)
        below = find_namespace_packages(where=str(root / folder), exclude=["*__pycache__*"])
        found += [f"{name}.{sub}" for sub in sorted(below)]
    return found


if __name__ == "__main__":
    setup(packages=packages())
