"""pydantic's plugin loader, loaded only when pydantic could use a plugin.

Every time pydantic builds a validator (a model class, a ``TypeAdapter``: typer builds
one per command-line parameter) it imports ``pydantic.plugin._loader`` and asks its
``get_plugins()``. That module imports :mod:`importlib.metadata` at its top (with
``email``, ``zipfile``, ``csv``, ...: 49M instructions, 5% of ``exoc check`` of a small
file) even when plugins are off, as they are whenever ``exoc`` builds the models of
``check`` (:func:`exo.compiler.cli.support.pydantic_plugins_off`, and typer around its
own adapters), in which case ``get_plugins()`` returns ``()`` without looking.

:func:`install` puts a stand-in under the loader's name that answers exactly that case
itself, and loads the real loader (replacing itself in :data:`sys.modules`) the first
time anything else is asked: plugins on, or any other name of the module. What pydantic
sees is what the real loader would answer, so ``exoc plan``'s models still find a
user's plugins. Standard library only: ``exoc``'s entry point installs it before typer
builds its first adapter.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Iterable
from typing import Any

#: The module the stand-in answers for.
LOADER = "pydantic.plugin._loader"
#: The variable pydantic reads, and the values with which its ``get_plugins()``
#: returns ``()`` before anything else (pydantic 2.x: ``__all__``, ``1``, ``true``).
VAR = "PYDANTIC_DISABLE_PLUGINS"
ALL_OFF = frozenset({"__all__", "1", "true"})


def real_loader() -> types.ModuleType:
    """pydantic's own loader module, imported now if the stand-in is in its place."""
    module = sys.modules.get(LOADER)
    if module is None or getattr(module, "_exo_stand_in", False):
        sys.modules.pop(LOADER, None)
        module = importlib.import_module(LOADER)
    return module


def get_plugins() -> Iterable[Any]:
    """``()`` while plugins are off, as pydantic's would; otherwise pydantic's answer."""
    if os.environ.get(VAR) in ALL_OFF:
        return ()
    plugins: Iterable[Any] = real_loader().get_plugins()
    return plugins


def _any_other(name: str) -> Any:
    if name.startswith("__"):  # what the import system looks up (``__path__``): as the
        raise AttributeError(name)  # real module, which defines none of them either
    return getattr(real_loader(), name)


def install() -> bool:
    """The stand-in under the loader's name, unless the real one is loaded already
    (then nothing is left to save). True when installed."""
    if LOADER in sys.modules:
        return False
    stand_in = types.ModuleType(LOADER, __doc__)
    stand_in.__dict__.update(_exo_stand_in=True, get_plugins=get_plugins, __getattr__=_any_other)
    sys.modules[LOADER] = stand_in
    return True
