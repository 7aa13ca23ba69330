"""The HTML report's simulation section (``exoc simulate --format html``).

Two histograms (makespan and cost over the runs, with the plan's figures
marked) and the per-step table of ``exoc simulate``. Pure: built from a
:class:`~exo.compiler.simulate.SimResult` and its plan; the SVG follows the
conventions of ``svg.py`` (plain escaped markup, ``class="chart"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup

from exo.compiler import figures
from exo.compiler.plan import Plan
from exo.compiler.report.svg import DEADLINE, FONT, GRID, INK, e, n, ticks
from exo.compiler.simulate import Histogram, SimResult

BAR = "#4e79a7"
PLAN = "#2b8a3e"
CEILING = "#868e96"


def histogram(
    h: Histogram,
    *,
    label: str,
    show: Callable[[float], str],
    marks: Sequence[tuple[str, float, str]],
    width: int = 460,
) -> str:
    """Bars of ``h`` with vertical lines at ``marks`` (label, value, colour)."""
    left, right, top, bottom, height = 44, 16, 24, 40, 220
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v, _ in marks]
    lo = min([h.edges[0], *values])
    hi = max([h.edges[-1], *values])
    hi = hi if hi > lo else lo + 1.0
    top_count = max([*h.counts, 1])

    def px(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{INK}"/>'
    ]
    body += _grid(ticks(lo, hi, 5), px, show, top, plot_h)
    for i, c in enumerate(h.counts):
        if not c:
            continue
        x0, x1 = px(h.edges[i]), px(h.edges[i + 1])
        bh = c / top_count * plot_h
        body.append(
            f'<rect class="bar" x="{n(x0)}" y="{n(top + plot_h - bh)}" width="{n(max(x1 - x0 - 1, 1))}" '
            f'height="{n(bh)}" fill="{BAR}"><title>{e(show(h.edges[i]))} to {e(show(h.edges[i + 1]))}: '
            f"{c} runs</title></rect>"
        )
    body += _marks(marks, px, show, top, plot_h, middle=left + plot_w / 2)
    if h.beyond:
        body.append(
            f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end" fill="{INK}">'
            f"{h.beyond} runs never ended</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart histogram" role="img" '
        f'aria-label="{e(label)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" {FONT} font-size="12"><title>{e(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _grid(
    at: Sequence[float],
    px: Callable[[float], float],
    show: Callable[[float], str],
    top: int,
    plot_h: int,
) -> list[str]:
    """A vertical grid line and an x-axis label at each tick."""
    out: list[str] = []
    for t in at:
        x = px(t)
        out.append(
            f'<line x1="{n(x)}" y1="{top}" x2="{n(x)}" y2="{top + plot_h}" stroke="{GRID}"/>'
        )
        out.append(
            f'<text x="{n(x)}" y="{top + plot_h + 16}" text-anchor="middle" fill="{INK}">{e(show(t))}</text>'
        )
    return out


def _marks(
    marks: Sequence[tuple[str, float, str]],
    px: Callable[[float], float],
    show: Callable[[float], str],
    top: int,
    plot_h: int,
    *,
    middle: float,
) -> list[str]:
    """A dashed labelled line per mark; labels alternate between two rows."""
    out: list[str] = []
    for k, (name, v, colour) in enumerate(marks):
        x = px(v)
        right_half = x > middle  # the label goes inwards, never off the chart
        anchor, tx = ("end", x - 3) if right_half else ("start", x + 3)
        out.append(
            f'<line class="mark" x1="{n(x)}" y1="{top - 4}" x2="{n(x)}" y2="{top + plot_h}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="4 3"/>'
            f'<text x="{n(tx)}" y="{top - 8 + 11 * (k % 2)}" text-anchor="{anchor}" '
            f'fill="{colour}" font-size="11">{e(name)} {e(show(v))}</text>'
        )
    return out


def _hours(h: float) -> str:
    return figures.hours(h) if math.isfinite(h) else "never"


def _money(x: float) -> str:
    return figures.money(x) if math.isfinite(x) else "-"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def section(plan: Plan, res: SimResult) -> dict[str, Any]:
    """The template context of the section (``simulation`` in ``report.html.j2``)."""
    how = f"replaying {len(res.traces)} spot trace(s)" if res.traces else "under the model"
    time_marks = [("planned", res.planned_makespan_h, PLAN)]
    if res.deadline_h is not None:
        time_marks.append(("deadline", res.deadline_h, DEADLINE))
    cost_marks = [("expected", res.expected_cost_usd, PLAN)]
    if res.ondemand_ceiling_usd > 0:
        cost_marks.append(("on-demand", res.ondemand_ceiling_usd, CEILING))
    charts = ""
    if res.makespan_hist is not None and res.cost_hist is not None:
        charts = histogram(
            res.makespan_hist, label="Makespan over the runs", show=figures.hours, marks=time_marks
        ) + histogram(
            res.cost_hist, label="Cost over the runs", show=figures.money, marks=cost_marks
        )
    return {
        "title": f"{res.runs:,} runs {how}, policy {res.policy}",
        "facts": [
            ("planned makespan met", _pct(res.makespan_hit_rate)),
            ("deadline met", _pct(res.deadline_hit_rate)),
            ("makespan p50 / p95", f"{_hours(res.makespan_h.p50)} / {_hours(res.makespan_h.p95)}"),
            ("cost mean / p95", f"{_money(res.cost_usd.mean)} / {_money(res.cost_usd.p95)}"),
            ("expected cost (plan)", _money(res.expected_cost_usd)),
            ("this plan on on-demand", _money(res.ondemand_ceiling_usd)),
            ("runs that fell back", _pct(res.fallback_rate)),
            ("on-demand instance-hours per run", f"{res.ondemand_h:.2f}"),
        ],
        "charts": Markup(charts),
        "steps": [
            {
                "name": s.name,
                "tier": "spot" if s.spot else "on-demand",
                "p_met": _pct(s.hit_rate),
                "due_met": _pct(s.due_rate),
                "cost": _money(s.cost_usd.mean),
                "p95": _money(s.cost_usd.p95),
                "expected": _money(s.expected_cost_usd),
                "od_h": f"{s.ondemand_h:.2f}",
            }
            for s in res.steps
        ],
    }
