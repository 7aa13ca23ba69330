"""The HTML report's planned-vs-actual section (``exoc status FILE --format html``, #13).

The compiler never reads run state: a backend's command computes planned vs
actual from its run ledger and hands this module a plain :class:`RunView`
(numbers only, times in seconds from the run's start), as ``exoc simulate``
hands over its simulation. This module draws the predicted-vs-actual Gantt —
per step one lane with the planned bar (start, expected duration) and below it
every attempt on the same time axis, coloured by outcome, hatched when it ran
on spot — and builds the per-step deviation tables and verdicts. Pure and
deterministic: the same view gives the same markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup

from exo.compiler import figures
from exo.compiler.frozen import Frozen
from exo.compiler.report.svg import FONT, GRID, HATCH, INK, e, n, nice_step, ticks

#: Fill per attempt outcome (the ledger's ``OUTCOMES`` plus ``running``).
OUTCOME_COLOURS = {
    "succeeded": "#2b8a3e",
    "preempted": "#e67700",
    "failed": "#c92a2a",
    "timeout": "#862e9c",
    "lost": "#868e96",
    "stopped": "#adb5bd",
    "signalled": "#1c7ed6",
    "running": "#4e79a7",
}
PLANNED = "#ced4da"
MIN_BAR = 3.0


class AttemptSpan(Frozen):
    """One attempt of one shard; ``end_s`` ``None`` while it runs."""

    shard: int
    attempt: int
    start_s: float
    end_s: float | None
    outcome: str
    instance_type: str
    spot: bool


class FigureRow(Frozen):
    """One row of a step's table: ``unit`` is ``s`` (a duration), ``$`` or ``""``."""

    label: str
    unit: str
    planned: float | None
    actual: float | None
    deviation_pct: float | None = None


class StepRun(Frozen):
    name: str
    #: The planned tier, e.g. ``c6i.xlarge spot``.
    tier: str
    replicas: int
    batch_size: int | None
    tiers_used: list[str]
    progress: str
    verdict: str
    planned_start_s: float
    planned_duration_s: float
    figures: list[FigureRow]
    #: ``(label, planned, actual)`` counts: items, attempts, preemptions, retries.
    counts: list[tuple[str, str, str]]
    attempts: list[AttemptSpan]


class RunView(Frozen):
    run_id: str | None
    tolerance_pct: float
    planned_makespan_s: float
    actual_makespan_s: float | None
    makespan_deviation_pct: float | None
    planned_cost_usd: float
    actual_cost_usd: float
    cost_deviation_pct: float | None = None
    #: The latest time the ledger knows of (running attempts are drawn up to it).
    as_of_s: float
    steps: list[StepRun]
    skipped_lines: int = 0


def seconds(s: float | None) -> str:
    """``12.5s``, ``4.2m``, ``3.10h``; ``-`` when unknown (the status text's durations)."""
    if s is None:
        return "-"
    if abs(s) < 120:
        return f"{s:.1f}s"
    if abs(s) < 7200:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.2f}h"


