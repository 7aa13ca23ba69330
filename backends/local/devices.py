"""This machine's GPUs, shared among the shards of GPU steps (``CUDA_VISIBLE_DEVICES``).

The plan gives every replica of a GPU step ``gpus`` accelerators of its own
(DESIGN §3). Run here, every replica is a process on this one machine, and a
process that is told nothing starts on the first GPU: eight replicas planned on
eight GPUs would all share GPU 0 and take about eight times their plan. So each
attempt of a GPU step's shard is handed, in ``CUDA_VISIBLE_DEVICES``, the
``gpus`` devices that the fewest running attempts hold (in the devices' order
on a tie), and gives them back when it ends. Nothing waits for a device: when
the plan runs more GPUs at once than the machine has, attempts share them as
evenly as they can, and the run says beforehand that it will take longer than
planned.

The devices are ``--local-gpus`` (``auto``: ``CUDA_VISIBLE_DEVICES`` when
exoc's own environment sets it, else one per line of ``nvidia-smi -L``; ``none``:
shards are not told which GPU to use; or a comma-separated list of device
indices or UUIDs). CPU steps' shards are left as they are.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api import PlannedWorkflow

#: The variable every CUDA program reads to find its devices.
VARIABLE = "CUDA_VISIBLE_DEVICES"
_PREFIX = VARIABLE.encode() + b"="


def parse(option: str) -> tuple[str, ...] | None:
    """``--local-gpus``: ``None`` for ``auto`` (discover), ``()`` for ``none``, else the list."""
    text = option.strip()
    if text.lower() == "auto":
        return None
    if text.lower() == "none":
        return ()
    devices = tuple(d.strip() for d in text.split(","))
    if not all(devices) or len(set(devices)) != len(devices):
        raise ValueError(
            "give auto, none, or distinct device indices or UUIDs separated by commas, e.g. 0,1,2,3"
        )
    return devices


def discover(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The GPUs shards may use: those ``CUDA_VISIBLE_DEVICES`` names, else ``nvidia-smi``'s."""
    given = environ.get(VARIABLE)
    if given is not None:
        return tuple(d.strip() for d in given.split(",") if d.strip())
    smi = shutil.which("nvidia-smi", path=environ.get("PATH"))
    if smi is None:
        return ()
    try:
        out = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(str(i) for i in range(sum(1 for line in out.splitlines() if line.strip())))


class DevicePool:
    """Which attempts hold which devices; the least-held ones go to the next attempt."""

    def __init__(self, devices: Iterable[str]) -> None:
        self.held = dict.fromkeys(devices, 0)
        self.position = {d: i for i, d in enumerate(self.held)}

    def take(self, count: int) -> str:
        """``count`` devices (the least held, each at most once), as CUDA_VISIBLE_DEVICES
        lists them: in the devices' order."""
        order = sorted(self.held, key=self.held.__getitem__)  # stable: the devices' order on ties
        chosen = sorted(order[: max(1, min(count, len(order)))], key=self.position.__getitem__)
        for d in chosen:
            self.held[d] += 1
        return ",".join(chosen)

    def give(self, devices: str) -> None:
        for d in devices.split(","):
            self.held[d] -= 1


def give_back(pool: DevicePool | None, devices: str | None) -> None:
    """An attempt's devices, given back when it ended or never started."""
    if pool is not None and devices is not None:
        pool.give(devices)


def with_devices(entries: list[bytes], devices: str) -> list[bytes]:
    """An attempt's environment with ``CUDA_VISIBLE_DEVICES`` set to ``devices`` (replaced)."""
    kept = [e for e in entries if not e.startswith(_PREFIX)]
    kept.append(_PREFIX + devices.encode())
    return kept


def peak_demand(intervals: Iterable[tuple[float, float, int]]) -> int:
    """The most GPUs in use at once over ``(start, end, gpus)`` intervals (ends first on ties)."""
    events = sorted(
        ev for start, end, gpus in intervals if gpus > 0 for ev in ((start, gpus), (end, -gpus))
    )
    peak = now = 0
    for _, change in events:
        now += change
        peak = max(peak, now)
    return peak


def plan_gpus(planned: PlannedWorkflow) -> dict[str, int]:
    """GPUs per shard (replica) of every step the plan puts on an accelerator."""
    return {
        sp.name: max(1, planned.program.step(sp.name).gpus)
        for sp in planned.plan.steps
        if sp.accelerator is not None
    }


def plan_demand(planned: PlannedWorkflow, gpus: Mapping[str, int]) -> int:
    """The most GPUs the plan's schedule uses at once (each step from its start to its
    duration at the plan's confidence)."""
    return peak_demand(
        (sp.start_h, sp.start_h + sp.p_duration_h, gpus.get(sp.name, 0) * sp.replicas)
        for sp in planned.plan.steps
    )


def shortage(demand: int, devices: tuple[str, ...]) -> str | None:
    """What the run says before it starts when the plan uses more GPUs at once than there are."""
    if not devices or demand <= len(devices):
        return None
    return (
        f"the plan runs up to {demand} GPUs at once and this machine gives its shards "
        f"{len(devices)} ({VARIABLE}={','.join(devices)}): GPU shards will share devices, "
        f"and the run will take longer than planned (--local-gpus chooses the devices)"
    )
