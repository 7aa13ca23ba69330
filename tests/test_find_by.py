"""``frozen.find_by``: the lookups of a value's parts by name, indexed once per sequence."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exo.compiler import frozen
from exo.compiler.frozen import find_by


@dataclass
class Named:
    name: str
    n: int = 0


@pytest.mark.parametrize("size", [3, 40])
def test_finds_the_first_with_the_value_or_none(size: int) -> None:
    items = (*(Named(f"s{i}", i) for i in range(size)), Named("s1", -1))
    assert find_by(items, "name", "s1") == Named("s1", 1)  # the first, as a scan finds it
    assert find_by(items, "name", f"s{size - 1}") == Named(f"s{size - 1}", size - 1)
    assert find_by(items, "name", "absent") is None
    assert find_by(items, "n", -1) == Named("s1", -1)  # another attribute, its own index


def test_a_list_changed_in_place_is_answered_right() -> None:
    items = [Named(f"s{i}") for i in range(40)]
    assert find_by(items, "name", "s5") is items[5]
    items.insert(0, Named("new"))
    items[1] = Named("other")
    assert find_by(items, "name", "s5") is items[6]
    assert find_by(items, "name", "new") is items[0]
    assert find_by(items, "name", "s0") is None
    del items[:10]
    assert find_by(items, "name", "s5") is None
    assert find_by(items, "name", "s20") is items[11]


def test_equal_sequences_are_indexed_apart() -> None:
    a = tuple(Named(f"s{i}", 1) for i in range(40))
    b = tuple(Named(f"s{i}", 2) for i in range(40))
    assert find_by(a, "name", "s7") is a[7]
    assert find_by(b, "name", "s7") is b[7]


def test_only_the_newest_indexes_are_kept() -> None:
    seqs = [tuple(Named(f"s{i}") for i in range(20)) for _ in range(frozen.INDEXES_KEPT + 5)]
    for seq in seqs:
        assert find_by(seq, "name", "s3") is seq[3]
    assert len(frozen._indexes) <= frozen.INDEXES_KEPT
    assert find_by(seqs[0], "name", "s19") is seqs[0][19]  # indexed again
