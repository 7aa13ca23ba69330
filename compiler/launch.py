"""The ``exoc`` script and ``python -m exo.compiler``: :func:`exo.compiler.cli.main`,
started with the cyclic garbage collector paused.

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
"""

from __future__ import annotations

import gc


class _Pause:
    """Whether :func:`main` paused the collector and nothing has resumed it yet."""

    on = False


_PAUSE = _Pause()


def main() -> None:
    """``exoc``: :func:`exo.compiler.cli.main` with the collector paused while it starts."""
    if gc.isenabled():
        gc.disable()
        _PAUSE.on = True
    try:
        from exo.compiler.cli import main as cli_main

        cli_main()
    finally:
        resume()  # an exit before the front end (``leave`` ends the process without it)


def resume() -> None:
    """The collector on again, what is alive now never walked again; once, and only if
    :func:`main` paused it."""
    if _PAUSE.on:
        _PAUSE.on = False
        gc.freeze()
        gc.enable()


def stay_off() -> None:
    """The collector off for the rest of the process (a command of
    :data:`exo.compiler.cli.UNCOLLECTED`): :func:`resume` does nothing after this."""
    gc.disable()
    _PAUSE.on = False
