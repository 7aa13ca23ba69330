"""What the Kubernetes manifests mean: failure handling, placement, secrets, names, options."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from exo.backends.api import PlannedWorkflow, shard_count
from exo.backends.kubernetes import KubernetesBackend, KubernetesOptions
from exo.backends.kubernetes.argo import FAILURE_CONDITION, SUCCESS_CONDITION
from exo.backends.kubernetes.names import is_dns_label, is_label_value
from exo.backends.kubernetes.options import PROVIDERS
from exo.backends.kubernetes.resolve import NODE_SHARE
from exo.backends.registry import installed, resolve_options
from exo.compiler.diagnostics import CompileError, Severity
from exo.compiler.ir import Step

from .conftest import SPEC
from .test_kubernetes_helpers import (
    BACKEND,
    SAMPLE_WORKFLOW_NAME,
    all_objects,
    emit,
    jobs,
    planned_from_file,
    planned_from_source,
    requirements,
    yaml_documents,
)

FINETUNE = SPEC / "examples" / "finetune_synthetic.exo"
OVERNIGHT = SPEC / "examples" / "overnight_llm.exo"
SPOT_PROVIDERS = [p for p, preset in sorted(PROVIDERS.items()) if preset.spot_label]


@pytest.fixture(scope="module")
def finetune() -> PlannedWorkflow:
    return planned_from_file(FINETUNE)


@pytest.fixture(scope="module")
def overnight() -> PlannedWorkflow:
    return planned_from_file(OVERNIGHT)


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def main(job: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = pod(job)["containers"][0]
    return c


def flip_spot(planned: PlannedWorkflow) -> PlannedWorkflow:
    """The same plan with every step's tier flipped (spot <-> on-demand)."""
    steps = [s.model_copy(update={"spot": not s.spot}) for s in planned.plan.steps]
    return planned.model_copy(update={"plan": planned.plan.model_copy(update={"steps": steps})})


# --- failure handling ---------------------------------------------------------------------


def test_registered_through_the_entry_point() -> None:
    backend = installed().backends["kubernetes"]
    assert isinstance(backend, KubernetesBackend)
    assert backend.capabilities.spot and backend.capabilities.accelerators
    assert not backend.capabilities.run


def test_preemptions_do_not_use_retries(finetune: PlannedWorkflow) -> None:
    for job in jobs(emit(finetune)).values():
        rules = job["spec"]["podFailurePolicy"]["rules"]
        assert rules[0] == {
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
        }
        # a pod failure policy needs restartPolicy Never; retries are counted per shard only
        assert pod(job)["restartPolicy"] == "Never"
        assert "backoffLimit" not in job["spec"]


def test_retries_are_per_shard(finetune: PlannedWorkflow) -> None:
    by_step = jobs(emit(finetune))
    for step in finetune.program.steps:
        sp = finetune.step_plan(step.name)
        spec = by_step[step.name]["spec"]
        assert spec["completionMode"] == "Indexed"
        assert spec["backoffLimitPerIndex"] == step.retries
        assert spec["completions"] == shard_count(step, sp)
        # Shards are replicas (DESIGN §6): one Indexed Job completion each, all at once.
        assert (
            spec["completions"]
            == spec["parallelism"]
            == (sp.replicas if step.throughput is not None else 1)
        )
        assert spec["maxFailedIndexes"] == 0  # fail fast by default
        assert spec["ttlSecondsAfterFinished"] == 86400
    assert "maxFailedIndexes" not in jobs(emit(finetune, fail_fast=False))["generate"]["spec"]


def test_permanent_exit_codes_fail_the_shard_at_once(finetune: PlannedWorkflow) -> None:
    for job in jobs(emit(finetune, permanent_exit_codes=[3, 2, 3])).values():
        rules = job["spec"]["podFailurePolicy"]["rules"]
        assert rules[1] == {
            "action": "FailIndex",
            "onExitCodes": {"containerName": "main", "operator": "In", "values": [2, 3]},
        }
    for job in jobs(emit(finetune)).values():
        assert len(job["spec"]["podFailurePolicy"]["rules"]) == 1


