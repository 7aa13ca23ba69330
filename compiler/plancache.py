"""Plans kept by what they were made from, so that what runs is the plan that was shown.

``exoc plan`` searches and keeps its plan here; ``exoc run``, ``status``,
``cancel``, ``compile`` and ``calibrate`` look here before they search, so that:

- **What runs is what was planned.** Under a time limit two searches of the same
  workflow can end on different plans (whatever each found by its limit), so
  ``exoc plan`` then ``exoc run`` could show one plan and run another. A kept plan
  is handed to the backend as it was shown.
- **Verbs that only read a run start at once.** ``exoc status`` of a 10,000-step
  workflow planned it again before reading the run's ledger (a search of tens of
  seconds, and the optimizer's imports for every small workflow).

A plan is kept under its **key**: the IR (which the parameters and the calibration's
figures are part of), the catalog, the calibration's notes, and the build that
planned it (the compiler's sources and the solver stack's installs, by size and
modification time). A plan is reused when it was proven optimal (the search to the
end ends on a plan as good), or when it was searched under the same time limit.
Interrupted and infeasible searches are not kept.

The folder is ``$EXO_PLAN_CACHE``, else ``exo/plans`` in the user cache folder
(``$XDG_CACHE_HOME``, else ``~/.cache``); ``EXO_PLAN_CACHE=off`` keeps nothing.
The newest :data:`KEEP` plans are kept. Every failure to read or write the folder
is a miss: a kept plan only ever saves a search.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exo.compiler.catalog import Catalog
    from exo.compiler.ir import Program
    from exo.compiler.plan import Plan

#: The environment variable naming the folder (``off``: keep nothing).
ENV = "EXO_PLAN_CACHE"
#: Bumped when what a kept file holds changes.
FORMAT = 1
#: Plans kept; the least recently used beyond this are removed.
KEEP = 64
#: What a plan's figures depend on besides exo's own code.
SOLVER_STACK = ("numpy", "scipy", "highspy", "cvxpy", "pydantic")
_OFF = {"off", "0", "no", "false", "none"}


def user_cache_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """``exo`` in the user cache folder (``$XDG_CACHE_HOME``, else ``~/.cache``); may
    raise RuntimeError where there is no home folder."""
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "exo"


def program_digest(program: Program, catalog: Catalog) -> str:
    """SHA-256 of the IR and the catalog a plan is made from (the local backend's
    ``program_hash``: a resumed run keeps its plan while this is unchanged)."""
    payload = program.model_dump_json() + "\n" + catalog.model_dump_json()
    return hashlib.sha256(payload.encode()).hexdigest()


@cache
def build_id() -> str:
    """The build that plans: exo's compiler sources and the solver stack's installs,
    each by path, size and modification time (a reinstall or an edit changes it)."""
    parts = [f"format {FORMAT}"]
    parts += _sources(Path(__file__).parent)
    for name in SOLVER_STACK:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        parts.append(f"{name} {_stamp(Path(origin)) if origin else 'absent'}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _sources(folder: Path) -> list[str]:
    out: list[str] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
            out += _sources(Path(entry.path))
        elif entry.name.endswith((".py", ".lark")):
            out.append(f"{entry.path} {_stamp(Path(entry.path))}")
    return out


def _stamp(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "unreadable"
    return f"{st.st_size} {st.st_mtime_ns}"


def limit_name(time_limit_s: float | None) -> str:
    """How a time limit is named in a kept file's name (``none``: searched to the end)."""
    return "none" if time_limit_s is None else repr(float(time_limit_s))


@dataclass(frozen=True)
class PlanCache:
    """The folder plans are kept in (:func:`from_environ` makes the default one)."""

    folder: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> PlanCache | None:
        """The folder ``environ`` names (``None``: ``EXO_PLAN_CACHE=off``, or no home)."""
        named = environ.get(ENV)
        if named is not None:
            return None if named.strip().lower() in _OFF or not named.strip() else cls(Path(named))
        try:
            return cls(user_cache_folder(environ) / "plans")
        except RuntimeError:  # no home folder
            return None

    def key(self, program: Program, catalog: Catalog, notes: Sequence[str] = ()) -> str:
        """The key of the plan of ``program`` on ``catalog`` with these calibration notes."""
        payload = json.dumps([build_id(), program_digest(program, catalog), list(notes)])
        return hashlib.sha256(payload.encode()).hexdigest()

    def load(self, key: str, time_limit_s: float | None) -> Plan | None:
        """The kept plan for ``key`` that a search under ``time_limit_s`` may be spared:
        an optimal one, else one searched under the same limit; ``None`` when none."""
        for name in (f"{key}.optimal.json", f"{key}.limit-{limit_name(time_limit_s)}.json"):
            plan = self._read(self.folder / name)
            if plan is not None:
                return plan
        return None

    def store(self, key: str, time_limit_s: float | None, plan: Plan) -> None:
        """Keep ``plan`` (proven optimal: for every limit; else for ``time_limit_s``).
        Infeasible plans are not kept."""
        if plan.status == "infeasible":
            return
        tag = "optimal" if plan.status == "optimal" else f"limit-{limit_name(time_limit_s)}"
        path = self.folder / f"{key}.{tag}.json"
        tmp = self.folder / f".{path.name}.{os.getpid()}.tmp"
        text = json.dumps({"format": FORMAT}) + "\n" + plan.model_dump_json()
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
            self._prune()

    def _read(self, path: Path) -> Plan | None:
        """The plan kept at ``path``; ``None`` when it is missing, unreadable, of another
        format or not a plan (pydantic's ValidationError is a ValueError)."""
        from exo.compiler.plan import Plan

        try:
            header, _, body = path.read_text(encoding="utf-8").partition("\n")
            if json.loads(header) != {"format": FORMAT}:
                return None
            plan = Plan.model_validate_json(body)
            path.touch()  # recently used: kept by _prune
        except (OSError, ValueError):
            return None
        return plan

    def _prune(self) -> None:
        kept = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(".json"):
                with contextlib.suppress(OSError):
                    kept.append((entry.stat().st_mtime_ns, entry.path))
        for _, path in sorted(kept, reverse=True)[KEEP:]:
            with contextlib.suppress(OSError):
                Path(path).unlink()
