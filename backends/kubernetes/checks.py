"""What stops the Kubernetes backend from emitting a plan (errors), and what the user
should know about the manifests it emits (warnings).

Codes: ``E701`` for an option value Kubernetes would reject, ``E702`` for a
plan or step the manifests cannot express (errors) or can express only with a
caveat (warnings).
"""

from __future__ import annotations

from collections.abc import Callable

from exo.compiler.diagnostics import Diagnostic, Severity
from exo.compiler.ir import Step
from exo.compiler.names import image_problem, path_problem

from ..api import PlannedWorkflow, output_placeholder_problem, step_span
from .entrypoint import COMPUTED, used_placeholders
from .names import (
    is_dns_label,
    is_dns_subdomain,
    is_label_value,
    is_qualified_name,
)
from .options import (
    INT64_MAX,
    PROVIDERS,
    KubernetesOptions,
    parse_label,
    parse_taint,
    placement,
)
from .resolve import RUN_ID_LEN, Resolved, is_absolute, resolve

#: Indexed Jobs with ``backoffLimitPerIndex`` may have at most this many completions.
MAX_SHARDS = 100_000
#: The cloud (catalog ``cloud`` column) each managed provider runs on.
PROVIDER_CLOUDS = {"karpenter": "aws", "eks": "aws", "gke": "gcp", "aks": "azure"}


def _bad_option(name: str, message: str, *help: str) -> Diagnostic:
    return Diagnostic("E701", f"option `{name}` of backend `kubernetes`: {message}", help=help)


def option_problems(options: KubernetesOptions) -> list[Diagnostic]:
    return [*_name_problems(options), *_node_problems(options), *_storage_option_problems(options)]


def _name_problems(options: KubernetesOptions) -> list[Diagnostic]:
    """Names and labels the options give, each checked against the rule of its kind."""
    out: list[Diagnostic] = []

    def need(name: str, value: str | None, ok: Callable[[str], bool], what: str) -> None:
        if value is not None and not ok(value):
            out.append(_bad_option(name, f"{value!r} is not {what}"))

    label = "a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)"
    subdomain = "a valid object name (lower-case letters, digits, '-' and '.')"
    need("namespace", options.namespace, is_dns_label, label)
    need("secret_name", options.secret_name, is_dns_subdomain, subdomain)
    need("service_account", options.service_account, is_dns_subdomain, subdomain)
    need("job_service_account", options.job_service_account, is_dns_subdomain, subdomain)
    need("storage_pvc", options.storage_pvc, is_dns_subdomain, subdomain)
    for n in options.image_pull_secrets:
        need("image_pull_secrets", n, is_dns_subdomain, subdomain)
    need(
        "gpu_resource",
        options.gpu_resource,
        is_qualified_name,
        "a resource name such as nvidia.com/gpu",
    )
    need("kueue_queue", options.kueue_queue, is_label_value, "a valid label value")
    if options.run_id is not None and not (
        is_dns_label(options.run_id) and len(options.run_id) <= RUN_ID_LEN
    ):
        out.append(
            _bad_option(
                "run_id",
                f"{options.run_id!r} is not a DNS-1123 label of at most {RUN_ID_LEN} characters",
            )
        )
    for field in ("instance_type_label", "accelerator_label"):
        value = getattr(options, field)
        if value:
            need(field, value, is_qualified_name, "a label key")
    for accel, value in sorted(options.accelerator_values.items()):
        if not is_label_value(value):
            out.append(
                _bad_option(
                    "accelerator_values", f"{value!r} (for {accel}) is not a valid label value"
                )
            )
    return out


def _node_problems(options: KubernetesOptions) -> list[Diagnostic]:
    """The spot node label and taint."""
    out: list[Diagnostic] = []
    if options.spot_label:
        try:
            key, value = parse_label(options.spot_label)
            if not is_qualified_name(key) or not is_label_value(value):
                raise ValueError(f"{options.spot_label!r} is not a valid KEY=VALUE node label")
        except ValueError as e:
            out.append(_bad_option("spot_label", str(e)))
    if options.spot_taint:
        try:
            taint = parse_taint(options.spot_taint)
            if not is_qualified_name(taint.key) or (
                taint.value is not None and not is_label_value(taint.value)
            ):
                raise ValueError(f"{options.spot_taint!r} is not a valid taint")
        except ValueError as e:
            out.append(_bad_option("spot_taint", str(e)))
    return out


