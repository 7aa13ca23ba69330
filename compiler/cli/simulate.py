"""``exoc simulate``: how often the plan meets its makespan and deadline, and at what cost.

Plans the workflow, then runs it many times (``compiler/simulate.py``) under
the cost model (Poisson preemptions per instance) or replaying spot traces
(``--trace``), with or without the deadline-aware fallback to on-demand
(``--policy``). Prints per step and for the workflow the probability of
meeting the planned durations and the deadline, cost p50/p95/mean against the
plan's expected cost, and the on-demand hours the fallback used. Heavy modules
are imported inside the command, so ``exoc --help`` stays fast.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exo.compiler.cli.options import (
    CATALOG_OPTION,
    FILE,
    PARAM_OPTION,
    choose,
    format_option,
    output_option,
)
from exo.compiler.cli.support import (
    Exit,
    compile_or_exit,
    fail,
    stderr_console,
    stdout_console,
    write_file,
)

if TYPE_CHECKING:
    from exo.compiler.frontend import Compiled
    from exo.compiler.plan import Plan
    from exo.compiler.simulate import SimResult, Spread

#: ``deadline`` is the runners' name for the same policy (``--fallback deadline``).
POLICIES = {"none": "none", "fallback": "fallback", "deadline": "fallback"}
MAX_RUNS = 1_000_000
#: Runs x instances of one step simulated at once at most (about 80 bytes each).
MAX_ITEMS = 10_000_000


def _num(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def _spread(s: Spread, digits: int = 4) -> dict[str, float | None]:
    return {"mean": _num(s.mean, digits), "p50": _num(s.p50, digits), "p95": _num(s.p95, digits)}


def to_json(plan: Plan, res: SimResult) -> dict[str, Any]:
    """The ``--format json`` object (sorted keys when written; ``null`` for never-ending runs)."""
    od = plan.baselines.get("all_on_demand")
    return {
        "workflow": plan.workflow,
        "runs": res.runs,
        "seed": res.seed,
        "model": "traces" if res.traces else "poisson",
        "traces": list(res.traces),
        "policy": res.policy,
        "release": res.release,
        "deadline_h": res.deadline_h,
        "planned_makespan_h": _num(res.planned_makespan_h),
        "expected_cost_usd": _num(res.expected_cost_usd),
        "all_on_demand_cost_usd": None if od is None else _num(od.expected_cost_usd),
        "ondemand_ceiling_usd": _num(res.ondemand_ceiling_usd),
        "p_meet_makespan": res.makespan_hit_rate,
        "p_meet_deadline": res.deadline_hit_rate,
        "makespan_h": _spread(res.makespan_h),
        "cost_usd": _spread(res.cost_usd),
        "ondemand_hours": _num(res.ondemand_h),
        "fallback_rate": res.fallback_rate,
        "unfinished_rate": res.unfinished_rate,
        "steps": [
            {
                "name": s.name,
                "spot": s.spot,
                "instances": s.instances,
                "p_duration_h": _num(s.p_h),
                "due_h": _num(s.due_h),
                "p_meet_p": s.hit_rate,
                "p_meet_due": s.due_rate,
                "duration_h": _spread(s.duration_h),
                "cost_usd": _spread(s.cost_usd),
                "expected_cost_usd": _num(s.expected_cost_usd),
                "ondemand_hours": _num(s.ondemand_h),
                "fallback_rate": s.fallback_rate,
            }
            for s in res.steps
        ],
    }


def _h(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:.2f} h"


def _usd(x: float) -> str:
    return "-" if not math.isfinite(x) else f"${x:,.2f}"


def render_text(plan: Plan, res: SimResult) -> str:
    """The terminal summary: the workflow first, then one line per step."""
    how = (
        f"replaying {len(res.traces)} spot trace(s)"
        if res.traces
        else "under the model (Poisson preemptions)"
    )
    lines = [
        f"{plan.workflow}: {res.runs:,} runs {how}, policy {res.policy}, seed {res.seed}",
        f"  makespan  planned {_h(res.planned_makespan_h)}, met in {res.makespan_hit_rate:.1%}"
        f"; p50 {_h(res.makespan_h.p50)}, p95 {_h(res.makespan_h.p95)}",
    ]
    if res.deadline_h is not None and res.deadline_hit_rate is not None:
        lines.append(f"  deadline  {_h(res.deadline_h)}, met in {res.deadline_hit_rate:.1%}")
    od = plan.baselines.get("all_on_demand")
    ceiling = f", all-on-demand plan {_usd(od.expected_cost_usd)}" if od is not None else ""
    lines.append(
        f"  cost      expected {_usd(res.expected_cost_usd)}; mean {_usd(res.cost_usd.mean)}, "
        f"p50 {_usd(res.cost_usd.p50)}, p95 {_usd(res.cost_usd.p95)}"
    )
    lines.append(f"            this plan on on-demand {_usd(res.ondemand_ceiling_usd)}{ceiling}")
    if res.policy == "fallback":
        lines.append(
            f"  fallback  in {res.fallback_rate:.1%} of runs, "
            f"{res.ondemand_h:.2f} on-demand instance-hours per run on average"
        )
    if res.unfinished_rate:
        lines.append(f"  {res.unfinished_rate:.1%} of runs never finished (spot never came back)")
    lines.append("")
    lines.append(
        f"  {'step':<24} {'tier':<5} {'P h':>8} {'P met':>7} {'due h':>8} {'due met':>8} "
        f"{'cost mean':>11} {'p95':>11} {'expected':>11} {'od h':>7}"
    )
    for s in res.steps:
        lines.append(
            f"  {s.name[:24]:<24} {'spot' if s.spot else 'od':<5} {s.p_h:>8.2f} "
            f"{s.hit_rate:>7.1%} {s.due_h:>8.2f} {s.due_rate:>8.1%} {_usd(s.cost_usd.mean):>11} "
            f"{_usd(s.cost_usd.p95):>11} {_usd(s.expected_cost_usd):>11} {s.ondemand_h:>7.2f}"
        )
    return "\n".join(lines) + "\n"


RUNS = Annotated[
    int, typer.Option("--runs", metavar="N", help="Monte Carlo runs (1 to 1,000,000).")
]
TRACE = Annotated[
    list[Path] | None,
    typer.Option(
        "--trace",
        metavar="PATH",
        help="Replay this spot trace (repeatable; each run picks one at a random offset).",
    ),
]
POLICY = Annotated[
    str,
    typer.Option(
        "--policy",
        metavar="none|fallback",
        help="fallback: move a spot step's remaining work to on-demand when the slack "
        "left cannot absorb another loss (deadline is an alias).",
    ),
]
SEED = Annotated[int, typer.Option("--seed", metavar="S", help="Random seed.")]
RELEASE = Annotated[
    str,
    typer.Option(
        "--release",
        metavar="asap|planned",
        help="Start steps when their inputs are done (asap, as the runners do) "
        "or not before their planned start.",
    ),
]
FORMAT = Annotated[
    str,
    format_option(
        "text|json|html", "Output format (html: the plan report with a simulation section)."
    ),
]


def simulate(
    file: FILE,
    runs: RUNS = 10_000,
    trace: TRACE = None,
    policy: POLICY = "none",
    seed: SEED = 0,
    release: RELEASE = "asap",
    fmt: FORMAT = "text",
    output: Annotated[Path | None, output_option("PATH", "Write the output to this file.")] = None,
    params: list[str] = PARAM_OPTION,
    catalog: str | None = CATALOG_OPTION,
) -> None:
    """Monte Carlo of the plan: deadline and makespan met, cost spread, fallback hours."""
    _check_flags(fmt, policy, release, runs, seed)
    from exo.compiler.diagnostics import CompileError
    from exo.compiler.pipeline import plan_compiled
    from exo.compiler.simulate import plan_steps
    from exo.compiler.simulate import simulate as run_simulation
    from exo.compiler.spot_traces import load_traces

    try:
        traces = load_traces(trace or [])
    except CompileError as e:
        fail(e.diagnostics, e.sources)
    compiled = compile_or_exit(file, params, catalog)
    plan = plan_compiled(compiled)
    if plan.status == "infeasible":
        sys.stderr.write("no feasible plan to simulate; `exoc plan` explains why\n")
        raise typer.Exit(Exit.INFEASIBLE)
    widest = max((s.instances for s in plan.steps), default=1)
    if runs * widest > MAX_ITEMS:
        raise typer.BadParameter(
            f"use at most {MAX_ITEMS // widest:,} runs with {widest:,} instances in a step",
            param_hint="--runs",
        )
    res = run_simulation(
        plan_steps(compiled.program, compiled.catalog, plan),
        runs=runs,
        seed=seed,
        release="asap" if release == "asap" else "planned",
        policy="fallback" if POLICIES[policy] == "fallback" else "none",
        traces=traces,
        deadline_h=plan.deadline_h,
    )
    _write(fmt, _render(fmt, plan, compiled, res), output)


def _check_flags(fmt: str, policy: str, release: str, runs: int, seed: int) -> None:
    """Usage errors (exit 2) before anything is compiled."""
    choose(fmt, ("text", "json", "html"))
    if policy not in POLICIES:
        raise typer.BadParameter("choose one of none, fallback", param_hint="--policy")
    choose(release, ("asap", "planned"), "--release")
    if not 1 <= runs <= MAX_RUNS:
        raise typer.BadParameter(f"must be from 1 to {MAX_RUNS:,}", param_hint="--runs")
    if seed < 0:
        raise typer.BadParameter("must be 0 or more", param_hint="--seed")


def _render(fmt: str, plan: Plan, compiled: Compiled, res: SimResult) -> str:
    if fmt == "json":
        return json.dumps(to_json(plan, res), indent=2, sort_keys=True) + "\n"
    if fmt == "html":
        from exo.compiler.report.facts import build_report
        from exo.compiler.report.html import render_html
        from exo.compiler.report.simulation import section

        rep = build_report(plan, compiled.program, compiled.catalog)
        return render_html(rep, simulation=section(plan, res))
    return render_text(plan, res)


def _write(fmt: str, text: str, output: Path | None) -> None:
    if output is not None:
        write_file(output, text)
        stderr_console().print(f"{fmt} simulation written to {output}")
    elif fmt == "text":
        stdout_console().out(text, end="", highlight=False)
    else:
        sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    app.command()(simulate)
