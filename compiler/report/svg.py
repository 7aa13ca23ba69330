"""Inline SVG charts for the HTML report: Gantt, cost breakdown, DAG and what-if curves.

Every chart is a plain string of SVG markup built here (no library, no script, no
network), with every text escaped. Elements carry ``data-step`` attributes and
class names so that the page can cross-highlight a step and tests can count
what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from exo.compiler import figures
from exo.compiler.plan import Plan, StepPlan

if TYPE_CHECKING:  # the facts' module loads the cost model and numpy: `exoc status`'s
    # planned-vs-actual view draws with this module's helpers and needs neither
    from exo.compiler.report.facts import Report
    from exo.compiler.report.whatif import Scenario, SweepResult

PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
DEADLINE = "#d62728"
INK = "#222"
GRID = "#e3e3e3"
#: Narrowest Gantt bar (px): a 2-minute step in a 9-hour plan is still seen.
MIN_BAR = 6.0
BAR_FONT = 11
#: Between the two rows of x-axis labels: more than a 12 px line box.
ROW_GAP = 15


def e(text: object) -> str:
    return escape(str(text), quote=True)


def n(x: float) -> str:
    """A coordinate with two decimals and no trailing zeros (stable output)."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def tier_colours(steps: Sequence[StepPlan]) -> dict[str, str]:
    """Colour per instance type, in order of first appearance."""
    out: dict[str, str] = {}
    for s in steps:
        if s.instance_type not in out:
            out[s.instance_type] = PALETTE[len(out) % len(PALETTE)]
    return out


def nice_step(span: float, target: int = 6) -> float:
    """A 1-2-5 step giving about ``target`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    k = 0
    while first + k * step <= hi + 1e-9:
        out.append(round(first + k * step, 10))
        k += 1
    return out


_NARROW = set(" .,:;'|!iIlj()[]/")
_WIDE = set("mwMW%@")


def text_width(text: str, size: float = 12) -> float:
    """A generous estimate of a label's width: wide enough for the fonts browsers
    fall back to (DejaVu Sans is among the widest), so labels placed apart by it
    do not touch."""
    em = sum(0.34 if c in _NARROW else 0.98 if c in _WIDE else 0.66 for c in text)
    return em * size


def spread_labels(
    xs: Sequence[float], texts: Sequence[str], size: float = 12, gap: float = 6
) -> list[int | None]:
    """A row (0 or 1) for each label centred at ``xs`` so that no two on a row
    overlap; ``None`` for a label that fits on neither (its point keeps a tooltip)."""
    ends: list[float] = [-math.inf, -math.inf]
    rows: list[int | None] = []
    for x, t in sorted(zip(xs, texts, strict=True), key=lambda p: p[0]):
        half = text_width(t, size) / 2
        row = next((r for r in (0, 1) if x - half >= ends[r] + gap), None)
        if row is not None:
            ends[row] = x + half
        rows.append(row)
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out: list[int | None] = [None] * len(xs)
    for rank, i in enumerate(order):
        out[i] = rows[rank]
    return out


def _svg(width: float, height: float, body: list[str], label: str, cls: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {cls}" role="img" '
        f'aria-label="{e(label)}" viewBox="0 0 {n(width)} {n(height)}" '
        f'width="{n(width)}" height="{n(height)}" {FONT} font-size="12">'
        f"<title>{e(label)}</title>" + "".join(body) + "</svg>"
    )


HATCH = (
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="2.5" height="6" fill="#ffffff" '
    'fill-opacity="0.55"/></pattern></defs>'
)


# --------------------------------------------------------------------------- Gantt


def gantt(report: Report, width: int = 960) -> str:
    """One bar per step from its start for its duration at confidence; spot hatched."""
    plan = report.plan
    steps = [r.plan for r in report.steps]
    colours = tier_colours(steps)
    label_w = min(220, max(90, 8 * max((len(s.name) for s in steps), default=4) + 24))
    row_h, top, axis_h = 28, 10, 34
    height = top + row_h * len(steps) + axis_h
    end = max(
        [s.start_h + max(s.p_duration_h, s.expected_duration_h) for s in steps]
        + [plan.makespan_h or 0.0, plan.deadline_h or 0.0]
    )
    end = end * 1.04 if end > 0 else 1.0
    plot_w = width - label_w - 24

    def x(t: float) -> float:
        return label_w + t / end * plot_w

    body = [HATCH]
    base = top + row_h * len(steps)
    step = nice_step(end)
    for t in ticks(0.0, end):
        body.append(
            f'<line class="grid" x1="{n(x(t))}" y1="{top}" x2="{n(x(t))}" y2="{n(base)}" '
            f'stroke="{GRID}"/>'
            f'<text x="{n(x(t))}" y="{n(base + 16)}" text-anchor="middle" fill="#555">'
            f"{e(figures.hours(t) if step >= 1 / 60 else f'{t:g}h')}</text>"
        )
    for i, row in enumerate(report.steps):
        s = row.plan
        bar = _Bar(y=top + i * row_h + 5, h=row_h - 10, colour=colours[s.instance_type])
        body += _gantt_row(s, plan.confidence, x, bar, label_w, label_w + plot_w)
    body += _plan_lines(plan, x, top, base)
    return _svg(width, height, body, f"Schedule of {plan.workflow}", "gantt")


@dataclass(frozen=True, slots=True)
class _Bar:
    """Where a Gantt row's bar lies (top and height) and its colour."""

    y: int
    h: int
    colour: str


