"""One ``batch/v1`` Job per step, built with the official client's models.

The Job is an Indexed Job: ``completions`` = ``parallelism`` = the planned
replicas (one long-lived shard each, DESIGN §6), and each pod derives its shard
from its completion index (see :mod:`.entrypoint`). Its checkpoint folder is
under the storage volume or object-store prefix, so it outlives the pod;
without storage it is an ``emptyDir`` that dies with it. Failures are handled
by Kubernetes itself:

* ``backoffLimitPerIndex`` = the step's ``retries`` (each shard has its own budget);
* a ``podFailurePolicy`` whose first rule ignores pods with the
  ``DisruptionTarget`` condition (preemption, spot reclaim, node drain), so they
  are recreated without using a retry, and whose second rule fails a shard at
  once on a permanent exit code;
* ``activeDeadlineSeconds`` from the planned P-duration with a margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kubernetes import client as k8s

from exo.compiler.names import require_env_names

from ..api import PlannedWorkflow
from .entrypoint import container_command, env_value, kubelet_escape
from .names import is_label_value, label_value
from .options import KubernetesOptions, Placement
from .resolve import POD_CHECKPOINT, Resolved

#: Label keys (besides the ``app.kubernetes.io/*`` ones).
LABEL_WORKFLOW = "exo.dev/workflow"
LABEL_RUN = "exo.dev/run"
LABEL_STEP = "exo.dev/step"
LABEL_TIER = "exo.dev/tier"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: Annotations the Job controller sets on the pods of an Indexed Job.
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
FAILURES_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURES_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"

CONTAINER = "main"
STORAGE_VOLUME = "exo-storage"
CHECKPOINT_VOLUME = "exo-checkpoint"
SHM_VOLUME = "dshm"


@dataclass(frozen=True, slots=True)
class RunRef:
    """How a Job refers to its run: a literal id, or Argo's ``{{workflow.name}}``."""

    value: str


def _gib(q: float) -> str:
    """A memory quantity: whole GiB when exact, else MiB rounded up."""
    if float(q).is_integer():
        return f"{int(q)}Gi"
    return f"{math.ceil(q * 1024)}Mi"


def _cpu(q: float) -> str:
    if float(q).is_integer():
        return str(int(q))
    return f"{math.ceil(q * 1000)}m"


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def labels(planned: PlannedWorkflow, run: RunRef, r: Resolved | None) -> dict[str, str]:
    workflow = label_value(planned.program.workflow.name)
    out = {
        "app.kubernetes.io/name": workflow,
        "app.kubernetes.io/instance": run.value,
        "app.kubernetes.io/managed-by": "exoc",
        LABEL_WORKFLOW: workflow,
        LABEL_RUN: run.value,
    }
    if r is not None:
        out["app.kubernetes.io/component"] = r.label
        out[LABEL_STEP] = r.label
        out[LABEL_TIER] = "spot" if r.plan.spot else "on-demand"
    return out


def plan_annotations(r: Resolved) -> dict[str, str]:
    sp = r.plan
    out = {
        "exo.dev/step-name": r.step.name,
        "exo.dev/instance-type": sp.instance_type,
        "exo.dev/tier": "spot" if sp.spot else "on-demand",
        "exo.dev/replicas": str(sp.replicas),
        "exo.dev/shards": str(r.shards),
        "exo.dev/items": str(r.items),
        "exo.dev/start-h": _fmt(sp.start_h, 3),
        "exo.dev/expected-duration-h": _fmt(sp.expected_duration_h, 3),
        "exo.dev/p-duration-h": _fmt(sp.p_duration_h, 3),
        "exo.dev/expected-cost-usd": _fmt(sp.expected_cost_usd, 2),
        "exo.dev/retries": str(r.step.retries),
    }
    if sp.accelerator:
        out["exo.dev/accelerator"] = f"{sp.accelerator_count}x{sp.accelerator}"
    if sp.batch_size is not None:
        out["exo.dev/batch-size"] = str(sp.batch_size)
    if sp.price_usd_per_hour:
        out["exo.dev/price-usd-per-hour"] = _fmt(sp.price_usd_per_hour, 4)
    return out


def _field_env(name: str, path: str) -> k8s.V1EnvVar:
    return k8s.V1EnvVar(
        name=name,
        value_from=k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path=path)),
    )


