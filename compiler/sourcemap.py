"""Where each part of the IR was written: a frozen map from IR paths to source spans.

The IR holds no spans (it is what the optimizer and the backends read); checks that
run after lowering — the graph, item counts, hardware against the catalog — point
their diagnostics at the source through this map instead. A path names a part of
the IR the way the language does:

- ``("workflow", ATTR)`` and ``("workflow", "quota", KEY)``;
- ``("dataset", NAME, ATTR)``;
- ``("step", NAME)`` (the step's name), ``("step", NAME, ATTR)`` (an attribute as
  written: its value, or its key for a block), ``("step", NAME, "after", STEP)``,
  ``("step", NAME, "accelerators", ACCEL)`` and ``("step", NAME, "perf", KEY)`` (a
  ``throughput`` or ``duration`` entry).

NAME is the qualified name (``corpora.clean``). Where a part was written twice the
first place is kept (a quota entry keeps its last: its reader marks it so).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from exo.compiler.diagnostics import Span

Path = tuple[str, ...]


class SourceMap(Mapping[Path, Span]):
    """A read-only ``Mapping[Path, Span]`` (see the module's docstring)."""

    __slots__ = ("_spans",)

    def __init__(self, spans: Mapping[Path, Span] | None = None) -> None:
        self._spans: Mapping[Path, Span] = MappingProxyType(dict(spans or {}))

    @classmethod
    def of(cls, groups: Iterable[Iterable[tuple[Path, Span]]]) -> SourceMap:
        """A map of the ``(path, span)`` pairs of each declaration read: within one the
        first span of a path is kept, and a later declaration's replaces an earlier's
        (as a later declaration of the same qualified name replaces the step)."""
        spans: dict[Path, Span] = {}
        for pairs in groups:
            mine: set[Path] = set()
            for path, span in pairs:
                if path not in mine:
                    mine.add(path)
                    spans[path] = span
        return cls(spans)

    def __getitem__(self, path: Path) -> Span:
        return self._spans[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)

    def below(self, *prefix: str) -> dict[str, Span]:
        """The parts directly below ``prefix``, by their last name, in the order written."""
        n = len(prefix)
        return {p[n]: s for p, s in self._spans.items() if len(p) == n + 1 and p[:n] == prefix}

    def step(self, name: str, *path: str) -> Span | None:
        return self._spans.get(("step", name, *path))
