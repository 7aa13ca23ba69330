"""The lowering pass: every declaration of every module → IR values, a source map.

Every declaration is read on its own (a :class:`.reading.Reading` against the scopes
and params) by the attribute table (:mod:`.attributes`), so that all errors of a
program are reported at once. Imported modules contribute datasets, params and steps
under their alias (``corpora.wiki``); which imported steps join the workflow is
decided by the graph pass (:mod:`.checks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from exo.compiler import values as V
from exo.compiler.attributes import (
    DATASET_ATTRIBUTES,
    STEP_ATTRIBUTES,
    WORKFLOW_ATTRIBUTES,
    Attribute,
    AttributeTable,
)
from exo.compiler.diagnostics import Diagnostic, Span
from exo.compiler.ir import Dataset, ParamValue, Program, Step, Throughput, Workflow
from exo.compiler.lowermemo import value_key
from exo.compiler.names import MAX_QUALIFIED_NAME, decl_name_problem
from exo.compiler.reading import Lowered, Names, Reading
from exo.compiler.records import record
from exo.compiler.scopes import Scope, check_name
from exo.compiler.sourcemap import SourceMap
from exo.compiler.steps import performance_rules
from exo.compiler.syntax import (
    Attr,
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


@record
class LoweredProgram:
    """What the lowering pass returns: IR values (not yet checked as a whole) and where
    each part was written."""

    workflow: Workflow | None
    datasets: Mapping[str, Dataset]
    #: Every step of every module that lowered, in declaration order.
    steps: Mapping[str, Step]
    #: Steps with an unknown attribute (perhaps a misspelt ``input`` or ``items``):
    #: checks that would guess what they meant are skipped for them.
    misspelt: frozenset[str]
    backends: Mapping[str, Mapping[str, object]]
    source_map: SourceMap
    diagnostics: tuple[Diagnostic, ...]
    bad_literal_uses: tuple[Span, ...]
    poisoned_uses: frozenset[Span]


def lower_program(names: Names) -> LoweredProgram:
    """Lower the workflow and every dataset, step and backend block of every module."""
    entry = names.scopes.entry_scope
    done: list[Lowered[Any]] = [lower_workflow(names)]
    workflow: Workflow | None = done[0].value
    datasets: dict[str, Dataset] = {}
    steps: dict[str, Step] = {}
    misspelt: set[str] = set()
    backends: dict[str, Mapping[str, object]] = {}
    for scope in names.scopes.by_module.values():
        for item in scope.module.syntax.items:
            if not isinstance(item, Decl) or item.name_span is None:
                continue
            if scope.decls.get(item.name) is not item and item.kind in ("dataset", "step"):
                continue  # a duplicate: already reported
            if item.kind == "dataset":
                done.append(lower_dataset(names, scope, item))
                datasets[done[-1].value.name] = done[-1].value
            elif item.kind == "step":
                done.append(lower_step(names, scope, item))
                if done[-1].value is not None:
                    steps[done[-1].value.name] = done[-1].value
                    if done[-1].misspelt:
                        misspelt.add(done[-1].value.name)
            elif item.kind == "backend" and scope is entry:
                done.append(lower_backend(names, scope, item, seen=backends))
                if done[-1].value is not None:
                    backends[item.name] = done[-1].value
    return LoweredProgram(
        workflow,
        MappingProxyType(datasets),
        MappingProxyType(steps),
        frozenset(misspelt),
        MappingProxyType(backends),
        SourceMap((d.path, d.spans) for d in done if d.path),
        tuple(x for d in done for x in d.diagnostics),
        tuple(x for d in done for x in d.bad_literal_uses),
        frozenset(x for d in done for x in d.poisoned_uses),
    )


def read_attributes(
    r: Reading, attrs: Mapping[str, Entry], table: AttributeTable
) -> dict[str, Any]:
    """The IR fields of the attributes written, each read by its row of ``table``, in
    the table's order; where each was written goes to the source map."""
    got: dict[str, Any] = {}
    spans = r.spans
    for a in table.rows_for(attrs):
        e = attrs.get(a.name)
        if e is None:
            if a.default is not None:
                got[a.field] = a.default(got)
            continue
        if a.path not in spans:
            spans[a.path] = e.value.span if isinstance(e, Attr) else e.key_span
        if a.memo and isinstance(e, Attr):
            got[a.field] = _read_once(r, a, e, got)
        else:
            got[a.field] = a.read(r, e, got)
    return got


def _read_once(r: Reading, a: Attribute, e: Attr, got: Mapping[str, Any]) -> Any:
    """``a.read`` of ``e``, or what it gave for the same value in the same scope, where
    that reading reported nothing (:mod:`.lowermemo`)."""
    value = value_key(e.value)
    if value is None:
        return a.read(r, e, got)
    key = (id(a), id(r.scope), value)
    known = r.names.read.get(key)
    if known is not None:
        return known
    before = r.reported()
    read = a.read(r, e, got)
    if read is not None and r.reported() == before:
        r.names.read[key] = read
    return read


