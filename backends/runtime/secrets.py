"""The missing-secrets check every runner makes before it starts anything (E704).

A step names the secrets it needs (``secrets = [...]``); their values come from
the runner's environment, by name, and are never written anywhere. A name not
set there stops ``exoc run`` before the first shard starts, for every step at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from exo.compiler.diagnostics import Diagnostic


def missing_secrets(
    needs: Iterable[tuple[str, Sequence[str]]], environ: Mapping[str, str], *, how: str
) -> list[Diagnostic]:
    """E704 for each ``(step, secret names)`` whose secret is not in ``environ``.

    ``how`` is the note that says how this runner passes secrets to its shards.
    """
    return [
        Diagnostic(
            "E704",
            f"step `{step}` needs the secret `{name}`, which is not set in the environment",
            help=(f"set it before running, e.g. `export {name}=...`",),
            notes=(how,),
        )
        for step, names in needs
        for name in names
        if name not in environ
    ]
