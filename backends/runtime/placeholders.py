"""Runtime placeholders (``{batch_index}``, ``{output}``, ...) and the ``EXO_*`` variables.

What every backend fills in for one shard attempt (DESIGN §6): :func:`runtime_values`
gives each placeholder's value, :func:`expand` puts them into IR strings (never
through a shell), :func:`shard_environment` names them as ``EXO_*`` variables.
``exo.backends.api`` re-exports these names for plugins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from exo.compiler.diagnostics import Diagnostic, Span
from exo.compiler.ir import RUNTIME_PLACEHOLDERS, Step

from .shards import Shard

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(template: str, values: Mapping[str, str]) -> str:
    """Fill runtime placeholders in an IR string; ``{{``/``}}`` become braces.

    Values are inserted literally: they are never expanded again or handed to a shell.
    Placeholders missing from ``values`` are left as written.
    """

    def sub(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        name = m.group(1)
        return values.get(name, whole)

    return _PLACEHOLDER.sub(sub, template)


def placeholders_in(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


#: Placeholders that are another name for a ``batch_*`` one (DESIGN §6).
ALIASES: dict[str, str] = {
    "shard_index": "batch_index",
    "shard_start": "batch_start",
    "shard_end": "batch_end",
}


def runtime_values(
    *,
    step: str,
    shard: Shard,
    shard_count: int,
    batch_size: int | None,
    run_id: str,
    attempt: int,
    input: str,
    output: str,
    checkpoint: str,
) -> dict[str, str]:
    """Values of every runtime placeholder for one shard attempt."""
    index, start, end = str(shard.index), str(shard.start), str(shard.end)
    values = {
        "batch_index": index,
        "batch_start": start,
        "batch_end": end,
        "batch_size": str(batch_size if batch_size is not None else shard.size),
        "shard_count": str(shard_count),
        "checkpoint": checkpoint,
        "input": input,
        "output": output,
        "run_id": run_id,
        "attempt": str(attempt),
        "step": step,
    }
    for alias, name in _ALIASED:
        values[alias] = values[name]
    return values


#: ``ALIASES``' pairs, for the loop above (it runs once per shard attempt).
_ALIASED = tuple(ALIASES.items())
# Every placeholder has a value (checked once here, not at every attempt).
assert set(
    runtime_values(
        step="",
        shard=Shard(0, 0, 1),
        shard_count=1,
        batch_size=None,
        run_id="",
        attempt=1,
        input="",
        output="",
        checkpoint="",
    )
) == set(RUNTIME_PLACEHOLDERS)


#: Runtime placeholder -> the ``EXO_*`` variable that holds its value in a shard's
#: environment (DESIGN §6; the ``shard_*`` aliases have their own names too).
ENVIRONMENT: dict[str, str] = {
    "batch_index": "EXO_BATCH_INDEX",
    "batch_start": "EXO_BATCH_START",
    "batch_end": "EXO_BATCH_END",
    "batch_size": "EXO_BATCH_SIZE",
    "shard_index": "EXO_SHARD_INDEX",
    "shard_start": "EXO_SHARD_START",
    "shard_end": "EXO_SHARD_END",
    "shard_count": "EXO_SHARD_COUNT",
    "checkpoint": "EXO_CHECKPOINT",
    "attempt": "EXO_ATTEMPT",
    "run_id": "EXO_RUN_ID",
    "step": "EXO_STEP",
    "input": "EXO_INPUT",
    "output": "EXO_OUTPUT",
}
assert set(ENVIRONMENT) == set(RUNTIME_PLACEHOLDERS)


def shard_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The ``EXO_*`` variables a shard sees (DESIGN §6)."""
    return {var: values[name] for name, var in ENVIRONMENT.items()}


#: Placeholders ``output`` may use: one output location holds every shard of a step.
OUTPUT_PLACEHOLDERS = frozenset({"run_id", "step"})


def step_span(step: Step) -> Span | None:
    """The step's name where it was declared, for a backend's diagnostics."""
    if step.loc is None:
        return None
    return Span.point(step.loc.file, step.loc.line, step.loc.column, len(step.name))


def output_placeholder_problem(step: Step) -> Diagnostic | None:
    """E702 when ``output`` uses a per-shard placeholder: the same rule for every backend."""
    if not step.output:
        return None
    bad = sorted(set(placeholders_in(step.output)) - OUTPUT_PLACEHOLDERS)
    if not bad:
        return None
    return Diagnostic(
        "E702",
        f"step `{step.name}`: `output` uses "
        + ", ".join(f"{{{b}}}" for b in bad)
        + "; one location holds all shards of a step",
        step_span(step),
        help=("only {run_id} and {step} may appear in `output`",),
    )


def expand_command(command: Sequence[str], values: Mapping[str, str]) -> list[str]:
    return [expand(arg, values) for arg in command]
