"""Accelerator specs: memory, dense BF16 throughput and memory bandwidth per device.

Figures are the vendors' public numbers as collected in the project's cloud facts
(see ``docs/catalogs.md``). ``memory_gib`` is the nominal memory ("80 GB") taken as
GiB; the usable memory a driver reports is a little lower (an A10G shows about
22.5 GiB of its nominal 24). The optimizer uses ``memory_gib`` to check that a batch
fits; a catalog row can override it with its own ``accelerator_memory_gib`` cell.

An accelerator that is not in this table (and has no ``accelerator_memory_gib`` in
its catalog row) has unknown memory: :func:`accelerator_memory_gib` returns ``None``
and the optimizer cannot check the memory fit for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from exo.compiler.records import record


@record
class AcceleratorSpec:
    """One accelerator model (one device, not an instance)."""

    name: str
    #: Nominal device memory, GiB.
    memory_gib: float
    #: Dense BF16 tensor throughput, TFLOP/s; ``None`` when the device has no BF16.
    bf16_tflops: float | None
    #: Memory bandwidth, GB/s.
    memory_bandwidth_gbps: float
    #: Dense FP16 tensor throughput, TFLOP/s, where it is the figure that matters
    #: (devices without BF16, or where only the FP16 figure is published).
    fp16_tflops: float | None = None
    note: str = ""


def _table(*specs: AcceleratorSpec) -> Mapping[str, AcceleratorSpec]:
    return MappingProxyType({s.name: s for s in specs})


#: The built-in accelerator table, keyed by the names the built-in catalogs use.
ACCELERATORS: Mapping[str, AcceleratorSpec] = _table(
    AcceleratorSpec("T4", 16, None, 320, fp16_tflops=65, note="no BF16; FP16 tensor 65"),
    AcceleratorSpec("A10G", 24, 70, 600, fp16_tflops=70, note="~70 dense FP16/BF16 (approximate)"),
    AcceleratorSpec("L4", 24, 121, 300),
    AcceleratorSpec("L40S", 48, 362, 864),
    AcceleratorSpec("V100", 16, None, 900, fp16_tflops=125, note="no BF16; FP16 tensor 125"),
    AcceleratorSpec("A100", 40, 312, 1555, note="the 40 GB model"),
    AcceleratorSpec("A100-80GB", 80, 312, 2039),
    AcceleratorSpec("H100", 80, 989, 3350, note="SXM"),
    AcceleratorSpec("H200", 141, 989, 4800, note="BF16 about the same as H100"),
)

#: Other spellings of the same devices (matched case-insensitively).
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "A100-40GB": "A100",
        "A100-40G": "A100",
        "A100-80G": "A100-80GB",
        "H100-80GB": "H100",
        "H100-SXM": "H100",
        "H200-141GB": "H200",
    }
)

_BY_LOWER: Mapping[str, AcceleratorSpec] = MappingProxyType(
    {
        **{name.lower(): spec for name, spec in ACCELERATORS.items()},
        **{alias.lower(): ACCELERATORS[name] for alias, name in ALIASES.items()},
    }
)


def accelerator_spec(name: str) -> AcceleratorSpec | None:
    """The spec for ``name`` (exact, alias or case-insensitive match), or ``None``."""
    spec = ACCELERATORS.get(name)
    if spec is not None:
        return spec
    return _BY_LOWER.get(name.strip().lower())


def accelerator_memory_gib(name: str) -> float | None:
    """Nominal memory of one ``name`` device in GiB, or ``None`` when unknown."""
    spec = accelerator_spec(name)
    return spec.memory_gib if spec is not None else None
