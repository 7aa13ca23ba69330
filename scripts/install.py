"""Install exo into a virtualenv, and do nothing when that install is up to date.

    python3 scripts/install.py .venv            # what `make plan` runs
    python3 scripts/install.py .venv --extra test   # what `make test` and `make lint` run

The project is installed editable in setuptools' strict mode: the virtualenv
sees the package folders through a tree of links under ``build/``, so an edit
to an existing file needs no reinstall (and mypy, which cannot follow import
hooks, checks the sources through the same tree). What does need one is
recorded in a stamp in the virtualenv: a hash of ``pyproject.toml``,
``setup.py`` and the list of files in the package folders (a new or removed
file changes the link tree), and the extras installed. A second ``make plan``
therefore only hashes a few hundred paths.

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
    """Changes exactly when the editable install must be redone."""
    h = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py"):
        h.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    for folder in package_dirs(root).values():
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            rel = Path(dirpath).relative_to(root).as_posix()
            for f in sorted(filenames):
                if not f.endswith((".pyc", ".pyo")):
                    h.update(f"{rel}/{f}\0".encode())
    return h.hexdigest()[:16]


def up_to_date(venv: Path, key: str, extras: set[str], root: Path = ROOT) -> bool:
    """The stamp matches, the extras are in, and the link tree is still there."""
    try:
        stamp = json.loads((venv / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    links = any((root / "build").glob("__editable__.*"))
    return (
        isinstance(stamp, dict)
        and stamp.get("key") == key
        and extras <= set(stamp.get("extras", []))
        and (venv / "bin" / "python").exists()
        and links
    )


def _run(*argv: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, check=True, cwd=ROOT, env=env)


def install(venv: Path, extras: set[str]) -> None:
    python = venv / "bin" / "python"
    if not python.exists():
        _run(sys.executable, "-m", "venv", str(venv))
        _run(str(python), "-m", "pip", "install", "-q", "--upgrade", "pip")
    target = "." + (f"[{','.join(sorted(extras))}]" if extras else "")
    env = {**os.environ, "PYTHONWARNINGS": QUIET}
    _run(
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "-e",
        target,
        "--config-settings",
        "editable_mode=strict",
        env=env,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path, nargs="?")
    parser.add_argument("--extra", action="append", default=[], help="an extra, e.g. test")
    parser.add_argument(
        "--mypy-packages", action="store_true", help="print `-p NAME` for every package and exit"
    )
    args = parser.parse_args(argv)
    if args.mypy_packages:
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
