"""Fast constructors for the syntax tree's nodes and their spans.

A large file makes several nodes and spans a token (about a million of them for a
10,000-step workflow), so how each is made counts:

- The nodes are records (``records.py``): slotted dataclasses, not frozen at run time,
  whose ``__init__`` only stores each field into its slot. :func:`builder` checks that a
  class is such a record, built from the fields the parser passes in order, and returns
  the class itself (a call of the class is as fast as any Python-level builder).
- A :class:`Span` is truly frozen (hashed and compared by value): its dataclass
  ``__init__`` stores each field through ``object.__setattr__`` (a global lookup and a
  Python-level call per field). :func:`span` fills a draft of the same layout (the same
  slots, not frozen) with plain stores, then makes it a ``Span`` by assigning its
  ``__class__``, which Python allows between classes of the same layout: about half the
  instructions of storing each field through ``Span``'s slot descriptors
  (:func:`_span_by_slots`, used if the layouts ever differ) and a third of
  ``Span(...)``'s. The value is
  ``Span``'s own: equal, hashed, printed and still frozen as if ``__init__`` had made it.
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


def _check_fields(cls: type[Any], fields: tuple[str, ...]) -> None:
    names = tuple(f.name for f in dataclasses.fields(cls))
    if names != fields or hasattr(cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} is not built from {fields}")


def builder(cls: type[T], fields: tuple[str, ...]) -> Callable[..., T]:
    """``cls(*values)`` for a record (``records.py``): the class itself, once checked.

    ``fields`` must be the class's fields, in order, without defaults, and the class
    not frozen at run time (its ``__init__`` only stores them): checked here, so that a
    field added to a node or a class made frozen is never missed by the parser, which
    passes the fields by position."""
    _check_fields(cls, fields)
    params = getattr(cls, "__dataclass_params__", None)
    plain = all(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
    )
    if params is None or params.frozen or not plain:
        raise RuntimeError(f"{cls.__name__} is not a record built from {fields} alone")
    return cls


_SPAN_FIELDS = ("file", "line", "column", "end_line", "end_column")
_new = object.__new__


class _SpanDraft:
    """A span being made: ``Span``'s slots, in order, not frozen."""

    __slots__ = _SPAN_FIELDS


def _span_by_class(file: str, line: int, column: int, end_line: int, end_column: int) -> Span:
    """``Span(file, line, column, end_line, end_column)``: a draft filled, then made a
    ``Span``."""
    s: Any = _SpanDraft()  # a call of the class: cheaper than ``object.__new__(cls)``
    s.file = file
    s.line = line
    s.column = column
    s.end_line = end_line
    s.end_column = end_column
    s.__class__ = Span
    return s  # type: ignore[no-any-return]


def _span_by_slots() -> Callable[..., Span]:
    """``Span(...)`` through ``Span``'s slot descriptors (where the draft cannot become a
    ``Span``)."""
    s0, s1, s2, s3, s4 = (getattr(Span, name).__set__ for name in _SPAN_FIELDS)

    def span(file: str, line: int, column: int, end_line: int, end_column: int) -> Span:
        obj = _new(Span)
        s0(obj, file)
        s1(obj, line)
        s2(obj, column)
        s3(obj, end_line)
        s4(obj, end_column)
        return obj

    return span


def span_builder() -> Callable[..., Span]:
    """The fastest way to make a ``Span`` here that makes the same value as ``Span(...)``
    (checked once, on a sample)."""
    _check_fields(Span, _SPAN_FIELDS)
    if getattr(Span, "__slots__", None) == _SPAN_FIELDS:
        try:
            made = _span_by_class("f", 1, 2, 3, 4)
        except TypeError:  # the layouts differ after all
            pass
        else:
            sample = Span("f", 1, 2, 3, 4)
            if type(made) is Span and made == sample and repr(made) == repr(sample):
                return _span_by_class
    return _span_by_slots()


# The nodes a file makes (one or more a token) and the spans of all of them.
span = span_builder()
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
