"""The typed intermediate representation: frozen pydantic models plus the DAG.

The IR is what every later stage consumes (optimizer, reports, backends). It is
fully resolved: names are qualified, params substituted, units converted to
hours / GiB / USD, defaults applied and item counts propagated along ``input``.
Runtime placeholders (``{batch_index}``, ``{output}``, ...) stay in strings.
"""

# No ``from __future__ import annotations``: pydantic would evaluate each field's
# annotation from its text (a compile per field) when the models are built, at every
# start of ``exoc`` (docs/benchmarks.md, issue #16, seventh round).
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field, field_validator, model_validator

from exo.compiler.frozen import Frozen, find_by
from exo.compiler.names import require_env_names
from exo.compiler.toposort import order_by_needs

if TYPE_CHECKING:  # the graph library loads when a DAG is built, not with the IR
    import networkx as nx

#: Placeholders a backend fills in at run time; any other ``{name}`` must be a param.
RUNTIME_PLACEHOLDERS: tuple[str, ...] = (
    "batch_index",
    "batch_start",
    "batch_end",
    "batch_size",
    "shard_index",
    "shard_start",
    "shard_end",
    "shard_count",
    "checkpoint",
    "input",
    "output",
    "run_id",
    "attempt",
    "step",
)

#: Key of a throughput / duration entry that applies to CPU instance types.
CPU_KEY = "cpu"
#: What a workflow minimises: the expected cost, or the makespan (DESIGN §2).
Objective = Literal["cost", "time"]

ParamValue = bool | int | float | str


class Loc(Frozen):
    """Where a declaration came from (file relative to the entry file's folder)."""

    file: str
    line: int
    column: int


class Quota(Frozen):
    """Concurrent limits: accelerators of a type, and vCPUs, over all running replicas."""

    accelerators: dict[str, int] = Field(default_factory=dict)
    cpu: int | None = None


class Workflow(Frozen):
    name: str
    deadline_h: float | None = None
    budget_usd: float | None = None
    objective: Objective = "cost"
    #: Built-in catalog name (``aws/us-east-1``) or a path relative to the entry file's folder.
    catalog: str = "aws/us-east-1"
    confidence: float = 0.95
    quota: Quota = Field(default_factory=Quota)
    loc: Loc | None = None


class Dataset(Frozen):
    name: str
    uri: str | None = None
    items: int | None = None
    loc: Loc | None = None


class Throughput(Frozen):
    """Items per second per replica.

    ``per_batch[key][batch]`` for batch-dependent entries and ``flat[key]`` for
    batch-independent ones (``throughput { cpu = 400 }``); ``key`` is an
    accelerator type, an instance type, or ``cpu``.
    """

    per_batch: dict[str, dict[int, float]] = Field(default_factory=dict)
    flat: dict[str, float] = Field(default_factory=dict)

    def keys(self) -> set[str]:
        return set(self.per_batch) | set(self.flat)

    def rate(self, key: str, batch: int | None) -> float | None:
        if key in self.per_batch:
            return self.per_batch[key].get(batch) if batch is not None else None
        return self.flat.get(key)

    def is_batched(self, key: str) -> bool:
        return key in self.per_batch


class Duration(Frozen):
    """Fixed work: ``default_h`` for any type, or per accelerator / instance type."""

    default_h: float | None = None
    per_key: dict[str, float] = Field(default_factory=dict)

    def hours(self, key: str) -> float | None:
        return self.per_key.get(key, self.default_h)


class Checkpoint(Frozen):
    kind: Literal["none", "batch", "interval"] = "none"
    interval_h: float | None = None


class ReplicaRange(Frozen):
    min: int = 1
    max: int = 1

    def values(self) -> range:
        return range(self.min, self.max + 1)


class InputRef(Frozen):
    kind: Literal["dataset", "step"]
    name: str


#: The defaults of every step that does not write ``replicas`` or ``checkpoint``: one
#: frozen value each, shared (a factory would build and validate one per step).
_ONE_REPLICA = ReplicaRange()
_NO_CHECKPOINT = Checkpoint()


