"""The local backend passes the shared backend conformance suite on every example."""

from __future__ import annotations

from pathlib import Path

from exo.backends.conformance import BackendConformance

from .conftest import all_examples


class TestLocalConformance(BackendConformance):
    backend_name = "local"
    bad_options = [  # noqa: RUF012 - the base declares it a ClassVar
        {"backoff_s": -1},
        {"grace_s": "soon"},
        {"clean_env": "perhaps"},
        {"backof_s": 2},
    ]

    def example_files(self) -> list[Path]:
        return all_examples()
