"""The syntax tree: immutable records (:func:`~exo.compiler.records.record`), every
node with its source span.

Literal values are already classified (number, duration, size, money, bool)
and strings are split into text and ``{placeholder}`` parts, each with a span,
so that later stages can point at the exact character that is wrong.
"""

from __future__ import annotations

from exo.compiler.diagnostics import Span
from exo.compiler.records import record


@record
class Node:
    """Every node of the syntax tree: where it was written."""

    span: Span


# --- values ---------------------------------------------------------------------------


@record
class Placeholder:
    """A ``{name}`` inside a string."""

    name: str
    span: Span


@record
class Str(Node):
    """A string literal: its text and placeholders."""

    #: Literal text and placeholders in order; ``{{``/``}}`` already decoded to braces.
    parts: tuple[str | Placeholder, ...]

    @property
    def text(self) -> str:
        """The string as written, with placeholders shown as ``{name}``."""
        return "".join(p if isinstance(p, str) else "{" + p.name + "}" for p in self.parts)

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))


@record
class Num(Node):
    """A number as written (``text``) and its value."""

    value: int | float
    text: str


@record
class BadLiteral(Num):
    """Stands in for a literal that could not be read (``8hrs``), whose error is already
    reported: later stages treat it as a number but say nothing more about it."""


@record
class DurationLit(Node):
    """A duration (``90m``, ``2h``) in hours."""

    hours: float
    text: str


@record
class SizeLit(Node):
    """A size (``512MiB``, ``2TB``) in GiB."""

    gib: float
    text: str


@record
class MoneyLit(Node):
    """An amount of money (``$40``) in US dollars."""

    usd: float
    text: str


@record
class Bool(Node):
    """``true`` or ``false``."""

    value: bool


@record
class Ref(Node):
    """A bare identifier in value position: a name, or an enum word like ``cost``."""

    name: str


@record
class ListV(Node):
    """A list ``[a, b, ...]``."""

    items: tuple[Value, ...]


@record
class MapEntry(Node):
    """One ``key: value`` of a map."""

    key: Num | Ref | Str
    value: Value


@record
class MapV(Node):
    """A map ``{ key: value, ... }``."""

    entries: tuple[MapEntry, ...]


@record
class RangeV(Node):
    """A range ``low..high``."""

    low: Num | Ref
    high: Num | Ref


Value = Str | Num | DurationLit | SizeLit | MoneyLit | Bool | Ref | ListV | MapV | RangeV


def describe(value: Value) -> str:
    """How a value reads in a type error: "the number 8", "a list"."""
    match value:
        case Str():
            return f'the string "{value.text}"'
        case Num():
            return f"the number {value.text}"
        case DurationLit():
            return f"the duration {value.text}"
        case SizeLit():
            return f"the size {value.text}"
        case MoneyLit():
            return f"the amount {value.text}"
        case Bool():
            return "true" if value.value else "false"
        case Ref():
            return f"the name '{value.name}'"
        case ListV():
            return "a list"
        case MapV():
            return "a map"
        case RangeV():
            return "a range"


# --- block entries and declarations -----------------------------------------------------


@record
class Attr(Node):
    """``key = value`` inside a block."""

    key: str
    key_span: Span
    value: Value


@record
class Block(Node):
    """A nested block ``key { ... }``."""

    key: str
    key_span: Span
    entries: tuple[Attr | Block, ...]


Entry = Attr | Block


@record
class Import(Node):
    """``import "path" [as alias]``."""

    path: Str
    alias: str | None
    alias_span: Span | None


@record
class Param(Node):
    """``param NAME = value``."""

    name: str
    name_span: Span
    value: Value


@record
class Decl(Node):
    """``workflow`` / ``dataset`` / ``step`` / ``backend`` NAME { ... }."""

    kind: str
    kind_span: Span
    name: str
    name_span: Span
    entries: tuple[Entry, ...]


Item = Import | Param | Decl


@record
class Module(Node):
    """One parsed file: its declarations in order."""

    file: str
    items: tuple[Item, ...]
