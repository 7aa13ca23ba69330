"""Options of the Slurm backend (``--slurm-<field>`` or ``backend slurm { ... }``).

A plan places every step on a *tier*: an instance type of the catalog, spot or
on-demand. On a Slurm cluster a tier is a partition (optionally with a QOS and
an account), so the options say which partition serves which tier. Lookups go
from the most to the least specific key, the same order the cost model uses:
the instance type (``a100x4``), then the accelerator (``A100``), then ``cpu``
for CPU-only instance types, then the catch-all ``partition`` / ``spot_partition``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Partition, QOS, account and GRES names: what Slurm accepts in its config files.
SLURM_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
#: Longest ``--time``: Slurm keeps time limits as 32-bit minutes (0xffffffff is INFINITE).
MAX_TIME_MINUTES = 0xFFFFFFFE
#: One ``#SBATCH`` option. sbatch reads these lines with its own rules (quotes
#: group, a backslash escapes even inside quotes, an unquoted ``#`` ends the line,
#: a line break ends the directives) and bash reads them as comments: an option
#: keeps to characters that mean nothing to either, so it needs no quoting at all.
#: (Here, not in ``shell``, so that the options load without the script templates.)
SBATCH_OPTION = re.compile(r"-[A-Za-z0-9_.,:=/@%+|&*!()\[\]-]*")


def is_sbatch_option(text: str) -> bool:
    return SBATCH_OPTION.fullmatch(text) is not None


def _split_pairs(value: object) -> object:
    """``"a=b,c=d"`` (a CLI flag) -> ``{"a": "b", "c": "d"}``; other values unchanged."""
    if not isinstance(value, str):
        return value
    out: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE pairs separated by commas, got {part!r}")
        out[key.strip()] = val.strip()
    return out


def _check_names(mapping: dict[str, str], what: str) -> dict[str, str]:
    for key, val in mapping.items():
        if not key:
            raise ValueError(f"empty key in the {what} mapping")
        for name in val.split(","):
            if not SLURM_NAME.match(name):
                raise ValueError(f"{what} {val!r} for {key!r} is not a valid Slurm name")
    return dict(sorted(mapping.items()))


class SlurmOptions(BaseModel):
    """How a plan maps onto a Slurm cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str | None = Field(
        None, description="partition for on-demand tiers (default: the cluster's default)"
    )
    spot_partition: str | None = Field(
        None, description="preemptible partition for spot tiers (PreemptMode=REQUEUE)"
    )
    partitions: dict[str, str] = Field(
        default_factory=dict,
        description="on-demand partition by instance type, accelerator or `cpu` "
        "(KEY=PARTITION,...)",
    )
    spot_partitions: dict[str, str] = Field(
        default_factory=dict,
        description="preemptible partition by instance type, accelerator or `cpu`",
    )
    qos: str | None = Field(None, description="QOS for on-demand tiers")
    spot_qos: str | None = Field(None, description="QOS for spot tiers (e.g. a preemptible QOS)")
    account: str | None = Field(None, description="account charged for every job")
    gres_name: str = Field("gpu", description="GRES name of accelerators")
    gres_types: dict[str, str] = Field(
        default_factory=dict,
        description="GRES type by accelerator (default: the accelerator name in lower case; "
        "an empty value requests untyped GRES)",
    )
    time_margin: float = Field(
        0.5,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="--time is the planned P-duration per shard times (1 + margin)",
    )
    min_time_minutes: int = Field(
        10, ge=1, le=MAX_TIME_MINUTES, description="shortest --time requested"
    )
    signal_seconds: int = Field(
        300,
        ge=1,
        le=65535,  # sbatch --signal's sig_time is 16-bit
        description="spot tiers: USR1 this long before the time limit or preemption",
    )
    backoff_s: float = Field(
        10.0,
        ge=0,
        le=86400,
        allow_inf_nan=False,
        description="delay before the first error retry (doubles each time)",
    )
    backoff_max_s: float = Field(
        600.0,
        ge=0,
        le=86400,
        allow_inf_nan=False,
        description="longest delay between error retries",
    )
    extra_directives: list[str] = Field(
        default_factory=list,
        description="more #SBATCH options for every step, e.g. --constraint=ib",
    )
    container: Literal["none", "apptainer"] = Field(
        "none", description="run `image` with apptainer (`none`: run the command on the host)"
    )
    max_array_size: int | None = Field(
        None,
        ge=1,
        le=4_000_001,  # Slurm's largest MaxArraySize
        description="the cluster's MaxArraySize, to check shard counts when compiling "
        "(`exoc run` reads it from the cluster)",
    )
    fallback: Literal["deadline", "none"] = Field(
        "deadline",
        description="exoc run: move a pending spot task to the on-demand partition when its "
        "remaining work no longer fits its due time (see docs/simulate.md)",
    )
    poll_s: float = Field(
        2.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="exoc run: seconds between squeue polls",
    )

    @field_validator("partitions", "spot_partitions", "gres_types", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        return _split_pairs(value)

    @field_validator("partitions", "spot_partitions")
    @classmethod
    def _partition_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_names(value, "partition")

    @field_validator("gres_types")
    @classmethod
    def _gres_types(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if val and not SLURM_NAME.match(val):
                raise ValueError(f"GRES type {val!r} for {key!r} is not a valid Slurm name")
        return dict(sorted(value.items()))

    @field_validator("partition", "spot_partition")
    @classmethod
    def _partition(cls, value: str | None) -> str | None:
        if value is not None:
            _check_names({"*": value}, "partition")
        return value

    @field_validator("qos", "spot_qos", "account", "gres_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not SLURM_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid Slurm name")
        return value

    @field_validator("extra_directives", mode="before")
    @classmethod
    def _directives_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("extra_directives")
    @classmethod
    def _directives(cls, value: list[str]) -> list[str]:
        for d in value:
            if not is_sbatch_option(d):
                raise ValueError(
                    f"{d[:60]!r} is not an sbatch option: one option starting with `-`, "
                    "without spaces, quotes, backslashes, `#` or `$` (e.g. --constraint=ib)"
                )
        return value

    def gres_type(self, accelerator: str) -> str:
        return self.gres_types.get(accelerator, accelerator.lower())
