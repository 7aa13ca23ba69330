"""The front end in one call: files → checked IR (+ the catalog it is planned on).

``compile_file`` loads and parses every file, then runs :data:`PASSES` in order —
each a pure function from one :class:`FrontEnd` value to the next — and raises one
:class:`CompileError` carrying every diagnostic found, together with the source
texts needed to render them:

1. ``scopes``: one scope per module, names declared once (:mod:`.scopes`);
2. ``overrides``: the ``-p`` values of the entry file's params (:mod:`.overrides`);
3. ``param_cycles``: params naming params in a cycle or too long a chain (:mod:`.params`);
4. ``lowering``: every declaration by the attribute table → IR values and the source
   map (:mod:`.lower`, :mod:`.attributes`, :mod:`.steps`);
5. ``graph``: cycles, the steps of the workflow in topological order, item counts
   (:mod:`.checks`);
6. ``catalog``: the catalog the workflow names, or ``--catalog``;
7. ``hardware``: what each step names, offered by the catalog (:mod:`.checks`, :mod:`.hints`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from pathlib import Path

from exo.compiler.catalog import Catalog, load_catalog
from exo.compiler.checks import (
    check_hardware,
    dag_order,
    step_edges,
    used_datasets,
    wanted_steps,
    with_item_counts,
)
from exo.compiler.diagnostics import CompileError, Diagnostic, Severity, Span, sort_diagnostics
from exo.compiler.ir import Program, Step
from exo.compiler.lower import LoweredProgram, lower_program, program_of
from exo.compiler.modules import LoadedProgram, load_program
from exo.compiler.overrides import apply_overrides
from exo.compiler.params import Params, check_params
from exo.compiler.reading import Names
from exo.compiler.records import record
from exo.compiler.scopes import Scopes, build_scopes


@record
class Compiled:
    """A checked workflow: its IR, the catalog it is planned on, and its sources."""

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
    hold: list[object] | None = None,
) -> Compiled:
    """Compile one entry file. ``catalog`` (a built-in name or a path relative to the
    current directory) replaces the workflow's own catalog, as ``--catalog`` does.

    ``hold``: a list the caller keeps, given the front end's last state (the syntax
    trees and the lowered program, which the result does not hold) in place of what it
    held, so that it is not freed when this returns. ``exoc check`` keeps it until its
    process ends without freeing anything: freeing a large program's syntax tree, object
    by object, is about 2% of its check."""
    # The front end allocates millions of small acyclic objects (tokens, syntax nodes,
    # spans) that stay alive until lowering ends; the cyclic collector would traverse
    # them again and again (half the time of a 10,000-step check). Pause it meanwhile.
    paused = gc.isenabled()
    gc.disable()
    try:
        path = Path(path)
        state = FrontEnd(load_program(path, label=label), params or {}, catalog, path)
        for run in PASSES:
            state = run(state)
        if hold is not None:
            hold[:] = [state]
        return finish(state)
    finally:
        if paused:
            gc.enable()


@record
class FrontEnd:
    """What the front end knows so far: each pass returns a new one with its results.

    A :func:`~exo.compiler.records.record`: never compared (it holds mappings, so it
    could not be hashed by value either), and frozen for the type checker."""

    loaded: LoadedProgram
    overrides: Mapping[str, str]
    #: ``--catalog``: replaces the workflow's catalog.
    catalog_override: str | None
    entry_path: Path
    #: Everything found so far, in the order found.
    diagnostics: tuple[Diagnostic, ...] = ()
    #: Param cycles and over-long chains (E503, E504): the reports that type errors at
    #: the uses of those params would repeat (those are dropped; these never are).
    cycle_reports: tuple[Diagnostic, ...] = ()
    #: Where a param holding a bad literal was used (its error is at the literal).
    bad_literal_uses: tuple[Span, ...] = ()
    scopes: Scopes | None = None
    params: Params = field(default_factory=Params)
    lowered: LoweredProgram | None = None
    #: Every lowered step in topological order, None after a cycle.
    order: tuple[str, ...] | None = None
    #: The workflow's steps in that order, with item counts propagated.
    steps: tuple[Step, ...] = ()
    catalog: Catalog | None = None
    #: Source texts of the catalogs read, to render their diagnostics.
    catalog_sources: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> Names:
        assert self.scopes is not None, "the scopes pass runs first"
        return Names(self.scopes, self.params)

    def lowered_program(self) -> LoweredProgram:
        assert self.lowered is not None, "the lowering pass runs before the checks"
        return self.lowered


def scopes_pass(fe: FrontEnd) -> FrontEnd:
    scopes, found = build_scopes(fe.loaded)
    return replace(fe, scopes=scopes, diagnostics=fe.diagnostics + found)


def overrides_pass(fe: FrontEnd) -> FrontEnd:
    done = apply_overrides(fe.names().scopes, fe.overrides)
    return replace(
        fe,
        params=done.value,
        diagnostics=fe.diagnostics + done.diagnostics,
        bad_literal_uses=fe.bad_literal_uses + done.bad_literal_uses,
    )


def param_cycles_pass(fe: FrontEnd) -> FrontEnd:
    poisoned, found = check_params(fe.names().scopes, fe.params)
    return replace(
        fe,
        params=replace(fe.params, poisoned=poisoned),
        diagnostics=fe.diagnostics + found,
        cycle_reports=found,
    )


def lowering_pass(fe: FrontEnd) -> FrontEnd:
    lowered = lower_program(fe.names())
    return replace(
        fe,
        lowered=lowered,
        diagnostics=fe.diagnostics + lowered.diagnostics,
        bad_literal_uses=fe.bad_literal_uses + lowered.bad_literal_uses,
    )


def graph_pass(fe: FrontEnd) -> FrontEnd:
    lp = fe.lowered_program()
    edges = step_edges(lp.steps, lp.source_map)
    order, found = dag_order(fe.names().scopes.decl_order, lp.steps, edges)
    steps: list[Step] = []
    if order:
        wanted = wanted_steps(fe.loaded.entry, lp.steps)
        steps, counted = with_item_counts(
            order, wanted, lp.steps, lp.datasets, lp.misspelt, lp.source_map
        )
        found += counted
    return replace(
        fe,
        order=None if order is None else tuple(order),
        steps=tuple(steps),
        diagnostics=fe.diagnostics + found,
    )


def catalog_pass(fe: FrontEnd) -> FrontEnd:
    workflow = fe.lowered_program().workflow
    if workflow is None:
        return fe
    span = fe.lowered_program().source_map.span(("workflow",), "catalog")
    try:
        if fe.catalog_override is not None:
            catalog = load_catalog(fe.catalog_override, Path.cwd(), given_on_cli=True)
        else:
            catalog = load_catalog(workflow.catalog, fe.entry_path.resolve().parent, ref_span=span)
    except CompileError as e:
        return replace(
            fe,
            diagnostics=fe.diagnostics + tuple(e.diagnostics),
            catalog_sources={**fe.catalog_sources, **e.sources},
        )
    return replace(fe, catalog=catalog)


def hardware_pass(fe: FrontEnd) -> FrontEnd:
    if fe.catalog is None:
        return fe
    lp = fe.lowered_program()
    cleanly = not any(d.severity is Severity.ERROR for d in fe.diagnostics)
    found = check_hardware(
        list(fe.steps), lp.misspelt, lp.source_map, fe.catalog, lowered_cleanly=cleanly
    )
    return replace(fe, diagnostics=fe.diagnostics + found)


Pass = Callable[[FrontEnd], FrontEnd]

#: The front end's passes, in order (see the module's docstring).
PASSES: tuple[Pass, ...] = (
    scopes_pass,
    overrides_pass,
    param_cycles_pass,
    lowering_pass,
    graph_pass,
    catalog_pass,
    hardware_pass,
)


def finish(fe: FrontEnd) -> Compiled:
    """The checked program, or one :class:`CompileError` with every error found."""
    sources = {**fe.loaded.sources, **fe.catalog_sources}
    lp = fe.lowered_program()
    repeats = lp.poisoned_uses
    kept = [d for d in fe.diagnostics if d.span not in repeats or d in fe.cycle_reports]
    found = with_literal_errors(fe.loaded.literal_errors, kept, list(fe.bad_literal_uses))
    failed = any(d.severity is Severity.ERROR for d in found)
    workflow = lp.workflow
    if failed or workflow is None or fe.catalog is None or fe.order is None:
        found = found or [Diagnostic("E901", "compilation failed without a diagnostic")]
        raise CompileError(sort_diagnostics(found), sources)
    datasets = used_datasets(lp.datasets, list(fe.steps), fe.loaded.entry)
    program = program_of(fe.names(), workflow, datasets, fe.steps, lp.backends)
    warnings = tuple(sort_diagnostics(d for d in fe.diagnostics if d.severity is Severity.WARNING))
    return Compiled(program, fe.catalog, fe.entry_path.resolve().parent, sources, warnings)


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
