"""Checks of the lowered program as a whole: the graph, item counts, hardware.

Each is a pure function of IR values and the source map (:mod:`.sourcemap`), which
gives every diagnostic its place in the source; each returns what it computed and
the diagnostics it found.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from exo.compiler.accelerators import accelerator_spec
from exo.compiler.catalog import Catalog, builtin_catalogs_offering
from exo.compiler.diagnostics import Diagnostic, DiagnosticSink, Span, suggest
from exo.compiler.hints import missing_entry_warnings, quota_warnings
from exo.compiler.ir import CPU_KEY, Dataset, Step
from exo.compiler.sourcemap import SourceMap
from exo.compiler.toposort import kahn_order

Edge = tuple[str, str, Span]


def step_edges(steps: Mapping[str, Step], smap: SourceMap) -> list[Edge]:
    """Every ``input`` (from a step) and ``after`` edge between lowered steps, where written."""
    edges: list[Edge] = []
    for name, step in steps.items():
        if step.input is not None and step.input.kind == "step" and step.input.name in steps:
            edges.append((step.input.name, name, _at(smap.step(name, "input"))))
        for src in step.after:
            if src in steps:
                edges.append((src, name, _at(smap.step(name, "after", src))))
    return edges


def _at(span: Span | None) -> Span:
    assert span is not None, "the lowering pass marks every edge it lowers"
    return span


def dag_order(
    decl_order: Mapping[str, int], steps: Iterable[str], edges: Iterable[Edge]
) -> tuple[list[str] | None, tuple[Diagnostic, ...]]:
    """The steps in topological order (declaration order for ties), or None after
    reporting every cycle (E501) and self-dependency (E502).

    Linear (:func:`.toposort.kahn_order`); the graph library is only loaded to spell out
    a cycle when there is one."""
    sink = DiagnosticSink()
    index = {n: i for i, n in enumerate(steps)}
    nodes = list(index)
    spans: dict[tuple[str, str], Span] = {}
    for a, b, span in edges:
        if a == b:
            sink.error(
                "E502",
                f"step '{b}' depends on itself",
                span,
                help=["to fix: remove it from its own input/after"],
            )
            continue
        if (a, b) in spans:
            continue
        spans[(a, b)] = span
        for n in (a, b):
            if n not in index:
                index[n] = len(nodes)
                nodes.append(n)
    successors: list[list[int]] = [[] for _ in nodes]
    indegree = [0] * len(nodes)
    for a, b in spans:
        successors[index[a]].append(index[b])
        indegree[index[b]] += 1
    order = kahn_order(successors, indegree, [decl_order.get(n, 0) for n in nodes])
    if len(order) == len(nodes):
        return [nodes[i] for i in order], tuple(sink.items)
    _report_cycles(sink, decl_order, nodes, spans)
    return None, tuple(sink.items)


def _report_cycles(
    sink: DiagnosticSink,
    decl_order: Mapping[str, int],
    nodes: list[str],
    spans: dict[tuple[str, str], Span],
) -> None:
    """E501 for every cycle, spelt out from its first-declared step."""
    import networkx as nx

    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(spans)
    for comp in nx.strongly_connected_components(g):
        if len(comp) < 2:
            continue
        sub = g.subgraph(comp)
        start = min(comp, key=lambda n: decl_order.get(n, 0))
        cycle = nx.find_cycle(sub, source=start)
        names = [e[0] for e in cycle] + [cycle[0][0]]
        first = min((spans[(e[0], e[1])] for e in cycle), key=lambda s: (s.file, s.line, s.column))
        sink.error(
            "E501",
            f"dependency cycle: {' -> '.join(names)}",
            first,
            help=["to fix: remove one of these dependencies (input or after) to break the cycle"],
        )


def wanted_steps(entry_key: str, steps: Mapping[str, Step]) -> set[str]:
    """Steps of the entry file, and the imported steps they depend on."""
    wanted = {n for n, s in steps.items() if s.loc is not None and s.loc.file == entry_key}
    if len(wanted) == len(steps):
        return wanted  # a workflow without imported steps: nothing more to reach
    stack = list(wanted)
    while stack:
        for p in steps[stack.pop()].predecessors():
            if p in steps and p not in wanted:
                wanted.add(p)
                stack.append(p)
    return wanted


def with_item_counts(
    order: list[str],
    wanted: set[str],
    steps: Mapping[str, Step],
    datasets: Mapping[str, Dataset],
    misspelt: frozenset[str],
    smap: SourceMap,
) -> tuple[list[Step], tuple[Diagnostic, ...]]:
    """The wanted steps in topological order, each with its item count propagated along
    ``input``; E306 for a throughput step without one. A step with an unknown attribute
    (perhaps a misspelt ``input`` or ``items``) has an unknown count rather than none,
    and so have the steps that read from it: no knock-on E306 for them."""
    sink = DiagnosticSink()
    items: dict[str, int | None] = {}
    unknown: set[str] = set()
    ordered: list[Step] = []
    for name in order:
        if name not in wanted:
            continue
        step = steps[name]
        n = step.items
        if n is None and step.input is not None:
            if step.input.kind == "dataset":
                n = datasets[step.input.name].items
            else:
                n = items.get(step.input.name)
                if n is None and step.input.name in unknown:
                    unknown.add(name)
        if n is None and name in misspelt:
            unknown.add(name)
        items[name] = n
        if (
            step.throughput is not None
            and n is None
            and name not in unknown
            and smap.step(name, "items") is None
        ):
            sink.error(
                "E306",
                f"step '{name}' has a throughput but no item count",
                smap.step(name),
                help=[
                    "to fix: set items = N, or take input from a dataset with items "
                    "(or from a step that has them)",
                ],
            )
        ordered.append(step.model_copy(update={"items": n}) if n != step.items else step)
    return ordered, tuple(sink.items)


def used_datasets(
    datasets: Mapping[str, Dataset], steps: list[Step], entry_key: str
) -> dict[str, Dataset]:
    """Datasets of the entry file, and the imported datasets the workflow reads."""
    used = {s.input.name for s in steps if s.input is not None and s.input.kind == "dataset"}
    return {
        n: d
        for n, d in sorted(datasets.items())
        if n in used or (d.loc is not None and d.loc.file == entry_key)
    }


def check_hardware(
    steps: list[Step],
    misspelt: frozenset[str],
    smap: SourceMap,
    catalog: Catalog,
    *,
    lowered_cleanly: bool,
) -> tuple[Diagnostic, ...]:
    """Accelerators, instance types, perf keys and quotas must exist in the catalog.

    "Will not be considered" (E308) only for a file that lowered cleanly: after an
    error (a refused throughput or duration entry) it would only repeat that error."""
    sink = DiagnosticSink()
    accels = catalog.accelerators()
    types = catalog.instance_types()
    offered = sorted(accels | types)
    memo: dict[tuple[object, ...], dict[str, list[str]]] = {}
    usable: dict[tuple[str, ...], set[str]] = {}
    for step in steps:
        for name in step.accelerators:
            if name not in accels and name not in types:
                span = smap.step(step.name, "accelerators", name)
                _not_offered(sink, name, offered, catalog, span)
        can = usable.get(step.accelerators)
        if can is None:
            can = usable[step.accelerators] = _usable(step.accelerators, catalog)
        _check_perf_keys(sink, step, step.name in misspelt, smap, catalog, can, accels, types)
        if lowered_cleanly and step.name not in misspelt:
            spans = {
                a: s
                for a in step.accelerators
                if (s := smap.step(step.name, "accelerators", a)) is not None
            }
            name_span = _at(smap.step(step.name))
            sink.add(missing_entry_warnings(step, catalog, name_span, spans, memo))
    quota_spans = smap.below(("workflow",), "quota")
    for key, span in quota_spans.items():
        if key != CPU_KEY and key not in accels:
            _not_offered(sink, key, [*sorted(accels), CPU_KEY], catalog, span, what="quota")
    sink.add(quota_warnings(steps, catalog, quota_spans))
    return tuple(sink.items)


def _usable(accelerators: tuple[str, ...], catalog: Catalog) -> set[str]:
    """The hardware a step listing ``accelerators`` can run on: those and the instance
    types that carry them, or a CPU-only step's ``cpu`` and the types without any."""
    if not accelerators:
        return {CPU_KEY} | {i.instance_type for i in catalog.instances if i.accelerator is None}
    return set(accelerators) | {
        i.instance_type for i in catalog.instances if i.accelerator in accelerators
    }


