"""Where each part of the IR was written: a frozen map from IR paths to source spans.

The IR holds no spans (it is what the optimizer and the backends read); checks that
run after lowering — the graph, item counts, hardware against the catalog — point
their diagnostics at the source through this map instead. A path names a part of
the IR the way the language does, as the declaration's path and the part's path in
it:

- ``("workflow",)`` and ``(ATTR,)`` or ``("quota", KEY)``;
- ``("dataset", NAME)`` and ``(ATTR,)``;
- ``("step", NAME)`` and ``()`` (the step's name), ``(ATTR,)`` (an attribute as
  written: its value, or its key for a block), ``("after", STEP)``,
  ``("accelerators", ACCEL)`` or ``("perf", KEY)`` (a ``throughput`` or
  ``duration`` entry).

NAME is the qualified name (``corpora.clean``). Where a part was written twice in one
declaration the first place is kept (a quota entry keeps its last: its reader marks
it so); a later declaration of the same qualified name replaces an earlier one, as
it replaces the step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from exo.compiler.diagnostics import Span

Path = tuple[str, ...]


class SourceMap:
    """Read-only: declaration path → (part path → span) (see the module's docstring)."""

    __slots__ = ("_decls",)

    def __init__(self, decls: Iterable[tuple[Path, Mapping[Path, Span]]] = ()) -> None:
        """``decls``: each declaration's path and its read-only parts, in source order."""
        self._decls: Mapping[Path, Mapping[Path, Span]] = MappingProxyType(dict(decls))

    def span(self, decl: Path, *part: str) -> Span | None:
        """Where ``part`` of the declaration ``decl`` was written, or None."""
        parts = self._decls.get(decl)
        return parts.get(part) if parts is not None else None

    def step(self, name: str, *part: str) -> Span | None:
        return self.span(("step", name), *part)

    def below(self, decl: Path, *part: str) -> dict[str, Span]:
        """The parts directly below ``part`` of ``decl``, by their last name, in the order
        written."""
        n = len(part)
        parts = self._decls.get(decl, {})
        return {p[n]: s for p, s in parts.items() if len(p) == n + 1 and p[:n] == part}