def test_deadlines_come_from_the_planned_p_duration(finetune: PlannedWorkflow) -> None:
    for margin, slack in ((0.5, 900), (0.0, 0), (1.0, 60)):
        by_step = jobs(emit(finetune, deadline_margin=margin, deadline_slack_s=slack))
        for sp in finetune.plan.steps:
            deadline = by_step[sp.name]["spec"]["activeDeadlineSeconds"]
            assert deadline == math.ceil(sp.p_duration_h * 3600 * (1 + margin)) + slack
            assert deadline >= sp.p_duration_h * 3600


def test_step_timeout_bounds_each_attempt(tmp_path: Path) -> None:
    pw = planned_from_source(
        tmp_path,
        "workflow w { deadline = 4h }\n"
        'step s { image = "busybox" command = ["true"] duration = 10m timeout = 20m }\n',
    )
    job = jobs(emit(pw))["s"]
    assert pod(job)["activeDeadlineSeconds"] == 1200
    assert job["spec"]["activeDeadlineSeconds"] > 1200


def test_argo_conditions_tell_success_from_failure() -> None:
    """Evaluate the resource template's conditions the way Argo does (label-selector
    requirements over the Job's JSON; any failure requirement fails the task)."""

    def get(doc: dict[str, Any], path: str) -> Any:
        cur: Any = doc
        for part in path.split("."):
            if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            elif isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                return None
        return cur

    def holds(req: str, doc: dict[str, Any]) -> bool:
        if " in (" in req:
            key, values = req.split(" in (")
            return get(doc, key) in values.rstrip(")").split(",")
        return get(doc, req) is not None

    def outcome(status: dict[str, Any]) -> str:
        doc = {"status": status}
        if any(holds(r, doc) for r in requirements(FAILURE_CONDITION)):
            return "failed"
        return "succeeded" if holds(SUCCESS_CONDITION, doc) else "running"

    cond = lambda t, s="True": {"type": t, "status": s}  # noqa: E731
    assert outcome({"active": 2}) == "running"
    assert (
        outcome(
            {
                "succeeded": 3,
                "completionTime": "2026-01-01T00:00:00Z",
                "conditions": [cond("SuccessCriteriaMet"), cond("Complete")],
            }
        )
        == "succeeded"
    )
    assert outcome({"failed": 3, "conditions": [cond("FailureTarget")]}) == "failed"
    assert outcome({"conditions": [cond("FailureTarget"), cond("Failed")]}) == "failed"
    # Kueue suspends and later resumes the Job: Suspended stays first in the list
    assert (
        outcome({"conditions": [cond("Suspended", "False"), cond("FailureTarget"), cond("Failed")]})
        == "failed"
    )
    assert outcome({"conditions": [cond("Suspended", "False")], "active": 1}) == "running"


# --- placement ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", SPOT_PROVIDERS)
@pytest.mark.parametrize("flipped", [False, True])
def test_spot_tolerations_exactly_on_spot_steps(
    finetune: PlannedWorkflow, provider: str, flipped: bool
) -> None:
    pw = flip_spot(finetune) if flipped else finetune
    preset = PROVIDERS[provider]
    assert preset.spot_label and preset.spot_taint
    key, value = preset.spot_label
    tiers = {s.name: s.spot for s in pw.plan.steps}
    assert set(tiers.values()) == {True, False}, "the example needs both tiers"
    for where, job in all_objects(emit(pw, provider=provider)):
        if job["kind"] != "Job":
            continue
        spot = tiers[job["metadata"]["annotations"]["exo.dev/step-name"]]
        spec = pod(job)
        spot_tolerations = [
            t for t in spec.get("tolerations", []) if t["key"] == preset.spot_taint.key
        ]
        assert bool(spot_tolerations) == spot, where
        if spot:
            assert spot_tolerations == [
                {
                    "key": key,
                    "operator": "Equal",
                    "value": preset.spot_taint.value,
                    "effect": "NoSchedule",
                }
            ]
            assert spec["nodeSelector"][key] == value
            assert "affinity" not in spec
        else:
            assert key not in spec.get("nodeSelector", {})
            terms = spec["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]
            assert terms["nodeSelectorTerms"] == [
                {"matchExpressions": [{"key": key, "operator": "NotIn", "values": [value]}]}
            ]
        assert job["metadata"]["labels"]["exo.dev/tier"] == ("spot" if spot else "on-demand")


def test_custom_spot_label_and_taint(overnight: PlannedWorkflow) -> None:
    by_step = jobs(emit(overnight, spot_label="pool=preempt", spot_taint="preempt:NoExecute"))
    spot = pod(by_step["summarize"])
    assert spot["nodeSelector"]["pool"] == "preempt"
    assert {"key": "preempt", "operator": "Exists", "effect": "NoExecute"} in spot["tolerations"]
    on_demand = pod(by_step["index"])
    assert on_demand["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ] == {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "NotIn", "values": ["preempt"]}]}
        ]
    }
    assert "tolerations" not in on_demand


