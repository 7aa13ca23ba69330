"""The local task graph: what ``exoc run`` executes and ``exoc compile --target local`` emits.

A pure function of the planned workflow. Paths are kept relative (to the
workflow's folder or to the state directory) so the emitted manifest holds no
machine paths and is byte-for-byte deterministic; the runner resolves them.

Output locations (``output`` of a step) are decided by
:mod:`exo.backends.runtime.outputs`, as for Slurm: relative to the workflow's
folder, absolute, or ``outputs/<step>`` under the state directory.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from exo.compiler.diagnostics import Diagnostic
from exo.compiler.frozen import Frozen, find_by
from exo.compiler.ir import step_order
from exo.compiler.names import require_env_names

from ..api import (
    PlannedWorkflow,
    Shard,
    micro_batch_size,
    output_placeholder_problem,
    shard_count,
    shard_range,
)
from ..runtime.outputs import OutputDir, output_dir
from ..runtime.runs import downstream


class LocalStep(Frozen):
    name: str
    #: Steps that must be complete first (``input`` producer, then ``after``).
    needs: tuple[str, ...]
    command: tuple[str, ...]
    env: dict[str, str]
    #: Names of environment variables passed through from the runner (values never stored).
    secrets: tuple[str, ...]
    output: OutputDir
    #: ``{input}``: the producer step's output directory, a dataset's URI, or empty.
    input_kind: Literal["none", "dataset", "step"]
    input_ref: str
    items: int
    #: The micro-batch size (``{batch_size}``; ``None``: a shard is one micro-batch).
    batch_size: int | None
    #: Number of shards (the planned replicas); :meth:`shard` gives each one's item range.
    shard_count: int
    #: At most this many shards at once (all of them: shards are replicas).
    parallelism: int
    retries: int
    preemption_retries: int
    timeout_s: float | None

    def shard(self, index: int) -> Shard:
        """Items ``[start, end)`` of shard ``index`` (DESIGN §6, as every backend computes it)."""
        return shard_range(self.items, self.shard_count, index)

    def fingerprint(self, upstream: tuple[str, ...] = ()) -> str:
        """Hash of everything that determines this step's outputs, and its inputs' hashes."""
        payload = json.dumps(
            {"step": self.model_dump(mode="json"), "upstream": list(upstream)},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()


class TaskGraph(Frozen):
    workflow: str
    #: Entry ``.exo`` file, relative to its folder.
    source: str
    #: In dependency order.
    steps: tuple[LocalStep, ...]

    def step(self, name: str) -> LocalStep:
        found = find_by(self.steps, "name", name)
        if found is None:
            raise KeyError(name)
        return found

    def fingerprints(self) -> dict[str, str]:
        """Per-step fingerprints that change when the step or anything upstream changes."""
        out: dict[str, str] = {}
        for s in self.steps:
            out[s.name] = s.fingerprint(tuple(out[n] for n in s.needs))
        return out

    def successors(self) -> dict[str, list[str]]:
        """For each step, the steps that need it directly, in dependency order."""
        out: dict[str, list[str]] = {s.name: [] for s in self.steps}
        for s in self.steps:
            for need in s.needs:
                out[need].append(s.name)
        return out

    def dependents(self) -> dict[str, set[str]]:
        """For each step, every step downstream of it (transitively)."""
        return downstream((s.name, s.needs) for s in self.steps)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def check(planned: PlannedWorkflow) -> list[Diagnostic]:
    """What stops the local backend from running this plan (``E702``)."""
    out: list[Diagnostic] = []
    if planned.plan.status == "infeasible":
        out.append(Diagnostic("E702", "the plan is infeasible; there is nothing to run"))
        return out
    for step in planned.program.steps:
        if planned.plan.step(step.name) is None:
            out.append(Diagnostic("E702", f"the plan has no placement for step `{step.name}`"))
        if not step.command:
            out.append(
                Diagnostic(
                    "E702",
                    f"step `{step.name}` has no `command`; the local backend runs commands",
                    help=("add `command = [...]` to the step",),
                )
            )
        elif not step.command[0].strip():
            out.append(Diagnostic("E702", f"step `{step.name}`: the command's program is empty"))
        if (problem := output_placeholder_problem(step)) is not None:
            out.append(problem)
    return out


def build(planned: PlannedWorkflow) -> TaskGraph:
    """The task graph of a plan that passed :func:`check`."""
    program = planned.program
    order = step_order(program)
    steps: list[LocalStep] = []
    for name in order:
        step = program.step(name)
        sp = planned.step_plan(name)
        require_env_names([*step.env, *step.secrets])  # the IR's rule; asserted where used
        if step.input is None:
            kind: Literal["none", "dataset", "step"] = "none"
            ref = ""
        elif step.input.kind == "dataset":
            kind = "dataset"
            ref = program.datasets[step.input.name].uri or ""
        else:
            kind = "step"
            ref = step.input.name
        steps.append(
            LocalStep(
                name=name,
                needs=step.predecessors(),
                command=step.command,
                env=dict(sorted(step.env.items())),
                secrets=step.secrets,
                output=output_dir(step),
                input_kind=kind,
                input_ref=ref,
                items=step.items or 0,
                batch_size=micro_batch_size(step, sp),
                shard_count=shard_count(step, sp),
                parallelism=shard_count(step, sp),
                retries=step.retries,
                preemption_retries=step.preemption_retries,
                timeout_s=step.timeout_h * 3600.0 if step.timeout_h is not None else None,
            )
        )
    return TaskGraph(workflow=program.workflow.name, source=program.source, steps=tuple(steps))