def _storage_option_problems(options: KubernetesOptions) -> list[Diagnostic]:
    """Storage, the shell and the default image."""
    out: list[Diagnostic] = []
    if options.storage_pvc and options.storage_prefix:
        out.append(
            _bad_option(
                "storage_pvc",
                "set either a PersistentVolumeClaim or an object-store prefix, not both",
            )
        )
    if options.storage_pvc and not options.storage_mount.startswith("/"):
        out.append(
            _bad_option("storage_mount", f"{options.storage_mount!r} is not an absolute path")
        )
    if options.storage_prefix is not None and not is_absolute(options.storage_prefix):
        out.append(
            _bad_option(
                "storage_prefix", f"{options.storage_prefix!r} is not a URI such as s3://bucket/exo"
            )
        )
    if not options.shell.startswith("/") or path_problem(options.shell):
        out.append(_bad_option("shell", f"{options.shell!r} is not an absolute path"))
    if path_problem(options.storage_mount):
        out.append(_bad_option("storage_mount", f"{options.storage_mount!r} is not a path"))
    if (problem := image_problem(options.default_image)) is not None:
        out.append(
            _bad_option("default_image", f"{options.default_image!r} is not an image: {problem}")
        )
    return out


def _error(step: Step, message: str, *help: str) -> Diagnostic:
    return Diagnostic("E702", f"step `{step.name}`: {message}", step_span(step), help=help)


def _warning(step: Step, message: str, *help: str) -> Diagnostic:
    return Diagnostic(
        "E702",
        f"step `{step.name}`: {message}",
        step_span(step),
        help=help,
        severity=Severity.WARNING,
    )


def _step_problems(
    planned: PlannedWorkflow, r: Resolved, options: KubernetesOptions, by_name: dict[str, Resolved]
) -> list[Diagnostic]:
    return [
        *_job_problems(r, options),
        *_storage_problems(r, by_name),
        *_placement_problems(r, options),
    ]


def _job_problems(r: Resolved, options: KubernetesOptions) -> list[Diagnostic]:
    """The step's Job itself: its image, deadline, shard count and placeholders."""
    step, out = r.step, []
    if r.image_defaulted:
        out.append(
            _warning(
                step,
                f"declares no `image`; its Job uses {options.default_image!r}",
                "set `image` on the step or --kubernetes-default-image",
            )
        )
    if r.deadline_s > INT64_MAX:
        out.append(
            _error(
                step,
                f"its Job deadline ({r.deadline_s} s) is beyond what Kubernetes can hold",
                "plan with a shorter deadline or more replicas, or lower --kubernetes-deadline-margin",
            )
        )
    if r.shards > MAX_SHARDS:
        out.append(
            _error(
                step,
                f"{r.shards} shards; an Indexed Job with per-shard retries allows at most {MAX_SHARDS}",
                "cap the step's `replicas` (one shard runs per replica)",
            )
        )
    if (problem := output_placeholder_problem(step)) is not None:
        out.append(problem)
    computed = set(COMPUTED) | (set() if r.batch_size is not None else {"batch_size"})
    for name, template in sorted(step.env.items()):
        bad = sorted(used_placeholders([template]) & computed)
        if bad:
            out.append(
                _error(
                    step,
                    f"env `{name}` uses "
                    + ", ".join(f"{{{b}}}" for b in bad)
                    + ", which pods only know once they run",
                    "read EXO_BATCH_START, EXO_BATCH_END, EXO_BATCH_SIZE or EXO_ATTEMPT from the environment instead, or pass the placeholder in `command`",
                )
            )
    return out


