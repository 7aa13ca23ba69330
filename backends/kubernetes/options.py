"""Options of the Kubernetes backend and the per-provider placement presets.

Every field becomes a ``--kubernetes-<field>`` flag and may also be set in a
``backend kubernetes { ... }`` block. Fields left at ``None`` take the preset of
the chosen ``provider`` (see :data:`PROVIDERS`); an empty string turns a preset
off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Provider = Literal["karpenter", "gke", "aks", "eks", "none"]
#: Largest value of the API's int32 fields (``ttlSecondsAfterFinished``, ``completions``...).
INT32_MAX = 2**31 - 1
#: Largest value of its int64 fields (``activeDeadlineSeconds``).
INT64_MAX = 2**63 - 1
ExitCode = Annotated[int, Field(ge=1, le=255)]


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str | None
    effect: str


@dataclass(frozen=True, slots=True)
class Preset:
    """How one kind of cluster marks spot capacity and names hardware."""

    #: Node label that tells spot from on-demand capacity, and its value on spot nodes.
    spot_label: tuple[str, str] | None
    #: Taint that spot nodes carry (or commonly carry) and spot pods tolerate.
    spot_taint: Taint | None
    #: Node label holding the instance type.
    instance_type_label: str | None
    #: Node label holding the accelerator model, and how catalog names map onto its values.
    accelerator_label: str | None
    accelerator_values: dict[str, str]
    #: Pod annotation that asks the autoscaler not to evict a running batch pod.
    keep_running: tuple[str, str]


_WELL_KNOWN_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
_CLUSTER_AUTOSCALER = ("cluster-autoscaler.kubernetes.io/safe-to-evict", "false")

#: GKE's ``cloud.google.com/gke-accelerator`` values (GKE documentation, "GPUs").
GKE_ACCELERATORS: dict[str, str] = {
    "T4": "nvidia-tesla-t4",
    "P4": "nvidia-tesla-p4",
    "P100": "nvidia-tesla-p100",
    "V100": "nvidia-tesla-v100",
    "L4": "nvidia-l4",
    "A100": "nvidia-tesla-a100",
    "A100-80GB": "nvidia-a100-80gb",
    "H100": "nvidia-h100-80gb",
    "H100-MEGA": "nvidia-h100-mega-80gb",
    "H200": "nvidia-h200-141gb",
    "B200": "nvidia-b200",
}

#: Karpenter's ``karpenter.k8s.aws/instance-gpu-name`` values (lower-case model names).
KARPENTER_ACCELERATORS: dict[str, str] = {
    "T4": "t4",
    "A10G": "a10g",
    "L4": "l4",
    "L40S": "l40s",
    "V100": "v100",
    "A100": "a100",
    "A100-80GB": "a100",
    "H100": "h100",
    "H200": "h200",
}

PROVIDERS: dict[str, Preset] = {
    # Karpenter labels every node it launches with its capacity type; spot
    # NodePools are commonly tainted with the same key so only tolerant pods land there.
    "karpenter": Preset(
        spot_label=("karpenter.sh/capacity-type", "spot"),
        spot_taint=Taint("karpenter.sh/capacity-type", "spot", "NoSchedule"),
        instance_type_label=_WELL_KNOWN_INSTANCE_TYPE,
        accelerator_label="karpenter.k8s.aws/instance-gpu-name",
        accelerator_values=KARPENTER_ACCELERATORS,
        keep_running=("karpenter.sh/do-not-disrupt", "true"),
    ),
    # EKS managed node groups label nodes with their capacity type (SPOT / ON_DEMAND).
    "eks": Preset(
        spot_label=("eks.amazonaws.com/capacityType", "SPOT"),
        spot_taint=Taint("eks.amazonaws.com/capacityType", "SPOT", "NoSchedule"),
        instance_type_label=_WELL_KNOWN_INSTANCE_TYPE,
        accelerator_label=None,
        accelerator_values={},
        keep_running=_CLUSTER_AUTOSCALER,
    ),
    # GKE Spot VMs carry cloud.google.com/gke-spot=true; GKE documents the matching taint.
    "gke": Preset(
        spot_label=("cloud.google.com/gke-spot", "true"),
        spot_taint=Taint("cloud.google.com/gke-spot", "true", "NoSchedule"),
        instance_type_label=_WELL_KNOWN_INSTANCE_TYPE,
        accelerator_label="cloud.google.com/gke-accelerator",
        accelerator_values=GKE_ACCELERATORS,
        keep_running=_CLUSTER_AUTOSCALER,
    ),
    # AKS spot node pools are labelled and tainted scalesetpriority=spot by AKS itself.
    "aks": Preset(
        spot_label=("kubernetes.azure.com/scalesetpriority", "spot"),
        spot_taint=Taint("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule"),
        instance_type_label=_WELL_KNOWN_INSTANCE_TYPE,
        accelerator_label=None,
        accelerator_values={},
        keep_running=_CLUSTER_AUTOSCALER,
    ),
    # A cluster of our own: catalog instance types are tiers, not node labels.
    "none": Preset(
        spot_label=None,
        spot_taint=None,
        instance_type_label=None,
        accelerator_label=None,
        accelerator_values={},
        keep_running=_CLUSTER_AUTOSCALER,
    ),
}


def _pairs(value: object) -> object:
    """Accept ``A100=x,L4=y`` or ``["A100=x", ...]`` (command-line flags) as well as a map."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        out: dict[str, str] = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"expected NAME=VALUE, got {item!r}")
            k, _, v = item.partition("=")
            out[k.strip()] = v.strip()
        return out
    return value


