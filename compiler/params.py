"""Params that refer to params: cycles (E503) and chains too deep to follow (E504).

A param's value may name another param (``param a = b``), hold one as a
placeholder (``param p = "{root}/x"``) or list some (``param xs = [a, b]``).
Before any value is looked up, the references between all params of all
modules form a graph; a cycle in it would make a lookup loop forever, and a very
long chain would exhaust the stack. Both are reported once, with the chain spelt
out, and the params involved are *poisoned*: looking one up gives nothing, and
type errors at the places that use it are dropped (they would only repeat the
cycle). Linear in the number of params and references.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import field
from types import MappingProxyType
from typing import TYPE_CHECKING

from exo.compiler.diagnostics import Diagnostic, DiagnosticSink, Span
from exo.compiler.records import record
from exo.compiler.scopes import ParamKey, Scopes, resolve
from exo.compiler.syntax import ListV, MapV, Param, RangeV, Ref, Str, Value

if TYPE_CHECKING:
    import networkx as nx

#: Longest chain of params naming params (``a = b``, ``b = c`` ... is a chain of 3).
MAX_PARAM_DEPTH = 16


@record
class Params:
    """The params' values as lowering reads them."""

    #: Values given with ``-p`` (each param's declared value is in its declaration).
    values: Mapping[ParamKey, Value] = field(default_factory=lambda: MappingProxyType({}))
    #: Params in a cycle or an over-long chain, or leading into one: nothing to look up.
    poisoned: frozenset[ParamKey] = frozenset()


def references(value: Value) -> Iterator[tuple[str, Span]]:
    """Every name ``value`` may look up as a param, with where it is written."""
    stack = [value]
    while stack:
        v = stack.pop()
        match v:
            case Ref():
                yield v.name, v.span
            case Str():
                for p in v.placeholders:
                    yield p.name, p.span
            case ListV():
                stack.extend(v.items)
            case MapV():
                stack.extend(e.value for e in v.entries)
            case RangeV():
                stack.extend((v.low, v.high))
            case _:
                pass


def check_params(
    scopes: Scopes, params: Params
) -> tuple[frozenset[ParamKey], tuple[Diagnostic, ...]]:
    """Report cycles and over-long chains; return every param in one (or leading into one).

    Most programs have no param naming a param: then there is nothing to check, and the
    graph library is not loaded."""
    named: dict[ParamKey, tuple[str, Param]] = {}
    nodes: dict[ParamKey, None] = {}  # in the order first seen, as a param or as a reference
    edges: list[tuple[ParamKey, ParamKey]] = []
    for scope in scopes.by_module.values():
        for name, decl in scope.decls.items():
            if not isinstance(decl, Param):
                continue
            key = (scope.module.key, name)
            named[key] = (scope.prefix + name, decl)
            nodes.setdefault(key)
            for ref, _span in references(params.values.get(key, decl.value)):
                r = resolve(scopes, scope, ref)
                if r is not None and isinstance(r.target, Param):
                    nodes.setdefault(r.key)
                    edges.append((key, r.key))
    if not edges:
        return frozenset(), ()
    import networkx as nx

    sink = DiagnosticSink()
    graph: nx.DiGraph[ParamKey] = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    poisoned: set[ParamKey] = set()
    order = {node: i for i, node in enumerate(graph.nodes)}
    for comp in nx.strongly_connected_components(graph):
        first = min(comp, key=order.__getitem__)
        if len(comp) == 1 and not graph.has_edge(first, first):
            continue
        poisoned |= comp
        sub = graph.subgraph(comp)
        back = min(sub.successors(first), key=order.__getitem__)
        cycle = [first, *nx.shortest_path(sub, back, first)]
        names = [named[n][0] for n in cycle]
        sink.error(
            "E503",
            f"parameter cycle: {' -> '.join(names)}",
            named[first][1].name_span,
            help=["to fix: give one of these params a value instead of another param's name"],
        )
    poisoned |= _too_deep(sink, graph, named, poisoned)
    # A param that leads into a cycle cannot be looked up either (reported at the cycle).
    stack = list(poisoned)
    while stack:
        for p in graph.predecessors(stack.pop()):
            if p not in poisoned:
                poisoned.add(p)
                stack.append(p)
    return frozenset(poisoned), tuple(sink.items)


def _too_deep(
    sink: DiagnosticSink,
    graph: nx.DiGraph[ParamKey],
    named: dict[ParamKey, tuple[str, Param]],
    cyclic: set[ParamKey],
) -> set[ParamKey]:
    """Params at the head of a chain longer than :data:`MAX_PARAM_DEPTH` (reported once each)."""
    import networkx as nx

    dag = graph.subgraph(n for n in graph.nodes if n not in cyclic)
    depth: dict[ParamKey, int] = {}
    for node in reversed(list(nx.topological_sort(dag))):
        below = [depth[s] for s in dag.successors(node) if s in depth]
        depth[node] = 1 + max(below, default=0)
    out = {n for n, d in depth.items() if d > MAX_PARAM_DEPTH}
    for node in sorted(out, key=lambda n: named[n][1].name_span.line):
        if depth[node] != MAX_PARAM_DEPTH + 1:
            continue  # reported at the param where the chain first gets too long
        name, param = named[node]
        sink.error(
            "E504",
            f"param '{name}' starts a chain of {depth[node]} params naming params; "
            f"at most {MAX_PARAM_DEPTH} are followed",
            param.name_span,
            help=["to fix: give a param in the chain its value directly"],
        )
    return out
