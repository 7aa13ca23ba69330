"""The Kubernetes backend passes the shared backend conformance suite on every example,
and the run-time cases with its emitted Jobs' pods run on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from exo.backends.conformance import BackendConformance
from exo.backends.conformance_run import ExecutionConformance, ShardDriver

from .conftest import all_examples
from .test_kubernetes_helpers import (
    K8S_VERSIONS,
    emit,
    jobs,
    kubelet_expand,
    planned_from_file,
    pod_environment,
    validation_error,
)


class TestKubernetesConformance(BackendConformance):
    backend_name = "kubernetes"
    good_options = {  # noqa: RUF012 - the base declares it a ClassVar
        "provider": "karpenter",
        "namespace": "ml-batch",
        "kueue_queue": "team-a",
    }
    bad_options = [  # noqa: RUF012 - the base declares it a ClassVar
        {"provider": "openstack"},
        {"permanent_exit_codes": [0]},
        {"deadline_margin": -1},
        {"fail_fast": "sometimes"},
        {"namespce": "x"},
    ]

    def example_files(self) -> list[Path]:
        return all_examples()


# --- run-time conformance: the emitted Jobs' pods, run here -------------------------------


class PodDriver(ShardDriver):
    """Runs each emitted Job's pods on this machine, playing the Job controller's part.

    Each pod is the container's real entrypoint under ``/bin/sh`` with the
    environment Kubernetes would give it (downward API, ``$(VAR)`` expansion);
    the storage volume is a folder here. All of a Job's indexes run at once
    (completions = parallelism); a pod that ends with a failure is replaced and
    its index's failure count goes up, up to ``backoffLimitPerIndex``; a
    preempted pod (killed from outside, as a spot reclaim does: the pod gets the
    ``DisruptionTarget`` condition) is replaced with its ignored-failure count
    up, which is what the emitted ``podFailurePolicy`` asks for.
    """

    STORAGE: ClassVar[dict[str, str]] = {
        "storage_pvc": "exo-data",
        "storage_mount": "/exo/data",
        "run_id": "run-1",
    }

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.root = folder / "volumes"
        self.pods: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
        self.preempted: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.error: str | None = None
        self.stopping = False

    def start(self, workflow: Path) -> None:
        planned = planned_from_file(workflow)
        by_step = jobs(emit(planned, **self.STORAGE))
        order = [by_step[s.name] for s in planned.program.steps]
        for job in order:
            assert validation_error(job, K8S_VERSIONS[-1]) is None
            # the checkpoint location is on the storage volume every pod mounts
            env = {
                e["name"]: e.get("value")
                for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            assert env["EXO_CHECKPOINT"].startswith("/exo/data/$(EXO_RUN_ID)/checkpoints/")
        self.thread = threading.Thread(target=self._controller, args=(order,), daemon=True)
        self.thread.start()

    def _spawn(self, job: dict[str, Any], index: int, failures: int, ignored: int) -> None:
        env = pod_environment(job, index, failures=failures, ignored=ignored, root=self.root)
        container = job["spec"]["template"]["spec"]["containers"][0]
        command = [kubelet_expand(c, env) for c in container["command"]]
        args = [kubelet_expand(a, env) for a in container.get("args", [])]
        step = job["metadata"]["annotations"]["exo.dev/step-name"]
        log = (self.folder / f"pod-{step}-{index}.log").open("ab")
        self.pods[(step, index)] = subprocess.Popen(
            [command[0], "-c", command[2], command[3], *args],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _controller(self, order: list[dict[str, Any]]) -> None:
        for job in order:
            step = job["metadata"]["annotations"]["exo.dev/step-name"]
            spec = job["spec"]
            assert spec["completions"] == spec["parallelism"]
            failures = dict.fromkeys(range(spec["completions"]), 0)
            ignored = dict.fromkeys(range(spec["completions"]), 0)
            with self.lock:
                for i in failures:
                    self._spawn(job, i, 0, 0)
            left = set(failures)
            while left and not self.stopping:
                time.sleep(0.02)
                with self.lock:
                    for i in sorted(left):
                        rc = self.pods[(step, i)].poll()
                        if rc is None:
                            continue
                        if (step, i) in self.preempted:
                            self.preempted.discard((step, i))
                            ignored[i] += 1
                        elif rc != 0:
                            failures[i] += 1
                            if failures[i] > spec["backoffLimitPerIndex"]:
                                self.error = f"{step} shard {i} failed: exit code {rc}"
                                return
                        else:
                            left.discard(i)
                            continue
                        self._spawn(job, i, failures[i], ignored[i])

    def wait(self, timeout_s: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the pods did not finish in time"
        assert self.error is None, self.error

    def published(self, step: str) -> Path:
        return self.root / "exo" / "data" / "out" / step

    def checkpoint(self, step: str, index: int) -> Path | None:
        return self.root / "exo" / "data" / "run-1" / "checkpoints" / step / f"shard-{index}"

    def preempt(self, step: str, index: int) -> None:
        with self.lock:
            pod = self.pods[(step, index)]
            self.preempted.add((step, index))
            os.killpg(pod.pid, signal.SIGKILL)

    def close(self) -> None:
        self.stopping = True
        with self.lock:
            for pod in self.pods.values():
                if pod.poll() is None:
                    os.killpg(pod.pid, signal.SIGKILL)
                    pod.wait()


class TestKubernetesExecution(ExecutionConformance):
    def driver(self, folder: Path) -> ShardDriver:
        return PodDriver(folder)
