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

Nor does a record compile its ``__init__`` and ``__repr__`` (issue #16, ninth round):
``dataclass`` compiles both from source text for every class, ~0.9M instructions a
class at every start. A record's ``__init__`` is one compiled function per number of
fields with its names put in (:func:`_init`): the same parameters, defaults,
annotations and stores as the one ``dataclass`` writes, so the same signature, errors
and values. Its ``__repr__`` is one function for every record (:func:`_repr`) that
writes what the generated one writes. A class that needs more of ``dataclass``'s
``__init__`` (a ``default_factory``, ``__post_init__``, a field kept out of
``__init__`` or keyword-only, no docstring of its own) gets the generated one, and the
shared ``__repr__`` all the same.

Values that are compared or hashed by value (``Span``, ``Diagnostic``, the IR's
pydantic models) stay truly frozen: their hash must not change under them.
"""

from __future__ import annotations

import sys
from dataclasses import MISSING, Field, dataclass, field, fields
from inspect import get_annotations
from reprlib import recursive_repr
from types import CodeType, FunctionType
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

#: ``def __init__(self, _0, ..., _n): self._0 = _0; ...`` compiled once per arity.
_TEMPLATES: dict[int, CodeType] = {}


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(field, Field))
def record(cls: type[T]) -> type[T]:
    """``cls`` as a slotted dataclass compared by identity, frozen for the type checker."""
    if not _stores_only(cls):  # dataclass's __init__; the shared __repr__ all the same
        made = dataclass(slots=True, eq=False, repr=False)(cls)
    else:
        made = dataclass(slots=True, eq=False, init=False, repr=False)(cls)
        if "__init__" not in cls.__dict__:
            made.__init__ = _init(made)  # type: ignore[method-assign]
    if "__repr__" not in cls.__dict__:
        made.__repr__ = _repr  # type: ignore[method-assign]
    return made


def _stores_only(cls: type) -> bool:
    """Whether the ``__init__`` ``dataclass`` would write for ``cls`` only stores its
    arguments (and the class has a docstring, which ``dataclass`` would otherwise write
    from that ``__init__``'s signature)."""
    if cls.__dict__.get("__doc__") is None or hasattr(cls, "__post_init__"):
        return False
    inherited = [
        f for base in cls.__mro__[1:] for f in getattr(base, "__dataclass_fields__", {}).values()
    ]
    if any(f.default_factory is not MISSING or not f.init or f.kw_only for f in inherited):
        return False
    annotations = get_annotations(cls)
    written = [a if isinstance(a, str) else repr(a) for a in annotations.values()]
    if any(w in a for a in written for w in ("ClassVar", "InitVar", "KW_ONLY")):
        return False
    names = {*annotations, *(f.name for f in inherited)}
    return "self" not in names and not any(isinstance(cls.__dict__.get(n), Field) for n in names)


def _template(arity: int) -> CodeType:
    code = _TEMPLATES.get(arity)
    if code is None:
        params = [f"_{i}" for i in range(arity)]
        body = "".join(f"    self.{p} = {p}\n" for p in params) or "    pass\n"
        namespace: dict[str, Any] = {}
        exec(f"def __init__(self, {', '.join(params)}):\n{body}", namespace)
        code = _TEMPLATES[arity] = namespace["__init__"].__code__
    return code


def _init(cls: type) -> FunctionType:
    """The ``__init__`` ``dataclass`` writes for ``cls``, whose fields :func:`_stores_only`
    accepted: the template of its arity with the fields' names and defaults."""
    own = fields(cls)
    names = tuple(f.name for f in own)
    defaults = tuple(f.default for f in own if f.default is not MISSING)
    for f in own[len(own) - len(defaults) :]:
        if f.default is MISSING:  # what dataclass says of such a class
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    code = _template(len(names)).replace(
        co_varnames=("self", *names),
        co_names=names,
        co_qualname=f"{cls.__qualname__}.__init__",
    )
    module = sys.modules.get(cls.__module__)
    namespace = module.__dict__ if module is not None else {}
    init = FunctionType(code, namespace, "__init__", defaults or None)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {f.name: f.type for f in own} | {"return": None}
    return init


@recursive_repr()
def _repr(self: object) -> str:
    """What ``dataclass``'s ``__repr__`` writes: ``Class(field=value, ...)``."""
    shown = ", ".join(
        f"{f.name}={getattr(self, f.name)!r}"
        for f in fields(self)  # type: ignore[arg-type]
        if f.repr
    )
    return f"{self.__class__.__qualname__}({shown})"
