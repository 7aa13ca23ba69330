"""The attribute table: every attribute of a workflow, dataset and step in one place.

Each row says how the attribute is written (``key = value``, ``key { ... }`` or
either), which reader reads it and which IR field receives the value. Lowering a
declaration is this table applied in order (``lower.read_attributes``): the order is
the order of the language's documentation, of "did you mean" lists and of the
diagnostics, and a reader sees the fields read before it (``secrets`` sees ``env``).

A reader is ``read(reading, entry, got) -> value or None``. Most are a typed value
reader of :mod:`.values` with the attribute's limit (:func:`typed`); the others are
in :mod:`.steps` (step attributes) or below (the workflow's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from types import MappingProxyType
from typing import Any

from exo.compiler import limits as L
from exo.compiler import steps as S
from exo.compiler import values as V
from exo.compiler.ir import CPU_KEY, Quota
from exo.compiler.reading import Reading, Shape
from exo.compiler.sourcemap import Path
from exo.compiler.syntax import Attr, Block, Entry

Read = Callable[[Reading, Entry, Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute a declaration kind accepts: how its value is read into the IR."""

    name: str
    #: The IR field that receives the value (of ``Workflow``, ``Dataset`` or ``Step``).
    field: str
    read: Read
    shape: Shape = "value"
    #: The field's value when the attribute is not written, from the fields read so far
    #: (None: the IR model's default).
    default: Callable[[Mapping[str, Any]], Any] | None = None
    #: The reader depends only on the value written, the scope and the params (not on
    #: the fields read before it, and marks no part in the source map), and returns an
    #: immutable value: lowering reads each distinct value once (:mod:`.lowermemo`).
    memo: bool = False
    #: Its part path in the source map: ``(name,)``.
    path: Path = dataclass_field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", (self.name,))


class AttributeTable:
    """The rows of one declaration kind, in order, with what lowering looks up in them."""

    __slots__ = ("_defaults", "_known", "_position", "rows", "shapes")

    def __init__(self, *rows: Attribute) -> None:
        self.rows = rows
        #: Attribute name → how it is written, in the table's order.
        self.shapes: Mapping[str, Shape] = MappingProxyType({a.name: a.shape for a in rows})
        self._position = MappingProxyType({a.name: i for i, a in enumerate(rows)})
        self._defaults = frozenset(i for i, a in enumerate(rows) if a.default is not None)
        #: ``rows_for``'s answers by the names written: a workflow's declarations write
        #: a few sets of attributes, many times over.
        self._known: dict[tuple[str, ...], tuple[Attribute, ...]] = {}

    def rows_for(self, written: Iterable[str]) -> tuple[Attribute, ...]:
        """The rows of the attributes written (names the table knows) and of those with a
        default, in the table's order."""
        names = tuple(written)
        rows = self._known.get(names)
        if rows is None:
            at = {self._position[n] for n in names if n in self._position} | self._defaults
            rows = tuple(self.rows[i] for i in sorted(at))
            if len(self._known) < 4096:
                self._known[names] = rows
        return rows


def typed(reader: Callable[..., Any], **options: Any) -> Read:
    """A reader for ``key = value`` with one typed reader of :mod:`.values`."""

    def read(r: Reading, e: Entry, got: Mapping[str, Any]) -> Any:
        return reader(r.sink, e.key, r.value(e), **options)

    return read


# --- workflow readers -------------------------------------------------------------------


def _catalog(r: Reading, e: Entry, got: Mapping[str, Any]) -> str | None:
    s = V.string(r.sink, "catalog", r.value(e))
    return r.template(s, runtime=False) if s else None


def _confidence(r: Reading, e: Entry, got: Mapping[str, Any]) -> float | None:
    v = r.value(e)
    c = V.number(r.sink, "confidence", v, positive=False)
    if c is not None and not 0 < c < 1:
        r.sink.error(
            "E203",
            f"'confidence' must be between 0 and 1 (exclusive), got {c:g}",
            v.span,
            help=["to fix: e.g. confidence = 0.95 plans for the 95th percentile run time"],
        )
        return None
    return c


