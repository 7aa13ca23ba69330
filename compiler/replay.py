"""Compound attributes seen before, rebuilt from a recipe instead of read again.

A large workflow writes the same attribute again and again, character for character
(``spot = allowed``, ``image = "ghcr.io/acme/vllm-batch:0.6.3"``, the same
``command = [...]`` in every step of a kind: three quarters of the compound
attributes of the generated 10,000-step workflow). Reading one (``TreeBuilder.flat_attr``)
scans its items, decodes each and builds the nodes; for a token on one line, every
node it makes depends only on its text, its line and its column, and the file. So
the second time a text is met its nodes are read as usual and turned into a
:data:`Recipe`: each node's class (its builder), its other fields and its columns
relative to the token's; from the third time on the nodes are made from the recipe
(:func:`replay`), without scanning or decoding. The nodes are the same ones, spans
included (``tests/test_treebuild.py`` compares them at random positions).

Only a token read without a literal error gets a recipe (an error is reported where
it stands, every time), and only one on one line whose lists and maps are not empty
(an empty one's span is not a place in the line).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exo.compiler import nodebuild as B
from exo.compiler.diagnostics import Span
from exo.compiler.syntax import (
    Attr,
    Bool,
    DurationLit,
    ListV,
    MapV,
    MoneyLit,
    Num,
    Placeholder,
    RangeV,
    Ref,
    SizeLit,
    Str,
    Value,
)

#: A literal: its builder (None for a string with placeholders), its start and end
#: columns relative to the token's, and its other fields (a string with placeholders:
#: its parts, and each placeholder's name and columns relative to the string's).
Leaf = tuple[Callable[..., Any] | None, int, int, tuple[Any, ...]]
#: An attribute: its key, the key's columns, the end column, and its value: a leaf, or
#: a list's columns and leaves, or a map's columns and entries (columns, key, value),
#: or a range's columns and its two bounds' leaves.
Recipe = tuple[str, int, int, int, int, Any]
LEAF, LIST, MAP, RANGE = 0, 1, 2, 3
#: A decoded string's parts, and where each placeholder among them sits relative to
#: the opening quote (``None`` for text; ``None`` for the whole when there is none).
Layout = tuple[tuple[str | Placeholder, ...], tuple[tuple[str, int, int] | None, ...] | None]

_SIMPLE: dict[type[Any], tuple[Callable[..., Any], tuple[str, ...]]] = {
    Ref: (B.ref, ("name",)),
    Bool: (B.boolean, ("value",)),
    Num: (B.number, ("value", "text")),
    DurationLit: (B.duration, ("hours", "text")),
    SizeLit: (B.size, ("gib", "text")),
    MoneyLit: (B.money, ("usd", "text")),
}


def layout(node: Str) -> Layout:
    """What of a decoded string does not depend on where it is: its parts, and each
    placeholder's name and columns relative to the string's."""
    if not any(isinstance(p, Placeholder) for p in node.parts):
        return node.parts, None
    column = node.span.column
    holes = tuple(
        (p.name, p.span.column - column, p.span.end_column - column)
        if isinstance(p, Placeholder)
        else None
        for p in node.parts
    )
    return node.parts, holes


def _leaf(node: Value, column: int) -> Leaf | None:
    """The recipe of one literal of a one-line token starting at ``column``."""
    start, end = node.span.column - column, node.span.end_column - column
    kind = type(node)
    if kind is Str:
        assert isinstance(node, Str)
        parts, holes = layout(node)
        if holes is None:
            return B.string, start, end, (parts,)
        return None, start, end, (parts, holes)
    simple = _SIMPLE.get(kind)  # not BadLiteral: a literal with an error
    if simple is None:
        return None
    build, fields = simple
    return build, start, end, tuple(getattr(node, f) for f in fields)


def recipe(attr: Attr, column: int) -> Recipe | None:
    """How to make ``attr`` (read from a one-line token at ``column``) anywhere else."""
    ks, value = attr.key_span, attr.value
    vs = value.span
    start, end = vs.column - column, vs.end_column - column
    made: Any
    if type(value) is ListV:
        leaves = [_leaf(x, column) for x in value.items]
        if not leaves or None in leaves:
            return None
        kind, made = LIST, (start, end, tuple(leaves))
    elif type(value) is MapV:
        entries = []
        for e in value.entries:
            key, val = _leaf(e.key, column), _leaf(e.value, column)
            if key is None or val is None:
                return None
            entries.append((e.span.column - column, e.span.end_column - column, key, val))
        if not entries:
            return None
        kind, made = MAP, (start, end, tuple(entries))
    elif type(value) is RangeV:
        low, high = _leaf(value.low, column), _leaf(value.high, column)
        if low is None or high is None:
            return None
        kind, made = RANGE, (start, end, low, high)
    else:
        kind, made = LEAF, _leaf(value, column)
        if made is None:
            return None
    return attr.key, ks.column - column, ks.end_column - column, end, kind, made


def _made(leaf: Leaf, file: str, line: int, column: int) -> Any:
    build, start, end, rest = leaf
    span = B.span(file, line, column + start, line, column + end)
    if build is not None:
        return build(span, *rest)
    parts, holes = rest
    at = column + start
    return B.string(
        span,
        tuple(
            [  # a list, not a generator: one frame, not one resumption per part
                B.placeholder(h[0], B.span(file, line, at + h[1], line, at + h[2]))
                if h is not None
                else part
                for part, h in zip(parts, holes, strict=True)
            ]
        ),
    )


def replay(made: Recipe, file: str, line: int, column: int) -> Attr:
    """The ``Attr`` that ``made`` describes, read at ``file``, ``line``, ``column``."""
    key, key_start, key_end, end, kind, value = made
    span = B.span
    key_span = span(file, line, column + key_start, line, column + key_end)
    node: Value
    if kind == LEAF:  # ``_made``, inline where it can be: most attributes are one literal
        build, at, to, rest = value
        if build is not None:
            node = build(span(file, line, column + at, line, column + to), *rest)
        else:
            node = _made(value, file, line, column)
    elif kind == LIST:
        start, stop, leaves = value
        items: list[Any] = []
        for build, at, to, rest in leaves:  # ``_made``, inline: most leaves are list items
            if build is not None:
                items.append(build(span(file, line, column + at, line, column + to), *rest))
            else:
                items.append(_made((build, at, to, rest), file, line, column))
        node = B.list_value(span(file, line, column + start, line, column + stop), tuple(items))
    elif kind == RANGE:
        start, stop, low, high = value
        node = B.range_value(
            span(file, line, column + start, line, column + stop),
            _made(low, file, line, column),
            _made(high, file, line, column),
        )
    else:
        start, stop, entries = value
        node = B.map_value(
            span(file, line, column + start, line, column + stop),
            tuple(
                [
                    B.map_entry(
                        span(file, line, column + es, line, column + ee),
                        _made(k, file, line, column),
                        _made(v, file, line, column),
                    )
                    for es, ee, k, v in entries
                ]
            ),
        )
    whole: Span = span(file, line, column + key_start, line, column + end)
    return B.attr(whole, key, key_span, node)
