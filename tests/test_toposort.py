"""The one topological sort, against the graph library's (the order it replaced)."""

from __future__ import annotations

import random

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exo.backends.runtime.runs import downstream
from exo.compiler.toposort import order_by_needs


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[str, list[str]]]:
    """Steps in a declared order, each needing some others (not only earlier ones)."""
    n = draw(st.integers(1, 12))
    rank = draw(st.permutations(range(n)))  # a hidden topological order
    names = [f"s{i}" for i in range(n)]
    out = []
    for i in range(n):
        earlier = [names[j] for j in range(n) if rank[j] < rank[i]]
        needs = draw(st.lists(st.sampled_from(earlier), max_size=4)) if earlier else []
        out.append((names[i], needs))
    return out


def _graph(needs: list[tuple[str, list[str]]]) -> nx.DiGraph[str]:
    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(name for name, _ in needs)
    g.add_edges_from((n, name) for name, before in needs for n in before)
    return g


@settings(max_examples=200, deadline=None)
@given(dags())
def test_order_is_networkx_lexicographical_order_by_declaration(
    needs: list[tuple[str, list[str]]],
) -> None:
    index = {name: i for i, (name, _) in enumerate(needs)}
    expected = list(nx.lexicographical_topological_sort(_graph(needs), key=index.__getitem__))
    assert order_by_needs(needs) == expected


@settings(max_examples=200, deadline=None)
@given(dags())
def test_downstream_is_networkx_descendants(needs: list[tuple[str, list[str]]]) -> None:
    g = _graph(needs)
    assert downstream(needs) == {n: set(nx.descendants(g, n)) for n in g.nodes}


def test_a_cycle_is_refused_and_unknown_needs_are_ignored() -> None:
    with pytest.raises(ValueError, match="cycle"):
        order_by_needs([("a", ["b"]), ("b", ["a"])])
    assert order_by_needs([("b", ["a", "x"]), ("a", []), ("c", [])]) == ["a", "b", "c"]
    shuffled = [(f"s{i}", []) for i in range(50)]
    random.Random(0).shuffle(shuffled)
    assert order_by_needs(shuffled) == [name for name, _ in shuffled]
