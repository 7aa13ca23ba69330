"""The Argo Workflows ``Workflow`` that runs the step Jobs in dependency order, and its RBAC.

Each step is a ``resource`` template that creates the step's Job and waits
for it: the task succeeds when the Job has a ``completionTime`` (set only on
success) and fails as soon as the Job has a ``Failed`` or ``FailureTarget``
condition. Argo evaluates these conditions as Kubernetes label selectors over
the Job's JSON (gjson paths), which cannot search a list, so the failure
condition looks at the first :data:`CONDITION_SLOTS` entries of
``status.conditions`` (Argo fails a task when any failure requirement holds).
The Jobs are owned by the Workflow (``setOwnerReference``), so deleting the
Workflow deletes them.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from ..api import PlannedWorkflow
from .jobs import LABEL_WORKFLOW, RunRef, job, labels
from .names import label_value
from .options import KubernetesOptions, Placement
from .resolve import Resolved, workflow_prefix
from .serialize import to_argo_manifest, to_dict

ARGO_API_VERSION = "argoproj.io/v1alpha1"
ENTRYPOINT = "dag"
#: The Argo variable holding the generated workflow name (the run id of its Jobs).
WORKFLOW_NAME = "{{workflow.name}}"
#: Job conditions that mean the Job failed for good.
FAILED_CONDITIONS = ("Failed", "FailureTarget")
#: How many entries of ``status.conditions`` the failure condition inspects
#: (a Job has at most Suspended, FailureTarget and Failed before it is over).
CONDITION_SLOTS = 4
SUCCESS_CONDITION = "status.completionTime"
FAILURE_CONDITION = ",".join(
    f"status.conditions.{i}.type in ({','.join(FAILED_CONDITIONS)})" for i in range(CONDITION_SLOTS)
)


def template_name(r: Resolved) -> str:
    return f"job-{r.label}"


def _sentinel(planned: PlannedWorkflow, options: KubernetesOptions) -> str:
    """A run id stand-in that occurs nowhere in the text the manifests are made of."""
    text = planned.model_dump_json() + options.model_dump_json()
    n = 0
    while True:
        candidate = f"exo-workflow-name-{n}"
        if candidate not in text:
            return candidate
        n += 1


def workflow(
    planned: PlannedWorkflow,
    resolved: list[Resolved],
    options: KubernetesOptions,
    where: Placement,
) -> dict[str, Any]:
    sentinel = _sentinel(planned, options)
    by_name = {r.step.name: r for r in resolved}
    tasks: list[dict[str, Any]] = []
    templates: list[dict[str, Any]] = []
    for r in resolved:
        task: dict[str, Any] = {"name": r.label, "template": template_name(r)}
        deps = [by_name[p].label for p in r.step.predecessors() if p in by_name]
        if deps:
            task["dependencies"] = deps
        tasks.append(task)
        manifest = to_argo_manifest(
            to_dict(job(planned, r, options, where, RunRef(sentinel))),
            sentinel=sentinel,
            replacement=WORKFLOW_NAME,
        )
        templates.append(
            {
                "name": template_name(r),
                "resource": {
                    "action": "create",
                    "setOwnerReference": True,
                    "successCondition": SUCCESS_CONDITION,
                    "failureCondition": FAILURE_CONDITION,
                    "manifest": manifest,
                },
            }
        )
    return {
        "apiVersion": ARGO_API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "generateName": workflow_prefix(planned),
            "namespace": options.namespace,
            "labels": _workflow_labels(planned),
            "annotations": _annotations(planned),
        },
        "spec": {
            "entrypoint": ENTRYPOINT,
            "serviceAccountName": options.service_account,
            "podGC": {"strategy": "OnPodSuccess"},
            "templates": [{"name": ENTRYPOINT, "dag": {"tasks": tasks}}, *templates],
        },
    }


def _annotations(planned: PlannedWorkflow) -> dict[str, str]:
    """The plan's figures on the Workflow, for whoever looks at it in the cluster."""
    plan = planned.plan
    annotations = {
        "exo.dev/workflow-name": planned.program.workflow.name,
        "exo.dev/plan-status": plan.status,
        "exo.dev/objective": plan.objective,
    }
    if plan.expected_cost_usd is not None:
        annotations["exo.dev/expected-cost-usd"] = f"{plan.expected_cost_usd:.2f}"
    if plan.makespan_h is not None:
        annotations["exo.dev/makespan-h"] = f"{plan.makespan_h:.3f}"
    if plan.catalog:
        annotations["exo.dev/catalog"] = plan.catalog
    return annotations


def _workflow_labels(planned: PlannedWorkflow) -> dict[str, str]:
    name = label_value(planned.program.workflow.name)
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "exoc",
        LABEL_WORKFLOW: name,
    }


def _rbac_labels(planned: PlannedWorkflow) -> dict[str, str]:
    out = labels(planned, RunRef("shared"), None)
    del out["app.kubernetes.io/instance"]
    del out["exo.dev/run"]
    return out


def rbac(
    planned: PlannedWorkflow, options: KubernetesOptions
) -> tuple[k8s.V1ServiceAccount, k8s.V1Role, k8s.V1RoleBinding]:
    """What the Workflow's pods need: create and watch Jobs, report task results (Argo >= 3.4)."""
    name, ns = options.service_account, options.namespace
    meta = k8s.V1ObjectMeta(name=name, namespace=ns, labels=_rbac_labels(planned))
    account = k8s.V1ServiceAccount(api_version="v1", kind="ServiceAccount", metadata=meta)
    role = k8s.V1Role(
        api_version="rbac.authorization.k8s.io/v1",
        kind="Role",
        metadata=meta,
        rules=[
            k8s.V1PolicyRule(
                api_groups=["batch"], resources=["jobs"], verbs=["create", "get", "list", "watch"]
            ),
            k8s.V1PolicyRule(
                api_groups=["argoproj.io"],
                resources=["workflowtaskresults"],
                verbs=["create", "patch"],
            ),
        ],
    )
    binding = k8s.V1RoleBinding(
        api_version="rbac.authorization.k8s.io/v1",
        kind="RoleBinding",
        metadata=meta,
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
        subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name=name, namespace=ns)],
    )
    return account, role, binding
