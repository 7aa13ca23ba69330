"""Name resolution and lowering: parsed modules → the IR (:class:`Program`).

Every declaration of every loaded module is checked, so that all errors of a
program are reported at once. Imported modules contribute datasets, params
and steps under their alias (``corpora.wiki``); an imported step joins the
workflow only when a step of the entry file depends on it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exo.compiler import limits as L
from exo.compiler import values as V
from exo.compiler.diagnostics import (
    CompileError,
    Diagnostic,
    DiagnosticSink,
    Span,
    did_you_mean,
    excerpt,
    suggest,
)
from exo.compiler.ir import (
    CPU_KEY,
    RUNTIME_PLACEHOLDERS,
    Dataset,
    Loc,
    ParamValue,
    Program,
    Quota,
    Step,
    Workflow,
)
from exo.compiler.modules import LoadedModule, LoadedProgram
from exo.compiler.names import decl_name_problem, path_problem
from exo.compiler.params import MAX_PARAM_DEPTH, check_params
from exo.compiler.parser import parse_value
from exo.compiler.syntax import (
    Attr,
    BadLiteral,
    Block,
    Bool,
    Decl,
    DurationLit,
    Entry,
    ListV,
    MapV,
    MoneyLit,
    Num,
    Param,
    Ref,
    SizeLit,
    Str,
    Value,
)

DECL_KINDS = ("workflow", "dataset", "step", "backend")

WORKFLOW_ATTRS = ("deadline", "budget", "objective", "catalog", "confidence", "quota")
DATASET_ATTRS = ("uri", "items")
STEP_ATTRS = (
    "input", "after", "items", "output", "image", "command", "env", "secrets",
    "accelerators", "gpus", "cpu", "memory", "throughput", "duration", "startup",
    "batch_sizes", "replicas", "model_memory", "memory_per_item", "spot", "checkpoint",
    "retries", "preemption_retries", "timeout",
)  # fmt: skip
BLOCK_ATTRS = {"quota", "env", "throughput", "duration"}


@dataclass
class Scope:
    module: LoadedModule
    #: Prefix of qualified names from this module ("" for the entry file).
    prefix: str
    decls: dict[str, Decl | Param] = field(default_factory=dict)


@dataclass
class _Resolved:
    qualified: str
    target: Decl | Param
    scope: Scope


class Lowerer:
    def __init__(self, prog: LoadedProgram, overrides: Mapping[str, str]) -> None:
        self.prog = prog
        self.overrides = dict(overrides)
        self.sink = DiagnosticSink()
        self.scopes: dict[str, Scope] = {}
        self.param_values: dict[int, Value] = {}  # id(Param) -> effective value
        self.decl_order: dict[str, int] = {}
        #: Where ``catalog = ...`` was written, for "catalog not found".
        self.catalog_span: Span | None = None
        #: Where each quota entry was written, for "not offered by the catalog".
        self.quota_spans: dict[str, Span] = {}
        #: Where a param whose value is a bad literal was used: its error is reported
        #: at the literal, so nothing more is said here.
        self.bad_literal_uses: list[Span] = []
        #: ``id`` of the params in a cycle or an over-long chain (:mod:`.params`).
        self.poisoned: set[int] = set()
        #: Where a poisoned param was used: type errors there only repeat E503/E504.
        self.poisoned_uses: set[Span] = set()

    # --- scopes -------------------------------------------------------------------------

    def build_scopes(self) -> None:
        prefixes: dict[str, str] = {self.prog.entry: ""}
        queue = [self.prog.entry]
        while queue:
            key = queue.pop(0)
            for alias, target in sorted(self.prog.modules[key].imports.items()):
                if target not in prefixes and target in self.prog.modules:
                    prefixes[target] = prefixes[key] + alias + "."
                    queue.append(target)
        for key, prefix in prefixes.items():
            module = self.prog.modules[key]
            scope = Scope(module, prefix)
            self.scopes[key] = scope
            for item in module.syntax.items:
                if isinstance(item, Decl):
                    if item.kind not in DECL_KINDS:
                        self.sink.error(
                            "E105",
                            f"unknown declaration '{item.kind}'",
                            item.kind_span,
                            help=[
                                *did_you_mean(item.kind, DECL_KINDS),
                                "declarations are: workflow, dataset, step, backend, param, import",
                            ],
                        )
                        continue
                    if item.kind in ("workflow", "backend"):
                        continue
                    self._declare(scope, item.name, item, item.name_span, item.kind)
                elif isinstance(item, Param):
                    self._declare(scope, item.name, item, item.name_span, "param")

    def _declare(self, scope: Scope, name: str, node: Decl | Param, span: Span, kind: str) -> None:
        self.check_name(kind, name, span)
        first = scope.decls.get(name)
        if first is not None:
            fkind = first.kind if isinstance(first, Decl) else "param"
            fspan = first.name_span
            same = "" if fkind == kind else f" (already a {fkind})"
            self.sink.error(
                "E102",
                f"duplicate {kind} '{name}'{same} (first defined at line {fspan.line})",
                span,
                help=["to fix: rename one of them; every name in a file is unique"],
            )
            return
        if name in scope.module.imports:
            self.sink.error(
                "E102",
                f"'{name}' is already the name of an import",
                span,
            )
            return
        scope.decls[name] = node
        self.decl_order.setdefault(scope.prefix + name, len(self.decl_order))

    def resolve(self, scope: Scope, name: str, depth: int = 0) -> _Resolved | None:
        if name in scope.decls:
            return _Resolved(scope.prefix + name, scope.decls[name], scope)
        if depth > 8:
            return None
        for i, ch in enumerate(name):
            if ch == "." and name[:i] in scope.module.imports:
                target = self.scopes.get(scope.module.imports[name[:i]])
                if target is not None:
                    return self.resolve(target, name[i + 1 :], depth + 1)
        return None

    def visible_names(self, scope: Scope, kinds: tuple[str, ...]) -> list[str]:
        out = [
            n
            for n, d in scope.decls.items()
            if (d.kind if isinstance(d, Decl) else "param") in kinds
        ]
        for alias, key in scope.module.imports.items():
            target = self.scopes.get(key)
            if target is None:
                continue
            out.extend(
                f"{alias}.{n}"
                for n, d in target.decls.items()
                if (d.kind if isinstance(d, Decl) else "param") in kinds
            )
        return out

    # --- params -------------------------------------------------------------------------

    def apply_overrides(self) -> None:
        entry = self.scopes[self.prog.entry]
        for name, text in sorted(self.overrides.items()):
            target = entry.decls.get(name)
            if not isinstance(target, Param):
                params = [n for n, d in entry.decls.items() if isinstance(d, Param)]
                self.sink.error(
                    "E113",
                    f"-p {name}=...: the workflow has no param '{name}'",
                    help=[
                        *did_you_mean(name, params),
                        "params: " + (", ".join(sorted(params)) or "none"),
                    ],
                )
                continue
            declared = self.deref(entry, target.value)
            try:
                value: Value = parse_value(text)
            except CompileError:
                value = Str(target.value.span, (text,))
            if isinstance(declared, Str) and not isinstance(value, Str):
                value = Str(target.value.span, (text,))
            if type(value) is not type(declared) or (
                isinstance(value, Num)
                and isinstance(declared, Num)
                and isinstance(declared.value, int)
                and not isinstance(value.value, int)
            ):
                self.sink.error(
                    "E113",
                    f"-p {name}={text}: param '{name}' is declared as {_kind(declared)}, "
                    f"and '{text}' is not one",
                    target.value.span,
                    help=[f"to fix: pass a value like the declared one ({_example(declared)})"],
                )
                continue
            self.param_values[id(target)] = _respan(value, target.value.span)

    def check_name(self, kind: str, name: str, span: Span) -> None:
        problem = decl_name_problem(name)
        if problem is not None:
            self.sink.error(
                "E208",
                f"the name of {kind} '{excerpt(name)}' is too long: {problem}",
                span,
                help=["to fix: choose a shorter name; names become file and job names"],
            )

    def check_params(self) -> None:
        """Param cycles (E503) and chains too deep to follow (E504), before any lookup."""
        self.poisoned = check_params(self)

    def diagnostics(self) -> list[Diagnostic]:
        """What the sink collected, less type errors at uses of poisoned params."""
        if not self.poisoned_uses:
            return self.sink.items
        return [
            d
            for d in self.sink.items
            if d.code in ("E503", "E504") or d.span not in self.poisoned_uses
        ]

    def deref(self, scope: Scope, v: Value, depth: int = 0) -> Value:
        """Follow a name that refers to a param to the param's value."""
        if not isinstance(v, Ref) or depth > MAX_PARAM_DEPTH:
            return v
        r = self.resolve(scope, v.name)
        if r is None or not isinstance(r.target, Param):
            return v
        if id(r.target) in self.poisoned:
            self.poisoned_uses.add(v.span)
            return v
        value = self.param_values.get(id(r.target), r.target.value)
        used = _respan(self.deref(r.scope, value, depth + 1), v.span)
        if isinstance(used, BadLiteral):
            self.bad_literal_uses.append(v.span)
        return used

    def template(self, scope: Scope, s: Str, *, runtime: bool = True) -> str:
        """An IR string: params substituted, runtime placeholders kept, braces doubled."""
        out: list[str] = []
        for part in s.parts:
            if isinstance(part, str):
                out.append(part.replace("{", "{{").replace("}", "}}"))
                continue
            if runtime and part.name in RUNTIME_PLACEHOLDERS:
                out.append("{" + part.name + "}")
                continue
            r = self.resolve(scope, part.name)
            if r is not None and isinstance(r.target, Param) and id(r.target) in self.poisoned:
                continue  # a cycle: reported once, at the param (E503/E504)
            if r is not None and isinstance(r.target, Param):
                value = self.deref(scope, Ref(part.span, part.name))
                out.append(_as_text(self, r.scope, value).replace("{", "{{").replace("}", "}}"))
                continue
            names = [
                *self.visible_names(scope, ("param",)),
                *(RUNTIME_PLACEHOLDERS if runtime else ()),
            ]
            self.sink.error(
                "E106",
                f"unknown placeholder {{{part.name}}}",
                part.span,
                help=[
                    *(
                        [f"did you mean {{{match}}}?"]
                        if (match := suggest(part.name, names))
                        else []
                    ),
                    "placeholders are params of the workflow or the run-time names: "
                    + ", ".join("{" + n + "}" for n in RUNTIME_PLACEHOLDERS),
                    "to fix: write {{ and }} for literal braces",
                ],
            )
            out.append("{{" + part.name + "}}")
        return "".join(out)

    # --- entries ------------------------------------------------------------------------

    def entries(self, decl: Decl, allowed: tuple[str, ...], what: str) -> dict[str, Entry]:
        seen: dict[str, Entry] = {}
        for e in decl.entries:
            if e.key not in allowed:
                self.sink.error(
                    "E104",
                    f"unknown attribute '{e.key}' for a {what}",
                    e.key_span,
                    help=[
                        *did_you_mean(e.key, allowed),
                        f"{what} attributes: {', '.join(allowed)}",
                    ],
                )
                continue
            if e.key in seen:
                self.sink.error(
                    "E103",
                    f"duplicate attribute '{e.key}' (first set at line {seen[e.key].key_span.line})",
                    e.key_span,
                    help=["to fix: keep one of them"],
                )
                continue
            if isinstance(e, Block) and e.key not in BLOCK_ATTRS:
                self.sink.error(
                    "E201",
                    f"type error: '{e.key}' is a value, not a block",
                    e.key_span,
                    help=[f"to fix: write {e.key} = ..."],
                )
                continue
            if isinstance(e, Attr) and e.key in BLOCK_ATTRS - {"duration"}:
                self.sink.error(
                    "E201",
                    f"type error: '{e.key}' is a block",
                    e.key_span,
                    help=[f"to fix: write {e.key} {{ ... }}"],
                )
                continue
            seen[e.key] = e
        return seen

    def value(self, scope: Scope, e: Entry) -> Value:
        assert isinstance(e, Attr)
        return self.deref(scope, e.value)

    def loc(self, scope: Scope, span: Span) -> Loc:
        key = scope.module.key
        return Loc(file=key, line=span.line, column=span.column)

    # --- workflow -----------------------------------------------------------------------

    def workflow(self) -> Workflow | None:
        entry = self.scopes[self.prog.entry]
        found: list[Decl] = []
        for scope in self.scopes.values():
            for item in scope.module.syntax.items:
                if isinstance(item, Decl) and item.kind == "workflow":
                    if scope is entry:
                        found.append(item)
                    else:
                        self.sink.error(
                            "E112",
                            f"workflow '{item.name}' is declared in an imported module",
                            item.name_span,
                            help=[
                                "only the entry file declares the workflow; imports provide datasets, params and steps"
                            ],
                        )
        if not found:
            items = entry.module.syntax.items
            span = items[0].span if items else Span.point(entry.module.label, 1, 1)
            if items and isinstance(items[0], Decl):
                span = items[0].kind_span
            self.sink.error(
                "E107",
                "no workflow block: the entry file must declare exactly one 'workflow'",
                span,
                help=[
                    "to fix: add e.g.\n    workflow my-flow {\n      deadline = 8h\n      budget   = $100\n    }"
                ],
            )
            return None
        for extra in found[1:]:
            self.sink.error(
                "E108",
                f"a second workflow '{extra.name}' (the first is '{found[0].name}' at line "
                f"{found[0].name_span.line})",
                extra.name_span,
                help=["a file describes one workflow; split the others into their own files"],
            )
        decl = found[0]
        self.check_name("workflow", decl.name, decl.name_span)
        attrs = self.entries(decl, WORKFLOW_ATTRS, "workflow")
        kw: dict[str, Any] = {"name": decl.name, "loc": self.loc(entry, decl.name_span)}
        if "deadline" in attrs:
            kw["deadline_h"] = V.duration_h(
                self.sink, "deadline", self.value(entry, attrs["deadline"]), limit=L.DURATION_H
            )
        if "budget" in attrs:
            kw["budget_usd"] = V.money_usd(
                self.sink, "budget", self.value(entry, attrs["budget"]), limit=L.AMOUNT_USD
            )
        if "objective" in attrs:
            kw["objective"] = V.enum(
                self.sink, "objective", self.value(entry, attrs["objective"]), ("cost", "time")
            )
        if "catalog" in attrs:
            self.catalog_span = self.value(entry, attrs["catalog"]).span
            s = V.string(self.sink, "catalog", self.value(entry, attrs["catalog"]))
            kw["catalog"] = self.template(entry, s, runtime=False) if s else None
        if "confidence" in attrs:
            v = self.value(entry, attrs["confidence"])
            c = V.number(self.sink, "confidence", v, positive=False)
            if c is not None and not 0 < c < 1:
                self.sink.error(
                    "E203",
                    f"'confidence' must be between 0 and 1 (exclusive), got {c:g}",
                    v.span,
                    help=["to fix: e.g. confidence = 0.95 plans for the 95th percentile run time"],
                )
                c = None
            kw["confidence"] = c
        if "quota" in attrs:
            kw["quota"] = self.quota(entry, attrs["quota"])
        clean = {k: v for k, v in kw.items() if v is not None}
        return Workflow(**clean)

    def quota(self, scope: Scope, e: Entry) -> Quota | None:
        assert isinstance(e, Block)
        accel: dict[str, int] = {}
        cpu: int | None = None
        seen: set[str] = set()
        for sub in e.entries:
            if sub.key in seen:
                self.sink.error("E103", f"duplicate quota for '{sub.key}'", sub.key_span)
                continue
            seen.add(sub.key)
            if not isinstance(sub, Attr):
                self.sink.error("E201", "type error: a quota entry is 'NAME = count'", sub.key_span)
                continue
            n = V.integer(
                self.sink,
                f"quota {sub.key}",
                self.deref(scope, sub.value),
                minimum=0,
                limit=L.QUOTA,
            )
            if n is None:
                continue
            if sub.key == CPU_KEY:
                cpu = n
            else:
                accel[sub.key] = n
        self.quota_spans = {sub.key: sub.key_span for sub in e.entries}
        return Quota(accelerators=accel, cpu=cpu)

    # --- datasets -----------------------------------------------------------------------

    def dataset(self, scope: Scope, decl: Decl) -> Dataset:
        attrs = self.entries(decl, DATASET_ATTRS, "dataset")
        uri = None
        items = None
        if "uri" in attrs:
            s = V.string(self.sink, "uri", self.value(scope, attrs["uri"]))
            uri = check_path(self, "uri", s, self.template(scope, s)) if s else None
        if "items" in attrs:
            items = V.integer(self.sink, "items", self.value(scope, attrs["items"]), limit=L.ITEMS)
        return Dataset(
            name=scope.prefix + decl.name, uri=uri, items=items, loc=self.loc(scope, decl.name_span)
        )


