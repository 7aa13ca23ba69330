"""The Kubernetes backend passes the shared backend conformance suite on every example."""

from __future__ import annotations

from pathlib import Path

from exo.backends.conformance import BackendConformance

from .conftest import all_examples


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
