"""Helpers for the Kubernetes backend tests (this module holds no tests itself).

Besides building planned workflows through the real front end and optimizer,
it models the two pieces of Kubernetes behaviour the manifests rely on, from
their documented rules: the kubelet's ``$(VAR)`` expansion of container
``command``/``args``/``env`` (``$$`` is a literal ``$``; an unknown reference
stays as written), and the downward-API values the Job controller gives each
pod of an Indexed Job. With those, a pod's command line is reproduced by
running the emitted entrypoint under a real POSIX shell.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from exo.backends.api import PlannedWorkflow
from exo.backends.kubernetes import KubernetesBackend, KubernetesOptions
from exo.compiler.frontend import compile_file
from exo.compiler.optimizer import optimize

BACKEND = KubernetesBackend()
#: Kubernetes versions the manifests are validated against (DESIGN §6: at least 1.30-1.33).
K8S_VERSIONS = ("1.30", "1.31", "1.32", "1.33")
#: A workflow name Argo could generate, to stand in for ``{{workflow.name}}``.
SAMPLE_WORKFLOW_NAME = "wf-abcde"


#: libyaml's loader when present (parsing only; emission uses the pure-Python emitter).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def example_id(path: Path) -> str:
    """``spec/examples/...`` or ``examples/...`` (the two trees hold files of the same name)."""
    parts = path.parts
    i = len(parts) - 1 - parts[::-1].index("examples")
    prefix = "spec/" if "shared" in parts[:i] else ""
    return prefix + "/".join(parts[i:])


@pytest.fixture(scope="module")
def cached_schemas() -> Iterator[None]:
    """kubernetes-validate reads its 1.4 MB definitions file on every call; read each once."""
    mp = pytest.MonkeyPatch()
    mp.setattr(
        kubernetes_validate.utils,
        "schema_contents",
        functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents),
    )
    yield
    mp.undo()


@functools.cache
def _validate_text(text: str, version: str) -> str | None:
    try:
        kubernetes_validate.validate(json.loads(text), version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{e.message} at {list(e.path)}"
    return None


def validation_error(doc: Mapping[str, Any], version: str) -> str | None:
    """Why ``doc`` fails kubernetes-validate --strict for ``version`` (None when it passes)."""
    return _validate_text(json.dumps(doc, sort_keys=True), version)


def planned_from_file(path: Path, params: Mapping[str, str] | None = None) -> PlannedWorkflow:
    compiled = compile_file(path, params)
    plan = optimize(compiled.program, compiled.catalog)
    return PlannedWorkflow(
        program=compiled.program,
        plan=plan,
        catalog=compiled.catalog,
        base_dir=str(compiled.base_dir),
    )


def planned_from_source(tmp_path: Path, text: str, name: str = "wf.exo") -> PlannedWorkflow:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return planned_from_file(path)


def emit(planned: PlannedWorkflow, **options: Any) -> dict[str, str]:
    artifacts = BACKEND.emit(planned, KubernetesOptions(**options))
    return {a.path: a.content for a in artifacts}


def yaml_documents(artifacts: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Every emitted YAML file, parsed (one object per file)."""
    out: dict[str, dict[str, Any]] = {}
    for path, text in artifacts.items():
        if path.endswith(".yaml"):
            docs = list(yaml.load_all(text, Loader=_LOADER))
            assert len(docs) == 1, f"{path} holds {len(docs)} objects"
            out[path] = docs[0]
    return out


def embedded_jobs(
    workflow: Mapping[str, Any], name: str = SAMPLE_WORKFLOW_NAME
) -> dict[str, dict[str, Any]]:
    """The Jobs a Workflow's resource templates create, as Argo would submit them."""
    out: dict[str, dict[str, Any]] = {}
    for t in workflow["spec"]["templates"]:
        if "resource" in t:
            text = t["resource"]["manifest"].replace("{{workflow.name}}", name)
            assert "{{" not in text, (
                f"template {t['name']}: Argo would try to substitute {{{{...}}}}"
            )
            out[t["name"]] = yaml.load(text, Loader=_LOADER)
    return out