def _quota(r: Reading, e: Entry, got: Mapping[str, Any]) -> Quota:
    assert isinstance(e, Block)
    accel: dict[str, int] = {}
    cpu: int | None = None
    seen: set[str] = set()
    for sub in e.entries:
        if sub.key in seen:
            r.sink.error("E103", f"duplicate quota for '{sub.key}'", sub.key_span)
            continue
        seen.add(sub.key)
        if not isinstance(sub, Attr):
            r.sink.error("E201", "type error: a quota entry is 'NAME = count'", sub.key_span)
            continue
        v = r.deref(sub.value)
        n = V.integer(r.sink, f"quota {sub.key}", v, minimum=0, limit=L.QUOTA)
        if n is None:
            continue
        if sub.key == CPU_KEY:
            cpu = n
        else:
            accel[sub.key] = n
    # Every entry as written, refused ones too (the catalog must offer them), the last
    # place of a key given twice.
    for key, span in {sub.key: sub.key_span for sub in e.entries}.items():
        r.mark(span, "quota", key)
    return Quota(accelerators=accel, cpu=cpu)


def _path(r: Reading, e: Entry, got: Mapping[str, Any]) -> str | None:
    s = V.string(r.sink, e.key, r.value(e))
    return r.path_text(e.key, s) if s else None


# --- the tables -------------------------------------------------------------------------

WORKFLOW_ATTRIBUTES = AttributeTable(
    Attribute("deadline", "deadline_h", typed(V.duration_h, limit=L.DURATION_H)),
    Attribute("budget", "budget_usd", typed(V.money_usd, limit=L.AMOUNT_USD)),
    Attribute("objective", "objective", typed(V.enum, words=("cost", "time"))),
    Attribute("catalog", "catalog", _catalog),
    Attribute("confidence", "confidence", _confidence),
    Attribute("quota", "quota", _quota, "block"),
)

DATASET_ATTRIBUTES = AttributeTable(
    Attribute("uri", "uri", _path),
    Attribute("items", "items", typed(V.integer, limit=L.ITEMS)),
)

STEP_ATTRIBUTES = AttributeTable(
    # data flow
    Attribute("input", "input", S.read_input),
    Attribute("after", "after", S.read_after),
    Attribute("items", "items", typed(V.integer, limit=L.ITEMS), memo=True),
    Attribute("output", "output", _path),
    # execution
    Attribute("image", "image", S.read_image, memo=True),
    Attribute("command", "command", S.read_command, memo=True),
    Attribute("env", "env", S.read_env, "block"),
    Attribute("secrets", "secrets", S.read_secrets),
    # hardware
    Attribute("accelerators", "accelerators", S.read_accelerators),
    Attribute("gpus", "gpus", S.read_gpus, default=S.default_gpus),
    Attribute("cpu", "cpu", typed(V.integer, limit=L.CPUS), memo=True),
    Attribute("memory", "memory_gib", typed(V.size_gib, limit=L.SIZE_GIB), memo=True),
    # performance model
    Attribute("throughput", "throughput", S.read_throughput, "block"),
    Attribute("duration", "duration", S.read_duration, "either"),
    Attribute(
        "startup", "startup_h", typed(V.duration_h, positive=False, limit=L.DURATION_H), memo=True
    ),
    # choices
    Attribute("batch_sizes", "batch_sizes", S.read_batch_sizes),
    Attribute("replicas", "replicas", S.read_replicas, memo=True),
    Attribute("model_memory", "model_memory_gib", typed(V.size_gib, limit=L.SIZE_GIB), memo=True),
    Attribute(
        "memory_per_item", "memory_per_item_gib", typed(V.size_gib, limit=L.SIZE_GIB), memo=True
    ),
    # preemption and failure
    Attribute("spot", "spot", typed(V.enum, words=("allowed", "never", "only")), memo=True),
    Attribute("checkpoint", "checkpoint", S.read_checkpoint, memo=True),
    Attribute("retries", "retries", typed(V.integer, minimum=0, limit=L.RETRIES), memo=True),
    Attribute(
        "preemption_retries",
        "preemption_retries",
        typed(V.integer, minimum=0, limit=L.RETRIES),
        memo=True,
    ),
    Attribute("timeout", "timeout_h", typed(V.duration_h, limit=L.DURATION_H), memo=True),
    # documentation
    Attribute("description", "description", S.read_description, memo=True),
)
