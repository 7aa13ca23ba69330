"""Install exo into a virtualenv, and do nothing when that install is up to date.

    python3 scripts/install.py .venv                # what `make plan` runs
    python3 scripts/install.py .venv --extra test   # what `make test` and `make lint` run
    python3 scripts/install.py --typecheck-tree DIR # links for mypy (`make lint`)

The project is installed editable: the virtualenv imports ``exo.compiler``
and the others straight from their folders, so editing, adding or removing a
source file needs no reinstall. What does need one (the metadata: packages,
dependencies, entry points) is in ``pyproject.toml`` and ``setup.py``; a stamp
in the virtualenv records their hash and the extras installed, so a second
``make plan`` starts ``exoc`` at once.

mypy cannot follow the editable install's import hook, so ``make lint`` gives
it a folder ``exo/`` of links to the package folders (``--typecheck-tree``).

Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".exo-install.json"
#: The notice setuptools prints for every editable install ("Editable installation.
#: ... be careful ..."): informational, and the reason a quiet install was not quiet.
QUIET = "ignore:Editable installation"


def package_dirs(root: Path = ROOT) -> dict[str, str]:
    """``[tool.setuptools.package-dir]``: import name -> folder (the only list of them)."""
    with (root / "pyproject.toml").open("rb") as f:
        table: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return dict(sorted(table.items()))


def install_key(root: Path = ROOT) -> str:
    """Changes exactly when the editable install must be redone: the packaging files
    changed, or the checkout moved (the install points at its folders)."""
    h = hashlib.sha256(str(root.resolve()).encode() + b"\0")
    for name in ("pyproject.toml", "setup.py"):
        h.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def up_to_date(venv: Path, key: str, extras: set[str]) -> bool:
    """The stamp matches, the extras are in and ``exoc`` is still installed."""
    try:
        stamp = json.loads((venv / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("key") == key
        and extras <= set(stamp.get("extras", []))
        and (venv / "bin" / "python").exists()
        and (venv / "bin" / "exoc").exists()
    )


def typecheck_tree(dest: Path, root: Path = ROOT) -> None:
    """``dest/exo/<name>`` -> the package folder, for every package (mypy's view)."""
    for name, folder in package_dirs(root).items():
        link = dest.joinpath(*name.split("."))
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(root / folder, link.parent)
        if link.is_symlink() and str(link.readlink()) == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)


def _run(*argv: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, check=True, cwd=ROOT, env=env)


def install(venv: Path, extras: set[str]) -> None:
    python = venv / "bin" / "python"
    if not python.exists():
        _run(sys.executable, "-m", "venv", str(venv))
        _run(str(python), "-m", "pip", "install", "-q", "--upgrade", "pip")
    target = "." + (f"[{','.join(sorted(extras))}]" if extras else "")
    env = {**os.environ, "PYTHONWARNINGS": QUIET}
    _run(str(python), "-m", "pip", "install", "-q", "-e", target, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path, nargs="?")
    parser.add_argument("--extra", action="append", default=[], help="an extra, e.g. test")
    parser.add_argument(
        "--typecheck-tree",
        type=Path,
        metavar="DIR",
        help="make DIR/exo/<package> links for mypy, print its `-p NAME` options and exit",
    )
    args = parser.parse_args(argv)
    if args.typecheck_tree is not None:
        typecheck_tree(args.typecheck_tree.resolve())
        print(" ".join(f"-p {name}" for name in package_dirs()))
        return 0
    if args.venv is None:
        parser.error("name the virtualenv folder")
    venv: Path = args.venv.resolve()
    extras = set(args.extra)
    key = install_key()
    if up_to_date(venv, key, extras):
        return 0
    # Extras installed before stay installed: keep them in the stamp.
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        extras |= set(json.loads((venv / STAMP).read_text(encoding="utf-8"))["extras"])
    install(venv, extras)
    # A new install writes the stamp last: an interrupted one is redone next time.
    (venv / STAMP).write_text(json.dumps({"key": key, "extras": sorted(extras)}), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
