"""Backend discovery through the ``exo.backends`` entry-point group, and options.

Every backend, built-in or third-party, is found the same way: an entry point
``NAME = "package.module:BackendClass"`` in the group ``exo.backends``. Each is
validated on load; a broken plugin becomes an ``E703`` diagnostic naming the
distribution and what is wrong, never a traceback, and the other backends stay
usable.

Options of a backend come from two places, merged in this order: the
``backend NAME { ... }`` block of the workflow, then ``--NAME-FIELD`` flags.
:func:`resolve_options` validates the result against the backend's pydantic
``Options`` model and reports problems as ``E701`` diagnostics.
"""

from __future__ import annotations

import importlib.metadata as metadata
import inspect
import json
import keyword
import re
import traceback
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from exo.compiler.diagnostics import Diagnostic, Severity, did_you_mean

from .api import API_VERSION, Backend, Capabilities, OptionsT, RunnableBackend

#: The entry-point group backends register under.
GROUP = "exo.backends"
#: Interface versions this exo can load.
SUPPORTED_API_VERSIONS: frozenset[int] = frozenset({API_VERSION})

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class Registry:
    """The loaded backends by name (sorted) and, by name, why the others could not load."""

    backends: Mapping[str, Backend[Any]] = field(default_factory=dict)
    #: Entry-point name -> the E703 diagnostics that made it unavailable.
    broken: Mapping[str, tuple[Diagnostic, ...]] = field(default_factory=dict)

    @property
    def problems(self) -> tuple[Diagnostic, ...]:
        """Every problem found while loading, in name order."""
        return tuple(d for name in sorted(self.broken) for d in self.broken[name])

    def names(self) -> list[str]:
        return sorted(self.backends)

    def lookup(self, name: str) -> Backend[Any] | list[Diagnostic]:
        """The backend called ``name``, or the diagnostics explaining why there is none."""
        if name in self.backends:
            return self.backends[name]
        if name in self.broken:
            return list(self.broken[name])
        return [
            Diagnostic(
                "E701",
                f"unknown backend `{name}`",
                help=(
                    *did_you_mean(name, self.backends),
                    "installed backends: " + (", ".join(self.names()) or "none"),
                ),
            )
        ]


def _problem(name: str, origin: str, what: str, *, help: Iterable[str] = ()) -> Diagnostic:
    return Diagnostic(
        "E703",
        f"backend plugin `{name}` ({origin}) is broken: {what}",
        help=tuple(help),
    )


def _origin(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    where = (
        f"{dist.metadata['Name']} {dist.version}" if dist is not None else "unknown distribution"
    )
    return f"{where}, entry point `{ep.value}`"


def validate_backend_class(name: str, obj: object, origin: str) -> Backend[Any] | Diagnostic:
    """Check that ``obj`` is a usable backend class and instantiate it."""
    if not (inspect.isclass(obj) and issubclass(obj, Backend)):
        return _problem(
            name,
            origin,
            f"it is {type(obj).__name__} {obj!r}, not a subclass of exo.backends.api.Backend",
        )
    if inspect.isabstract(obj):
        missing = sorted(getattr(obj, "__abstractmethods__", ()))
        return _problem(name, origin, "it does not implement " + ", ".join(missing))
    declared = getattr(obj, "name", None)
    if declared != name:
        return _problem(
            name,
            origin,
            f"the class says its name is {declared!r} but it is registered as {name!r}",
            help=["the entry-point name and the class attribute `name` must be equal"],
        )
    if not _NAME.match(name):
        return _problem(name, origin, "a backend name is lower-case letters, digits, - and _")
    version = getattr(obj, "api_version", None)
    if version not in SUPPORTED_API_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_API_VERSIONS))
        return _problem(
            name,
            origin,
            f"it was written for backend API version {version!r}; this exo supports {supported}",
            help=["upgrade the plugin or exo so that the versions match"],
        )
    options = getattr(obj, "Options", None)
    if not (inspect.isclass(options) and issubclass(options, BaseModel)):
        return _problem(name, origin, "its `Options` is not a pydantic model class")
    bad = [f for f in options.model_fields if not f.isidentifier() or keyword.iskeyword(f)]
    if bad:
        return _problem(name, origin, f"option names must be identifiers: {', '.join(bad)}")
    caps = getattr(obj, "capabilities", None)
    if not isinstance(caps, Capabilities):
        return _problem(name, origin, "its `capabilities` is not an api.Capabilities value")
    if caps.run and not issubclass(obj, RunnableBackend):
        return _problem(
            name,
            origin,
            "it claims the `run` capability but is not a RunnableBackend",
        )
    try:
        instance = obj()
    except Exception as exc:
        return _problem(name, origin, f"creating it failed: {type(exc).__name__}: {exc}")
    return instance


def load_entry_points(entry_points: Iterable[metadata.EntryPoint]) -> Registry:
    """Load and validate the given entry points (in name order; duplicates are problems)."""
    backends: dict[str, Backend[Any]] = {}
    broken: dict[str, list[Diagnostic]] = {}
    seen: dict[str, str] = {}
    for ep in sorted(entry_points, key=lambda e: (e.name, e.value)):
        if ep.name in seen:
            if seen[ep.name] != ep.value:
                broken.setdefault(ep.name, []).append(
                    _problem(
                        ep.name,
                        _origin(ep),
                        f"another plugin already registered this name ({seen[ep.name]})",
                        help=["uninstall one of the two distributions"],
                    )
                )
            continue
        seen[ep.name] = ep.value
        result = _load(ep)
        if isinstance(result, Diagnostic):
            broken.setdefault(ep.name, []).append(result)
        else:
            backends[ep.name] = result
    return Registry(
        dict(sorted(backends.items())), {name: tuple(ds) for name, ds in sorted(broken.items())}
    )