def number(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if unit == "s":
        return seconds(x)
    if unit == "$":
        return f"${x:.2f}" if x >= 0.01 or x == 0 else f"${x:.3g}"
    return f"{x:.3g}"


def signed_pct(x: float | None) -> str:
    return "" if x is None else f"{x:+.0f}%"


def lanes(attempts: Sequence[AttemptSpan], as_of: float) -> list[list[AttemptSpan]]:
    """Attempts packed into as few lanes as keep them from overlapping, in start order."""
    out: list[list[AttemptSpan]] = []
    ends: list[float] = []
    for a in sorted(attempts, key=lambda a: (a.start_s, a.shard, a.attempt)):
        end = a.end_s if a.end_s is not None else as_of
        for i, last in enumerate(ends):
            if last <= a.start_s:
                out[i].append(a)
                ends[i] = end
                break
        else:
            out.append([a])
            ends.append(end)
    return out


def _tip(step: str, a: AttemptSpan) -> str:
    end = "running" if a.end_s is None else f"{seconds(a.end_s - a.start_s)}, {a.outcome}"
    tier = f"{a.instance_type} {'spot' if a.spot else 'on-demand'}"
    return f"{step} shard {a.shard} attempt {a.attempt} on {tier}: from {seconds(a.start_s)}, {end}"


def gantt(view: RunView, width: int = 960) -> str:
    """Planned bar and actual attempts per step on one time axis (seconds from the run's start)."""
    label_w = min(220, max(90, 8 * max((len(s.name) for s in view.steps), default=4) + 24))
    lane_h, top, axis_h, gap = 16, 10, 34, 10
    packed = [lanes(s.attempts, view.as_of_s) for s in view.steps]
    heights = [lane_h * (1 + max(1, len(p))) + gap for p in packed]
    height = top + sum(heights) + axis_h
    end = max(
        [view.planned_makespan_s, view.actual_makespan_s or 0.0, view.as_of_s]
        + [s.planned_start_s + s.planned_duration_s for s in view.steps]
    )
    end = end * 1.04 if end > 0 else 1.0
    plot_w = width - label_w - 24

    def x(t: float) -> float:
        return label_w + max(0.0, t) / end * plot_w

    base = top + sum(heights)
    body = [HATCH]
    step = nice_step(end)
    for t in ticks(0.0, end):
        text = seconds(t) if step < 60 else figures.hours(t / 3600.0)
        body.append(
            f'<line class="grid" x1="{n(x(t))}" y1="{top}" x2="{n(x(t))}" y2="{n(base)}" '
            f'stroke="{GRID}"/><text x="{n(x(t))}" y="{n(base + 16)}" text-anchor="middle" '
            f'fill="#555">{e(text)}</text>'
        )
    y = float(top)
    for s, rows, h in zip(view.steps, packed, heights, strict=True):
        body.append(_step_rows(s, rows, y, lane_h, label_w, x, view.as_of_s))
        y += h
    for cls, at, dash, word in (
        ("planned-end", view.planned_makespan_s, "2 3", "planned end"),
        ("actual-end", view.actual_makespan_s, "6 3", "actual end"),
    ):
        if at is not None and at > 0:
            body.append(
                f'<line class="{cls}" x1="{n(x(at))}" y1="{top - 4}" x2="{n(x(at))}" '
                f'y2="{n(base)}" stroke="{INK}" stroke-width="1" stroke-dasharray="{dash}"/>'
                f'<text x="{n(x(at) - 4)}" y="{n(base + 30)}" text-anchor="end" fill="{INK}" '
                f'font-size="11">{word} {e(seconds(at))}</text>'
            )
    label = f"Planned vs actual schedule of run {view.run_id or '?'}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart actual-gantt" role="img" '
        f'aria-label="{e(label)}" viewBox="0 0 {width} {n(height)}" width="{width}" '
        f'height="{n(height)}" {FONT} font-size="12"><title>{e(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _step_rows(
    s: StepRun,
    rows: list[list[AttemptSpan]],
    y: float,
    lane_h: int,
    label_w: int,
    x: Callable[[float], float],
    as_of: float,
) -> str:
    bar_h = lane_h - 4
    planned_w = max(x(s.planned_start_s + s.planned_duration_s) - x(s.planned_start_s), MIN_BAR)
    tip = f"{s.name} planned on {s.tier}: start {seconds(s.planned_start_s)}, " + (
        f"{seconds(s.planned_duration_s)} expected"
    )
    out = [
        f'<g class="actual-row" data-step="{e(s.name)}">'
        f'<text x="{label_w - 8}" y="{n(y + lane_h - 4)}" text-anchor="end" font-weight="600" '
        f'fill="{INK}">{e(s.name)}</text>'
        f'<text x="{label_w - 8}" y="{n(y + 2 * lane_h - 4)}" text-anchor="end" fill="#666" '
        f'font-size="10">actual</text>'
        f'<rect class="planned" x="{n(x(s.planned_start_s))}" y="{n(y + 2)}" '
        f'width="{n(planned_w)}" height="{bar_h}" rx="2" fill="{PLANNED}" stroke="#868e96">'
        f"<title>{e(tip)}</title></rect>"
    ]
    for i, lane in enumerate(rows):
        ly = y + lane_h * (i + 1) + 2
        for a in lane:
            # a running attempt is drawn up to the latest time the ledger knows
            end = a.end_s if a.end_s is not None else max(a.start_s, as_of)
            x0 = x(a.start_s)
            w = max(x(end) - x0, MIN_BAR)
            colour = OUTCOME_COLOURS.get(a.outcome, INK)
            cls = f"attempt {a.outcome}" + (" spot" if a.spot else " on-demand")
            out.append(
                f'<rect class="{e(cls)}" x="{n(x0)}" y="{n(ly)}" width="{n(w)}" height="{bar_h}" '
                f'rx="2" fill="{colour}"><title>{e(_tip(s.name, a))}</title></rect>'
            )
            if a.spot:
                out.append(
                    f'<rect class="hatch" x="{n(x0)}" y="{n(ly)}" width="{n(w)}" '
                    f'height="{bar_h}" rx="2" fill="url(#hatch)"/>'
                )
    out.append("</g>")
    return "".join(out)


def section(view: RunView) -> dict[str, Any]:
    """The template context of the section (``actuals`` in ``report.html.j2``)."""
    chart = gantt(view)
    makespan = signed_pct(view.makespan_deviation_pct)
    facts = [
        ("makespan", seconds(view.planned_makespan_s), seconds(view.actual_makespan_s), makespan),
        (
            "cost (catalog prices)",
            number(view.planned_cost_usd, "$"),
            number(view.actual_cost_usd, "$"),
            signed_pct(view.cost_deviation_pct),
        ),
    ]
    outcomes = sorted({a.outcome for s in view.steps for a in s.attempts})
    return {
        "title": f"run {view.run_id}" if view.run_id else "the last run",
        "tolerance": f"{view.tolerance_pct:.0f}%",
        "facts": facts,
        "chart": Markup(chart),
        "legend": [(o, OUTCOME_COLOURS.get(o, INK)) for o in outcomes],
        "any_spot": any(a.spot for s in view.steps for a in s.attempts),
        "skipped": view.skipped_lines,
        "steps": [
            {
                "name": s.name,
                "title": _title(s),
                "verdict": s.verdict,
                "ok": s.verdict.startswith("as planned"),
                "rows": [
                    (
                        f.label,
                        number(f.planned, f.unit),
                        number(f.actual, f.unit),
                        signed_pct(f.deviation_pct),
                    )
                    for f in s.figures
                ],
                "counts": s.counts,
            }
            for s in view.steps
        ],
    }


def _title(s: StepRun) -> str:
    batch = f", batch {s.batch_size}" if s.batch_size else ""
    used = ", ".join(s.tiers_used)
    ran = f"; ran on {used}" if used and used != s.tier else ""
    return f"{s.name} on {s.tier} ({s.replicas} replica(s){batch}{ran})"
