"""The terminal report (rich): header, one row per step, totals, savings, constraints, why.

Wide consoles (``WIDE`` columns or more) get a table; narrow ones get one block
per step, so nothing is cut off on a phone-sized terminal. Colour is rich's
decision (none when piped, ``NO_COLOR`` honoured); :func:`render_plain` gives the
same report as plain text at a fixed width, for files and snapshots.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from exo.compiler import figures
from exo.compiler.report import diff, whatif
from exo.compiler.report.diff import PlanDiff
from exo.compiler.report.facts import Report, StepFacts
from exo.compiler.report.plaintable import Justify, plain_table
from exo.compiler.report.whatif import SweepResult

#: Below this width the step table becomes one block per step.
WIDE = 100
CRITICAL = "*"

_STATUS_STYLE = {"optimal": "bold green", "feasible": "bold yellow", "infeasible": "bold red"}


def _kv(out: Text, key: str, value: str, style: str = "bold") -> None:
    if out.plain and not out.plain.endswith("\n"):
        out.append("  ")
    out.append(f"{key} ", style="dim")
    out.append(value, style=style)


def header(report: Report, *, solve_time: bool = True) -> Text:
    p = report.plan
    out = Text()
    out.append("exo plan ", style="bold")
    out.append(p.workflow, style="bold cyan")
    out.append("\n")
    _kv(out, "objective", p.objective)
    _kv(out, "deadline", figures.hours(p.deadline_h) if p.deadline_h is not None else "none")
    _kv(out, "budget", figures.money(p.budget_usd) if p.budget_usd is not None else "none")
    _kv(out, "confidence", f"{p.confidence:.0%}")
    out.append("\n")
    status: str = p.status
    if p.status == "feasible" and p.gap is not None:
        status += f" (gap {figures.percent(p.gap)})"
    _kv(out, "status", status, _STATUS_STYLE[p.status])
    if solve_time and p.solve_time_s is not None:
        _kv(out, "solved in", f"{p.solve_time_s:.2f} s")
    out.append("\n")
    facts = dict(report.assumptions)
    _kv(out, "catalog", facts.get("catalog", "unknown"))
    out.append("\n")
    _kv(out, "prices", facts.get("price snapshot", "not dated"), "")
    return out


def _name(row: StepFacts) -> Text:
    t = Text(row.plan.name, style="bold")
    if row.plan.on_critical_path:
        t.append(f" {CRITICAL}", style="bold magenta")
    return t


def _tier(row: StepFacts) -> Text:
    s = row.plan
    t = Text(s.instance_type)
    if s.accelerator:
        t.append(f" {s.accelerator} x{s.accelerator_count}", style="cyan")
    else:
        t.append(" CPU", style="cyan")
    t.append(" spot" if s.spot else " on-demand", style="yellow" if s.spot else "green")
    return t


def _duration(row: StepFacts) -> str:
    s = row.plan
    return f"{figures.hours(s.expected_duration_h)} / {figures.hours(s.p_duration_h)}"


def _step_columns(report: Report) -> list[tuple[str, Justify, str]]:
    """The step table's columns: header, justification, footer."""
    p = report.plan
    return [
        ("step", "left", "total"),
        ("tier", "left", ""),
        ("batch", "right", ""),
        ("repl", "right", ""),
        ("start", "right", ""),
        (f"time exp / {p.confidence:.0%}", "right", figures.hours(p.makespan_h)),
        ("cost", "right", figures.money(p.expected_cost_usd)),
    ]


def _step_cells(row: StepFacts) -> tuple[Text, Text, str, str, str, str, str]:
    s = row.plan
    return (
        _name(row),
        _tier(row),
        figures.batch(s),
        figures.replicas(s),
        figures.hours(s.start_h),
        _duration(row),
        figures.money(s.expected_cost_usd),
    )


def steps_table(report: Report) -> Table:
    # Text, not str: rich reads a str cell as markup ("[b]" would vanish), and
    # steps_plain writes every cell as it is
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_footer=True, footer_style="bold")
    for header, justify, footer in _step_columns(report):
        table.add_column(Text(header), justify=justify, footer=Text(footer))
    for row in report.steps:
        table.add_row(*(c if isinstance(c, Text) else Text(c) for c in _step_cells(row)))
    return table