def _check_perf_keys(
    sink: DiagnosticSink,
    step: Step,
    misspelt: bool,
    smap: SourceMap,
    catalog: Catalog,
    usable: set[str],
    accels: set[str],
    types: set[str],
) -> None:
    """Each throughput or duration key must be hardware the step can run on (E307, E403);
    ``usable``: what the step can run on (:func:`_usable`)."""
    keys: set[str] = set()
    if step.throughput is not None:
        keys |= step.throughput.keys()
    if step.duration is not None:
        keys |= set(step.duration.per_key)
    for key in sorted(keys):
        if key in usable or misspelt:
            continue
        span = smap.step(step.name, "perf", key)
        if key in accels or key in types or key == CPU_KEY:
            what = "accelerators" if step.accelerators else "a CPU-only step"
            hint = (
                f"to fix: add {key} to accelerators, or remove this entry"
                if step.accelerators
                else "to fix: a CPU-only step measures throughput as cpu = N"
            )
            sink.error(
                "E307",
                f"'{key}' has a performance entry but the step cannot run on it ({what})",
                span,
                help=[hint],
            )
        else:
            _not_offered(sink, key, sorted(usable), catalog, span)


def _not_offered(
    sink: DiagnosticSink,
    name: str,
    offered: list[str],
    catalog: Catalog,
    span: Span | None,
    *,
    what: str = "accelerator or instance type",
) -> None:
    """E403. A name another built-in catalog offers is not misspelt: say where it is
    offered instead of suggesting a neighbour by spelling (``A10G`` is not ``A100``)."""
    spec = accelerator_spec(name)
    canonical = spec.name if spec is not None and spec.name != name else None
    elsewhere = [
        c
        for c in builtin_catalogs_offering(canonical or name)
        if c != catalog.name and not (canonical and canonical in offered)
    ]
    if canonical is not None and canonical in offered:
        help = [f"did you mean `{canonical}`?"]
    elif elsewhere:
        shown = canonical or name
        where = ", ".join(f"`{c}`" for c in elsewhere)
        help = [
            f"`{shown}` is offered by the built-in catalog{'s' if len(elsewhere) > 1 else ''} "
            f"{where}: use it (catalog = {json.dumps(elsewhere[0])}, or --catalog "
            f"{elsewhere[0]}), or pick what this catalog offers",
        ]
    elif spec is not None:
        help = [f"no built-in catalog offers `{spec.name}`; add it to a catalog CSV of your own"]
    else:
        match = suggest(name, offered)
        help = [f"did you mean `{match}`?"] if match else []
    sink.error(
        "E403",
        f"{what} '{name}' is not offered by the catalog '{catalog.name}'",
        span,
        help=[*help, "offered: " + ", ".join(offered)],
    )
