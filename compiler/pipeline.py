"""The library entry points: a workflow file to checked IR, to a plan, to what a backend runs.

Everything that goes from a file to a plan goes through here: the ``exoc``
commands (:mod:`exo.compiler.cli`), the tests, the benchmarks and third-party
tools. Nothing here prints, parses a command line or exits: a user error is a
:class:`~exo.compiler.diagnostics.CompileError` carrying every diagnostic (and
the source texts to render them), a workflow with no feasible plan is
:class:`Infeasible` carrying the plan that says why.

- :func:`compile_file`: the front end, text → IR (+ the catalog to plan on, the
  sources, the warnings).
- :func:`calibrated`: the IR with a calibration file's measured figures.
- :func:`plan_compiled`: the optimizer on compiled IR → :class:`Plan` (infeasible
  plans are returned, not raised, for the reports that explain them).
- :func:`plan_for`: all of the above in one call → :class:`PlannedWorkflow`, what
  every backend receives (``emit`` for artifacts; ``run``, ``status``, ``cancel``).
- :func:`release_front_end`: the front end's garbage collected before the optimizer
  allocates (:func:`plan_compiled` calls it).

:class:`PlannedWorkflow` is defined in :mod:`exo.compiler.planned` (and re-exported
by ``exo.backends.api``). Importing this module costs what the front end costs:
the plan models, calibration and the optimizer's stack (numpy, scipy, cvxpy)
load when something is planned, so ``exoc check`` starts without them.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from exo.compiler.diagnostics import CompileError
from exo.compiler.frontend import Compiled, compile_file

if TYPE_CHECKING:
    from exo.compiler.anytime import ProgressFn, StopFn
    from exo.compiler.plan import Plan
    from exo.compiler.plancache import PlanCache
    from exo.compiler.planned import PlannedWorkflow

__all__ = [
    "CompileError",
    "Compiled",
    "Infeasible",
    "calibrated",
    "compile_file",
    "plan_compiled",
    "plan_for",
    "planned_workflow",
    "release_front_end",
]

#: Programs of this many steps or more get a full garbage collection once their
#: front end is released (:func:`release_front_end`): about 18 µs of CPU a step
#: (0.18 s at 10,000 steps), against 15 MB less at the plan's peak there.
COLLECT_FROM_STEPS = 1000


class Infeasible(Exception):
    """The optimizer found no plan; ``plan.explanation`` says why."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        super().__init__("; ".join(plan.explanation) or "no feasible plan")


def calibrated(compiled: Compiled, path: Path | None) -> tuple[Compiled, list[str]]:
    """``compiled`` with the figures of the calibration file at ``path`` (unchanged when
    ``None``), and one note per declared figure replaced. Raises :class:`CompileError`
    (E230) when the file is not a calibration file."""
    from exo.compiler.calibration import calibrate_compiled

    return calibrate_compiled(compiled, path)


def plan_compiled(
    compiled: Compiled,
    *,
    time_limit_s: float | None = None,
    notes: Sequence[str] = (),
    progress: ProgressFn | None = None,
    stop: StopFn | None = None,
    started: float | None = None,
) -> Plan:
    """The plan of ``compiled`` (DESIGN §4), its explanation naming the calibration
    ``notes``. ``time_limit_s=None`` searches to the end (deterministic); ``progress``
    and ``stop`` are the optimizer's anytime hooks (:mod:`exo.compiler.anytime`);
    ``started``: when the limit's time began (``time.perf_counter()``; default: now)."""
    from exo.compiler.calibration import annotate
    from exo.compiler.optimizer import optimize

    release_front_end(collect=len(compiled.program.steps) >= COLLECT_FROM_STEPS)
    plan = optimize(
        compiled.program,
        compiled.catalog,
        time_limit_s=time_limit_s,
        progress=progress,
        stop=stop,
        started=started,
    )
    return annotate(plan, list(notes))


def release_front_end(*, collect: bool = False) -> None:
    """Let go of what the front end left, before the optimizer allocates.

    The syntax trees are freed when :func:`compile_file` returns, with the memos the
    parser made while reading them (``treebuild.Memos``, kept by the loaded program):
    the memory pools they were allocated in (48-80-byte blocks) are then free for the
    optimizer's options to reuse. The shared parser
    (:func:`~exo.compiler.parser.default_parser`) keeps its tables and nothing else.

    ``collect``: a full garbage collection, which also empties CPython's free lists
    (scattered tuples that pin a pool each; about 15 MB at 10,000 steps).
    """
    if collect:
        gc.collect()


def planned_workflow(compiled: Compiled, plan: Plan) -> PlannedWorkflow:
    """What a backend receives for ``plan``; ``base_dir`` is made absolute."""
    from exo.compiler.planned import PlannedWorkflow

    return PlannedWorkflow(
        program=compiled.program,
        plan=plan,
        catalog=compiled.catalog,
        base_dir=str(Path(compiled.base_dir).resolve()),
    )


def plan_for(
    path: Path,
    params: Mapping[str, str],
    catalog: str | None = None,
    time_limit: float | None = None,
    calibration: Path | None = None,
    cache: PlanCache | None = None,
) -> tuple[PlannedWorkflow, dict[str, str]]:
    """Compile, calibrate and optimize ``path``: the one way every backend verb gets its plan.

    ``cache``: where plans are kept (:mod:`exo.compiler.plancache`): a kept plan of the
    same IR, catalog and calibration (optimal, or searched under ``time_limit``) is
    used without a search, and a searched one is kept.

    Returns the planned workflow and the source texts (for rendering later
    diagnostics). Raises :class:`CompileError` or :class:`Infeasible`.
    """
    compiled = compile_file(path, params, catalog=catalog, label=str(path))
    compiled, notes = calibrated(compiled, calibration)
    key = cache.key(compiled.program, compiled.catalog, notes) if cache is not None else ""
    plan = cache.load(key, time_limit) if cache is not None else None
    if plan is None:
        plan = plan_compiled(compiled, time_limit_s=time_limit, notes=notes)
        if cache is not None:
            cache.store(key, time_limit, plan)
    if plan.status == "infeasible":
        raise Infeasible(plan)
    return planned_workflow(compiled, plan), dict(compiled.sources)
