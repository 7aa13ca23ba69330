"""The report options of ``exoc plan`` and how a report reaches the terminal or a file.

``exoc plan`` (:mod:`exo.compiler.cli.plan`) calls :func:`parse_sweeps` and
:func:`load_compare` before planning (so bad flags fail fast) and :func:`emit`
after, for every format except plain JSON. The reports themselves are pure
functions of the plan, in :mod:`exo.compiler.report`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console, RenderableType

from exo.compiler.cli.support import Exit, report, stderr_console, write_file
from exo.compiler.diagnostics import CompileError

if TYPE_CHECKING:
    from exo.compiler.frontend import Compiled
    from exo.compiler.plan import Plan
    from exo.compiler.report.diff import PlanDiff
    from exo.compiler.report.facts import Report
    from exo.compiler.report.whatif import Sweep, SweepResult

# The report writers, the optimizer (numpy, scipy, cvxpy) and jinja2 are imported by the
# functions that use them, so that registering these commands costs nothing at start-up.

#: Formats of ``exoc plan`` (``md`` is short for ``markdown``).
FORMATS = ("text", "json", "html", "markdown", "md")
#: Width of a text report written to a file or a pipe.
FILE_WIDTH = 120

WHAT_IF_OPTION = typer.Option(
    [],
    "--what-if",
    metavar="KEY=V1,V2",
    help="Re-plan with other limits and show the trade-off: deadline=6h,12h, budget=$50,$100 "
    "or confidence=0.9,0.99 ('none' lifts a limit). Repeatable.",
)
COMPARE_OPTION = typer.Option(
    None,
    "--compare",
    metavar="PLAN.json",
    help="Show what changed since an earlier plan (saved with --format json).",
)


def file_width() -> int:
    """Width of a text report that goes to a file or a pipe: ``COLUMNS`` if set, else 120."""
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return FILE_WIDTH
    return width if width >= 40 else FILE_WIDTH


def parse_sweeps(specs: Sequence[str]) -> list[Sweep]:
    """Every ``--what-if`` value, or a usage error (exit 2)."""
    from exo.compiler.report import whatif

    out = []
    for spec in specs:
        try:
            out.append(whatif.parse_what_if(spec))
        except whatif.WhatIfError as e:
            raise typer.BadParameter(str(e), param_hint="--what-if") from None
    return out


def load_compare(path: Path | None) -> Plan | None:
    """The earlier plan, or its diagnostics and exit 1."""
    if path is None:
        return None
    from exo.compiler.report import diff as diffmod

    try:
        return diffmod.load_plan(path)
    except CompileError as e:
        report(e.diagnostics, e.sources)
        raise typer.Exit(Exit.DIAGNOSTICS) from None


def _json(plan: Plan, sweeps: Sequence[SweepResult], compare: PlanDiff | None) -> str:
    from exo.compiler.report import diff as diffmod
    from exo.compiler.report import whatif

    data: dict[str, Any] = plan.model_dump(mode="json")
    if sweeps:
        data["what_if"] = [whatif.to_json(r) for r in sweeps]
    if compare is not None:
        data["compare"] = diffmod.to_json(compare)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def emit(
    fmt: str,
    plan: Plan,
    compiled: Compiled,
    *,
    sweeps: Sequence[Sweep] = (),
    compare: Plan | None = None,
    compare_label: str = "old",
    output: Path | None = None,
    time_limit_s: float | None = None,
) -> None:
    """Render ``plan`` in ``fmt`` (with what-if and diff sections) to ``output`` or stdout."""
    from exo.compiler.optimizer import optimize
    from exo.compiler.report import diff as diffmod
    from exo.compiler.report import markdown, whatif
    from exo.compiler.report.facts import build_report

    fmt = "markdown" if fmt == "md" else fmt
    program, catalog = compiled.program, compiled.catalog

    def planner(p: Any) -> Plan:
        return optimize(p, catalog, time_limit_s=time_limit_s)

    results = [whatif.run_sweep(program, s, plan, planner) for s in sweeps]
    delta = None
    if compare is not None:
        delta = diffmod.diff_plans(compare, plan, compare_label, "this plan")
    rep = build_report(plan, program, catalog)
    if fmt == "json":
        content = _json(plan, results, delta)
    elif fmt == "html":
        from exo.compiler.report.html import render_html  # jinja2: only for HTML

        content = render_html(rep, what_if=results, compare=delta)
    elif fmt == "markdown":
        parts = [markdown.render_markdown(rep)]
        if results:
            parts.append(markdown.render_whatif(results))
        if delta is not None:
            parts.append(markdown.render_diff(delta))
        content = "\n".join(parts)
    else:
        text = _text(rep, results, delta, to_file=output is not None)
        if text is None:
            return
        content = text
    if output is None:
        sys.stdout.write(content)
    else:
        write_file(output, content)
        stderr_console().print(f"{fmt} report written to {output} ({plan.status})")


def _text(
    rep: Report, results: Sequence[SweepResult], delta: PlanDiff | None, *, to_file: bool
) -> str | None:
    """The terminal report: printed at the terminal's width when stdout is one (``None``
    returned), else the plain text at :func:`file_width`."""
    from exo.compiler.report import text

    console = Console(highlight=False, soft_wrap=False)
    to_terminal = not to_file and console.is_terminal
    width = console.width if to_terminal else file_width()
    items: list[RenderableType] = [text.report_renderable(rep, width, plain=not to_terminal)]
    if results:
        items.append(text.whatif_renderable(results, width))
    if delta is not None:
        items += ["", text.diff_renderable(delta)]
    if to_terminal:
        for item in items:
            console.print(item)
        return None
    return "".join(text.render_plain_renderable(i, width) for i in items)