def test_hardware_is_requested_and_selected(finetune: PlannedWorkflow) -> None:
    by_step = jobs(emit(finetune, provider="gke", gpu_resource="amd.com/gpu"))
    for sp in finetune.plan.steps:
        step = finetune.program.step(sp.name)
        job = by_step[sp.name]
        res = main(job)["resources"]
        selector = pod(job)["nodeSelector"]
        assert selector["node.kubernetes.io/instance-type"] == sp.instance_type
        if sp.accelerator:
            assert res["requests"]["amd.com/gpu"] == res["limits"]["amd.com/gpu"] == str(step.gpus)
            assert selector["cloud.google.com/gke-accelerator"].startswith("nvidia-")
            assert {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod(job)[
                "tolerations"
            ]
        else:
            inst = finetune.catalog.get(sp.instance_type)
            assert inst is not None and step.cpu and step.memory_gib
            assert "amd.com/gpu" not in res["requests"]
            cpu = min(step.cpu, inst.vcpus * NODE_SHARE)
            assert res["requests"]["cpu"] == f"{math.ceil(cpu * 1000)}m"
            mem = min(step.memory_gib, inst.memory_gib * NODE_SHARE)
            assert (
                res["requests"]["memory"] == res["limits"]["memory"] == f"{math.ceil(mem * 1024)}Mi"
            )


def test_requests_leave_room_for_the_node(tmp_path: Path) -> None:
    """A step asking for a whole instance requests 90% of it: the rest is reserved on every node."""
    pw = planned_from_source(
        tmp_path,
        'workflow w { deadline = 4h catalog = "aws/us-east-1" }\n'
        'step s { image = "busybox" command = ["true"] cpu = 8 memory = 32GiB duration = 10m spot = never }\n',
    )
    inst = pw.catalog.get(pw.step_plan("s").instance_type)
    assert inst is not None and inst.vcpus == 8 and inst.memory_gib == 32
    res = main(jobs(emit(pw))["s"])["resources"]
    assert res["requests"] == {"cpu": "7200m", "memory": "29492Mi"}
    assert res["limits"] == {"memory": "29492Mi"}


def test_kueue_queue_label_and_suspension(overnight: PlannedWorkflow) -> None:
    for job in jobs(emit(overnight, kueue_queue="team-a")).values():
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
        assert job["spec"]["suspend"] is True
        assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    for job in jobs(emit(overnight)).values():
        assert "suspend" not in job["spec"]
        assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]


def test_keep_running_annotation_per_provider(overnight: PlannedWorkflow) -> None:
    job = jobs(emit(overnight, provider="karpenter"))["summarize"]
    assert job["spec"]["template"]["metadata"]["annotations"] == {
        "karpenter.sh/do-not-disrupt": "true"
    }
    job = jobs(emit(overnight, provider="eks"))["summarize"]
    assert job["spec"]["template"]["metadata"]["annotations"] == {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"
    }


# --- secrets, accounts, storage -----------------------------------------------------------


def test_secrets_are_references_never_values(
    finetune: PlannedWorkflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_sup3r-s3cret-value")
    artifacts = emit(finetune, secret_name="ml-secrets")
    for path, text in artifacts.items():
        assert "hf_sup3r-s3cret-value" not in text, path
    generate = main(jobs(artifacts)["generate"])
    entries = [e for e in generate["env"] if e["name"] == "HF_TOKEN"]
    assert entries == [
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "ml-secrets", "key": "HF_TOKEN"}},
        }
    ]
    for step in finetune.program.steps:
        env = main(jobs(artifacts)[step.name])["env"]
        for e in env:
            if e["name"] in step.secrets:
                assert "value" not in e
    assert (
        "kubectl -n default create secret generic ml-secrets --from-literal=HF_TOKEN=..."
        in artifacts["README.md"]
    )


