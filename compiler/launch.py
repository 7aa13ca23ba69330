"""The ``exoc`` script and ``python -m exo.compiler``: :func:`exo.compiler.cli.main`,
started with the cyclic garbage collector paused and without ``interegular``.

Starting ``exoc`` (typer, pydantic with the IR's and the catalog's models, Lark, the
front end's modules) leaves ~55,000 objects the collector tracks, nearly all kept for
the process's life (modules, classes, functions, their dicts). Each time a generation
fills, the collector walks them and finds next to nothing to free (674 objects, once,
after ``exoc check``'s start-up): about 3% of the instructions of ``exoc check`` of a
small file (docs/benchmarks.md, issue #16, ninth round).

:func:`main` turns the collector off before importing the CLI; :func:`resume` turns it
back on, after moving every object then alive to the permanent generation
(``gc.freeze``), so that no later collection walks them again (the few objects that
were already garbage stay with them). ``exoc`` resumes once the front end is loaded
(:func:`exo.compiler.cli.support.load_front_end`), or at once for a command that does
not load it first (:data:`exo.compiler.cli.FRONT_END_FIRST`). Imported as a library
(``exo.compiler.cli.main`` called from a test or a tool), nothing is paused and
:func:`resume` does nothing.

Lark imports ``interegular`` whenever it is installed (it is not a dependency of exo,
but of other AI tooling, and of exo's test extra): 33M instructions, 4% of ``exoc
check`` of a small file, for Lark's strict mode, which ``exoc`` never uses (its parsers
are built from cached tables; the tests check the grammar strictly). While ``exoc``
starts, ``import interegular`` fails as if it were not installed, so Lark goes without
it as in a plain ``pip install exoc``; :func:`resume` makes it importable again, for
anything after the start-up that wants it.
"""

from __future__ import annotations

import gc
import sys


class _Pause:
    """What :func:`main` paused (the collector) or hid (``interegular``) and nothing has
    resumed yet."""

    on = False
    hidden = False


_PAUSE = _Pause()


def main() -> None:
    """``exoc``: :func:`exo.compiler.cli.main` with the collector paused while it starts."""
    if gc.isenabled():
        gc.disable()
        _PAUSE.on = True
    if "interegular" not in sys.modules:
        sys.modules["interegular"] = None  # type: ignore[assignment]  # import fails
        _PAUSE.hidden = True
    try:
        from exo.compiler.cli import main as cli_main

        cli_main()
    finally:
        resume()  # an exit before the front end (``leave`` ends the process without it)


def resume() -> None:
    """The collector on again, what is alive now never walked again, and ``interegular``
    importable again; once, and only what :func:`main` paused or hid."""
    if _PAUSE.hidden:
        _PAUSE.hidden = False
        if "interegular" in sys.modules and sys.modules["interegular"] is None:
            del sys.modules["interegular"]
    if _PAUSE.on:
        _PAUSE.on = False
        gc.freeze()
        gc.enable()
