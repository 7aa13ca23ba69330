"""``exoc plan``: the dry-run cost report (DESIGN §4, §5).

``--format json`` prints exactly ``Plan.model_dump(mode="json")`` with sorted
keys; ``--format text`` a plain table (:func:`render_text`). Exit 0 with a plan,
3 when the workflow is infeasible (the explanation says why), 1 for diagnostics.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from exo.compiler.cli_support import (
    CATALOG_OPTION,
    PARAM_OPTION,
    Exit,
    compile_or_exit,
    stderr_console,
)
from exo.compiler.optimizer import optimize
from exo.compiler.plan import Plan
from exo.compiler.report import commands as report_commands

#: text, json, html, markdown (md); every format but plain JSON is rendered by exo.compiler.report.
FORMATS = report_commands.FORMATS


def plan_json(plan: Plan) -> str:
    """The DESIGN §4 object: sorted keys, one trailing newline."""
    return json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def _num(x: float | None, unit: str = "", digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}{unit}"


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def render_text(plan: Plan, console: Console) -> None:
    """A plain table of the plan and its summary (the full report lives elsewhere)."""
    head = f"{plan.workflow}: {plan.status}"
    if plan.catalog:
        snap = f" ({plan.catalog_snapshot})" if plan.catalog_snapshot else ""
        head += f" · catalog {plan.catalog}{snap}"
    console.print(head, style="bold")
    if plan.steps:
        conf = f"{plan.confidence:.0%}"
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for col, right in (
            ("step", False),
            ("instance", False),
            ("accelerator", False),
            ("tier", False),
            ("batch", True),
            ("replicas", True),
            ("start h", True),
            ("expected h", True),
            (f"h at {conf}", True),
            ("expected cost", True),
            ("critical", False),
        ):
            table.add_column(col, justify="right" if right else "left", no_wrap=True)
        for s in plan.steps:
            accel = f"{s.accelerator_count} x {s.accelerator}" if s.accelerator else "cpu"
            table.add_row(
                s.name,
                s.instance_type,
                accel,
                "spot" if s.spot else "on-demand",
                "-" if s.batch_size is None else str(s.batch_size),
                str(s.replicas),
                _num(s.start_h),
                _num(s.expected_duration_h),
                _num(s.p_duration_h),
                _usd(s.expected_cost_usd),
                "*" if s.on_critical_path else "",
            )
        console.print(table)
        console.print()
    rows = [
        ("expected cost", _usd(plan.expected_cost_usd)),
        ("makespan", _num(plan.makespan_h, " h")),
        ("deadline", _num(plan.deadline_h, " h")),
        ("budget", _usd(plan.budget_usd)),
        ("lower bound", _usd(plan.lower_bound_usd)),
        ("gap", "-" if plan.gap is None else f"{plan.gap:.2%}"),
    ]
    for name, label in (("all_on_demand", "all on-demand"), ("naive", "naive")):
        b = plan.baselines.get(name)
        rows.append(
            (label, "-" if b is None else f"{_usd(b.expected_cost_usd)}, {b.makespan_h:,.2f} h")
        )
    for label, value in rows:
        console.print(f"{label + ':':<15}{value}")
    if plan.explanation:
        console.print()
        for line in plan.explanation:
            console.print(line)


def text_report(plan: Plan, width: int = 140) -> str:
    """:func:`render_text` as a plain string (no colour), for files."""
    buf = io.StringIO()
    render_text(plan, Console(file=buf, width=width, no_color=True, highlight=False))
    return buf.getvalue()


def plan(
    file: Annotated[Path, typer.Argument(help="The workflow file (.exo).", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="text, json, html or markdown.")] = "text",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the report to this file.")
    ] = None,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            metavar="SECONDS",
            help="Stop the solver after this long with the best plan and its proven gap.",
        ),
    ] = None,
    what_if: list[str] = report_commands.WHAT_IF_OPTION,
    compare: Path | None = report_commands.COMPARE_OPTION,
) -> None:
    """Plan a workflow: the cheapest placement meeting deadline, budget and quotas."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    if time_limit is not None and not time_limit > 0:
        raise typer.BadParameter("must be a positive number of seconds", param_hint="--time-limit")
    sweeps = report_commands.parse_sweeps(what_if)
    earlier = report_commands.load_compare(compare)
    compiled = compile_or_exit(file, params, catalog)
    result = optimize(compiled.program, compiled.catalog, time_limit_s=time_limit)
    if fmt != "json" or sweeps or earlier is not None:
        report_commands.emit(
            fmt,
            result,
            compiled,
            sweeps=sweeps,
            compare=earlier,
            compare_label=str(compare),
            output=output,
            time_limit_s=time_limit,
        )
        raise typer.Exit(Exit.INFEASIBLE if result.status == "infeasible" else Exit.OK)
    if fmt == "json":
        text = plan_json(result)
    elif output is not None:
        text = text_report(result)
    else:
        text = ""
    if output is not None:
        output.write_text(text, encoding="utf-8")
        stderr_console().print(f"plan written to {output} ({result.status})")
    elif fmt == "json":
        sys.stdout.write(text)
    else:
        out = Console(highlight=False)
        if not out.is_terminal:
            out = Console(highlight=False, width=140)
        render_text(result, out)
    raise typer.Exit(Exit.INFEASIBLE if result.status == "infeasible" else Exit.OK)


def register(app: typer.Typer) -> None:
    app.command()(plan)