def all_objects(artifacts: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object: the files, and the Jobs inside workflow.yaml."""
    docs = yaml_documents(artifacts)
    out = [(p, d) for p, d in sorted(docs.items()) if d["kind"] != "Workflow"]
    for p, d in sorted(docs.items()):
        if d["kind"] == "Workflow":
            out += [(f"{p}#{n}", j) for n, j in sorted(embedded_jobs(d).items())]
    return out


def jobs(artifacts: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Standalone Jobs by step name."""
    docs = yaml_documents(artifacts)
    return {
        d["metadata"]["annotations"]["exo.dev/step-name"]: d
        for p, d in docs.items()
        if p.startswith("jobs/")
    }


def requirements(selector: str) -> list[str]:
    """Split a label selector at the commas that are not inside parentheses."""
    out, depth, buf = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(buf.strip())
            buf = ""
        else:
            buf += ch
    return [*out, buf.strip()]


# --- what the kubelet and the Job controller do -------------------------------------------


def kubelet_expand(text: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` expansion as the kubelet does it for command, args and env values."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end == -1:
                    out.append("$(")
                    i += 2
                    continue
                name = text[i + 2 : end]
                out.append(env.get(name, f"$({name})"))
                i = end + 1
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_FIELD = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


def mount_paths(job: Mapping[str, Any]) -> list[str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return [m["mountPath"] for m in container.get("volumeMounts", [])]


def on_host(value: str, job: Mapping[str, Any], root: Path | None) -> str:
    """A path inside one of the pod's volume mounts, as this test sees it: under ``root``."""
    if root is None:
        return value
    for mount in mount_paths(job):
        if value == mount or value.startswith(mount.rstrip("/") + "/"):
            return f"{root}{value}"
    return value


def pod_environment(
    job: Mapping[str, Any],
    index: int,
    *,
    failures: int = 0,
    ignored: int = 0,
    secrets: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> dict[str, str]:
    """The environment of the main container of pod ``index`` of an Indexed Job.

    With ``root``, paths inside the pod's volume mounts are moved under it (the
    pod's volumes, as a folder of this machine).
    """
    template = job["spec"]["template"]
    labels = dict(template["metadata"].get("labels", {}))
    annotations = dict(template["metadata"].get("annotations", {}))
    annotations["batch.kubernetes.io/job-completion-index"] = str(index)
    annotations["batch.kubernetes.io/job-index-failure-count"] = str(failures)
    if ignored:
        annotations["batch.kubernetes.io/job-index-ignored-failure-count"] = str(ignored)
    container = template["spec"]["containers"][0]
    env: dict[str, str] = {"JOB_COMPLETION_INDEX": str(index)}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = kubelet_expand(var["value"], env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            m = _FIELD.match(source["fieldRef"]["fieldPath"])
            assert m, source
            table = labels if m.group(1) == "labels" else annotations
            env[var["name"]] = table.get(m.group(2), "")
        else:
            ref = source["secretKeyRef"]
            env[var["name"]] = (secrets or {}).get(ref["key"], "")
    return {k: on_host(v, job, root) for k, v in env.items()}


def run_pod(
    job: Mapping[str, Any],
    index: int,
    *,
    root: Path,
    failures: int = 0,
    ignored: int = 0,
    shell: str = "dash",
) -> tuple[list[str], dict[str, str]]:
    """The argv the step's program receives in pod ``index``, and its EXO_* environment.

    The container's own entrypoint runs under a real shell; instead of the
    step's program it runs ``printf`` (given as the first arguments, which
    hold no placeholders), which prints the filled-in arguments. The pod's
    volumes are folders under ``root`` (see :func:`pod_environment`).
    """
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = pod_environment(job, index, failures=failures, ignored=ignored, root=root)
    command = [kubelet_expand(c, env) for c in container["command"]]
    args = [kubelet_expand(a, env) for a in container.get("args", [])]
    exe = shutil.which(shell)
    assert exe, f"{shell} is not installed"
    assert command[0] == "/bin/sh" and command[1] == "-c"
    # the pod's working folder: a relative output path lands under root, not in the repo
    root.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [exe, "-c", command[2], command[3], "printf", "%s\\0", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=root,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # bytes, not text mode: universal newlines would turn a "\r" argument into "\n"
    argv = result.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]
    # the exported environment, as the program sees it
    exported = subprocess.run(
        [exe, "-c", command[2], command[3], "env"],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = dict(line.split("=", 1) for line in exported.splitlines() if line.startswith("EXO_"))
    return argv, seen
