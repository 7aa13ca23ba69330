"""The largest (and smallest) values a workflow or a catalog may hold.

Every number the front end and the catalog loader accept fits these bounds, so
that what comes after (the cost model, the optimizer, the backends' 32-bit and
64-bit fields, shell arithmetic in the job scripts) never meets a value it
cannot represent. They are far beyond any real workflow; a value outside them is
a diagnostic that names the limit (E203 in a workflow, E416 in a catalog).
``docs/language.md`` and ``docs/catalogs.md`` list them; keep the three in step.
"""

from __future__ import annotations

from exo.compiler.records import record


@record
class Limit:
    """Inclusive bounds of one kind of value and how a person writes them."""

    #: What the value is, for messages ("an item count").
    what: str
    low: float
    high: float
    #: ``high`` as the user would write it (``1_000_000_000_000``, ``87600h``, ``$1_000_000_000``).
    shown: str
    #: ``low`` as the user would write it, when there is a lower bound worth naming.
    shown_low: str | None = None


#: Item counts (``items``) and batch sizes: one trillion. Shell arithmetic in the
#: job scripts multiplies an item count by a shard index (at most a few million),
#: which stays within 64 bits.
ITEMS = Limit("an item count", 1, 10**12, "1_000_000_000_000")
BATCH_SIZE = Limit("a batch size", 1, 10**12, "1_000_000_000_000")
#: Replicas of one step (Kubernetes ``parallelism`` and ``completions`` are 32-bit;
#: an Indexed Job holds at most 100,000 completions).
REPLICAS = Limit("a replica count", 1, 100_000, "100_000")
#: vCPUs per replica or instance (Slurm's ``--cpus-per-task`` is 16-bit).
CPUS = Limit("a vCPU count", 1, 10_000, "10_000")
#: Accelerators per replica or instance.
GPUS = Limit("an accelerator count", 1, 1_000, "1_000")
#: A quota of accelerators or vCPUs held at once.
QUOTA = Limit("a quota", 0, 10**9, "1_000_000_000")
#: ``retries`` and ``preemption_retries`` (Kubernetes ``backoffLimitPerIndex`` is 32-bit).
RETRIES = Limit("a retry count", 0, 1_000, "1_000")
#: Every duration (deadline, duration, startup, timeout, checkpoint interval): ten years.
DURATION_H = Limit("a duration", 0, 87_600.0, "87600h (3650d)")
#: Every size (host memory, model memory, memory per item, catalog memory): 1 PiB.
SIZE_GIB = Limit("a size", 0, 2.0**20, "1PiB (1048576GiB)")
#: A workflow's budget.
AMOUNT_USD = Limit("an amount", 0, 1e9, "$1_000_000_000")
#: Catalog prices, per instance-hour.
PRICE_USD_PER_H = Limit("a price per instance-hour", 0, 1e6, "1000000")
#: Items per second of one replica.
THROUGHPUT = Limit("a throughput", 1e-6, 1e12, "1_000_000_000_000", shown_low="0.000001")
#: Catalog spot preemption rates, per running hour: more than one a minute
#: leaves no time to start an instance.
PREEMPTIONS_PER_H = Limit("a preemption rate", 0, 60.0, "60")

#: Every limit, for the documentation test.
ALL: tuple[Limit, ...] = (
    ITEMS,
    BATCH_SIZE,
    REPLICAS,
    CPUS,
    GPUS,
    QUOTA,
    RETRIES,
    DURATION_H,
    SIZE_GIB,
    AMOUNT_USD,
    PRICE_USD_PER_H,
    THROUGHPUT,
    PREEMPTIONS_PER_H,
)
