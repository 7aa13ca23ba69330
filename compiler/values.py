"""Typed reading of attribute values: one function per expected type.

Each reader takes a syntax value (already dereferenced through params), the
attribute's name for messages and a sink; it returns the Python value or
``None`` after reporting a diagnostic that says what was expected and how to
write it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from exo.compiler.diagnostics import DiagnosticSink, did_you_mean, excerpt
from exo.compiler.limits import Limit
from exo.compiler.syntax import (
    DurationLit,
    ListV,
    MoneyLit,
    Num,
    RangeV,
    Ref,
    SizeLit,
    Str,
    Value,
    describe,
)


def _type_error(sink: DiagnosticSink, attr: str, want: str, v: Value, fix: str | None) -> None:
    sink.error(
        "E201",
        f"type error: '{attr}' expects {want}, got {describe(v)}",
        v.span,
        help=[f"to fix: {fix}"] if fix else [],
    )


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond any float
        return False


_INF = math.inf


def within(sink: DiagnosticSink, attr: str, v: Value, x: float, limit: Limit | None) -> bool:
    """Whether ``x`` (read from ``v``) is finite and within ``limit``; reports E203 if not.

    Every reader takes the limit of its attribute, so that a value beyond what
    the cost model and the backends can represent stops here, at its own line
    and column, with the limit in the message."""
    if limit is not None and -_INF < limit.low <= x <= limit.high < _INF:
        return True  # within finite bounds, so finite: most values
    if limit is None:
        if _finite(x):
            return True
        sink.error("E203", f"'{attr}' is too large to represent", v.span)
        return False
    if _finite(x) and limit.low <= x <= limit.high:
        return True
    text = excerpt(getattr(v, "text", None) or "this value")
    if not _finite(x) or x > limit.high:
        sink.error(
            "E203",
            f"'{attr}' is {text}, beyond the limit of {limit.shown} for {limit.what}",
            v.span,
            help=[LIMITS_HELP],
        )
        return False
    if x < limit.low and limit.shown_low is not None:
        sink.error(
            "E203",
            f"'{attr}' is {text}, below the limit of {limit.shown_low} for {limit.what}",
            v.span,
            help=[LIMITS_HELP],
        )
        return False
    return True


LIMITS_HELP = "exo's limits on values are listed in docs/language.md (section Limits)"


def duration_h(
    sink: DiagnosticSink,
    attr: str,
    v: Value,
    *,
    positive: bool = True,
    limit: Limit | None = None,
) -> float | None:
    if isinstance(v, DurationLit):
        if positive and v.hours <= 0:
            sink.error("E202", f"'{attr}' must be a positive duration, got {v.text}", v.span)
            return None
        if v.hours < 0:
            sink.error("E202", f"'{attr}' cannot be negative, got {v.text}", v.span)
            return None
        return v.hours if within(sink, attr, v, v.hours, limit) else None
    fix = (
        f"add a unit, e.g. {v.text}h or {v.text}m"
        if isinstance(v, Num)
        else "write e.g. 8h, 30m or 1h30m"
    )
    _type_error(sink, attr, "a duration such as 8h", v, fix)
    return None


def money_usd(
    sink: DiagnosticSink, attr: str, v: Value, *, limit: Limit | None = None
) -> float | None:
    if isinstance(v, MoneyLit):
        if v.usd <= 0:
            sink.error("E202", f"'{attr}' must be a positive amount, got {v.text}", v.span)
            return None
        return v.usd if within(sink, attr, v, v.usd, limit) else None
    fix = f"write ${v.text}" if isinstance(v, Num) else "write e.g. $250"
    _type_error(sink, attr, "an amount such as $250", v, fix)
    return None


def size_gib(
    sink: DiagnosticSink, attr: str, v: Value, *, limit: Limit | None = None
) -> float | None:
    if isinstance(v, SizeLit):
        if v.gib <= 0:
            sink.error("E202", f"'{attr}' must be a positive size, got {v.text}", v.span)
            return None
        return v.gib if within(sink, attr, v, v.gib, limit) else None
    fix = f"add a unit, e.g. {v.text}GiB" if isinstance(v, Num) else "write e.g. 16GiB or 512MiB"
    _type_error(sink, attr, "a size such as 16GiB", v, fix)
    return None


def integer(
    sink: DiagnosticSink, attr: str, v: Value, *, minimum: int = 1, limit: Limit | None = None
) -> int | None:
    if isinstance(v, Num) and isinstance(v.value, int):
        if v.value < minimum:
            what = "positive" if minimum == 1 else f"at least {minimum}"
            sink.error("E202", f"'{attr}' must be {what}, got {v.text}", v.span)
            return None
        return v.value if within(sink, attr, v, v.value, limit) else None
    fix = None
    if isinstance(v, Num) and _finite(v.value):
        fix = f"use a whole number such as {int(v.value)}"
    _type_error(sink, attr, "a whole number", v, fix)
    return None


def number(
    sink: DiagnosticSink,
    attr: str,
    v: Value,
    *,
    positive: bool = True,
    limit: Limit | None = None,
) -> float | None:
    if isinstance(v, Num):
        if positive and v.value <= 0:
            sink.error("E202", f"'{attr}' must be positive, got {v.text}", v.span)
            return None
        if not within(sink, attr, v, v.value, limit):
            return None
        return float(v.value)
    _type_error(sink, attr, "a number", v, None)
    return None


def string(sink: DiagnosticSink, attr: str, v: Value) -> Str | None:
    if isinstance(v, Str):
        return v
    fix = f'quote it: "{v.name}"' if isinstance(v, Ref) else None
    _type_error(sink, attr, "a string", v, fix)
    return None


def enum(sink: DiagnosticSink, attr: str, v: Value, words: Sequence[str]) -> str | None:
    if isinstance(v, Ref) and v.name in words:
        return v.name
    got = v.name if isinstance(v, Ref) else (v.text if isinstance(v, Str) else None)
    if got is not None and got in words:
        return got
    shown = f"'{got}'" if got is not None else describe(v)
    sink.error(
        "E204",
        f"'{attr}' must be one of: {', '.join(words)} (got {shown})",
        v.span,
        help=did_you_mean(got, words) if got is not None else [],
    )
    return None


def items_of(sink: DiagnosticSink, attr: str, v: Value) -> tuple[Value, ...] | None:
    if isinstance(v, ListV):
        return v.items
    _type_error(sink, attr, "a list such as [a, b]", v, f"write [{_plain(v)}]")
    return None


def _plain(v: Value) -> str:
    match v:
        case Ref():
            return v.name
        case Str():
            return f'"{v.text}"'
        case Num() | DurationLit() | SizeLit() | MoneyLit():
            return v.text
        case _:
            return "..."


def string_list(sink: DiagnosticSink, attr: str, v: Value) -> list[Str] | None:
    items = items_of(sink, attr, v)
    if items is None:
        return None
    out: list[Str] = []
    ok = True
    for it in items:
        s = string(sink, f"{attr}' item '", it) if not isinstance(it, Str) else it
        if s is None:
            ok = False
        else:
            out.append(s)
    return out if ok else None


def name_list(sink: DiagnosticSink, attr: str, v: Value) -> list[tuple[str, Value]] | None:
    """Names written as identifiers or strings (accelerators, instance types)."""
    items = items_of(sink, attr, v)
    if items is None:
        return None
    out: list[tuple[str, Value]] = []
    for it in items:
        if isinstance(it, Ref):
            out.append((it.name, it))
        elif isinstance(it, Str) and not it.placeholders:
            out.append((it.text, it))
        else:
            _type_error(sink, attr, 'names such as A100 or "g5.xlarge"', it, None)
            return None
    return out


def int_list(
    sink: DiagnosticSink, attr: str, v: Value, *, limit: Limit | None = None
) -> list[tuple[int, Value]] | None:
    items = items_of(sink, attr, v)
    if items is None:
        return None
    out: list[tuple[int, Value]] = []
    for it in items:
        n = integer(sink, attr, it, limit=limit)
        if n is None:
            return None
        out.append((n, it))
    return out


def int_range(
    sink: DiagnosticSink, attr: str, v: Value, *, limit: Limit | None = None
) -> tuple[int, int] | None:
    if isinstance(v, RangeV):
        lo = integer(sink, attr, v.low, limit=limit)
        hi = integer(sink, attr, v.high, limit=limit)
        if lo is None or hi is None:
            return None
        if lo > hi:
            sink.error(
                "E205",
                f"'{attr}' range {lo}..{hi} runs backwards",
                v.span,
                help=[f"to fix: write {hi}..{lo}"],
            )
            return None
        return lo, hi
    n = integer(sink, attr, v, limit=limit)
    return (n, n) if n is not None else None