def _storage_problems(r: Resolved, by_name: dict[str, Resolved]) -> list[Diagnostic]:
    """Where the step's output, input and checkpoints live, and whether pods share them."""
    step, out = r.step, []
    uses = used_placeholders(step.command)
    if "output" in uses and r.output is None:
        out.append(
            _warning(
                step,
                "its command uses {output}, but the step declares no `output` and no storage is configured; {output} is empty",
                "set `output` on the step, or --kubernetes-storage-pvc / --kubernetes-storage-prefix",
            )
        )
    elif step.output and r.output and not is_absolute(r.output):
        out.append(
            _warning(
                step,
                f"`output` {step.output!r} is relative and no storage is configured; it is relative to the container's working directory and lost with the pod",
                "use an absolute URI, or set --kubernetes-storage-pvc / --kubernetes-storage-prefix",
            )
        )
    if step.input is not None and step.input.kind == "step" and "input" in uses:
        producer = by_name.get(step.input.name)
        if producer is not None and (producer.output is None or not is_absolute(producer.output)):
            out.append(
                _warning(
                    step,
                    f"its {{input}} is the output of `{producer.step.name}`, which has no location pods can share",
                    f"set `output` on `{producer.step.name}` to a URI, or set --kubernetes-storage-pvc / --kubernetes-storage-prefix",
                )
            )
    if step.checkpoint.kind != "none" and not r.checkpoint_shared:
        out.append(
            Diagnostic(
                "E706",
                f"step `{step.name}`: declares checkpoint = "
                + ("batch" if step.checkpoint.kind == "batch" else "an interval")
                + ", but no storage is configured: each shard's checkpoint folder is "
                "inside its pod and lost with it, so a preempted shard starts over, "
                "which the plan does not assume",
                step_span(step),
                help=(
                    "give the pods storage that outlives them: --kubernetes-storage-pvc NAME "
                    "(a ReadWriteMany claim) or --kubernetes-storage-prefix s3://bucket/prefix",
                    "or declare `checkpoint = none` to price restarts from scratch",
                ),
                severity=Severity.WARNING,
            )
        )
    return out


def _placement_problems(r: Resolved, options: KubernetesOptions) -> list[Diagnostic]:
    """Which nodes the step's pods land on: spot, instance type, cloud, accelerator labels."""
    step, out = r.step, []
    where = placement(options)
    if r.plan.spot and where.spot_label is None:
        out.append(
            _warning(
                step,
                f"is planned on spot capacity, but provider `{options.provider}` has no spot node label; its pods may run on any node",
                "choose --kubernetes-provider, or set --kubernetes-spot-label KEY=VALUE",
            )
        )
    if where.instance_type_label and not is_label_value(r.plan.instance_type):
        out.append(
            _warning(
                step,
                f"instance type {r.plan.instance_type!r} is not a valid label value; its pods are not pinned to it",
            )
        )
    cloud = r.instance.cloud if r.instance else None
    expected = PROVIDER_CLOUDS.get(options.provider)
    if cloud and expected and cloud.lower() != expected:
        out.append(
            _warning(
                step,
                f"is planned on {r.plan.instance_type!r} from the {cloud} catalog, but provider "
                f"`{options.provider}` runs on {expected}; no node will match its instance type",
                f"plan with a {expected} catalog (--catalog), or choose the matching --kubernetes-provider",
            )
        )
    accel = r.plan.accelerator
    if accel and where.accelerator_label:
        preset = PROVIDERS[options.provider]
        if (
            accel not in where.accelerator_values
            and where.accelerator_label == preset.accelerator_label
        ):
            out.append(
                _warning(
                    step,
                    f"no known value of node label {where.accelerator_label} for accelerator {accel}; using {accel!r}",
                    f"set --kubernetes-accelerator-values {accel}=VALUE",
                )
            )
        value = where.accelerator_values.get(accel, accel)
        if not is_label_value(value):
            out.append(
                _warning(
                    step,
                    f"accelerator {accel!r} is not a valid label value; its pods are not pinned to it",
                )
            )
    return out


def check(planned: PlannedWorkflow, options: KubernetesOptions) -> list[Diagnostic]:
    out = option_problems(options)
    if out:
        return out
    if planned.plan.status == "infeasible":
        return [Diagnostic("E702", "the plan is infeasible; there is nothing to emit")]
    for step in planned.program.steps:
        if planned.plan.step(step.name) is None:
            out.append(_error(step, "the plan has no placement for it"))
    resolved = resolve(planned, options)
    by_name = {r.step.name: r for r in resolved}
    for r in resolved:
        out.extend(_step_problems(planned, r, options, by_name))
    return out