def check_path(lw: Lowerer, attr: str, s: Str, text: str) -> str | None:
    """``text`` (the IR string of ``s``) if it can be a path or URI, else None after E210."""
    problem = path_problem(text)
    if problem is None:
        return text
    lw.sink.error(
        "E210",
        f"'{attr}' \"{excerpt(text)}\" is not allowed: {problem}",
        s.span,
        help=["to fix: paths and URIs are written on one line, without control characters"],
    )
    return None


def _kind(v: Value) -> str:
    return {
        Str: "a string",
        Num: "a number",
        DurationLit: "a duration",
        SizeLit: "a size",
        MoneyLit: "an amount",
        Bool: "true/false",
    }.get(type(v), "a value")


def _example(v: Value) -> str:
    match v:
        case Num() | DurationLit() | SizeLit() | MoneyLit():
            return v.text
        case Str():
            return f'"{v.text}"'
        case Bool():
            return "true"
        case _:
            return "..."


def _respan(v: Value, span: Span) -> Value:
    """The same value, reported at the place that used it."""
    import dataclasses

    return dataclasses.replace(v, span=span)


def _as_text(lw: Lowerer, scope: Scope, v: Value) -> str:
    match v:
        case Str():
            return lw.template(scope, v, runtime=False).replace("{{", "{").replace("}}", "}")
        case Num():
            return str(v.value)
        case DurationLit() | SizeLit() | MoneyLit():
            return v.text
        case Bool():
            return "true" if v.value else "false"
        case Ref():
            return v.name
        case ListV() | MapV():
            lw.sink.error("E201", "type error: a list or map cannot be placed in a string", v.span)
            return ""
        case _:
            return ""


