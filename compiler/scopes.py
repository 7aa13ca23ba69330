"""The first front-end pass: one scope per loaded module, and name resolution in them.

A scope maps the names a module declares (datasets, steps, params) to their
declarations; imported modules contribute theirs under their alias
(``corpora.wiki``). :func:`build_scopes` is pure: it returns the scopes and the
diagnostics it found (unknown declaration kinds, duplicate and over-long names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from exo.compiler.diagnostics import Diagnostic, DiagnosticSink, Span, did_you_mean, excerpt
from exo.compiler.modules import LoadedModule, LoadedProgram
from exo.compiler.names import decl_name_problem
from exo.compiler.records import record
from exo.compiler.syntax import Decl, Param

DECL_KINDS = ("workflow", "dataset", "step", "backend")

#: A param as a value: (module key, name in that module). Unique, unlike qualified
#: names (a dotted name in one module may spell an alias's name in another).
ParamKey = tuple[str, str]


# Scopes hold plain dicts typed as read-only ``Mapping``s: nothing writes them once
# built, and name lookups are the front end's innermost loop.


@record
class Scope:
    """The names one module declares, and the prefix that qualifies them."""

    module: LoadedModule
    #: Prefix of qualified names from this module ("" for the entry file).
    prefix: str
    decls: Mapping[str, Decl | Param]


@record
class Scopes:
    """Every module's scope and the order of the declarations."""

    entry: str
    #: module key → its scope, the entry first, then imports breadth first.
    by_module: Mapping[str, Scope]
    #: qualified name → position of its declaration (ties of the topological order).
    decl_order: Mapping[str, int]

    @property
    def entry_scope(self) -> Scope:
        return self.by_module[self.entry]


class Resolved(NamedTuple):
    """What a name refers to (a named tuple: name lookups are the front end's inner loop)."""

    qualified: str
    target: Decl | Param
    scope: Scope
    #: The name in ``scope`` (``qualified`` less the scope's prefix).
    name: str

    @property
    def key(self) -> ParamKey:
        return (self.scope.module.key, self.name)


def kind_of(node: Decl | Param) -> str:
    return node.kind if isinstance(node, Decl) else "param"


def build_scopes(prog: LoadedProgram) -> tuple[Scopes, tuple[Diagnostic, ...]]:
    """Every module's scope, declarations checked for kind, name length and duplicates."""
    sink = DiagnosticSink()
    decl_order: dict[str, int] = {}
    by_module: dict[str, Scope] = {}
    for key, prefix in _prefixes(prog).items():
        module = prog.modules[key]
        decls: dict[str, Decl | Param] = {}
        for item in module.syntax.items:
            if isinstance(item, Decl):
                if item.kind not in DECL_KINDS:
                    sink.error(
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
                _declare(sink, module, decls, item, item.kind)
            elif isinstance(item, Param):
                _declare(sink, module, decls, item, "param")
        for name in decls:
            decl_order.setdefault(prefix + name, len(decl_order))
        by_module[key] = Scope(module, prefix, decls)
    return Scopes(prog.entry, by_module, decl_order), tuple(sink.items)


def _prefixes(prog: LoadedProgram) -> dict[str, str]:
    """module key → the prefix of its names: the entry file's are bare, imports' aliased."""
    prefixes: dict[str, str] = {prog.entry: ""}
    queue = [prog.entry]
    while queue:
        key = queue.pop(0)
        for alias, target in sorted(prog.modules[key].imports.items()):
            if target not in prefixes and target in prog.modules:
                prefixes[target] = prefixes[key] + alias + "."
                queue.append(target)
    return prefixes


def _declare(
    sink: DiagnosticSink,
    module: LoadedModule,
    decls: dict[str, Decl | Param],
    node: Decl | Param,
    kind: str,
) -> None:
    name, span = node.name, node.name_span
    check_name(sink, kind, name, span)
    first = decls.get(name)
    if first is not None:
        fkind = kind_of(first)
        same = "" if fkind == kind else f" (already a {fkind})"
        sink.error(
            "E102",
            f"duplicate {kind} '{name}'{same} (first defined at line {first.name_span.line})",
            span,
            help=["to fix: rename one of them; every name in a file is unique"],
        )
        return
    if name in module.imports:
        sink.error("E102", f"'{name}' is already the name of an import", span)
        return
    decls[name] = node


def check_name(sink: DiagnosticSink, kind: str, name: str, span: Span) -> None:
    problem = decl_name_problem(name)
    if problem is not None:
        sink.error(
            "E208",
            f"the name of {kind} '{excerpt(name)}' is too long: {problem}",
            span,
            help=["to fix: choose a shorter name; names become file and job names"],
        )


def resolve(scopes: Scopes, scope: Scope, name: str, depth: int = 0) -> Resolved | None:
    """What ``name`` written in ``scope`` refers to (through import aliases), or None."""
    target = scope.decls.get(name)
    if target is not None:
        return Resolved(scope.prefix + name, target, scope, name)
    if depth > 8:
        return None
    for i, ch in enumerate(name):
        if ch == "." and name[:i] in scope.module.imports:
            module = scopes.by_module.get(scope.module.imports[name[:i]])
            if module is not None:
                return resolve(scopes, module, name[i + 1 :], depth + 1)
    return None


def visible_names(scopes: Scopes, scope: Scope, kinds: tuple[str, ...]) -> list[str]:
    """The names of these kinds that ``scope`` can refer to (for "did you mean")."""
    out = [n for n, d in scope.decls.items() if kind_of(d) in kinds]
    for alias, key in scope.module.imports.items():
        target = scopes.by_module.get(key)
        if target is None:
            continue
        out.extend(f"{alias}.{n}" for n, d in target.decls.items() if kind_of(d) in kinds)
    return out