def _gantt_row(
    s: StepPlan,
    confidence: float,
    x: Callable[[float], float],
    bar: _Bar,
    label_w: int,
    right: float,
) -> list[str]:
    """One step's row: its name, the bar to its duration at confidence, the expected end."""
    y, h = bar.y, bar.h
    weight = "700" if s.on_critical_path else "400"
    tip = (
        f"{s.name}: {figures.tier(s)}, {figures.replicas_long(s)}"
        + (f", batch {s.batch_size}" if s.batch_size is not None else "")
        + f"; start {figures.hours(s.start_h)}, {figures.hours(s.expected_duration_h)} expected, "
        f"{figures.hours(s.p_duration_h)} at {confidence:.0%}; {figures.money(s.expected_cost_usd)}"
    )
    out = [
        f'<g class="gantt-row" data-step="{e(s.name)}"><title>{e(tip)}</title>'
        f'<text x="{label_w - 8}" y="{n(y + h / 2 + 4)}" text-anchor="end" '
        f'font-weight="{weight}" fill="{INK}">{e(s.name)}</text>'
    ]
    w = max(x(s.start_h + s.p_duration_h) - x(s.start_h), MIN_BAR)
    stroke = f' stroke="{INK}" stroke-width="2"' if s.on_critical_path else ""
    out.append(
        f'<rect class="bar{" spot" if s.spot else ""}{" critical" if s.on_critical_path else ""}" '
        f'x="{n(x(s.start_h))}" y="{n(y)}" width="{n(w)}" height="{h}" rx="3" '
        f'fill="{bar.colour}"{stroke}/>'
    )
    if s.spot:
        out.append(
            f'<rect class="hatch" x="{n(x(s.start_h))}" y="{n(y)}" width="{n(w)}" '
            f'height="{h}" rx="3" fill="url(#hatch)"/>'
        )
    out.append(_bar_label(s, x(s.start_h), w, y + h / 2 + 4, right))
    xe = x(s.start_h + s.expected_duration_h)
    out.append(
        f'<line class="expected" x1="{n(xe)}" y1="{n(y - 2)}" x2="{n(xe)}" y2="{n(y + h + 2)}" '
        f'stroke="{INK}" stroke-width="1.5"/></g>'
    )
    return out