def test_pods_get_no_api_token_unless_given_an_account(overnight: PlannedWorkflow) -> None:
    spec = pod(jobs(emit(overnight))["index"])
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    spec = pod(jobs(emit(overnight, job_service_account="indexer"))["index"])
    assert spec["serviceAccountName"] == "indexer" and "automountServiceAccountToken" not in spec
    spec = pod(jobs(emit(overnight, image_pull_secrets=["regcred", "mirror"]))["index"])
    assert spec["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]


def test_rbac_lets_the_workflow_create_and_watch_jobs(overnight: PlannedWorkflow) -> None:
    docs = yaml_documents(emit(overnight, service_account="runner", namespace="batch"))
    role, binding = docs["rbac/role.yaml"], docs["rbac/rolebinding.yaml"]
    assert docs["workflow.yaml"]["spec"]["serviceAccountName"] == "runner"
    assert {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "get", "list", "watch"],
    } in role["rules"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "runner",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "runner", "namespace": "batch"}
    ]
    for doc in docs.values():
        assert doc["metadata"]["namespace"] == "batch"


def test_outputs_on_a_volume_or_under_a_prefix(tmp_path: Path) -> None:
    pw = planned_from_source(
        tmp_path,
        "workflow w { deadline = 4h }\n"
        'dataset d { uri = "s3://in/data.jsonl" items = 100 }\n'
        'step a { input = d image = "busybox" command = ["a", "{output}"] output = "stage-a/{run_id}"\n'
        "  cpu = 1 throughput { cpu = 10 } }\n"
        'step b { input = a image = "busybox" command = ["b", "{input}", "{output}"]\n'
        "  cpu = 1 throughput { cpu = 10 } }\n",
    )

    def env(job: dict[str, Any]) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in main(job)["env"]}

    by_step = jobs(emit(pw, storage_pvc="exo-data", storage_mount="/data"))
    a, b = env(by_step["a"]), env(by_step["b"])
    assert a["EXO_INPUT"] == "s3://in/data.jsonl"
    # Each shard writes its own shard-<index> under the step's output, staged on a volume.
    assert a["EXO_OUTPUT"] == "/data/stage-a/$(EXO_RUN_ID)/.exo-staging/shard-$(EXO_BATCH_INDEX)"
    assert a["EXO_PUBLISH"] == "/data/stage-a/$(EXO_RUN_ID)/shard-$(EXO_BATCH_INDEX)"
    assert b["EXO_INPUT"] == "/data/stage-a/$(EXO_RUN_ID)"
    assert b["EXO_OUTPUT"] == "/data/$(EXO_RUN_ID)/b/.exo-staging/shard-$(EXO_BATCH_INDEX)"
    assert b["EXO_CHECKPOINT"] == "/data/$(EXO_RUN_ID)/checkpoints/b/shard-$(EXO_BATCH_INDEX)"
    assert main(by_step["b"])["volumeMounts"] == [{"name": "exo-storage", "mountPath": "/data"}]
    assert pod(by_step["b"])["volumes"] == [
        {"name": "exo-storage", "persistentVolumeClaim": {"claimName": "exo-data"}}
    ]
    by_step = jobs(emit(pw, storage_prefix="gs://bucket/exo/"))
    b = env(by_step["b"])
    assert b["EXO_INPUT"] == "gs://bucket/exo/stage-a/$(EXO_RUN_ID)"
    # An object store cannot rename: a shard writes its prefix in place.
    assert b["EXO_OUTPUT"] == "gs://bucket/exo/$(EXO_RUN_ID)/b/shard-$(EXO_BATCH_INDEX)"
    assert "EXO_PUBLISH" not in b
    assert (
        b["EXO_CHECKPOINT"]
        == "gs://bucket/exo/$(EXO_RUN_ID)/checkpoints/b/shard-$(EXO_BATCH_INDEX)"
    )
    assert "volumes" not in pod(by_step["b"])
    # without storage the relative output stays relative, with warnings
    problems = BACKEND.check(pw, KubernetesOptions(provider="eks"))
    assert all(d.severity is Severity.WARNING for d in problems)
    assert [d.message.split(":")[0] for d in problems] == ["step `a`", "step `b`", "step `b`"]
    assert "is relative and no storage is configured" in problems[0].message
    assert "{output} is empty" in problems[1].message
    assert "no location pods can share" in problems[2].message
    assert not BACKEND.check(pw, KubernetesOptions(provider="eks", storage_pvc="exo-data"))


