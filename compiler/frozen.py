"""The base of exo's immutable pydantic values (IR, catalog, plan, calibration, backend
options and run state): frozen, and unknown fields refused; and :func:`find_by`, the
lookup of their parts by name (a step, a step's plan, an instance type)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


T = TypeVar("T")

#: Sequences shorter than this are searched from the start (no index is worth making).
INDEX_FROM = 16
#: Indexes kept (the sequences most recently indexed, held so that their ids stay theirs).
INDEXES_KEPT = 16
_indexes: dict[tuple[int, str], tuple[Sequence[Any], dict[Any, int]]] = {}


def find_by(items: Sequence[T], attr: str, value: object) -> T | None:
    """The first of ``items`` whose ``attr`` is ``value``, or ``None``.

    The lookups of a frozen value's parts by name (``Program.step``, ``Plan.step``,
    ``Catalog.get``, ...) are made in loops over every step: a scan each was
    quadratic (10,000 steps: 5·10^7 comparisons per loop). An index of ``items`` is
    made on the first lookup and kept for as long as the same sequence object is
    asked about. A hit is checked against the item itself, so a list changed in
    place is still answered right (by a scan, which makes the index again)."""
    if len(items) < INDEX_FROM:
        return next((x for x in items if getattr(x, attr) == value), None)
    slot = (id(items), attr)
    kept = _indexes.get(slot)
    if kept is not None and kept[0] is items:
        i = kept[1].get(value)
        if i is not None and i < len(items) and getattr(items[i], attr) == value:
            return items[i]
    found = next((x for x in items if getattr(x, attr) == value), None)
    if kept is None or kept[0] is not items or found is not None:
        _index(items, attr, slot)
    return found


def _index(items: Sequence[Any], attr: str, slot: tuple[int, str]) -> None:
    if len(_indexes) >= INDEXES_KEPT:
        _indexes.pop(next(iter(_indexes)))  # the oldest
    index: dict[Any, int] = {}
    for i, x in enumerate(items):
        index.setdefault(getattr(x, attr), i)
    _indexes[slot] = (items, index)