def environment(r: Resolved, options: KubernetesOptions, opener: str | None) -> list[k8s.V1EnvVar]:
    """The container's environment, in dependency order (``$(VAR)`` refers back only)."""
    require_env_names([*r.step.env, *r.step.secrets])  # the IR's rule; asserted where written
    env = [
        _field_env("EXO_BATCH_INDEX", f"metadata.annotations['{INDEX_ANNOTATION}']"),
        _field_env("EXO_RUN_ID", f"metadata.labels['{LABEL_RUN}']"),
        k8s.V1EnvVar(name="EXO_SHARD_INDEX", value="$(EXO_BATCH_INDEX)"),
        k8s.V1EnvVar(name="EXO_STEP", value=kubelet_escape(r.step.name)),
        k8s.V1EnvVar(name="EXO_ITEMS", value=str(r.items)),
        k8s.V1EnvVar(name="EXO_SHARD_COUNT", value=str(r.shards)),
    ]
    if r.batch_size is not None:
        env.append(k8s.V1EnvVar(name="EXO_BATCH_SIZE", value=str(r.batch_size)))
    env.append(_field_env("EXO_FAILED_ATTEMPTS", f"metadata.annotations['{FAILURES_ANNOTATION}']"))
    env.append(
        _field_env(
            "EXO_PREEMPTED_ATTEMPTS", f"metadata.annotations['{IGNORED_FAILURES_ANNOTATION}']"
        )
    )
    env.append(k8s.V1EnvVar(name="EXO_INPUT", value=env_value(r.input or "", {})))
    env.append(k8s.V1EnvVar(name="EXO_OUTPUT", value=env_value(r.shard_output or "", {})))
    if r.publish is not None:
        env.append(k8s.V1EnvVar(name="EXO_PUBLISH", value=env_value(r.publish, {})))
    env.append(k8s.V1EnvVar(name="EXO_CHECKPOINT", value=env_value(r.checkpoint, {})))
    if opener is not None:
        env.append(k8s.V1EnvVar(name="EXO_PLACEHOLDER", value=opener))
    for secret in r.step.secrets:
        env.append(
            k8s.V1EnvVar(
                name=secret,
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=options.secret_name, key=secret)
                ),
            )
        )
    fixed = {"step": r.step.name, "shard_count": str(r.shards)}
    if r.batch_size is not None:
        fixed["batch_size"] = str(r.batch_size)
    for name, template in sorted(r.step.env.items()):
        env.append(k8s.V1EnvVar(name=name, value=env_value(template, fixed)))
    return env


def resources(r: Resolved, options: KubernetesOptions) -> k8s.V1ResourceRequirements:
    requests = {"cpu": _cpu(r.cpu_request), "memory": _gib(r.memory_request_gib)}
    limits: dict[str, str] = {}
    if r.memory_limit_gib is not None:
        limits["memory"] = _gib(r.memory_limit_gib)
    if r.gpus:
        requests[options.gpu_resource] = str(r.gpus)
        limits[options.gpu_resource] = str(r.gpus)
    return k8s.V1ResourceRequirements(requests=requests, limits=limits or None)


def scheduling(
    r: Resolved, options: KubernetesOptions, where: Placement
) -> tuple[dict[str, str], k8s.V1Affinity | None, list[k8s.V1Toleration]]:
    """Node selector, affinity and tolerations: the planned hardware and tier."""
    selector: dict[str, str] = {}
    affinity: k8s.V1Affinity | None = None
    tolerations: list[k8s.V1Toleration] = []
    sp = r.plan
    if where.instance_type_label and is_label_value(sp.instance_type):
        selector[where.instance_type_label] = sp.instance_type
    if sp.accelerator and where.accelerator_label:
        value = where.accelerator_values.get(sp.accelerator, sp.accelerator)
        if is_label_value(value):
            selector[where.accelerator_label] = value
    if sp.spot:
        if where.spot_label:
            selector[where.spot_label[0]] = where.spot_label[1]
        if where.spot_taint:
            t = where.spot_taint
            tolerations.append(
                k8s.V1Toleration(
                    key=t.key,
                    operator="Equal" if t.value is not None else "Exists",
                    value=t.value,
                    effect=t.effect,
                )
            )
    elif where.spot_label:
        key, value = where.spot_label
        affinity = k8s.V1Affinity(
            node_affinity=k8s.V1NodeAffinity(
                required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(
                    node_selector_terms=[
                        k8s.V1NodeSelectorTerm(
                            match_expressions=[
                                k8s.V1NodeSelectorRequirement(
                                    key=key, operator="NotIn", values=[value]
                                )
                            ]
                        )
                    ]
                )
            )
        )
    if r.gpus:
        # GPU nodes are commonly tainted with the resource name (GKE does it itself).
        tolerations.append(
            k8s.V1Toleration(key=options.gpu_resource, operator="Exists", effect="NoSchedule")
        )
    return selector, affinity, tolerations


