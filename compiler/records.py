"""Records that are immutable by type: frozen for the type checker, plain slots at run time.

:func:`record` makes a slotted dataclass (``eq=False``: compared and hashed by identity)
that mypy treats as frozen (``dataclass_transform(frozen_default=True)``): assigning to
a field anywhere in exo is a type error, which ``make lint`` (``mypy --strict``) refuses.
At run time the class is not frozen: ``dataclass`` writes a frozen class's
``__setattr__`` and ``__delattr__`` (and an ``__init__`` storing each field through
``object.__setattr__``) as source text and compiles it when the class is defined, which
is more than half of what defining such a class costs, at every start of ``exoc``
(docs/benchmarks.md, issue #16, seventh round). For the syntax tree's nodes and the
front end's own records, which are never hashed by value (``eq=False``), that run-time
trap guards nothing the type check does not.

Values that are compared or hashed by value (``Span``, ``Diagnostic``, the IR's
pydantic models) stay truly frozen: their hash must not change under them.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(field, Field))
def record(cls: type[T]) -> type[T]:
    """``cls`` as a slotted dataclass compared by identity, frozen for the type checker."""
    return dataclass(slots=True, eq=False)(cls)