# --- names --------------------------------------------------------------------------------

ODD_NAMES = """\
workflow Nightly_ETL.v2 { deadline = 4h }
step Load_Data { image = "busybox" command = ["true"] duration = 5m }
step load.data { image = "busybox" command = ["true"] duration = 5m after = [Load_Data] }
step a_really_long_step_name_that_is_well_beyond_what_a_kubernetes_job_name_may_hold {
  image = "busybox" command = ["true"] duration = 5m after = [load.data] }
"""


def test_names_are_dns_1123_and_distinct(tmp_path: Path) -> None:
    pw = planned_from_source(tmp_path, ODD_NAMES)
    artifacts = emit(pw)
    names = []
    for where, doc in all_objects(artifacts):
        name = doc["metadata"]["name"]
        assert is_dns_label(name) and len(name) <= 52, (where, name)
        for k, v in doc["metadata"].get("labels", {}).items():
            assert is_label_value(v), (where, k, v)
        if doc["kind"] == "Job":
            names.append(name)
            assert name.startswith(("nightly-etl-v2-", SAMPLE_WORKFLOW_NAME + "-"))
    assert len(set(names)) == len(names) == 6
    assert sorted(jobs(artifacts)) == sorted(s.name for s in pw.program.steps)
    wf = yaml_documents(artifacts)["workflow.yaml"]
    assert wf["metadata"]["generateName"] == "nightly-etl-v2-"
    assert wf["metadata"]["annotations"]["exo.dev/workflow-name"] == "Nightly_ETL.v2"


# --- options and diagnostics --------------------------------------------------------------


def test_options_from_block_and_flags() -> None:
    options, problems = resolve_options(
        BACKEND,
        block={"provider": "gke", "accelerator_values": {"A100": "nvidia-a100-custom"}},
        flags={"accelerator_values": ["L4=custom-l4"], "permanent_exit_codes": [2]},
    )
    assert problems == [] and isinstance(options, KubernetesOptions)
    assert options.accelerator_values == {"L4": "custom-l4"}
    assert options.provider == "gke"
    _, problems = resolve_options(BACKEND, flags={"provider": "openstack"})
    assert [d.code for d in problems] == ["E701"]
    _, problems = resolve_options(BACKEND, flags={"permanent_exit_codes": [0]})
    assert [d.code for d in problems] == ["E701"]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"namespace": "ML_Batch"}, "namespace"),
        ({"storage_pvc": "data", "storage_prefix": "s3://b/p"}, "not both"),
        ({"storage_prefix": "bucket/path"}, "storage_prefix"),
        ({"spot_taint": "preempt:Sometimes"}, "EFFECT"),
        ({"spot_label": "novalue"}, "KEY=VALUE"),
        ({"gpu_resource": "nvidia gpu"}, "gpu_resource"),
        ({"run_id": "a-run-id-that-is-far-too-long-for-jobs"}, "run_id"),
        ({"accelerator_values": {"A100": "has space"}}, "accelerator_values"),
        ({"shell": "sh"}, "shell"),
    ],
)
def test_bad_options_are_e701(
    overnight: PlannedWorkflow, options: dict[str, Any], fragment: str
) -> None:
    problems = BACKEND.check(overnight, KubernetesOptions(**options))
    assert [d.code for d in problems] == ["E701"], problems
    assert fragment in problems[0].message
    with pytest.raises(CompileError):
        BACKEND.emit(overnight, KubernetesOptions(**options))


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ('env { START = "{batch_start}" }', "pods only know once they run"),
        ('output = "s3://b/{batch_index}/"', "one location holds all shards"),
    ],
)
def test_steps_the_manifests_cannot_express_are_e702(
    tmp_path: Path, step: str, fragment: str
) -> None:
    pw = planned_from_source(
        tmp_path,
        "workflow w { deadline = 4h }\n"
        f'step s {{ image = "busybox" command = ["run"] duration = 5m {step} }}\n',
    )
    errors = [d for d in BACKEND.check(pw, KubernetesOptions()) if d.severity is Severity.ERROR]
    assert errors and all(d.code == "E702" for d in errors)
    assert any(fragment in d.message for d in errors), errors
    assert errors[0].span is not None and errors[0].span.line == 2
    with pytest.raises(CompileError):
        BACKEND.emit(pw, KubernetesOptions())


