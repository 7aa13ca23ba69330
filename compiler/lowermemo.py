"""What an attribute's value is, without its places: the key under which lowering
remembers a step attribute's reading.

A large workflow writes the same values in thousands of steps (``spot = allowed``,
``replicas = 1..4``, the ``image`` and ``command`` of a kind of step). A step
attribute whose reader depends only on the value written, the scope it is read in and
the params (``Attribute.memo``) is read once per distinct value and scope, when that
reading reported nothing (no diagnostic, no use of a bad literal or of a param in a
cycle, no part marked in the source map): the next step that writes the same value
gets the same IR value. Syntax nodes are compared by identity (they carry spans), so
the key is built from what the value holds: the kind of each node and its text.
"""

from __future__ import annotations

from collections.abc import Hashable

from exo.compiler.syntax import (
    Bool,
    DurationLit,
    ListV,
    MoneyLit,
    Num,
    RangeV,
    Ref,
    SizeLit,
    Str,
    Value,
)


def value_key(v: Value) -> Hashable | None:
    """The value ``v`` holds, as a hashable key (equal keys: equal values as read), or
    None for a value not worth remembering (a map)."""
    if isinstance(v, Str):
        return (Str, _parts_key(v))
    if isinstance(v, Ref):
        return (Ref, v.name)
    if isinstance(v, Num | DurationLit | SizeLit | MoneyLit):
        return (type(v), v.text)  # the value is a function of the kind and the text
    if isinstance(v, ListV):
        keys: list[Hashable] = []
        for item in v.items:
            k = _parts_key(item) if isinstance(item, Str) else value_key(item)
            if k is None:
                return None
            keys.append(k)
        return (ListV, tuple(keys))
    if isinstance(v, RangeV):
        return (RangeV, value_key(v.low), value_key(v.high))
    if isinstance(v, Bool):
        return (Bool, v.value)
    return None


def _parts_key(s: Str) -> Hashable:
    """A string's parts, each placeholder as a 1-tuple of its name (a text part is a
    ``str``, so the two never compare equal)."""
    parts = s.parts
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts
    return tuple([p if isinstance(p, str) else (p.name,) for p in parts])