class _Lines:
    """Lines of plain text, written as they are (no wrapping, no styles)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        new_line = Segment.line()
        for line in self.lines:
            yield Segment(line)
            yield new_line


def steps_plain(report: Report, width: int) -> _Lines | None:
    """:func:`steps_table` as plain text, written without rich's per-cell layout; ``None``
    when it does not fit ``width`` (see :mod:`exo.compiler.report.plaintable`)."""
    columns = _step_columns(report)
    rows = [[c if isinstance(c, str) else c.plain for c in _step_cells(r)] for r in report.steps]
    lines = plain_table(
        [h for h, _, _ in columns],
        rows,
        [f for _, _, f in columns],
        [j for _, j, _ in columns],
        width,
    )
    return None if lines is None else _Lines(lines)


def steps_blocks(report: Report) -> Text:
    out = Text()
    conf = f"{report.plan.confidence:.0%}"
    for row in report.steps:
        s = row.plan
        out.append_text(_name(row))
        out.append("  ")
        out.append_text(_tier(row))
        out.append("\n  ")
        parts = []
        if s.batch_size is not None:
            parts.append(f"batch {s.batch_size}")
        parts += [
            f"x{figures.replicas(s)}",
            f"start {figures.hours(s.start_h)}",
            f"{figures.hours(s.expected_duration_h)} ({conf}: {figures.hours(s.p_duration_h)})",
        ]
        out.append(" · ".join(parts))
        out.append("  ")
        out.append(figures.money(s.expected_cost_usd), style="bold")
        out.append("\n")
    p = report.plan
    out.append("total", style="bold")
    out.append(f"  {figures.hours(p.makespan_h)}  ")
    out.append(figures.money(p.expected_cost_usd), style="bold")
    return out


class _Indented:
    """Items indented by their level, as ``Padding(item, (0, 0, 0, 2 * level))`` each: a
    wrapped line keeps the indent. An item that fits its line is written as it is,
    without rich's wrapping (the same text; a "why" section has a line or two a step)."""

    def __init__(self, items: list[tuple[int, Text]]) -> None:
        self.items = items

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        new_line = Segment.line()
        for level, t in self.items:
            indent, plain = 2 * level, t.plain
            if plain.isprintable() and indent + cell_len(plain) <= options.max_width:
                yield Segment(" " * indent)
                yield from t.render(console)
                yield new_line
            else:
                yield from console.render(Padding(t, (0, 0, 0, indent)), options)


def _section(title: str, items: list[tuple[int, Text]]) -> Group:
    """A bold title, then items indented by their level (wrapped lines keep the indent)."""
    return Group(Text(title, style="bold"), _Indented(items))


def about_section(report: Report) -> Group | None:
    """What each step does, in the user's words (``description``), where one is written."""
    items = []
    for row in report.steps:
        if row.description is not None:
            t = Text(row.plan.name, style="bold")
            t.append(f": {row.description}")
            items.append((1, t))
    return _section("steps", items) if items else None


def savings_section(report: Report) -> Group:
    items: list[tuple[int, Text]] = []
    for s in report.savings:
        t = Text(f"vs {s.label}: ", style="dim")
        if s.cost_usd is None or s.saved_usd is None:
            t.append("no such plan meets the limits")
        else:
            style = "green" if s.saved_usd > 0 else "yellow"
            t.append(figures.saving(s.saved_usd, s.saved_fraction), style=style)
            t.append(
                f"  baseline {figures.money(s.cost_usd)} in {figures.hours(s.makespan_h)}",
                style="dim",
            )
        items.append((1, t))
    return _section("savings", items)


_STATE_STYLES = {"binding": "bold red", "shapes": "bold yellow", "slack": "green", "unused": "dim"}


def constraints_section(report: Report) -> Group:
    items: list[tuple[int, Text]] = []
    if not report.constraints:
        items.append((1, Text("none set", style="dim")))
    for c in report.constraints:
        t = Text(f"{c.name} {c.limit}", style="bold")
        t.append(": ")
        t.append(c.words, style=_STATE_STYLES[c.state])
        if c.used != "-":
            t.append(f", plan {c.used} ({c.slack})")
        if c.detail:
            t.append(f"; {c.detail}", style="dim")
        items.append((1, t))
    return _section("constraints", items)


def why_section(report: Report) -> Group:
    items: list[tuple[int, Text]] = []
    p = report.plan
    for row in report.steps:
        w = row.why
        t = Text(row.plan.name, style="bold")
        t.append(" ")
        t.append(figures.step_label(row.plan), style="cyan")
        t.append(": options not known" if w is None else f": {w.reason}")
        items.append((1, t))
        for alt in w.alternatives if w is not None else ():
            items.append((2, Text(figures.alternative(alt, p), style="dim")))
    return _section("why", items)


#: Assumption topics shown in the terminal report (the others are in the header or HTML).
COMMAND_ASSUMPTIONS = ("replicas", "checkpoint = batch", "interval checkpoints")


def assumes_section(report: Report) -> Group | None:
    """What the figures assume of the commands (checkpoints): the user's claims."""
    items = [
        (1, Text(f"{topic}: {text}", style="dim"))
        for topic, text in report.assumptions
        if topic in COMMAND_ASSUMPTIONS
    ]
    return _section("assumes", items) if items else None


def explanation_section(report: Report) -> Group:
    title = "why no plan" if report.plan.status == "infeasible" else "solver notes"
    style = "" if report.plan.status == "infeasible" else "dim"
    return _section(title, [(1, Text(line, style=style)) for line in report.plan.explanation])


