"""Literal classification: numbers with units, money and strings with placeholders.

Each function takes the token text and its span and returns a syntax node or
raises :class:`LiteralError` with a diagnostic that points inside the token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from exo.compiler import nodebuild
from exo.compiler.diagnostics import Diagnostic, Span
from exo.compiler.syntax import DurationLit, MoneyLit, Num, Placeholder, SizeLit, Str

#: Largest magnitude a literal may have: beyond this no workflow makes sense and
#: floating point stops being exact for whole numbers.
MAX_MAGNITUDE = 10**15

DURATION_UNITS: dict[str, float] = {"s": 1 / 3600, "m": 1 / 60, "h": 1.0, "d": 24.0}
SIZE_UNITS: dict[str, float] = {
    "B": 1 / 2**30,
    "KB": 1e3 / 2**30,
    "MB": 1e6 / 2**30,
    "GB": 1e9 / 2**30,
    "TB": 1e12 / 2**30,
    "KiB": 1 / 2**20,
    "MiB": 1 / 2**10,
    "GiB": 1.0,
    "TiB": 2.0**10,
}

_NUM = re.compile(r"-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?")
_SCIENTIFIC = re.compile(r"(-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?)[eE]([+-]?[0-9]+)([A-Za-z].*)?")
_PART = re.compile(r"([0-9][0-9_]*(?:\.[0-9][0-9_]*)?)([A-Za-z]+)")
#: Smallest magnitude a non-zero literal in scientific notation may have.
MIN_MAGNITUDE_TEXT = "1e-15"
MIN_MAGNITUDE = Decimal(MIN_MAGNITUDE_TEXT)


class LiteralError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _sub(span: Span, offset: int, width: int) -> Span:
    return Span(span.file, span.line, span.column + offset, span.line, span.column + offset + width)


def _number(text: str, span: Span) -> int | float:
    digits = text.replace("_", "")
    if "__" in text or text.endswith("_") or "_." in text or "._" in text:
        raise LiteralError(
            Diagnostic(
                "E009",
                f"malformed number '{text}'",
                span,
                ("to fix: use single underscores between digits, as in 10_000",),
            )
        )
    significant = digits.lstrip("-").split(".")[0].lstrip("0")
    if len(significant) > 15:
        raise LiteralError(
            Diagnostic(
                "E009",
                f"number '{text}' is too large",
                span,
                (f"to fix: use a value below {MAX_MAGNITUDE:,}".replace(",", "_"),),
            )
        )
    if "." in digits:
        return float(digits)
    return int(digits)


def _scientific(m: re.Match[str], text: str, span: Span) -> Num:
    """``1e6`` → 1000000 (a whole number stays an integer), ``2.5e-3`` → 0.0025."""
    mantissa, exponent, unit = m.groups()
    if unit:
        raise LiteralError(
            Diagnostic(
                "E010",
                f"a number in scientific notation cannot take a unit: '{text}'",
                span,
                (f"to fix: write the number in full, then the unit (e.g. {_example(text)})",),
            )
        )
    base = _number(mantissa, span)  # underscores and significant digits checked there
    too: str | None = None
    if len(exponent.lstrip("+-").lstrip("0")) > 4 and base != 0:  # 1e99999: far out
        too = "small" if exponent.startswith("-") else "large"
        value = Decimal(0)
    else:
        value = Decimal(str(base)).scaleb(int(exponent)) if base != 0 else Decimal(0)
        if abs(value) >= MAX_MAGNITUDE:
            too = "large"
        elif value and abs(value) < MIN_MAGNITUDE:
            too = "small"
    if too is not None:
        limit = (
            f"below {MAX_MAGNITUDE:_}" if too == "large" else f"of at least {MIN_MAGNITUDE_TEXT}"
        )
        raise LiteralError(
            Diagnostic(
                "E009", f"number '{text}' is too {too}", span, (f"to fix: use a value {limit}",)
            )
        )
    if value == value.to_integral_value():
        return Num(span, int(value), text)
    return Num(span, float(value), text)


def _example(text: str) -> str:
    m = _SCIENTIFIC.fullmatch(text)
    if m is None:
        return "1_000_000"
    try:
        number = Decimal(m.group(1).replace("_", "")).scaleb(int(m.group(2)))
    except (ArithmeticError, ValueError):
        return "1_000_000"
    whole = number == number.to_integral_value() and abs(number) < MAX_MAGNITUDE
    shown = f"{int(number):_}" if whole else format(number.normalize(), "f")
    return shown + (m.group(3) or "")


#: Number literals already read, by text: the value depends on the text alone and a
#: large workflow repeats a few hundred of them (``4``, ``2h``, ``16GiB``) many times,
#: and its measured rates now and then (the generated 10,000-step workflow reads 17,890
#: numbers outside its flat attributes' recipes, 11,669 distinct).
#: Only literals that read cleanly are kept, and at most :data:`_READ_MAX` of them.
#: Each is kept with the builder of its class (``nodebuild``: the same node, made faster).
_READ: dict[str, tuple[Callable[..., Num | DurationLit | SizeLit], int | float]] = {}
_READ_MAX = 1 << 15


def classify_number(text: str, span: Span) -> Num | DurationLit | SizeLit:
    """``10_000`` → Num, ``1e6`` → Num, ``1h30m`` → DurationLit (hours), ``16GiB`` →
    SizeLit (GiB)."""
    known = _READ.get(text)
    if known is not None:
        return known[0](span, known[1], text)
    node = _classify_number(text, span)
    if len(_READ) < _READ_MAX:
        value = (
            node.value
            if isinstance(node, Num)
            else node.hours
            if isinstance(node, DurationLit)
            else node.gib
        )
        _READ[text] = (nodebuild.LITERAL[type(node)], value)
    return node


def _classify_number(text: str, span: Span) -> Num | DurationLit | SizeLit:
    m = _NUM.fullmatch(text)
    if m is not None:
        return Num(span, _number(text, span), text)
    sci = _SCIENTIFIC.fullmatch(text)
    if sci is not None:
        return _scientific(sci, text, span)
    negative = text.startswith("-")
    body = text[1:] if negative else text
    parts: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(body):
        pm = _PART.match(body, pos)
        if pm is None:  # pragma: no cover - the token regex guarantees the shape
            raise LiteralError(Diagnostic("E010", f"cannot read '{text}'", span))
        parts.append((pm.group(1), pm.group(2), pos + int(negative) + len(pm.group(1))))
        pos = pm.end()
    units = [u for _, u, _ in parts]
    if all(u in DURATION_UNITS for u in units):
        seen: set[str] = set()
        hours = 0.0
        for number, unit, offset in parts:
            if unit in seen:
                raise LiteralError(
                    Diagnostic(
                        "E010",
                        f"unit '{unit}' appears twice in the duration '{text}'",
                        _sub(span, offset, len(unit)),
                    )
                )
            seen.add(unit)
            hours += float(_number(number, span)) * DURATION_UNITS[unit]
        return DurationLit(span, -hours if negative else hours, text)
    if len(parts) == 1 and units[0] in SIZE_UNITS:
        number, unit, _ = parts[0]
        gib = float(_number(number, span)) * SIZE_UNITS[unit]
        return SizeLit(span, -gib if negative else gib, text)
    bad = next(
        (p for p in parts if p[1] not in DURATION_UNITS and p[1] not in SIZE_UNITS),
        parts[-1],
    )
    number, unit, offset = bad
    from exo.compiler.diagnostics import did_you_mean

    help_lines = did_you_mean(unit, [*DURATION_UNITS, *SIZE_UNITS], quote="'")
    if unit in SIZE_UNITS or unit in DURATION_UNITS:
        message = f"cannot mix duration and size units in '{text}'"
    else:
        message = f"unknown unit '{unit}' in '{text}'"
    help_lines.append(
        "to fix: durations use s, m, h, d (e.g. 90s, 1h30m); sizes use B, KB, MB, GB, TB, "
        "KiB, MiB, GiB, TiB (e.g. 512MiB)"
    )
    raise LiteralError(
        Diagnostic("E010", message, _sub(span, offset, len(unit)), tuple(help_lines))
    )


def classify_money(text: str, span: Span) -> MoneyLit:
    return nodebuild.money(span, float(_number(text[1:], _sub(span, 1, len(text) - 1))), text)


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
#: A string body without escapes or doubled braces whose every brace belongs to a
#: well-formed placeholder: most strings, decoded by splitting at the placeholders.
_PLAIN = re.compile(r"[^{}\\]*(?:\{[A-Za-z_][A-Za-z0-9_.\-]*\}[^{}\\]*)*")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


def decode_string(raw: str, span: Span) -> Str:
    """Decode a string token (quotes included) into text and placeholder parts.

    Columns of placeholders are computed from the raw token, so a placeholder
    after an escape still points at the right character.
    """
    assert raw.startswith('"') and raw.endswith('"')
    end = len(raw) - 1
    if _PLAIN.fullmatch(raw, 1, end) is not None:
        if "{" not in raw:
            return Str(span, (raw[1:end],) if end > 1 else ())
        parts: list[str | Placeholder] = []
        pos = 1
        for m in _PLACEHOLDER.finditer(raw, 1, end):
            start = m.start()
            if start > pos:
                parts.append(raw[pos:start])
            parts.append(Placeholder(m.group(1), _sub(span, start + 1, m.end() - start - 2)))
            pos = m.end()
        if pos < end:
            parts.append(raw[pos:end])
        return Str(span, tuple(parts))
    return _decode_escaped(raw, span)


def _decode_escaped(raw: str, span: Span) -> Str:
    """The general case, one character at a time: escapes, ``{{``/``}}``, and errors."""
    parts: list[str | Placeholder] = []
    buf: list[str] = []
    i = 1
    end = len(raw) - 1
    while i < end:
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1]
            if nxt not in _ESCAPES:
                raise LiteralError(
                    Diagnostic(
                        "E007",
                        f"unknown escape '\\{nxt}' in a string",
                        _sub(span, i, 2),
                        ('to fix: the escapes are \\" \\\\ \\n \\t; write \\\\ for a backslash',),
                    )
                )
            buf.append(_ESCAPES[nxt])
            i += 2
        elif c == "{":
            if raw.startswith("{{", i):
                buf.append("{")
                i += 2
                continue
            m = _NAME.match(raw, i + 1)
            if m is None or m.end() >= len(raw) or raw[m.end()] != "}":
                raise LiteralError(
                    Diagnostic(
                        "E011",
                        "'{' in a string must start a placeholder such as {batch_index}",
                        _sub(span, i, 1),
                        ("to fix: write {{ for a literal '{'",),
                    )
                )
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(Placeholder(m.group(0), _sub(span, i + 1, len(m.group(0)))))
            i = m.end() + 1
        elif c == "}":
            if raw.startswith("}}", i):
                buf.append("}")
                i += 2
                continue
            raise LiteralError(
                Diagnostic(
                    "E011",
                    "unmatched '}' in a string",
                    _sub(span, i, 1),
                    ("to fix: write }} for a literal '}'",),
                )
            )
        else:
            buf.append(c)
            i += 1
    if buf:
        parts.append("".join(buf))
    return Str(span, tuple(parts))