def backend_options(lw: Lowerer, scope: Scope, entries: tuple[Entry, ...]) -> dict[str, object]:
    """A ``backend NAME { ... }`` block as plain JSON values (validated by the backend)."""
    out: dict[str, object] = {}
    for e in entries:
        if e.key in out:
            lw.sink.error("E103", f"duplicate backend option '{e.key}'", e.key_span)
            continue
        out[e.key] = (
            backend_options(lw, scope, e.entries)
            if isinstance(e, Block)
            else _plain(lw, scope, e.value)
        )
    return out


def _plain(lw: Lowerer, scope: Scope, v: Value) -> object:
    v = lw.deref(scope, v)
    match v:
        case Str():
            return lw.template(scope, v)
        case Num() | MoneyLit():
            x = v.value if isinstance(v, Num) else v.usd
            return x if V.within(lw.sink, "backend option", v, x, None) else None
        case DurationLit() | SizeLit():
            return v.text
        case Bool():
            return v.value
        case Ref():
            return v.name
        case ListV():
            return [_plain(lw, scope, x) for x in v.items]
        case MapV():
            return {_key_text(e.key): _plain(lw, scope, e.value) for e in v.entries}
        case _:
            return None


def _key_text(k: Num | Ref | Str) -> str:
    match k:
        case Num():
            return str(k.value)
        case Ref():
            return k.name
        case Str():
            return k.text