class KubernetesOptions(BaseModel):
    """Options of the ``kubernetes`` backend (``--kubernetes-<field>`` or ``backend kubernetes { ... }``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field("default", description="namespace every object is created in")
    provider: Provider = Field(
        "none",
        description="how spot capacity and hardware are labelled: karpenter, gke, aks, eks or none",
    )
    secret_name: str = Field(
        "exo-secrets",
        description="Secret whose keys hold the steps' `secrets` (referenced, never written)",
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets used to pull the steps' images"
    )
    service_account: str = Field(
        "exo-workflow",
        description="ServiceAccount the Argo Workflow runs as (emitted with its Role and RoleBinding)",
    )
    job_service_account: str | None = Field(
        None,
        description="ServiceAccount of the step pods (default: the namespace's default, no API token)",
    )
    storage_pvc: str | None = Field(
        None, description="PersistentVolumeClaim mounted in every step pod for relative outputs"
    )
    storage_mount: str = Field("/exo/data", description="where `storage_pvc` is mounted")
    storage_prefix: str | None = Field(
        None, description="object-store prefix (s3://..., gs://...) for relative outputs"
    )
    gpu_resource: str = Field("nvidia.com/gpu", description="extended resource requested for GPUs")
    default_image: str = Field(
        "python:3.12-slim", description="image for steps that declare no `image`"
    )
    kueue_queue: str | None = Field(
        None, description="Kueue LocalQueue: adds the queue label and creates Jobs suspended"
    )
    run_id: str | None = Field(
        None,
        description="run id of the standalone Job files in jobs/ (default: the workflow's name)",
    )
    instance_type_label: str | None = Field(
        None,
        description="node label pinning the planned instance type ('' = none; default: provider's)",
    )
    accelerator_label: str | None = Field(
        None,
        description="node label selecting the accelerator model ('' = none; default: provider's)",
    )
    accelerator_values: dict[str, str] = Field(
        default_factory=dict,
        description="accelerator name -> value of `accelerator_label` (overrides the provider's table)",
    )
    spot_label: str | None = Field(
        None, description="KEY=VALUE marking spot nodes ('' = none; default: provider's)"
    )
    spot_taint: str | None = Field(
        None, description="KEY[=VALUE]:EFFECT spot pods tolerate ('' = none; default: provider's)"
    )
    permanent_exit_codes: list[ExitCode] = Field(
        default_factory=list,
        description="exit codes that fail a shard at once, without using its retries",
    )
    fail_fast: bool = Field(
        True, description="fail a step's Job as soon as one shard has used up its retries"
    )
    deadline_margin: float = Field(
        0.5,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="Job deadline = planned P-duration x (1 + margin) + deadline_slack_s",
    )
    deadline_slack_s: int = Field(
        900,
        ge=0,
        le=INT32_MAX,
        description="seconds added to every Job deadline (scheduling, node start-up)",
    )
    ttl_seconds_after_finished: int = Field(
        86400,
        ge=0,
        le=INT32_MAX,  # an int32 field of the Job
        description="finished Jobs are deleted after this many seconds",
    )
    shell: str = Field(
        "/bin/sh", description="POSIX shell in the step images that runs the shard entrypoint"
    )

    _pairs_validator = field_validator("accelerator_values", mode="before")(_pairs)


#: A provider preset with the user's overrides applied (see :func:`placement`).
Placement = Preset


def parse_label(text: str) -> tuple[str, str]:
    """``KEY=VALUE``; raises ValueError."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def parse_taint(text: str) -> Taint:
    """``KEY[=VALUE]:EFFECT``; raises ValueError."""
    head, sep, effect = text.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(
            f"expected KEY[=VALUE]:EFFECT with EFFECT NoSchedule, PreferNoSchedule or NoExecute, got {text!r}"
        )
    key, eq, value = head.partition("=")
    if not key.strip():
        raise ValueError(f"the taint {text!r} has no key")
    return Taint(key.strip(), value.strip() if eq else None, effect)


def placement(options: KubernetesOptions) -> Placement:
    """Resolve presets and overrides (options must have passed :func:`checks.option_problems`)."""
    preset = PROVIDERS[options.provider]

    def pick(value: str | None, default: str | None) -> str | None:
        if value is None:
            return default
        return value or None

    label_text = pick(
        options.spot_label, "=".join(preset.spot_label) if preset.spot_label else None
    )
    taint: Taint | None
    if options.spot_taint is None:
        taint = preset.spot_taint
    elif options.spot_taint == "":
        taint = None
    else:
        taint = parse_taint(options.spot_taint)
    accel_label = pick(options.accelerator_label, preset.accelerator_label)
    values = dict(preset.accelerator_values) if accel_label == preset.accelerator_label else {}
    values.update(options.accelerator_values)
    return replace(
        preset,
        spot_label=parse_label(label_text) if label_text else None,
        spot_taint=taint,
        instance_type_label=pick(options.instance_type_label, preset.instance_type_label),
        accelerator_label=accel_label,
        accelerator_values=values,
    )