class Step(Frozen):
    name: str
    # data flow
    input: InputRef | None = None
    after: tuple[str, ...] = ()
    items: int | None = None
    output: str | None = None
    # execution
    image: str | None = None
    command: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    # hardware: empty ``accelerators`` means CPU-only
    accelerators: tuple[str, ...] = ()
    gpus: int = 0
    cpu: int | None = None
    memory_gib: float | None = None
    # performance model: exactly one of throughput / duration
    throughput: Throughput | None = None
    duration: Duration | None = None
    startup_h: float = 0.0
    # choices
    batch_sizes: tuple[int, ...] = ()
    replicas: ReplicaRange = _ONE_REPLICA
    # GPU memory fit
    model_memory_gib: float | None = None
    memory_per_item_gib: float | None = None
    # preemption and failure
    spot: Literal["allowed", "never", "only"] = "allowed"
    checkpoint: Checkpoint = _NO_CHECKPOINT
    retries: int = 0
    preemption_retries: int = 10
    timeout_h: float | None = None
    # documentation: what the step does, in a line (reports); absent from the IR's
    # JSON when not written, so that the IR of a program without one is unchanged
    description: str | None = Field(default=None, exclude_if=lambda v: v is None)
    loc: Loc | None = None

    @field_validator("env", "secrets")
    @classmethod
    def _env_names(cls, value: dict[str, str] | tuple[str, ...]) -> object:
        # The front end reports bad names with their place (E207); this keeps any
        # other way of building a step from handing a backend a name no target can
        # hold (``A=B``, ``EXO_OUTPUT``, a shell metacharacter), so that no backend
        # needs a check of its own.
        require_env_names(value)
        return value

    @model_validator(mode="after")
    def _secret_or_env(self) -> Self:
        if self.secrets and self.env:  # most steps have neither, or only one of them
            both = sorted(set(self.secrets) & set(self.env))
            if both:
                raise ValueError(f"{both[0]!r} is both a secret and an env entry")
        return self

    def predecessors(self) -> tuple[str, ...]:
        """Steps that must finish before this one starts (input first, then after)."""
        out: list[str] = []
        if self.input is not None and self.input.kind == "step":
            out.append(self.input.name)
        out.extend(a for a in self.after if a not in out)
        return tuple(out)


class Program(Frozen):
    """A compiled workflow: the IR every later stage consumes."""

    workflow: Workflow
    datasets: dict[str, Dataset] = Field(default_factory=dict)
    #: In a topological order, ties broken by declaration order.
    steps: tuple[Step, ...] = ()
    params: dict[str, ParamValue] = Field(default_factory=dict)
    #: Backend options from ``backend NAME { ... }`` blocks, as plain JSON values.
    backend_options: dict[str, dict[str, object]] = Field(default_factory=dict)
    #: Entry file name, relative to its own folder.
    source: str = ""

    def step(self, name: str) -> Step:
        found = find_by(self.steps, "name", name)
        if found is None:
            raise KeyError(name)
        return found

    def step_names(self) -> Iterator[str]:
        return (s.name for s in self.steps)


def step_dag(program: Program) -> "nx.DiGraph[str]":
    """The step DAG: nodes are step names, edges run producer -> consumer.

    Edge attribute ``kind`` is ``input`` or ``after``.
    """
    import networkx as nx

    g: nx.DiGraph[str] = nx.DiGraph()
    for s in program.steps:
        g.add_node(s.name)
    for s in program.steps:
        if s.input is not None and s.input.kind == "step":
            g.add_edge(s.input.name, s.name, kind="input")
        for a in s.after:
            if not g.has_edge(a, s.name):
                g.add_edge(a, s.name, kind="after")
    return g


def step_order(program: Program) -> list[str]:
    """Step names in a topological order of the step DAG, ties by declaration order.

    networkx's ``lexicographical_topological_sort`` by position, without networkx
    (``toposort.order_by_needs``): the runners, Slurm's submissions, the optimizer
    and the report all walk the steps in this one order."""
    return order_by_needs([(s.name, s.predecessors()) for s in program.steps])


def full_dag(program: Program) -> "nx.DiGraph[str]":
    """Steps and datasets; node attribute ``kind`` is ``step`` or ``dataset``."""
    g = step_dag(program)
    for name in g.nodes:
        g.nodes[name]["kind"] = "step"
    for d in program.datasets.values():
        g.add_node(d.name, kind="dataset")
    for s in program.steps:
        if s.input is not None and s.input.kind == "dataset":
            g.add_edge(s.input.name, s.name, kind="input")
    return g
