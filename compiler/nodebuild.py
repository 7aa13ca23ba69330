"""Fast constructors for the syntax tree's frozen dataclasses and their spans.

A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__``
(a global lookup and a Python-level call per field), and a large file makes several
nodes and spans a token (about a million of them for a 10,000-step workflow). A
:func:`builder` makes the same value by storing each field through the class's own
slot descriptors, in about 60% of the time. The values are the dataclass's own:
equal, hashed, printed and still frozen as if ``__init__`` had made them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from exo.compiler.diagnostics import Span
from exo.compiler.syntax import (
    Attr,
    Block,
    Bool,
    Decl,
    DurationLit,
    ListV,
    MapEntry,
    MapV,
    MoneyLit,
    Num,
    Placeholder,
    RangeV,
    Ref,
    SizeLit,
    Str,
)

T = TypeVar("T")


def builder(cls: type[T], fields: tuple[str, ...]) -> Callable[..., T]:
    """``cls(*values)`` for a frozen, slotted dataclass, through its slots.

    Only for classes whose ``__init__`` does nothing else (no defaults, no
    ``__post_init__``): ``fields`` must be the class's fields, in order, which is
    checked here, so a field added to a node is never left unset."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if names != fields or hasattr(cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} is not built from {fields}")
    sets = [getattr(cls, name).__set__ for name in fields]
    made = _BY_WIDTH.get(len(sets))
    if made is None:
        raise RuntimeError(f"no builder for {len(sets)} fields")
    build: Callable[..., T] = made(cls, *sets)
    return build


def _two(cls: type[T], s0: Any, s1: Any) -> Callable[..., T]:
    new = object.__new__

    def build2(a: Any, b: Any) -> T:
        obj = new(cls)
        s0(obj, a)
        s1(obj, b)
        return obj

    return build2


def _three(cls: type[T], s0: Any, s1: Any, s2: Any) -> Callable[..., T]:
    new = object.__new__

    def build3(a: Any, b: Any, c: Any) -> T:
        obj = new(cls)
        s0(obj, a)
        s1(obj, b)
        s2(obj, c)
        return obj

    return build3


def _four(cls: type[T], s0: Any, s1: Any, s2: Any, s3: Any) -> Callable[..., T]:
    new = object.__new__

    def build4(a: Any, b: Any, c: Any, d: Any) -> T:
        obj = new(cls)
        s0(obj, a)
        s1(obj, b)
        s2(obj, c)
        s3(obj, d)
        return obj

    return build4


def _five(cls: type[T], s0: Any, s1: Any, s2: Any, s3: Any, s4: Any) -> Callable[..., T]:
    new = object.__new__

    def build5(a: Any, b: Any, c: Any, d: Any, e: Any) -> T:
        obj = new(cls)
        s0(obj, a)
        s1(obj, b)
        s2(obj, c)
        s3(obj, d)
        s4(obj, e)
        return obj

    return build5


def _six(cls: type[T], s0: Any, s1: Any, s2: Any, s3: Any, s4: Any, s5: Any) -> Callable[..., T]:
    new = object.__new__

    def build6(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any) -> T:
        obj = new(cls)
        s0(obj, a)
        s1(obj, b)
        s2(obj, c)
        s3(obj, d)
        s4(obj, e)
        s5(obj, f)
        return obj

    return build6


_BY_WIDTH: dict[int, Callable[..., Any]] = {2: _two, 3: _three, 4: _four, 5: _five, 6: _six}

# The nodes a file makes (one or more a token) and the spans of all of them.
span = builder(Span, ("file", "line", "column", "end_line", "end_column"))
string = builder(Str, ("span", "parts"))
ref = builder(Ref, ("span", "name"))
boolean = builder(Bool, ("span", "value"))
number = builder(Num, ("span", "value", "text"))
duration = builder(DurationLit, ("span", "hours", "text"))
size = builder(SizeLit, ("span", "gib", "text"))
money = builder(MoneyLit, ("span", "usd", "text"))
list_value = builder(ListV, ("span", "items"))
map_value = builder(MapV, ("span", "entries"))
map_entry = builder(MapEntry, ("span", "key", "value"))
range_value = builder(RangeV, ("span", "low", "high"))
attr = builder(Attr, ("span", "key", "key_span", "value"))
block = builder(Block, ("span", "key", "key_span", "entries"))
decl = builder(Decl, ("span", "kind", "kind_span", "name", "name_span", "entries"))
placeholder = builder(Placeholder, ("name", "span"))

#: The builder of each literal class that :func:`.literals.classify_number` returns.
LITERAL: dict[type[Any], Callable[..., Any]] = {Num: number, DurationLit: duration, SizeLit: size}