def dag_checks(
    lw: Lowerer, steps: dict[str, Step], edges: list[tuple[str, str, Span]]
) -> list[str] | None:
    """Report cycles; return the steps in topological order (declaration order for ties).

    A plain topological sort (Kahn's, ties by declaration order): linear, and the graph
    library is only loaded to spell out a cycle when there is one."""
    successors: dict[str, list[str]] = {n: [] for n in steps}
    waiting = dict.fromkeys(steps, 0)  # unmet predecessors of each step
    spans: dict[tuple[str, str], Span] = {}
    for a, b, span in edges:
        if a == b:
            lw.sink.error(
                "E502",
                f"step '{b}' depends on itself",
                span,
                help=["to fix: remove it from its own input/after"],
            )
            continue
        if (a, b) in spans:
            continue
        spans[(a, b)] = span
        successors.setdefault(a, []).append(b)
        successors.setdefault(b, [])
        waiting[b] = waiting.get(b, 0) + 1
        waiting.setdefault(a, 0)
    rank = {n: (lw.decl_order.get(n, 0), i) for i, n in enumerate(successors)}
    ready = [(rank[n], n) for n, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for b in successors[node]:
            waiting[b] -= 1
            if waiting[b] == 0:
                heapq.heappush(ready, (rank[b], b))
    if len(order) == len(successors):
        return order
    _report_cycles(lw, successors, spans)
    return None


def _report_cycles(
    lw: Lowerer, successors: dict[str, list[str]], spans: dict[tuple[str, str], Span]
) -> None:
    """E501 for every cycle, spelt out from its first-declared step."""
    import networkx as nx

    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(successors)
    g.add_edges_from(spans)
    for comp in nx.strongly_connected_components(g):
        if len(comp) < 2:
            continue
        sub = g.subgraph(comp)
        start = min(comp, key=lambda n: lw.decl_order.get(n, 0))
        cycle = nx.find_cycle(sub, source=start)
        names = [e[0] for e in cycle] + [cycle[0][0]]
        first = min((spans[(e[0], e[1])] for e in cycle), key=lambda s: (s.file, s.line, s.column))
        lw.sink.error(
            "E501",
            f"dependency cycle: {' -> '.join(names)}",
            first,
            help=["to fix: remove one of these dependencies (input or after) to break the cycle"],
        )


def program_of(
    lw: Lowerer,
    workflow: Workflow,
    datasets: dict[str, Dataset],
    steps: list[Step],
    backends: dict[str, dict[str, object]],
) -> Program:
    params: dict[str, ParamValue] = {}
    entry = lw.scopes[lw.prog.entry]
    for name, d in entry.decls.items():
        if isinstance(d, Param):
            v = lw.deref(entry, d.value)
            v = lw.param_values.get(id(d), v)
            match v:
                case Str():
                    params[name] = lw.template(entry, v, runtime=False)
                case Num():
                    params[name] = v.value
                case Bool():
                    params[name] = v.value
                case DurationLit() | SizeLit() | MoneyLit():
                    params[name] = v.text
                case _:
                    pass
    return Program(
        workflow=workflow,
        datasets=datasets,
        steps=tuple(steps),
        params=dict(sorted(params.items())),
        backend_options=backends,
        source=lw.prog.entry,
    )