def _load(ep: metadata.EntryPoint) -> Backend[Any] | Diagnostic:
    """Import one entry point and validate what it names."""
    origin = _origin(ep)
    try:
        obj = ep.load()
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
        return _problem(ep.name, origin, f"importing it failed: {type(exc).__name__}: {exc}{where}")
    return validate_backend_class(ep.name, obj, origin)


def installed() -> Registry:
    """Every backend registered in the running interpreter's environment."""
    return load_entry_points(metadata.entry_points(group=GROUP))


# --- options ---------------------------------------------------------------------------


def flag_name(backend: str, field_name: str) -> str:
    """``--<backend>-<field>`` with underscores as dashes."""
    return f"--{backend}-{field_name}".replace("_", "-")


def _describe(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def resolve_options(
    backend: Backend[OptionsT],
    block: Mapping[str, object] | None = None,
    flags: Mapping[str, object] | None = None,
) -> tuple[OptionsT | None, list[Diagnostic]]:
    """Validate ``backend NAME { ... }`` values overridden by CLI flags.

    ``flags`` is keyed by field name and holds only the flags actually given.
    Returns the backend's own options model (what its methods take), or ``None``
    with ``E701`` diagnostics.
    """
    block = dict(block or {})
    flags = dict(flags or {})
    fields = backend.Options.model_fields
    diagnostics: list[Diagnostic] = []
    for key in sorted(set(block) - set(fields)):
        diagnostics.append(
            Diagnostic(
                "E701",
                f"unknown option `{key}` in `backend {backend.name} {{ ... }}`",
                help=(
                    *did_you_mean(key, fields),
                    "options: " + (", ".join(sorted(fields)) or "none"),
                ),
            )
        )
    for key in sorted(set(flags) - set(fields)):
        diagnostics.append(Diagnostic("E701", f"unknown option {flag_name(backend.name, key)}"))
    if diagnostics:
        return None, diagnostics
    merged: dict[str, object] = {**block, **flags}
    try:
        return backend.Options.model_validate(merged), []
    except ValidationError as err:
        for e in err.errors(include_url=False):
            loc = e.get("loc") or ()
            key = str(loc[0]) if loc else ""
            where = (
                flag_name(backend.name, key)
                if key in flags
                else f"option `{key}` in `backend {backend.name} {{ ... }}`"
                if key in block
                else f"option `{key}` of backend `{backend.name}`"
            )
            got = f" (got {_describe(merged[key])})" if key in merged else ""
            detail = ".".join(str(p) for p in loc[1:])
            sub = f" at `{detail}`" if detail else ""
            diagnostics.append(Diagnostic("E701", f"{where}{sub}: {_message(e)}{got}"))
        return None, diagnostics


def _message(error: Any) -> str:
    """pydantic's message, less the "Value error, " it puts before a validator's own words."""
    raised = (error.get("ctx") or {}).get("error")
    if error.get("type") == "value_error" and isinstance(raised, ValueError):
        return str(raised)
    return str(error["msg"])


def unknown_blocks(registry: Registry, program_blocks: Mapping[str, object]) -> list[Diagnostic]:
    """Warnings for ``backend NAME { ... }`` blocks naming no installed backend."""
    out: list[Diagnostic] = []
    for name in sorted(program_blocks):
        if name not in registry.backends:
            out.append(
                Diagnostic(
                    "E701",
                    f"options given for backend `{name}`, which is not installed",
                    help=tuple(did_you_mean(name, registry.backends)),
                    severity=Severity.WARNING,
                )
            )
    return out


_SCALAR_LABELS: dict[object, str] = {str: "TEXT", int: "INT", float: "NUMBER"}


def value_label(annotation: Any) -> str | None:
    """How an option's value is written on the command line (``None``: a flag, no value).

    ``TEXT``, ``INT``, ``NUMBER``, the choices of a ``Literal`` (``none|apptainer``),
    ``JSON`` for mappings and models; optional and list types show their item type.
    """
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if annotation is bool or (args and all(a is bool for a in args) and origin is not list):
        return None
    if origin is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        return value_label(args[0]) if args else "VALUE"
    if origin is dict or (inspect.isclass(annotation) and issubclass(annotation, BaseModel)):
        return "JSON"
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return value_label(args[0])
    return _SCALAR_LABELS.get(annotation, "VALUE")


def option_rows(backend: Backend) -> list[tuple[str, str, str, str]]:
    """(flag, type, default, description) for each option, in declaration order."""
    rows: list[tuple[str, str, str, str]] = []
    for fname, info in backend.Options.model_fields.items():
        ann: Any = info.annotation
        type_name = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        if info.is_required():
            default = "(required)"
        else:
            default = _describe(info.get_default(call_default_factory=True))
        rows.append((flag_name(backend.name, fname), type_name, default, info.description or ""))
    return rows