def report_renderable(
    report: Report, width: int, *, solve_time: bool = True, plain: bool = False
) -> RenderableType:
    """The report; ``plain``: only its text will be used (no colour), which lets a wide
    step table be written line by line."""
    parts: list[RenderableType] = [header(report, solve_time=solve_time)]
    if report.feasible and report.steps:
        if width >= WIDE:
            parts.append((plain and steps_plain(report, width)) or steps_table(report))
        else:
            parts += [Text(), steps_blocks(report), Text()]
        if (about := about_section(report)) is not None:
            parts += [about, Text()]
        parts += [savings_section(report), Text(), constraints_section(report)]
        if any(r.why is not None for r in report.steps):
            parts += [Text(), why_section(report)]
        if any(r.plan.on_critical_path for r in report.steps):
            parts += [Text(), Text(f"{CRITICAL} on the critical path", style="dim")]
        if (assumes := assumes_section(report)) is not None:
            parts += [Text(), assumes]
    if report.plan.explanation:
        parts += [Text(), explanation_section(report)]
    return Group(*parts)


def print_report(report: Report, console: Console, *, solve_time: bool = True) -> None:
    console.print(report_renderable(report, console.width, solve_time=solve_time))


def render_plain(report: Report, width: int = 120, *, solve_time: bool = True) -> str:
    """The report as plain text (no colour) at a fixed width."""
    renderable = report_renderable(report, width, solve_time=solve_time, plain=True)
    return render_plain_renderable(renderable, width)


# --------------------------------------------------------------------------- what-if and diff


def whatif_renderable(results: Sequence[SweepResult], width: int) -> RenderableType:
    parts: list[RenderableType] = []
    for r in results:
        parts += [Text(), Text(whatif.title(r), style="bold")]
        if width >= WIDE:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
            table.add_column(r.key, justify="right", no_wrap=True)
            table.add_column("status", no_wrap=True)
            table.add_column("cost (Δ)", justify="right", no_wrap=True)
            table.add_column("makespan (Δ)", justify="right", no_wrap=True)
            table.add_column("what changes", ratio=1)
            for row in whatif.rows(r):
                cost = Text(row.cost)
                if row.cost_delta:
                    cost.append(f" {row.cost_delta}", style="dim")
                span = Text(row.makespan)
                if row.makespan_delta:
                    span.append(f" {row.makespan_delta}", style="dim")
                table.add_row(
                    Text(
                        row.label + (" (now)" if row.current else ""),
                        style="bold" if row.current else "",
                    ),
                    Text(row.status, style=_STATUS_STYLE[row.status]),
                    cost,
                    span,
                    "\n".join(row.changes),
                )
            parts.append(table)
            continue
        items: list[tuple[int, Text]] = []
        for row in whatif.rows(r):
            t = Text(f"{r.key} {row.label}" + (" (now)" if row.current else ""), style="bold")
            t.append(": ")
            t.append(row.status, style=_STATUS_STYLE[row.status])
            if row.cost != "-":
                t.append(f", {row.cost}")
                if row.cost_delta:
                    t.append(f" ({row.cost_delta})")
                t.append(f" in {row.makespan}")
                if row.makespan_delta:
                    t.append(f" ({row.makespan_delta})")
            items.append((1, t))
            items += [(2, Text(c, style="dim")) for c in row.changes]
        parts.append(Group(*[Padding(t, (0, 0, 0, 2 * lv)) for lv, t in items]))
    return Group(*parts)


_DIFF_STYLE = {"add": "green", "remove": "red", "change": "yellow", "same": "dim"}


def diff_renderable(d: PlanDiff, *, unchanged: bool = False) -> RenderableType:
    items: list[RenderableType] = [
        Text.assemble(("exo diff ", "bold"), (f"{d.old_label} -> {d.new_label}", "bold cyan")),
        Text(),
    ]
    for s in d.steps:
        if s.action == "same" and not unchanged:
            continue
        style = _DIFF_STYLE[s.action]
        items.append(Text(f"  {diff.SIGN[s.action]} {s.name}", style=f"bold {style}"))
        width = max((len(c.field) for c in s.changes), default=0)
        for c in s.changes:
            text = c.new_text if s.action == "add" else diff.change_text(c)
            items.append(
                Padding(Text(f"{c.field.ljust(width)}  {text}", style=style), (0, 0, 0, 6))
            )
    if not d.changed:
        items.append(Text("  no changes", style="dim"))
    if d.totals:
        items.append(Text())
        items.append(Text("total", style="bold"))
        width = max(len(c.field) for c in d.totals)
        items += [
            Padding(Text(f"{c.field.ljust(width)}  {diff.change_text(c)}"), (0, 0, 0, 2))
            for c in d.totals
        ]
    items += [Text(), Text(f"plan: {diff.summary(d)}", style="bold")]
    return Group(*items)


def render_plain_renderable(renderable: RenderableType, width: int = 120) -> str:
    """Any renderable as plain text at a fixed width (files, snapshots)."""
    buf = io.StringIO()
    Console(
        file=buf,
        width=width,
        no_color=True,
        force_terminal=False,
        color_system=None,
        highlight=False,
        emoji=False,
    ).print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"