def failure_policy(r: Resolved, options: KubernetesOptions) -> k8s.V1PodFailurePolicy:
    rules = [
        k8s.V1PodFailurePolicyRule(
            action="Ignore",
            on_pod_conditions=[
                k8s.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")
            ],
        )
    ]
    codes = sorted(set(options.permanent_exit_codes))
    if codes:
        rules.append(
            k8s.V1PodFailurePolicyRule(
                action="FailIndex",
                on_exit_codes=k8s.V1PodFailurePolicyOnExitCodesRequirement(
                    container_name=CONTAINER, operator="In", values=codes
                ),
            )
        )
    return k8s.V1PodFailurePolicy(rules=rules)


def container(r: Resolved, options: KubernetesOptions) -> k8s.V1Container:
    command: list[str] | None = None
    args: list[str] | None = None
    opener: str | None = None
    if r.step.command:
        command, args, opener = container_command(options.shell, r.step.command)
    mounts = []
    if options.storage_pvc:
        mounts.append(k8s.V1VolumeMount(name=STORAGE_VOLUME, mount_path=options.storage_mount))
    if not r.checkpoint_shared:
        mounts.append(k8s.V1VolumeMount(name=CHECKPOINT_VOLUME, mount_path=POD_CHECKPOINT))
    if r.gpus:
        mounts.append(k8s.V1VolumeMount(name=SHM_VOLUME, mount_path="/dev/shm"))
    return k8s.V1Container(
        name=CONTAINER,
        image=r.image,
        command=command,
        args=args,
        env=environment(r, options, opener),
        resources=resources(r, options),
        volume_mounts=mounts or None,
        security_context=k8s.V1SecurityContext(allow_privilege_escalation=False),
    )


def pod_spec(r: Resolved, options: KubernetesOptions, where: Placement) -> k8s.V1PodSpec:
    selector, affinity, tolerations = scheduling(r, options, where)
    volumes = []
    if options.storage_pvc:
        volumes.append(
            k8s.V1Volume(
                name=STORAGE_VOLUME,
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=options.storage_pvc
                ),
            )
        )
    if not r.checkpoint_shared:
        # No storage: the checkpoint folder lasts as long as the pod (checks.py warns).
        volumes.append(k8s.V1Volume(name=CHECKPOINT_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource()))
    if r.gpus:
        volumes.append(
            k8s.V1Volume(name=SHM_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory"))
        )
    return k8s.V1PodSpec(
        restart_policy="Never",
        containers=[container(r, options)],
        node_selector=selector or None,
        affinity=affinity,
        tolerations=tolerations or None,
        volumes=volumes or None,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in options.image_pull_secrets]
        or None,
        service_account_name=options.job_service_account,
        automount_service_account_token=None if options.job_service_account else False,
        active_deadline_seconds=r.timeout_s,
        security_context=k8s.V1PodSecurityContext(
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")
        ),
    )


def job(
    planned: PlannedWorkflow,
    r: Resolved,
    options: KubernetesOptions,
    where: Placement,
    run: RunRef,
) -> k8s.V1Job:
    """The Job of one step of one run (``run`` is a literal id or Argo's workflow name)."""
    job_labels = labels(planned, run, r)
    pod_labels = dict(job_labels)
    if options.kueue_queue:
        job_labels[KUEUE_QUEUE_LABEL] = options.kueue_queue
    key, value = where.keep_running
    return k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k8s.V1ObjectMeta(
            name=f"{run.value}-{r.label}",
            namespace=options.namespace,
            labels=job_labels,
            annotations=plan_annotations(r),
        ),
        spec=k8s.V1JobSpec(
            completion_mode="Indexed",
            completions=r.shards,
            parallelism=r.parallelism,
            backoff_limit_per_index=r.step.retries,
            max_failed_indexes=0 if options.fail_fast else None,
            pod_failure_policy=failure_policy(r, options),
            active_deadline_seconds=r.deadline_s,
            ttl_seconds_after_finished=options.ttl_seconds_after_finished,
            suspend=True if options.kueue_queue else None,
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=pod_labels, annotations={key: value}),
                spec=pod_spec(r, options, where),
            ),
        ),
    )