def _plan_lines(plan: Plan, x: Callable[[float], float], top: int, base: int) -> list[str]:
    """The deadline (dashed, labelled) and the planned makespan (dotted) across the rows."""
    out: list[str] = []
    if plan.deadline_h is not None:
        xd = x(plan.deadline_h)
        out.append(
            f'<g class="deadline"><line x1="{n(xd)}" y1="{top - 4}" x2="{n(xd)}" y2="{n(base)}" '
            f'stroke="{DEADLINE}" stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{n(xd - 4)}" y="{n(base + 30)}" text-anchor="end" fill="{DEADLINE}" '
            f'font-weight="600">deadline {e(figures.hours(plan.deadline_h))}</text></g>'
        )
    if plan.makespan_h is not None:
        xm = x(plan.makespan_h)
        out.append(
            f'<line class="makespan" x1="{n(xm)}" y1="{top - 4}" x2="{n(xm)}" y2="{n(base)}" '
            f'stroke="{INK}" stroke-width="1" stroke-dasharray="2 3"/>'
        )
    return out


def bar_text(s: StepPlan) -> str:
    """What a Gantt bar says: replicas (and instances) and the duration it spans."""
    m = figures.instances(s)
    count = f"x{s.replicas}" + (f" on {m} inst." if m != s.replicas else "")
    return f"{count} · {figures.hours(s.p_duration_h)}"


def _bar_label(s: StepPlan, x0: float, w: float, baseline: float, right: float) -> str:
    """Inside the bar when it fits, else after it (before it at the right edge)."""
    text = bar_text(s)
    tw = text_width(text, BAR_FONT)
    halo = 'paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"'
    if tw + 10 <= w:
        x, anchor, where = x0 + 5, "start", "inside"
    elif x0 + w + 4 + tw <= right:
        x, anchor, where = x0 + w + 4, "start", "after"
    else:
        x, anchor, where = x0 - 4, "end", "before"
    return (
        f'<text class="bar-label {where}" x="{n(x)}" y="{n(baseline)}" text-anchor="{anchor}" '
        f'font-size="{BAR_FONT}" fill="{INK}" {halo}>{e(text)}</text>'
    )


# --------------------------------------------------------------------------- costs


def costs(report: Report, width: int = 960) -> str:
    """Expected cost per step, then the plan's total against both baselines."""
    plan = report.plan
    steps = [r.plan for r in report.steps]
    colours = tier_colours(steps)
    totals: list[tuple[str, float, str]] = [("this plan", plan.expected_cost_usd or 0.0, "#2b8a3e")]
    for s in report.savings:
        if s.cost_usd is not None:
            totals.append((s.label, s.cost_usd, "#868e96"))
    label_w = min(220, max(110, 8 * max((len(s.name) for s in steps), default=4) + 24))
    row_h, gap = 24, 26
    height = 8 + row_h * (len(steps) + len(totals)) + gap + 8
    value_w = 90
    plot_w = width - label_w - value_w
    top_cost = max([s.expected_cost_usd for s in steps] + [t[1] for t in totals] + [1e-9])

    def bar(y: float, label: str, value: float, colour: str, cls: str, step: str = "") -> str:
        w = max(value / top_cost * plot_w, 1.0)
        data = f' data-step="{e(step)}"' if step else ""
        return (
            f'<g class="{cls}"{data}><title>{e(label)}: {e(figures.money(value))}</title>'
            f'<text x="{label_w - 8}" y="{n(y + row_h / 2 + 2)}" text-anchor="end" '
            f'fill="{INK}">{e(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{n(y + 3)}" width="{n(w)}" height="{row_h - 8}" '
            f'rx="3" fill="{colour}"/>'
            f'<text x="{n(label_w + w + 6)}" y="{n(y + row_h / 2 + 2)}" fill="{INK}">'
            f"{e(figures.money(value))}</text></g>"
        )

    body: list[str] = []
    y = 8.0
    for sp in steps:
        body.append(
            bar(y, sp.name, sp.expected_cost_usd, colours[sp.instance_type], "cost-step", sp.name)
        )
        y += row_h
    y += gap / 2
    body.append(
        f'<line x1="{label_w}" y1="{n(y)}" x2="{width - value_w}" y2="{n(y)}" stroke="{GRID}"/>'
    )
    y += gap / 2
    for label, value, colour in totals:
        body.append(bar(y, label, value, colour, "cost-total"))
        y += row_h
    return _svg(width, height, body, f"Expected cost of {plan.workflow}", "costs")


