"""The environment one shard attempt is started with.

The local runner and ``exoc profile`` start shards themselves and build it the
same way: the step's ``env`` with the runtime placeholders filled in (values inserted literally, never through a shell), the step's
secrets by name, the ``EXO_*`` variables (DESIGN §6) and the worker helper
first on ``PYTHONPATH``.

:func:`shard_env` is the definition. :class:`StepEnvironment` is the same for every shard
of one step with what cannot vary between them worked out once (a runner starts thousands
of shards per step): its environments and their ``NAME=value`` bytes, as ``os.posix_spawn``
encodes them (:func:`environment_entry`), are :func:`shard_env`'s.
"""

from __future__ import annotations

import operator
import os
import sys
from collections.abc import Mapping

from .checkpoints import python_path
from .placeholders import ENVIRONMENT, expand, placeholders_in, shard_environment


def shard_env(
    base: Mapping[str, str],
    step_env: Mapping[str, str],
    values: Mapping[str, str],
    *,
    secrets: Mapping[str, str],
    helper_lib: str | None,
) -> dict[str, str]:
    """The environment of one attempt; later entries win.

    ``base`` (the runner's environment, or a minimal one), then the step's
    ``env`` expanded, then ``secrets`` (values by name), then the ``EXO_*``
    variables, then ``helper_lib`` put first on ``PYTHONPATH``.
    """
    env = dict(base)
    env.update({k: expand(v, values) for k, v in step_env.items()})
    env.update(secrets)
    env.update(shard_environment(values))
    if helper_lib is not None:
        env["PYTHONPATH"] = python_path(helper_lib, env.get("PYTHONPATH"))
    return env


def environment_entry(name: str, value: str) -> bytes:
    """``NAME=value`` as ``os.posix_spawn`` encodes an environment's entry (the same checks):
    ValueError for an empty name, one with ``=``, or a null byte (UnicodeEncodeError, a
    ValueError too, for what the file-system encoding cannot write)."""
    raw_name, raw_value = os.fsencode(name), os.fsencode(value)
    if not raw_name or b"=" in raw_name:
        raise ValueError("illegal environment variable name")
    data = raw_name + b"=" + raw_value
    if b"\0" in data:
        raise ValueError("embedded null byte")
    return data


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
#: The ``EXO_*`` variables' placeholders, in :func:`shard_environment`'s order.
_PICK = operator.itemgetter(*ENVIRONMENT)
_EXO = frozenset(ENVIRONMENT.values())


def _varying(
    step_env: Mapping[str, str], secrets: Mapping[str, str]
) -> tuple[dict[str, str], str | None]:
    """The step's ``env`` values with a placeholder that :func:`shard_env` keeps (by name,
    ``PYTHONPATH`` apart): neither a secret nor an ``EXO_*`` variable replaces them."""
    kept = {
        k: v
        for k, v in step_env.items()
        if k not in secrets and k not in _EXO and placeholders_in(v)
    }
    return kept, kept.pop("PYTHONPATH", None)


def _prefix(name: str) -> bytes | None:
    """``NAME=`` encoded, or ``None`` for a name :func:`environment_entry` refuses."""
    try:
        raw = os.fsencode(name)
    except UnicodeEncodeError:
        return None
    return raw + b"=" if raw and b"=" not in raw and b"\0" not in raw else None


class StepEnvironment:
    """:func:`shard_env` for the shards of one step (its arguments less ``values``).

    ``env(values)`` is ``shard_env(base, step_env, values, secrets=..., helper_lib=...)``
    (the same keys, values and order) and ``entries(values)`` its entries as
    :func:`environment_entry` encodes them, in that order, raising what it raises for the
    first entry it refuses. Per shard only the variables that can vary are made and
    encoded: the ``EXO_*`` variables, the step's ``env`` values with a placeholder (unless
    a secret replaces them) and ``PYTHONPATH`` when it is made from one of those.
    """

    __slots__ = (
        "_at",
        "_entries",
        "_expanded",
        "_helper_lib",
        "_names",
        "_path",
        "_prefixes",
        "_refused",
        "_template",
    )

    def __init__(
        self,
        base: Mapping[str, str],
        step_env: Mapping[str, str],
        *,
        secrets: Mapping[str, str],
        helper_lib: str | None,
    ) -> None:
        probe = dict.fromkeys(ENVIRONMENT, "")  # every placeholder: the keys, in their order
        self._template = shard_env(base, step_env, probe, secrets=secrets, helper_lib=helper_lib)
        self._expanded, self._path = _varying(step_env, secrets)
        self._helper_lib = helper_lib
        path = () if self._path is None else ("PYTHONPATH",)
        #: The variables made per shard, in the order of ``_values``.
        self._names = (*self._expanded, *ENVIRONMENT.values(), *path)
        index = {name: i for i, name in enumerate(self._template)}
        self._at = tuple(index[name] for name in self._names)
        prefixes = [_prefix(name) for name in self._names]
        self._prefixes = tuple(p or b"" for p in prefixes)
        #: Some name is refused, or a fixed entry is: every start raises (the careful way).
        self._refused = None in prefixes
        #: The entries, those of the varying variables left empty (made per shard).
        self._entries: list[bytes] = []
        varying = set(self._names)
        for name, value in self._template.items():
            data = b""
            if name not in varying:
                try:
                    data = environment_entry(name, value)
                except ValueError:
                    self._refused = True
            self._entries.append(data)

    def _values(self, values: Mapping[str, str]) -> list[str]:
        """The varying variables' values, in ``_names``' order (:func:`shard_env`'s)."""
        out = [expand(v, values) for v in self._expanded.values()]
        out.extend(_PICK(values))
        if self._path is not None:
            path = expand(self._path, values)
            out.append(path if self._helper_lib is None else python_path(self._helper_lib, path))
        return out

    def env(self, values: Mapping[str, str]) -> dict[str, str]:
        """The environment of one shard's attempt: :func:`shard_env`'s."""
        env = self._template.copy()
        env.update(zip(self._names, self._values(values), strict=True))
        return env

    def entries(self, values: Mapping[str, str]) -> list[bytes]:
        """The environment's ``NAME=value`` entries, as :func:`environment_entry` encodes them."""
        made = self._values(values)
        if not self._refused:
            try:
                raw = [
                    p + v.encode(_FS_ENCODING, _FS_ERRORS)
                    for p, v in zip(self._prefixes, made, strict=True)
                ]
            except (AttributeError, UnicodeEncodeError):  # not a str, or not encodable
                raw = None
            # A null byte can only be in a value (``_prefix`` refuses names with one).
            if raw is not None and b"\0" not in b"".join(raw):
                out = self._entries.copy()
                for i, data in zip(self._at, raw, strict=True):
                    out[i] = data
                return out
        # Something is refused: encode every entry in order, so that the first one raises.
        varying = dict(zip(self._names, made, strict=True))
        return [
            environment_entry(name, varying.get(name, value))
            for name, value in self._template.items()
        ]

    def get(self, name: str, values: Mapping[str, str]) -> str | None:
        """One variable of the shard's environment (``PATH``, to find its program), or None."""
        if name not in self._names:
            return self._template.get(name)
        return self._values(values)[self._names.index(name)]
