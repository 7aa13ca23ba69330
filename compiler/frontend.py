"""The front end in one call: files → checked IR (+ the catalog it is planned on).

``compile_file`` runs the stages in order (load and parse every file, resolve
names, lower to IR, check the graph, propagate item counts, check hardware
against the catalog) and raises one :class:`CompileError` carrying every
diagnostic found, together with the source texts needed to render them.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from exo.compiler.accelerators import accelerator_spec
from exo.compiler.catalog import Catalog, builtin_catalogs_offering, load_catalog
from exo.compiler.diagnostics import (
    CompileError,
    Diagnostic,
    DiagnosticSink,
    Severity,
    Span,
    sort_diagnostics,
    suggest,
)
from exo.compiler.hints import missing_entry_warnings, quota_warnings
from exo.compiler.ir import CPU_KEY, Dataset, Program, Step
from exo.compiler.lower import Lowerer, backend_options, dag_checks, program_of
from exo.compiler.modules import load_program
from exo.compiler.steps import StepRefs, lower_step
from exo.compiler.syntax import Decl


@dataclass(frozen=True)
class Compiled:
    program: Program
    catalog: Catalog
    #: Folder of the entry file (relative paths in the workflow are resolved against it).
    base_dir: Path
    sources: dict[str, str] = field(default_factory=dict)
    #: Warnings (hardware named but never usable, quotas that limit nothing).
    warnings: tuple[Diagnostic, ...] = ()


def compile_file(
    path: Path | str,
    params: Mapping[str, str] | None = None,
    *,
    catalog: str | None = None,
    label: str | None = None,
) -> Compiled:
    """Compile one entry file. ``catalog`` (a built-in name or a path relative to the
    current directory) replaces the workflow's own catalog, as ``--catalog`` does."""
    # The front end allocates millions of small acyclic objects (tokens, syntax nodes,
    # spans) that stay alive until lowering ends; the cyclic collector would traverse
    # them again and again (half the time of a 10,000-step check). Pause it meanwhile.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _compile_file(Path(path), params, catalog, label)
    finally:
        if paused:
            gc.enable()


def _compile_file(
    path: Path,
    params: Mapping[str, str] | None,
    catalog: str | None,
    label: str | None,
) -> Compiled:
    sources: dict[str, str] = {}
    loaded = load_program(path, label=label)
    sources.update(loaded.sources)
    lw = Lowerer(loaded, params or {})
    lw.build_scopes()
    lw.apply_overrides()
    lw.check_params()
    workflow = lw.workflow()

    datasets: dict[str, Dataset] = {}
    steps: dict[str, Step] = {}
    refs: dict[str, StepRefs] = {}
    backends: dict[str, dict[str, object]] = {}
    entry = lw.scopes[loaded.entry]
    for scope in lw.scopes.values():
        for item in scope.module.syntax.items:
            if not isinstance(item, Decl) or item.name_span is None:
                continue
            if scope.decls.get(item.name) is not item and item.kind in ("dataset", "step"):
                continue  # a duplicate: already reported
            if item.kind == "dataset":
                ds = lw.dataset(scope, item)
                datasets[ds.name] = ds
            elif item.kind == "step":
                lowered = lower_step(lw, scope, item)
                if lowered is not None:
                    steps[lowered[0].name] = lowered[0]
                    refs[lowered[0].name] = lowered[1]
            elif item.kind == "backend" and scope is entry:
                if item.name in backends:
                    lw.sink.error("E102", f"duplicate backend block '{item.name}'", item.name_span)
                    continue
                backends[item.name] = backend_options(lw, scope, item.entries)

    # The workflow: entry steps and the imported steps they depend on.
    edges = [(src, name, span) for name, r in refs.items() for src, span in r.edges if src in steps]
    order = dag_checks(lw, steps, edges)
    wanted = _wanted_steps(loaded.entry, steps)
    ordered = _with_item_counts(lw, order, wanted, steps, datasets, refs) if order else []

    catalog_obj: Catalog | None = None
    if workflow is not None:
        catalog_obj = _load_catalog(
            lw.sink, workflow.catalog, catalog, path, sources, lw.catalog_span
        )
    if catalog_obj is not None:
        check_hardware(lw.sink, ordered, refs, catalog_obj, lw)

    found = with_literal_errors(loaded.literal_errors, lw.diagnostics(), lw.bad_literal_uses)
    failed = any(d.severity is Severity.ERROR for d in found)
    if failed or workflow is None or catalog_obj is None or order is None:
        found = found or [Diagnostic("E901", "compilation failed without a diagnostic")]
        raise CompileError(sort_diagnostics(found), sources)
    program = program_of(
        lw, workflow, _used_datasets(datasets, ordered, loaded.entry), ordered, backends
    )
    warnings = tuple(sort_diagnostics(d for d in lw.sink.items if d.severity is Severity.WARNING))
    return Compiled(program, catalog_obj, path.resolve().parent, sources, warnings)


