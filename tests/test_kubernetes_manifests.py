"""Every example, compiled for Kubernetes: valid against the official schemas, Argo's
schema and Argo's own naming and condition rules, and snapshot-tested."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import networkx as nx
import pytest
from hera.workflows.models import Workflow as ArgoWorkflow

from exo.backends.api import PlannedWorkflow
from exo.compiler.ir import step_dag

from .conftest import all_examples
from .golden import assert_files, golden
from .test_kubernetes_helpers import (
    K8S_VERSIONS,
    all_objects,
    cached_schemas,  # noqa: F401  (a fixture, used through pytestmark)
    embedded_jobs,
    emit,
    example_id,
    planned_from_file,
    requirements,
    validation_error,
    yaml_documents,
)

pytestmark = pytest.mark.usefixtures("cached_schemas")

EXAMPLES = all_examples()
#: Option sets every example is validated with: each provider, and the optional features.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "karpenter": {"provider": "karpenter", "kueue_queue": "team-a", "permanent_exit_codes": [2, 3]},
    "gke": {"provider": "gke", "storage_pvc": "exo-data", "image_pull_secrets": ["regcred"]},
    "aks": {"provider": "aks", "storage_prefix": "s3://bucket/exo", "fail_fast": False},
    "eks": {"provider": "eks", "job_service_account": "trainer", "namespace": "ml-batch"},
}

_PLANNED: dict[Path, PlannedWorkflow] = {}
_EMITTED: dict[tuple[Path, str], dict[str, str]] = {}


def planned(path: Path) -> PlannedWorkflow:
    if path not in _PLANNED:
        _PLANNED[path] = planned_from_file(path)
    return _PLANNED[path]


def emitted(path: Path, variant: str) -> dict[str, str]:
    if (path, variant) not in _EMITTED:
        _EMITTED[path, variant] = emit(planned(path), **VARIANTS[variant])
    return _EMITTED[path, variant]


def test_examples_present() -> None:
    assert len(EXAMPLES) >= 3, EXAMPLES


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_every_object_validates_strictly(path: Path, variant: str) -> None:
    objects = all_objects(emitted(path, variant))
    kinds = sorted({d["kind"] for _, d in objects})
    assert kinds == ["Job", "Role", "RoleBinding", "ServiceAccount"]
    problems = [
        f"{where} (Kubernetes {version}): {error}"
        for where, doc in objects
        for version in K8S_VERSIONS
        if (error := validation_error(doc, version)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_strict_validation_rejects_what_kubernetes_would() -> None:
    """The validator is really strict: an unknown field or a wrong type fails."""
    job = next(d for _, d in all_objects(emitted(EXAMPLES[0], "defaults")) if d["kind"] == "Job")
    kubernetes_validate.validate(job, "1.33", strict=True)
    for mutate in (
        lambda j: j["spec"].__setitem__("backoffLimitPerIndexx", 1),
        lambda j: j["spec"].__setitem__("completions", "3"),
        lambda j: j["spec"]["template"]["spec"]["containers"][0].__setitem__("gpu", 1),
    ):
        bad = copy.deepcopy(job)
        mutate(bad)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, "1.33", strict=True)


# --- Argo ---------------------------------------------------------------------------------

#: Argo's rule for template and DAG task names (workflowFieldNameFmt, at most 128 characters).
ARGO_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
#: A Kubernetes label-selector requirement as Argo parses success/failure conditions.
_QUALIFIED = r"(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
REQUIREMENT = re.compile(
    rf"^!?{_QUALIFIED}$|^{_QUALIFIED}\s*(==|=|!=|>|<)\s*{_VALUE}$"
    rf"|^{_QUALIFIED}\s+(in|notin)\s+\(\s*{_VALUE}(\s*,\s*{_VALUE})*\s*\)$"
)


def argo_round_trip(doc: dict[str, Any]) -> None:
    """Validate against Argo's schema (hera's models are generated from it); the
    round trip fails on any field the schema does not know."""
    model = ArgoWorkflow.model_validate(doc)
    back = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert back == doc, "fields unknown to Argo's schema, or values of the wrong type"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_argo_workflow_is_valid(path: Path, variant: str) -> None:
    pw = planned(path)
    wf = yaml_documents(emitted(path, variant))["workflow.yaml"]
    argo_round_trip(wf)
    spec = wf["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    assert len(templates) == len(spec["templates"]), "duplicate template names"
    assert spec["entrypoint"] in templates
    tasks = templates[spec["entrypoint"]]["dag"]["tasks"]
    names = [t["name"] for t in tasks]
    assert len(set(names)) == len(names)
    for name in [*names, *templates]:
        assert ARGO_NAME.match(name) and len(name) <= 128, name
    for t in tasks:
        assert t["template"] in templates and "resource" in templates[t["template"]]
        assert set(t.get("dependencies", [])) <= set(names)
    for t in templates.values():
        if "resource" in t:
            res = t["resource"]
            assert res["action"] == "create" and res["setOwnerReference"] is True
            for cond in (res["successCondition"], res["failureCondition"]):
                for req in requirements(cond):
                    assert REQUIREMENT.match(req), f"not a label-selector requirement: {req!r}"
    # the DAG is the program's dependency graph, one task per step
    g: nx.DiGraph[str] = nx.DiGraph()
    for t in tasks:
        g.add_node(t["name"])
        for d in t.get("dependencies", []):
            g.add_edge(d, t["name"])
    expected = step_dag(pw.program)
    jobs = embedded_jobs(wf)
    step_of = {
        t["name"]: jobs[t["template"]]["metadata"]["annotations"]["exo.dev/step-name"]
        for t in tasks
    }
    assert nx.is_directed_acyclic_graph(g)
    assert {(step_of[a], step_of[b]) for a, b in g.edges} == set(expected.edges)
    assert sorted(step_of.values()) == sorted(expected.nodes)


def test_argo_schema_check_rejects_unknown_fields() -> None:
    wf = yaml_documents(emitted(EXAMPLES[0], "defaults"))["workflow.yaml"]
    argo_round_trip(wf)
    bad = copy.deepcopy(wf)
    bad["spec"]["templates"][1]["resource"]["waitFor"] = "done"
    with pytest.raises(AssertionError):
        argo_round_trip(bad)
    bad = copy.deepcopy(wf)
    del bad["spec"]["templates"][1]["resource"]["action"]
    with pytest.raises(ValueError):
        argo_round_trip(bad)


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_workflow_embeds_the_standalone_jobs(path: Path) -> None:
    """The Workflow creates exactly the Jobs of jobs/, named after the workflow run."""
    artifacts = emit(planned(path), run_id="wf-abcde")
    docs = yaml_documents(artifacts)
    standalone = sorted(
        (d for p, d in docs.items() if p.startswith("jobs/")), key=lambda d: d["metadata"]["name"]
    )
    embedded = sorted(
        embedded_jobs(docs["workflow.yaml"], "wf-abcde").values(),
        key=lambda d: d["metadata"]["name"],
    )
    assert standalone == embedded


# --- snapshots ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_manifests_snapshot(path: Path, snapshot: Any) -> None:
    assert_files(snapshot, emit(planned(path), provider="karpenter"))


@pytest.mark.parametrize("provider", ["aks", "eks", "gke", "karpenter", "none"])
def test_provider_snapshot(provider: str, snapshot: Any) -> None:
    path = next(p for p in EXAMPLES if p.name == "finetune_synthetic.exo")
    docs = yaml_documents(emit(planned(path), provider=provider))
    placement = {
        p: {
            k: d["spec"]["template"]["spec"].get(k)
            for k in ("nodeSelector", "affinity", "tolerations")
        }
        | {"annotations": d["spec"]["template"]["metadata"].get("annotations")}
        for p, d in sorted(docs.items())
        if p.startswith("jobs/")
    }
    assert json.dumps(placement, indent=2, sort_keys=True) + "\n" == golden(snapshot, "json")


def test_emission_is_deterministic() -> None:
    pw = planned(EXAMPLES[0])
    assert emit(pw, provider="gke") == emit(planned_from_file(EXAMPLES[0]), provider="gke")