def lower_workflow(names: Names) -> Lowered[Workflow | None]:
    """The entry file's one ``workflow`` block (E107, E108; E112 in an import)."""
    entry = names.scopes.entry_scope
    r = Reading(names, entry, ("workflow",))
    found = _workflow_decls(r, names)
    if not found:
        return r.done(None)
    decl = found[0]
    check_name(r.sink, "workflow", decl.name, decl.name_span)
    attrs = r.entries(decl.entries, WORKFLOW_ATTRIBUTES.shapes, "workflow")
    got = read_attributes(r, attrs, WORKFLOW_ATTRIBUTES)
    kw = {"name": decl.name, "loc": r.loc(decl.name_span), **got}
    return r.done(Workflow(**{k: v for k, v in kw.items() if v is not None}))


def _workflow_decls(r: Reading, names: Names) -> list[Decl]:
    entry = names.scopes.entry_scope
    found: list[Decl] = []
    for scope in names.scopes.by_module.values():
        for item in scope.module.syntax.items:
            if isinstance(item, Decl) and item.kind == "workflow":
                if scope is entry:
                    found.append(item)
                else:
                    r.sink.error(
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
        r.sink.error(
            "E107",
            "no workflow block: the entry file must declare exactly one 'workflow'",
            span,
            help=[
                "to fix: add e.g.\n    workflow my-flow {\n      deadline = 8h\n      budget   = $100\n    }"
            ],
        )
    for extra in found[1:]:
        r.sink.error(
            "E108",
            f"a second workflow '{extra.name}' (the first is '{found[0].name}' at line "
            f"{found[0].name_span.line})",
            extra.name_span,
            help=["a file describes one workflow; split the others into their own files"],
        )
    return found


def lower_dataset(names: Names, scope: Scope, decl: Decl) -> Lowered[Dataset]:
    name = scope.prefix + decl.name
    r = Reading(names, scope, ("dataset", name))
    attrs = r.entries(decl.entries, DATASET_ATTRIBUTES.shapes, "dataset")
    got = read_attributes(r, attrs, DATASET_ATTRIBUTES)
    return r.done(Dataset(name=name, loc=r.loc(decl.name_span), **got))


def lower_step(names: Names, scope: Scope, decl: Decl) -> Lowered[Step | None]:
    name = scope.prefix + decl.name
    r = Reading(names, scope, ("step", name))
    attrs = r.entries(decl.entries, STEP_ATTRIBUTES.shapes, "step")
    if scope.prefix and (problem := decl_name_problem(name, limit=MAX_QUALIFIED_NAME)):
        r.sink.error(
            "E208",
            f"the qualified name of step '{decl.name}' is too long: {problem}",
            decl.name_span,
            help=["to fix: import the module under a shorter name (import ... as NAME)"],
        )
    r.mark(decl.name_span)
    got = read_attributes(r, attrs, STEP_ATTRIBUTES)
    performance_rules(r, decl, attrs, got)
    clean = {k: v for k, v in got.items() if v is not None}
    if "throughput" in clean and "batch_sizes" not in clean:
        tp: Throughput = clean["throughput"]
        clean["batch_sizes"] = tuple(sorted({b for t in tp.per_batch.values() for b in t}))
    try:
        return r.done(Step(name=name, loc=r.loc(decl.name_span), **clean))
    except ValueError:  # pragma: no cover - every field was validated above
        return r.done(None)


def lower_backend(
    names: Names, scope: Scope, decl: Decl, *, seen: Iterable[str]
) -> Lowered[Mapping[str, object] | None]:
    """A ``backend NAME { ... }`` block as plain JSON values (validated by the backend)."""
    r = Reading(names, scope, ("backend", decl.name))
    if decl.name in seen:
        r.sink.error("E102", f"duplicate backend block '{decl.name}'", decl.name_span)
        return r.done(None)
    return r.done(_options(r, decl.entries))


def _options(r: Reading, entries: tuple[Entry, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for e in entries:
        if e.key in out:
            r.sink.error("E103", f"duplicate backend option '{e.key}'", e.key_span)
            continue
        out[e.key] = _options(r, e.entries) if isinstance(e, Block) else _plain(r, e.value)
    return out


def _plain(r: Reading, v: Value) -> object:
    v = r.deref(v)
    match v:
        case Str():
            return r.template(v)
        case Num() | MoneyLit():
            x = v.value if isinstance(v, Num) else v.usd
            return x if V.within(r.sink, "backend option", v, x, None) else None
        case DurationLit() | SizeLit():
            return v.text
        case Bool():
            return v.value
        case Ref():
            return v.name
        case ListV():
            return [_plain(r, x) for x in v.items]
        case MapV():
            return {_key_text(e.key): _plain(r, e.value) for e in v.entries}
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


def program_of(
    names: Names,
    workflow: Workflow,
    datasets: Mapping[str, Dataset],
    steps: Iterable[Step],
    backends: Mapping[str, Mapping[str, object]],
) -> Program:
    """The checked parts as one :class:`Program`, with the entry file's params' values."""
    entry = names.scopes.entry_scope
    r = Reading(names, entry)
    params: dict[str, ParamValue] = {}
    for name, d in entry.decls.items():
        if isinstance(d, Param):
            v = r.deref(d.value)
            v = names.params.values.get((entry.module.key, name), v)
            match v:
                case Str():
                    params[name] = r.template(v, runtime=False)
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
        datasets=dict(datasets),
        steps=tuple(steps),
        params=dict(sorted(params.items())),
        backend_options={k: dict(v) for k, v in backends.items()},
        source=names.scopes.entry,
    )