def with_literal_errors(
    literal: list[Diagnostic], later: list[Diagnostic], uses: list[Span]
) -> list[Diagnostic]:
    """Bad literals and what lowering found, without what lowering said about the
    stand-in values of those literals, where written or where a param carried them
    (a type error on ``8hrs`` would repeat the E010)."""
    if not literal:
        return list(later)
    bad = [d.span for d in literal if d.span is not None] + uses
    kept = [d for d in later if d.span is None or not any(_overlap(d.span, b) for b in bad)]
    return [*literal, *kept]


def _overlap(a: Span, b: Span) -> bool:
    return (
        a.file == b.file
        and (a.line, a.column) < (b.end_line, b.end_column)
        and (b.line, b.column) < (a.end_line, a.end_column)
    )


def _with_item_counts(
    lw: Lowerer,
    order: list[str],
    wanted: set[str],
    steps: dict[str, Step],
    datasets: dict[str, Dataset],
    refs: dict[str, StepRefs],
) -> list[Step]:
    """The wanted steps in topological order, each with its item count propagated along
    ``input``; E306 for a throughput step without one. A step with an unknown attribute
    (perhaps a misspelt ``input`` or ``items``) has an unknown count rather than none,
    and so have the steps that read from it: no knock-on E306 for them."""
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
        if n is None and refs[name].misspelt:
            unknown.add(name)
        items[name] = n
        if (
            step.throughput is not None
            and n is None
            and name not in unknown
            and not refs[name].items_written
        ):
            lw.sink.error(
                "E306",
                f"step '{name}' has a throughput but no item count",
                refs[name].name_span,
                help=[
                    "to fix: set items = N, or take input from a dataset with items "
                    "(or from a step that has them)",
                ],
            )
        ordered.append(step.model_copy(update={"items": n}) if n != step.items else step)
    return ordered


def _wanted_steps(entry_key: str, steps: dict[str, Step]) -> set[str]:
    """Steps of the entry file, and the imported steps they depend on."""
    wanted = {n for n, s in steps.items() if s.loc is not None and s.loc.file == entry_key}
    stack = list(wanted)
    while stack:
        for p in steps[stack.pop()].predecessors():
            if p in steps and p not in wanted:
                wanted.add(p)
                stack.append(p)
    return wanted


def _used_datasets(
    datasets: dict[str, Dataset], steps: list[Step], entry_key: str
) -> dict[str, Dataset]:
    """Datasets of the entry file, and the imported datasets the workflow reads."""
    used = {s.input.name for s in steps if s.input is not None and s.input.kind == "dataset"}
    return {
        n: d
        for n, d in sorted(datasets.items())
        if n in used or (d.loc is not None and d.loc.file == entry_key)
    }


def _load_catalog(
    sink: DiagnosticSink,
    ref: str,
    override: str | None,
    entry: Path,
    sources: dict[str, str],
    span: Span | None,
) -> Catalog | None:
    try:
        if override is not None:
            return load_catalog(override, Path.cwd(), given_on_cli=True)
        return load_catalog(ref, entry.resolve().parent, ref_span=span)
    except CompileError as e:
        sources.update(e.sources)
        sink.add(e.diagnostics)
        return None


def check_hardware(
    sink: DiagnosticSink,
    steps: list[Step],
    refs: dict[str, StepRefs],
    catalog: Catalog,
    lw: Lowerer,
) -> None:
    """Accelerators, instance types, perf keys and quotas must exist in the catalog."""
    accels = catalog.accelerators()
    types = catalog.instance_types()
    offered = sorted(accels | types)
    memo: dict[tuple[object, ...], dict[str, list[str]]] = {}
    # "will not be considered" (E308) only for a file that lowered cleanly: after an
    # error (a refused throughput or duration entry) it would only repeat that error.
    lowered_cleanly = not sink.has_errors
    for step in steps:
        r = refs.get(step.name)
        if r is None:
            continue
        for name in step.accelerators:
            if name in accels or name in types:
                continue
            span = r.accelerator_spans.get(name)
            _not_offered(sink, name, offered, catalog, span)
        usable = set(step.accelerators) | {
            i.instance_type for i in catalog.instances if i.accelerator in step.accelerators
        }
        if not step.accelerators:
            usable = {CPU_KEY} | {
                i.instance_type for i in catalog.instances if i.accelerator is None
            }
        keys: set[str] = set()
        if step.throughput is not None:
            keys |= step.throughput.keys()
        if step.duration is not None:
            keys |= set(step.duration.per_key)
        for key in sorted(keys):
            if key in usable or r.misspelt:
                continue
            span = r.perf_key_spans.get(key)
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
        if lowered_cleanly and not r.misspelt:
            sink.add(missing_entry_warnings(step, catalog, r.name_span, r.accelerator_spans, memo))
    for key, span in lw.quota_spans.items():
        if key != CPU_KEY and key not in accels:
            _not_offered(sink, key, [*sorted(accels), CPU_KEY], catalog, span, what="quota")
    sink.add(quota_warnings(steps, catalog, lw.quota_spans))


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
