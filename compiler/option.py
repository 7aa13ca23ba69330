"""An option: one way to run a step, with the cost model's figures (DESIGN §3).

:mod:`exo.compiler.costmodel` computes them; the quota checks, pruning and
every later stage read them. Kept apart so that those modules share the type
without importing the cost model's formulas.
"""

from __future__ import annotations

from typing import NamedTuple


class Option(NamedTuple):
    """One way to run a step, with the DESIGN §3 figures (hours and USD).

    A named tuple (immutable, hashable, cheap to build: a workflow of 1,000
    steps has about 85,000 of them).
    """

    step: str
    instance_type: str
    #: ``None`` for a CPU instance.
    accelerator: str | None
    accelerator_count: int
    vcpus: int
    spot: bool
    #: ``None`` for duration steps and batch-independent throughput.
    batch_size: int | None
    replicas: int
    #: Price per instance-hour of the chosen tier (spot or on-demand).
    price_usd_per_hour: float
    #: Items per second per replica (throughput steps), else ``None``.
    throughput: float | None
    #: The key the throughput / duration was found under (instance type, accelerator or ``cpu``).
    perf_key: str
    #: Preemptions per hour (0 on demand).
    preemptions_per_hour: float
    #: Hours of work lost to one preemption at most (``c``; 0 on demand).
    checkpoint_h: float
    #: Preemptions during ``P`` allowed at the confidence (``k``; 0 on demand).
    preemptions_at_confidence: int
    T: float
    E: float
    P: float
    cost: float
    #: Instances rented: ``m = ceil(replicas / per_instance)``.
    instances: int = 1
    #: Replicas one instance holds (``k_i``).
    per_instance: int = 1

    @property
    def key(self) -> tuple[str, bool, int, int]:
        """A total, deterministic order of the options of one step."""
        return (
            self.instance_type,
            self.spot,
            -1 if self.batch_size is None else self.batch_size,
            self.replicas,
        )

    def label(self) -> str:
        """``g5.xlarge spot x4, batch 32``: how a person names this option."""
        return option_label(
            self.instance_type, self.spot, self.replicas, self.batch_size, self.instances
        )


def option_label(
    instance_type: str, spot: bool, replicas: int, batch_size: int | None, instances: int
) -> str:
    """``p4d.24xlarge spot x8 on 1 instance, batch 32`` (instances named when they differ)."""
    tier = "spot" if spot else "on-demand"
    text = f"{instance_type} {tier} x{replicas}"
    if instances != replicas:
        text += f" on {instances} instance{'s' if instances != 1 else ''}"
    if batch_size is not None:
        text += f", batch {batch_size}"
    return text
