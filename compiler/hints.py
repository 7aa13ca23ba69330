"""Warnings about hardware the optimizer will silently never use (``exoc check`` and ``plan``).

- E308: a candidate instance type (an accelerator the step lists, or a CPU
  instance for a CPU step) has no throughput or duration entry, so it is not an
  option (DESIGN §3) although the step names it.
- E405: a ``quota`` key is an accelerator of the catalog that no step of the
  workflow can run on (``A100`` while the steps use ``A100-80GB``): the quota
  limits nothing, which is rarely what was meant.

Both are warnings: the plan is still made, but the user learns what it ignores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exo.compiler.catalog import Catalog
from exo.compiler.diagnostics import Diagnostic, Severity, Span, suggest
from exo.compiler.hardware import candidate_instances, hardware_misfit, perf_keys
from exo.compiler.ir import CPU_KEY, Step


def _warn(code: str, message: str, span: Span | None, help: Sequence[str]) -> Diagnostic:
    return Diagnostic(code, message, span, tuple(help), (), Severity.WARNING)


def _unmeasured(step: Step, catalog: Catalog) -> dict[str, list[str]]:
    """Candidate instance types (hardware fits) with no performance entry, by group key."""
    keys: set[str] = set()
    if step.throughput is not None:
        keys = step.throughput.keys()
    elif step.duration is not None:
        if step.duration.default_h is not None:
            return {}
        keys = set(step.duration.per_key)
    dropped: dict[str, list[str]] = {}
    for inst in candidate_instances(step, catalog):
        if hardware_misfit(step, inst) is not None:
            continue
        if any(k in keys for k in perf_keys(inst)):
            continue
        key = inst.accelerator if inst.accelerator is not None else CPU_KEY
        if inst.instance_type in step.accelerators:
            key = inst.instance_type
        dropped.setdefault(key, []).append(inst.instance_type)
    return dropped


def missing_entry_warnings(
    step: Step,
    catalog: Catalog,
    name_span: Span,
    accelerator_spans: Mapping[str, Span],
    memo: dict[tuple[object, ...], dict[str, list[str]]] | None = None,
) -> list[Diagnostic]:
    """One E308 per accelerator or instance type the step names but never measured.

    ``memo`` (one per catalog) shares the answer among steps with the same
    hardware and performance keys: generated workflows repeat them.
    """
    if step.throughput is None and step.duration is None:
        return []
    what = "throughput" if step.throughput is not None else "duration"
    perf = step.throughput.keys() if step.throughput is not None else set()
    if step.duration is not None:
        perf = set(step.duration.per_key) | (
            {"*"} if step.duration.default_h is not None else set()
        )
    sig = (step.accelerators, step.gpus, step.cpu, step.memory_gib, frozenset(perf), what)
    if memo is None:
        memo = {}
    if sig not in memo:
        memo[sig] = _unmeasured(step, catalog)
    out: list[Diagnostic] = []
    for key, types in sorted(memo[sig].items()):
        shown = ", ".join(sorted(types))
        if key == CPU_KEY:
            subject = f"CPU instance type{'s' if len(types) > 1 else ''} {shown}"
            fix = f"to fix: measure `{CPU_KEY} = N` (any CPU type) or an entry per type"
        elif key in types:
            subject = f"instance type {key}"
            fix = f"to fix: add a {what} entry for {key}, or remove it from accelerators"
        else:
            subject = f"{shown} ({key})"
            fix = f"to fix: add a {what} entry for {key}, or remove {key} from accelerators"
        out.append(
            _warn(
                "E308",
                f"step '{step.name}': {subject} will not be considered: "
                f"the {what} has no entry for it",
                accelerator_spans.get(key, name_span),
                [fix],
            )
        )
    return out


def _closest(key: str, usable: set[str]) -> str | None:
    """A variant of the same accelerator first (``A100`` -> ``A100-80GB``), else the nearest name."""
    low = key.lower()
    variants = sorted(
        (u for u in usable if u.lower().startswith(low) or low.startswith(u.lower())),
        key=lambda u: (len(u), u),
    )
    return variants[0] if variants else suggest(key, sorted(usable), cutoff=0.3)


def quota_warnings(
    steps: Sequence[Step], catalog: Catalog, quota_spans: Mapping[str, Span]
) -> list[Diagnostic]:
    """One E405 per quota key that is an accelerator no step can run on."""
    usable: set[str] = set()
    for step in steps:
        if step.accelerators:
            usable |= {i.accelerator for i in candidate_instances(step, catalog) if i.accelerator}
    out: list[Diagnostic] = []
    for key, span in sorted(quota_spans.items()):
        if key == CPU_KEY or key in usable or key not in catalog.accelerators():
            continue
        match = _closest(key, usable)
        can = ", ".join(sorted(usable)) if usable else "none (every step runs on CPUs)"
        out.append(
            _warn(
                "E405",
                f"quota '{key}' limits an accelerator no step can run on, so it limits nothing",
                span,
                [
                    *([f"did you mean `{match}`?"] if match else []),
                    f"the steps can run on: {can}",
                ],
            )
        )
    return out
