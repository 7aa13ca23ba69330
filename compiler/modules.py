"""Loading a program's files: the entry file and everything it imports.

``std/…`` imports come from the ``exo.stdlib`` package; other imports are
relative to the importing file and may not leave the entry file's folder (the
project). Import cycles are rejected. The result is a set of parsed modules,
each with its import table (alias → module key); nothing is resolved yet.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from exo.compiler.diagnostics import (
    CompileError,
    Diagnostic,
    DiagnosticSink,
    did_you_mean,
    excerpt,
    sort_diagnostics,
)
from exo.compiler.inputs import MAX_SOURCE_BYTES, InputRefused, read_regular_file
from exo.compiler.packagedata import package_files
from exo.compiler.parser import decode_source, parse_recovering
from exo.compiler.records import record
from exo.compiler.syntax import Import, Module
from exo.compiler.treebuild import Memos

STD_PREFIX = "std/"


@record
class LoadedModule:
    """One file of the program, read and parsed."""

    #: Stable key: ``std/llm.exo`` or the path relative to the project folder (posix).
    key: str
    #: How diagnostics name the file (as the user sees it).
    label: str
    syntax: Module
    #: alias → module key
    imports: dict[str, str]


@dataclass(eq=False)
class LoadedProgram:
    """The entry file and every module it imports, as loaded."""

    entry: str
    #: How the user named the entry file; other modules are named from it.
    entry_label: str = ""
    modules: dict[str, LoadedModule] = field(default_factory=dict)
    #: label → text, for rendering diagnostics
    sources: dict[str, str] = field(default_factory=dict)
    #: Bad literals (unknown units, bad escapes, ...) of every file. The syntax tree
    #: holds a stand-in for each, so the program is still lowered and checked; the
    #: front end reports these with what else it finds.
    literal_errors: list[Diagnostic] = field(default_factory=list)
    #: What the parser remembered reading these files (decoded strings, compound
    #: attributes), shared by them and freed with their syntax trees (``Memos``).
    memos: Memos = field(default_factory=Memos)


def std_names() -> list[str]:
    root = package_files("exo.stdlib").joinpath("std")
    return sorted(
        f"std/{p.name.removesuffix('.exo')}" for p in root.iterdir() if p.name.endswith(".exo")
    )


def module_label(entry_label: str, key: str) -> str:
    """How diagnostics name the module ``key`` of a program whose entry file the user
    named ``entry_label``: the entry as named, ``std/...`` as is, other modules by
    their path from where the user named the entry (``x/common.exo``)."""
    entry_dir, entry_name = posixpath.split(entry_label.replace("\\", "/"))
    if key == entry_name:
        return entry_label
    if key.startswith(STD_PREFIX):
        return key
    return posixpath.normpath(posixpath.join(entry_dir, key))


def _read_std(name: str) -> str | None:
    rel = name.removeprefix(STD_PREFIX)
    if not rel.endswith(".exo"):
        rel += ".exo"
    if ".." in rel.split("/") or rel.startswith("/"):
        return None
    node = package_files("exo.stdlib").joinpath("std")
    for part in rel.split("/"):
        node = node.joinpath(part)
    return node.read_text("utf-8") if node.is_file() else None


def load_program(entry: Path, *, label: str | None = None) -> LoadedProgram:
    """Read and parse the entry file and its imports; every error is reported."""
    entry_label = label or str(entry)
    root = entry.resolve().parent
    prog = LoadedProgram(entry=entry.name, entry_label=entry_label)
    sink = DiagnosticSink()
    try:
        data = read_regular_file(entry, MAX_SOURCE_BYTES)
    except InputRefused as e:
        code = "E012" if e.too_large else "E001"
        raise CompileError(
            [Diagnostic(code, f"cannot read {entry_label}: it {e.reason}")]
        ) from None
    except OSError as e:
        raise CompileError(
            [Diagnostic("E001", f"cannot read {entry_label}: {e.strerror or e}")]
        ) from None
    text = decode_source(data, entry_label)
    prog.sources[entry_label] = text
    module = _parse(prog, sink, text, entry_label)
    _visit(prog, sink, root, entry.name, entry_label, module, stack=[])
    if sink.has_errors:
        # Syntax errors (or missing imports): the tree lacks declarations, so lowering
        # would only add knock-on errors. Report what the files themselves say.
        every = [*sink.items, *prog.literal_errors]
        raise CompileError(sort_diagnostics(every), prog.sources)
    return prog


def _parse(prog: LoadedProgram, sink: DiagnosticSink, text: str, label: str) -> Module:
    """Parse with recovery: syntax errors to the sink, bad literals to the program."""
    parsed = parse_recovering(text, label, prog.memos)
    sink.add(parsed.syntax_errors)
    prog.literal_errors.extend(parsed.literal_errors)
    return parsed.module


def _visit(
    prog: LoadedProgram,
    sink: DiagnosticSink,
    root: Path,
    key: str,
    label: str,
    module: Module,
    stack: list[tuple[str, Import]],
) -> None:
    """Load ``module``'s imports, depth first. ``stack`` holds the modules above it,
    each with the import that leads down (the entry file's import first)."""
    imports: dict[str, str] = {}
    loaded = LoadedModule(key, label, module, imports)
    prog.modules[key] = loaded
    path = [k for k, _ in stack]
    for item in module.items:
        if not isinstance(item, Import):
            continue
        target = _resolve_import(sink, root, key, item)
        if target is None:
            continue
        tkey = target
        alias = item.alias or posixpath.basename(tkey).removesuffix(".exo")
        if alias in imports:
            sink.error(
                "E115",
                f"two imports use the name '{alias}'",
                item.alias_span or item.path.span,
                help=[f"to fix: give one of them another name with `as`, e.g. as {alias}2"],
            )
            continue
        imports[alias] = tkey
        if tkey in (*path, key):
            _cycle(sink, [*path, key], tkey, item, stack)
            continue
        if tkey in prog.modules:
            continue
        tlabel = module_label(prog.entry_label, tkey)
        text = _read_module(sink, root, tkey, tlabel, item)
        if text is None:
            continue
        prog.sources[tlabel] = text
        child = _parse(prog, sink, text, tlabel)
        _visit(prog, sink, root, tkey, tlabel, child, [*stack, (key, item)])


def _cycle(
    sink: DiagnosticSink,
    path: list[str],
    target: str,
    item: Import,
    stack: list[tuple[str, Import]],
) -> None:
    """E111 at the import that closes the cycle and, when that is in another file, also
    at the entry file's import that leads into it (where the user is looking)."""
    cycle = " -> ".join([*path[path.index(target) :], target])
    fix = "to fix: move what both files need into a third file that both import"
    sink.error("E111", f"import cycle: {cycle}", item.path.span, help=[fix])
    if stack:
        first = stack[0][1]
        sink.error(
            "E111",
            f"this import leads into an import cycle: {cycle}",
            first.path.span,
            help=[fix],
            notes=[f"the cycle closes at {item.path.span.file}:{item.path.span.line}"],
        )


def _resolve_import(sink: DiagnosticSink, root: Path, importer: str, item: Import) -> str | None:
    """The module key (its path relative to the project, or std/...) an import names."""
    raw = item.path.text
    if item.path.placeholders:
        sink.error("E109", "an import path cannot contain placeholders", item.path.span)
        return None
    if raw.startswith(STD_PREFIX):
        name = raw if raw.endswith(".exo") else raw + ".exo"
        return name
    if importer.startswith(STD_PREFIX):
        # std modules import each other by std/ path only.
        sink.error("E109", f"std module imports must start with std/: '{raw}'", item.path.span)
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), raw))
    if raw.startswith("/") or joined == ".." or joined.startswith("../"):
        sink.error(
            "E110",
            f"import outside the project: '{raw}'",
            item.path.span,
            help=[
                "imports may only name files inside the entry file's folder, or std/ modules",
                "to fix: copy the module into the project, or import it from std/",
            ],
        )
        return None
    resolved = (root / joined).resolve()
    if not resolved.is_relative_to(root):
        sink.error(
            "E110",
            f"import outside the project: '{raw}' (through a link)",
            item.path.span,
        )
        return None
    if not raw.endswith(".exo"):
        sink.error(
            "E109",
            f"an import names a .exo file: '{excerpt(raw)}'",
            item.path.span,
            help=['to fix: import the module by its file name, e.g. import "./datasets.exo"'],
        )
        return None
    return joined


def _read_module(
    sink: DiagnosticSink, root: Path, key: str, label: str, item: Import
) -> str | None:
    if key.startswith(STD_PREFIX):
        text = _read_std(key)
        if text is None:
            name = key.removesuffix(".exo")
            sink.error(
                "E109",
                f"no standard module '{name}'",
                item.path.span,
                help=[
                    *did_you_mean(name, std_names()),
                    "the standard modules are: " + (", ".join(std_names()) or "(none)"),
                ],
            )
        return text
    path = root / key
    try:
        data = read_regular_file(path, MAX_SOURCE_BYTES)
    except InputRefused as e:
        code = "E012" if e.too_large else "E001"
        sink.error(code, f"cannot read the imported file '{label}': it {e.reason}", item.path.span)
        return None
    except FileNotFoundError:
        sink.error(
            "E109",
            f"cannot find the imported file '{item.path.text}'",
            item.path.span,
            help=[f"it was looked for at {label}"],
        )
        return None
    except OSError as e:
        sink.error(
            "E001",
            f"cannot read the imported file '{label}': {e.strerror or e}",
            item.path.span,
        )
        return None
    try:
        return decode_source(data, label)
    except CompileError as e:
        sink.add(e.diagnostics)
        return None
