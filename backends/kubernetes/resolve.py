"""Everything the manifests say about one step, derived once from the plan and the options.

:func:`resolve` is the single place where plan figures become Kubernetes
quantities (shards, parallelism, deadlines, requests), names and data
locations; :mod:`.checks` and :mod:`.jobs` both read its result.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from exo.compiler.catalog import InstanceType
from exo.compiler.ir import Step
from exo.compiler.plan import StepPlan

from ..api import PlannedWorkflow, micro_batch_size, shard_count
from .entrypoint import fill
from .names import dns_label, unique_labels
from .options import INT64_MAX, KubernetesOptions

#: Longest generated workflow name prefix (Kubernetes appends 5 random characters).
WORKFLOW_PREFIX_LEN = 20
#: Longest run id: ``{{workflow.name}}`` is at most 20 + 1 + 5 = 26 characters.
RUN_ID_LEN = 26
#: Longest step part of a Job name, so ``<run>-<step>`` stays within 52 characters
#: and the pods' host names (``<job>-<index>``) within 63.
STEP_LABEL_LEN = 25

#: Share of an instance's vCPUs and memory a pod may request (the rest is
#: reserved on every node for the kubelet, the system and daemon sets).
NODE_SHARE = 0.9
#: Requests of a step that declares no ``cpu`` / ``memory``.
DEFAULT_CPU = 1.0
DEFAULT_MEMORY_GIB = 1.0

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class Resolved:
    step: Step
    plan: StepPlan
    #: DNS-1123 label of the step (Job names, Argo task names).
    label: str
    image: str
    image_defaulted: bool
    items: int
    #: Completions: one shard per planned replica (DESIGN §6).
    shards: int
    #: Equal to ``shards``: every shard runs at once.
    parallelism: int
    #: The micro-batch size (``None``: a shard is one micro-batch).
    batch_size: int | None
    gpus: int
    cpu_request: float
    memory_request_gib: float
    #: Memory limit (only when the step declares ``memory``).
    memory_limit_gib: float | None
    #: Job ``activeDeadlineSeconds``: the planned P-duration with the margin.
    deadline_s: int
    #: Pod ``activeDeadlineSeconds`` from the step's ``timeout`` (per attempt).
    timeout_s: int | None
    #: ``output`` template (may hold ``{run_id}``; ``{step}`` already filled), or None.
    output: str | None
    #: ``input`` template, or None when the step has no input.
    input: str | None
    #: ``{output}`` of a shard: its own folder or prefix under the step's output (None: none).
    shard_output: str | None
    #: Where the entrypoint renames ``shard_output`` to once the command succeeds (paths
    #: only: an object store cannot rename, so a URI shard writes in place).
    publish: str | None
    #: The shard's checkpoint folder, as an IR string (``{run_id}``, ``{batch_index}`` kept).
    checkpoint: str
    #: Whether it outlives the pod (on the storage volume or prefix), or is pod-local.
    checkpoint_shared: bool
    instance: InstanceType | None


def storage_root(options: KubernetesOptions) -> str | None:
    if options.storage_pvc:
        return options.storage_mount.rstrip("/") or "/"
    if options.storage_prefix:
        return options.storage_prefix.rstrip("/")
    return None


def is_absolute(location: str) -> bool:
    """An absolute path or a URI (``s3://``, ``gs://``, ``file://``, ...)."""
    return location.startswith("/") or _SCHEME.match(location) is not None


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def output_template(step: Step, root: str | None) -> str | None:
    """Where the step writes, as an IR string (placeholders kept, ``{step}`` filled)."""
    raw = step.output.strip() if step.output else ""
    name = _escape_braces(step.name)
    if not raw:
        return f"{_escape_braces(root)}/{{run_id}}/{name}" if root else None
    raw = fill(raw, {"step": step.name})
    if is_absolute(raw) or root is None:
        return raw
    return f"{_escape_braces(root)}/{raw.removeprefix('./')}"


#: Where a shard's checkpoint lives when no storage is configured: an emptyDir,
#: which survives only as long as the pod.
POD_CHECKPOINT = "/exo/checkpoint"


def checkpoint_template(step: Step, root: str | None) -> str:
    """``<root>/{run_id}/checkpoints/<step>/shard-{batch_index}``, or the pod-local folder."""
    if root is None:
        return POD_CHECKPOINT
    return f"{_escape_braces(root)}/{{run_id}}/checkpoints/{_escape_braces(step.name)}/shard-{{batch_index}}"


def shard_outputs(output: str | None) -> tuple[str | None, str | None]:
    """``({output}, publish)`` of a shard, as IR strings, from its step's output template.

    Every shard writes its own ``shard-<index>`` under the step's output, as with
    the local and Slurm backends (so a downstream ``{input}`` holds ``shard-*``).
    On a file system the attempt writes into ``.exo-staging/shard-<index>``, which
    the entrypoint renames into place when the command succeeds.
    """
    if output is None:
        return None, None
    base = output.rstrip("/") if output.rstrip("/") else output
    final = f"{base}/shard-{{batch_index}}"
    if _SCHEME.match(output):
        return final, None
    return f"{base}/.exo-staging/shard-{{batch_index}}", final


def input_template(planned: PlannedWorkflow, step: Step, root: str | None) -> str | None:
    if step.input is None:
        return None
    if step.input.kind == "dataset":
        ds = planned.program.datasets.get(step.input.name)
        return ds.uri if ds is not None and ds.uri else ""
    return output_template(planned.program.step(step.input.name), root) or ""


def deadline_seconds(p_duration_h: float, options: KubernetesOptions) -> int:
    """The Job's ``activeDeadlineSeconds`` (more than an int64 holds when the plan's
    P-duration is not finite: :mod:`.checks` refuses it)."""
    seconds = p_duration_h * 3600 * (1 + options.deadline_margin)
    if not math.isfinite(seconds):
        return INT64_MAX + 1
    return max(1, math.ceil(seconds)) + options.deadline_slack_s


def run_id(planned: PlannedWorkflow, options: KubernetesOptions) -> str:
    """The run id of the standalone Job files."""
    return options.run_id or dns_label(planned.program.workflow.name, RUN_ID_LEN)


def workflow_prefix(planned: PlannedWorkflow) -> str:
    return dns_label(planned.program.workflow.name, WORKFLOW_PREFIX_LEN) + "-"


def step_labels(planned: PlannedWorkflow) -> dict[str, str]:
    return unique_labels((s.name for s in planned.program.steps), STEP_LABEL_LEN)


def resolve(planned: PlannedWorkflow, options: KubernetesOptions) -> list[Resolved]:
    """Every step that has a placement in the plan, in the program's (topological) order."""
    root = storage_root(options)
    labels = step_labels(planned)
    out: list[Resolved] = []
    for step in planned.program.steps:
        sp = planned.plan.step(step.name)
        if sp is None:
            continue
        instance = planned.catalog.get(sp.instance_type)
        count = shard_count(step, sp)
        gpus = step.gpus if step.gpus > 0 else (1 if sp.accelerator else 0)
        cap_cpu = instance.vcpus * NODE_SHARE if instance else math.inf
        cap_mem = instance.memory_gib * NODE_SHARE if instance else math.inf
        cpu = min(float(step.cpu), cap_cpu) if step.cpu else min(DEFAULT_CPU, cap_cpu)
        if step.memory_gib:
            mem = min(step.memory_gib, cap_mem)
            mem_limit: float | None = mem
        else:
            mem, mem_limit = min(DEFAULT_MEMORY_GIB, cap_mem), None
        items = step.items or 0
        output = output_template(step, root)
        shard_output, publish = shard_outputs(output)
        out.append(
            Resolved(
                step=step,
                plan=sp,
                label=labels[step.name],
                image=step.image or options.default_image,
                image_defaulted=not step.image,
                items=items,
                shards=count,
                parallelism=count,
                batch_size=micro_batch_size(step, sp),
                gpus=gpus,
                cpu_request=cpu,
                memory_request_gib=mem,
                memory_limit_gib=mem_limit,
                deadline_s=deadline_seconds(sp.p_duration_h, options),
                timeout_s=math.ceil(step.timeout_h * 3600) if step.timeout_h else None,
                output=output,
                input=input_template(planned, step, root),
                shard_output=shard_output,
                publish=publish,
                checkpoint=checkpoint_template(step, root),
                checkpoint_shared=root is not None,
                instance=instance,
            )
        )
    return out