# --------------------------------------------------------------------------- DAG


def layered(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Layers by longest path from a source; order within a layer by barycentre sweeps."""
    preds: dict[str, list[str]] = {x: [] for x in names}
    succs: dict[str, list[str]] = {x: [] for x in names}
    for a, b in edges:
        if a in preds and b in preds:
            preds[b].append(a)
            succs[a].append(b)
    depth: dict[str, int] = {}
    for x in names:  # names are in a topological order
        depth[x] = max((depth[p] + 1 for p in preds[x] if p in depth), default=0)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for x in names:
        layers[depth[x]].append(x)
    pos = {x: float(i) for layer in layers for i, x in enumerate(layer)}
    for sweep in range(4):
        seq = layers[1:] if sweep % 2 == 0 else list(reversed(layers[:-1]))
        for layer in seq:
            nb = preds if sweep % 2 == 0 else succs

            def key(x: str, nb: dict[str, list[str]] = nb) -> tuple[float, float]:
                around = [pos[p] for p in nb[x]]
                return (sum(around) / len(around) if around else pos[x], pos[x])

            layer.sort(key=key)
            for i, x in enumerate(layer):
                pos[x] = float(i)
    return layers


def dag(report: Report) -> str:
    """The step DAG left to right, nodes coloured by tier, the critical path outlined."""
    steps = {r.plan.name: r.plan for r in report.steps}
    colours = tier_colours(list(steps.values()))
    layers = layered(list(steps), report.edges)
    node_w, node_h, gap_x, gap_y, pad = 170, 46, 56, 16, 12
    rows = max((len(layer) for layer in layers), default=1)
    width = pad * 2 + len(layers) * node_w + max(len(layers) - 1, 0) * gap_x
    height = pad * 2 + rows * node_h + max(rows - 1, 0) * gap_y
    where: dict[str, tuple[float, float]] = {}
    for li, layer in enumerate(layers):
        offset = (rows - len(layer)) * (node_h + gap_y) / 2
        for i, name in enumerate(layer):
            where[name] = (pad + li * (node_w + gap_x), pad + offset + i * (node_h + gap_y))
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#666"/></marker></defs>'
    ]
    for a, b in report.edges:
        if a not in where or b not in where:
            continue
        (xa, ya), (xb, yb) = where[a], where[b]
        x1, y1, x2, y2 = xa + node_w, ya + node_h / 2, xb - 2, yb + node_h / 2
        mid = (x1 + x2) / 2
        crit = steps[a].on_critical_path and steps[b].on_critical_path
        body.append(
            f'<path class="edge" data-from="{e(a)}" data-to="{e(b)}" '
            f'd="M{n(x1)},{n(y1)} C{n(mid)},{n(y1)} {n(mid)},{n(y2)} {n(x2)},{n(y2)}" '
            f'fill="none" stroke="{INK if crit else "#999"}" stroke-width="{2 if crit else 1.2}" '
            'marker-end="url(#arrow)"/>'
        )
    for name, s in steps.items():
        x, y = where[name]
        colour = colours[s.instance_type]
        stroke = (
            f'stroke="{INK}" stroke-width="2.5"'
            if s.on_critical_path
            else f'stroke="{colour}" stroke-width="1.5"'
        )
        short = name if len(name) <= 22 else name[:21] + "…"
        sub = f"{s.instance_type} {'spot' if s.spot else 'on-demand'} x{s.replicas}"
        sub = sub if len(sub) <= 26 else sub[:25] + "…"
        body.append(
            f'<g class="node" data-step="{e(name)}"><title>{e(name)}: {e(figures.step_label(s))}</title>'
            f'<rect x="{n(x)}" y="{n(y)}" width="{node_w}" height="{node_h}" rx="7" '
            f'fill="{colour}" fill-opacity="0.18" {stroke}/>'
            f'<text x="{n(x + 10)}" y="{n(y + 19)}" font-weight="600" fill="{INK}">{e(short)}</text>'
            f'<text x="{n(x + 10)}" y="{n(y + 36)}" fill="#444" font-size="11">{e(sub)}</text></g>'
        )
    return _svg(width, height, body, f"Steps of {report.plan.workflow}", "dag")


# --------------------------------------------------------------------------- what-if


def _y_title(result: SweepResult, metric: str) -> str:
    """``expected cost``; ``makespan at 95%`` (the confidence, unless it is what varies)."""
    if metric == "cost":
        return "expected cost"
    if result.key == "confidence":
        return "makespan at each confidence"
    return f"makespan at {result.base.confidence:.0%}"


def whatif(result: SweepResult, metric: str, width: int = 460) -> str:
    """One curve: expected cost (``metric="cost"``) or makespan against the swept value."""
    pts = [sc for sc in result.scenarios if sc.value is not None]
    lifted = [sc for sc in result.scenarios if sc.value is None]
    show_y = figures.money if metric == "cost" else figures.hours
    show_x: Callable[[float], str] = {
        "deadline": figures.hours,
        "budget": figures.money,
        "confidence": lambda v: f"{v:g}",
    }[result.key]
    height = 236
    f = _whatif_frame(result, metric, show_x, width, height)
    body = _whatif_y_axis(f, show_y, _y_title(result, metric))
    if lifted:
        xs_sep = f.left + f.plot_w + f.extra * 0.3
        body.append(
            f'<line x1="{n(xs_sep)}" y1="{f.top}" x2="{n(xs_sep)}" y2="{f.top + f.plot_h}" '
            f'stroke="#bbb" stroke-dasharray="3 3"/>'
        )
    body += _whatif_x_labels(result, f, show_x)
    line = []
    for sc in pts:
        v = _metric(sc, metric)
        if sc.plan.status != "infeasible" and v is not None:
            line.append(f"{n(f.px(sc.value))},{n(f.py(v))}")
    if len(line) > 1:
        body.append(
            f'<polyline class="curve" points="{" ".join(line)}" fill="none" stroke="#4e79a7" '
            'stroke-width="2"/>'
        )
    body += _whatif_points(result, metric, f, show_x, show_y)
    body.append(
        f'<text class="axis-title x" x="{n(f.left + (f.plot_w + f.extra) / 2)}" y="{height - 6}" '
        f'text-anchor="middle" fill="{INK}">{e(result.key)}</text>'
    )
    what = "expected cost" if metric == "cost" else "makespan"
    return _svg(width, height, body, f"{what} by {result.key}", f"whatif whatif-{metric}")


def _metric(sc: Scenario, metric: str) -> float | None:
    """The scenario's expected cost or makespan (``None``: the plan has none)."""
    return sc.plan.expected_cost_usd if metric == "cost" else sc.plan.makespan_h


@dataclass(frozen=True, slots=True)
class _Frame:
    """A what-if chart's plot area and its two scales; ``extra``: room for the "no limit" point."""

    left: int
    top: int
    plot_w: float
    plot_h: int
    extra: int
    x_lo: float
    x_hi: float
    y_hi: float

    def px(self, v: float | None) -> float:
        if v is None:
            return self.left + self.plot_w + self.extra * 0.65
        return self.left + (v - self.x_lo) / (self.x_hi - self.x_lo) * self.plot_w

    def py(self, v: float) -> float:
        return self.top + self.plot_h - v / self.y_hi * self.plot_h


def _whatif_frame(
    result: SweepResult, metric: str, show_x: Callable[[float], str], width: int, height: int
) -> _Frame:
    """The plot area left by the axes' labels, and the ranges of the swept values and the metric."""
    pts = [sc for sc in result.scenarios if sc.value is not None]
    lifted = [sc for sc in result.scenarios if sc.value is None]
    xs = [sc.value for sc in pts if sc.value is not None]
    ys: list[float] = []
    for sc in result.scenarios:
        v = _metric(sc, metric)
        if sc.plan.status != "infeasible" and v is not None:
            ys.append(v)
    left, top, bottom = 84, 14, 56
    extra = 80 if lifted else 0
    # room for half the last label past the last point (the labels are centred)
    last = max((sc.value for sc in pts if sc.value is not None), default=None)
    right = 20 if lifted or last is None else max(20.0, text_width(show_x(last)) / 2 + 4)
    plot_w = width - left - right - extra
    plot_h = height - top - bottom
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi - x_lo < 1e-12:
        x_lo, x_hi = x_lo * 0.9, x_hi * 1.1 + 1e-9
    y_hi = max(ys) * 1.1 if ys else 1.0
    y_hi = y_hi if y_hi > 0 else 1.0
    return _Frame(left, top, plot_w, plot_h, extra, x_lo, x_hi, y_hi)


def _whatif_y_axis(f: _Frame, show_y: Callable[[float], str], title: str) -> list[str]:
    """Horizontal grid lines with the metric's labels, and the axis title."""
    body: list[str] = []
    for t in ticks(0.0, f.y_hi, 4):
        body.append(
            f'<line x1="{f.left}" y1="{n(f.py(t))}" x2="{n(f.left + f.plot_w + f.extra)}" '
            f'y2="{n(f.py(t))}" stroke="{GRID}"/><text x="{f.left - 6}" y="{n(f.py(t) + 4)}" '
            f'text-anchor="end" fill="#555">{e(show_y(t))}</text>'
        )
    body.append(
        f'<text class="axis-title y" transform="translate(14,{n(f.top + f.plot_h / 2)}) rotate(-90)" '
        f'text-anchor="middle" fill="{INK}">{e(title)}</text>'
    )
    return body


def _whatif_x_labels(result: SweepResult, f: _Frame, show_x: Callable[[float], str]) -> list[str]:
    """A tick per scenario, labelled on one of two rows where the labels fit."""
    body: list[str] = []
    bottom = f.top + f.plot_h
    labels = ["no limit" if sc.value is None else show_x(sc.value) for sc in result.scenarios]
    rows = spread_labels([f.px(sc.value) for sc in result.scenarios], labels)
    for sc, text, row in zip(result.scenarios, labels, rows, strict=True):
        tx = f.px(sc.value)
        body.append(
            f'<line class="xtick" x1="{n(tx)}" y1="{bottom}" x2="{n(tx)}" '
            f'y2="{bottom + 4 + (ROW_GAP if row == 1 else 0)}" stroke="#999"/>'
        )
        if row is None:
            continue  # no room: the point's tooltip names it
        weight = ' font-weight="650"' if sc.current else ""
        body.append(
            f'<text class="xlabel row{row}" x="{n(tx)}" y="{bottom + 16 + ROW_GAP * row}" '
            f'text-anchor="middle" fill="#555"{weight}>{e(text)}</text>'
        )
    return body


def _whatif_points(
    result: SweepResult,
    metric: str,
    f: _Frame,
    show_x: Callable[[float], str],
    show_y: Callable[[float], str],
) -> list[str]:
    """A dot per scenario (ringed: the plan as it is), a red cross where it is infeasible."""
    body: list[str] = []
    for sc in result.scenarios:
        v = _metric(sc, metric)
        label = "none" if sc.value is None else show_x(sc.value)
        cx = f.px(sc.value)
        if sc.plan.status == "infeasible" or v is None:
            cy = f.top + f.plot_h
            body.append(
                f'<g class="point infeasible"><title>{e(result.key)} {e(label)}: infeasible</title>'
                f'<path d="M{n(cx - 5)},{n(cy - 5)} L{n(cx + 5)},{n(cy + 5)} M{n(cx - 5)},{n(cy + 5)} '
                f'L{n(cx + 5)},{n(cy - 5)}" stroke="{DEADLINE}" stroke-width="2"/></g>'
            )
            continue
        r = 6 if sc.current else 4
        ring = f' stroke="{INK}" stroke-width="2"' if sc.current else ""
        body.append(
            f'<g class="point{" current" if sc.current else ""}"><title>{e(result.key)} {e(label)}: '
            f"{e(show_y(v))}{' (now)' if sc.current else ''}</title>"
            f'<circle cx="{n(cx)}" cy="{n(f.py(v))}" r="{r}" fill="#4e79a7"{ring}/></g>'
        )
    return body