def test_env_names_are_the_front_ends_rule_and_asserted_where_written(
    overnight: PlannedWorkflow,
) -> None:
    """Environment names are one front-end rule for every backend (E207, see
    test_hostile_input); the IR refuses them too, and a step copied past
    validation cannot put one into a manifest."""
    step = overnight.program.step("index")
    for update in (
        {"secrets": ("HF TOKEN",)},
        {"env": {"1ST": "x"}},
        {"secrets": ("TOKEN/1",)},
        {"env": {"EXO_STEP": "x"}},
    ):
        with pytest.raises(ValidationError):
            Step.model_validate({**step.model_dump(), **update})
        changed = step.model_copy(update=update)
        steps = tuple(changed if s.name == "index" else s for s in overnight.program.steps)
        pw = overnight.model_copy(
            update={"program": overnight.program.model_copy(update={"steps": steps})}
        )
        with pytest.raises(ValueError, match="environment variable"):
            BACKEND.emit(pw, KubernetesOptions())


def test_too_many_shards_for_an_indexed_job(tmp_path: Path) -> None:
    pw = planned_from_source(
        tmp_path,
        "workflow w { deadline = 400h }\n"
        "dataset d { items = 2_000_000 }\n"
        'step s { input = d image = "busybox" command = ["run"] cpu = 1 batch_sizes = [8]\n'
        "  replicas = 2 throughput { cpu = { 8: 1000 } } }\n",
    )
    # The front end caps replicas at 100,000 (limits.py); the backend still refuses a
    # plan (from a plan file, say) with more shards than an Indexed Job can hold.
    (sp,) = pw.plan.steps
    wide = sp.model_copy(update={"replicas": 100_001, "instances": 100_001})
    pw = pw.model_copy(update={"plan": pw.plan.model_copy(update={"steps": [wide]})})
    errors = [d for d in BACKEND.check(pw, KubernetesOptions()) if d.severity is Severity.ERROR]
    assert [d.code for d in errors] == ["E702"] and "100001 shards" in errors[0].message


def test_warnings_do_not_stop_emission() -> None:
    pw = planned_from_file(SPEC / "examples" / "onprem" / "embed.exo")
    problems = BACKEND.check(pw, KubernetesOptions())
    assert problems and all(d.severity is Severity.WARNING for d in problems)
    messages = " ".join(d.message for d in problems)
    assert "declares no `image`" in messages and "no location pods can share" in messages
    artifacts = emit(pw)
    assert len([p for p in artifacts if p.startswith("jobs/")]) == len(pw.program.steps)
    warned = BACKEND.check(flip_spot(pw), KubernetesOptions())
    assert any("no spot node label" in d.message for d in warned)
    assert not any(
        "no spot node label" in d.message
        for d in BACKEND.check(flip_spot(pw), KubernetesOptions(provider="aks"))
    )


def test_infeasible_plan_is_refused(overnight: PlannedWorkflow) -> None:
    plan = overnight.plan.model_copy(update={"status": "infeasible", "steps": []})
    problems = BACKEND.check(overnight.model_copy(update={"plan": plan}), KubernetesOptions())
    assert [d.code for d in problems] == ["E702"] and "infeasible" in problems[0].message


def test_provider_and_catalog_cloud_must_match(finetune: PlannedWorkflow) -> None:
    assert finetune.catalog.name == "aws/us-east-1"
    for provider in ("karpenter", "eks", "none"):
        problems = BACKEND.check(finetune, KubernetesOptions(provider=provider))
        assert not any("no node will match" in d.message for d in problems)
    for provider in ("gke", "aks"):
        problems = BACKEND.check(finetune, KubernetesOptions(provider=provider))
        mismatched = [d for d in problems if "no node will match" in d.message]
        assert len(mismatched) == len(finetune.plan.steps)
        assert all(d.severity is Severity.WARNING for d in mismatched)
