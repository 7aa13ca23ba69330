"""Generate large valid exo workflows, and the equivalent Snakemake workflow.

The workflow is a deterministic function of (number of steps, seed). Steps come
in groups of ten that model a realistic batch-AI pipeline on the built-in
``aws/us-east-1`` catalog:

====  ============  ==========================  =====================================
slot  name          hardware / perf model       dependencies
====  ============  ==========================  =====================================
0     generate      GPU, throughput map         input = dataset
1     dedup         CPU, throughput             input = generate
2     embed         GPU, throughput + memory    input = dedup
3     cluster       CPU, throughput             input = embed
4     finetune      GPU, duration per type      input = cluster
5     score         CPU, fixed duration         input = finetune, after = [dedup, embed]
6     label         GPU, throughput map         input = dataset
7     merge         CPU, throughput             input = label, after = [score]
8     evaluate      GPU, fixed duration         input = merge, after = [an earlier group]
9     report        CPU, fixed duration         input = evaluate, after = fan-in of 4 steps
====  ============  ==========================  =====================================

so the graph has chains, fan-in (``input`` and ``after``), edges that cross
groups, datasets shared by several groups, and every kind of attribute the
language has (command lists with runtime and param placeholders, env blocks,
secrets, replicas ranges, batch sizes, spot and checkpoint policies, retries).

The workflow has a 30-day deadline and quotas (A100, H100, vCPUs) sized for
1,000 steps and multiplied for larger workflows, so that every size can be
planned, not only checked.

The Snakefile has one job per step with exactly the same dependency edges
(datasets are input files that exist on disk), written either idiomatically
(one rule per slot with a ``{g}`` wildcard, dependencies looked up in a table)
or with one explicit rule per step.

Usage::

    python benchmarks/gen_workflows.py --steps 10000 --out DIR [--snakefile wildcards|rules]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

GROUP = 10
SLOTS = (
    "generate",
    "dedup",
    "embed",
    "cluster",
    "finetune",
    "score",
    "label",
    "merge",
    "evaluate",
    "report",
)
#: Steps per dataset: every dataset feeds the groups of a block of this many steps.
STEPS_PER_DATASET = 50

#: Candidate accelerator sets (all offered by the built-in aws/us-east-1 catalog).
_GPU_SETS = (
    ("L4", "A10G"),
    ("A10G", "A100"),
    ("L4", "A10G", "A100"),
    ("A100", "A100-80GB", "H100"),
    ("A100-80GB", "H100"),
    ("T4", "L4"),
)
#: Offered only on instances with one accelerator each (g4dn.xlarge, g6.xlarge).
_SINGLE_GPU = frozenset({"T4", "L4"})
_BATCHES = ((8, 16, 32, 64), (16, 32, 64), (32, 64, 128), (64, 128, 256))
_IMAGES = (
    "ghcr.io/acme/vllm-batch:0.6.3",
    "ghcr.io/acme/embedder:1.4",
    "ghcr.io/acme/trainer:3.2",
    "ghcr.io/acme/evals:0.9",
)


@dataclass(frozen=True)
class StepSpec:
    name: str
    slot: str
    group: int
    input: str  # a dataset or a step name
    input_is_dataset: bool
    after: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()  # exo attribute lines, in order
    blocks: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    gpus: int = 0
    cpu: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    uri: str
    items: int


@dataclass(frozen=True)
class WorkflowSpec:
    steps: tuple[StepSpec, ...]
    datasets: tuple[DatasetSpec, ...]
    params: tuple[tuple[str, str], ...] = field(default=())

    def edges(self) -> Iterator[tuple[str, str]]:
        """(predecessor step, step) for every ``input`` and ``after`` edge between steps."""
        for s in self.steps:
            if not s.input_is_dataset:
                yield s.input, s.name
            for a in s.after:
                yield a, s.name


def step_name(group: int, slot: int) -> str:
    return f"g{group:05d}-{SLOTS[slot]}"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _qlist(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_q(s) for s in items) + "]"


def _gpu_throughput(
    rng: random.Random, accels: tuple[str, ...], batches: tuple[int, ...]
) -> tuple[tuple[str, str], ...]:
    rows: list[tuple[str, str]] = []
    for i, a in enumerate(accels):
        base = rng.uniform(0.3, 2.0) * (1.0 + i)
        pts = ", ".join(f"{b}: {base * (b / batches[0]) ** 0.7:.3f}" for b in batches)
        rows.append((a, "{ " + pts + " }"))
    return tuple(rows)


def generate(n_steps: int, seed: int = 7) -> WorkflowSpec:
    """A workflow of exactly ``n_steps`` steps (the last group may be partial)."""
    if n_steps < 1:
        raise ValueError("n_steps must be >= 1")
    rng = random.Random(seed)
    n_groups = (n_steps + GROUP - 1) // GROUP
    n_datasets = max(1, (n_steps + STEPS_PER_DATASET - 1) // STEPS_PER_DATASET)
    datasets = tuple(
        DatasetSpec(
            f"corpus-{d:04d}",
            f"s3://acme-ml/corpora/part-{d:04d}.parquet",
            rng.randrange(10_000, 2_000_000, 1_000),
        )
        for d in range(n_datasets)
    )
    groups_per_ds = STEPS_PER_DATASET // GROUP
    steps: list[StepSpec] = []
    for g in range(n_groups):
        ds = datasets[min(g // groups_per_ds, n_datasets - 1)].name
        ds2 = datasets[(g * 7 + 3) % n_datasets].name
        for k in range(GROUP):
            if len(steps) == n_steps:
                break
            steps.append(_step(rng, g, k, ds, ds2))
    return WorkflowSpec(
        tuple(steps),
        datasets,
        (("model", '"llama-3.1-8b-instruct"'), ("teacher", '"llama-3.1-70b-instruct"')),
    )


def _common(rng: random.Random, name: str, slot: str, image: str) -> list[tuple[str, str]]:
    return [
        ("image", _q(image)),
        (
            "command",
            _qlist(
                [
                    "python",
                    "-m",
                    f"acme.{slot}",
                    "--model",
                    "{model}",
                    "--in",
                    "{input}",
                    "--out",
                    "{output}",
                    "--shard",
                    "{batch_index}",
                    "--run",
                    "{run_id}",
                ]
            ),
        ),
        ("output", _q(f"s3://acme-ml/runs/{{run_id}}/{name}/")),
    ]


def _step(rng: random.Random, g: int, k: int, ds: str, ds2: str) -> StepSpec:
    name = step_name(g, k)
    slot = SLOTS[k]
    prev = step_name(g, k - 1) if k > 0 else ""
    image = _IMAGES[k % len(_IMAGES)]
    attrs = _common(rng, name, slot, image)
    blocks: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    after: tuple[str, ...] = ()
    inp, inp_ds = prev, False
    gpus = cpu = 0
    if k in (0, 6):  # GPU, throughput map, from a dataset
        inp, inp_ds = (ds if k == 0 else ds2), True
        accels = rng.choice(_GPU_SETS)
        batches = rng.choice(_BATCHES)
        gpus = rng.choice((1, 1, 2, 4, 8))
        if all(a in _SINGLE_GPU for a in accels):  # no instance of theirs has more
            gpus = 1
        attrs += [
            ("accelerators", "[" + ", ".join(accels) + "]"),
            ("gpus", str(gpus)),
            ("batch_sizes", "[" + ", ".join(map(str, batches)) + "]"),
            ("replicas", f"1..{rng.choice((2, 4, 8, 16))}"),
            ("startup", f"{rng.randrange(2, 20)}m"),
            ("spot", "allowed"),
            ("checkpoint", "batch"),
            ("retries", "2"),
            ("secrets", _qlist(["HF_TOKEN", "WANDB_API_KEY"])),
        ]
        blocks.append(("throughput", _gpu_throughput(rng, accels, batches)))
        blocks.append(("env", (("HF_HOME", '"/cache/hf"'), ("VLLM_LOG", '"warn"'))))
    elif k == 2:  # GPU with a memory model
        accels = ("A10G", "A100", "A100-80GB")
        batches = (16, 32, 64)
        gpus = 1
        attrs += [
            ("accelerators", "[" + ", ".join(accels) + "]"),
            ("batch_sizes", "[16, 32, 64]"),
            ("replicas", "1..4"),
            ("model_memory", "8GiB"),
            ("memory_per_item", "96MiB"),
            ("startup", "5m"),
            ("checkpoint", "batch"),
            ("preemption_retries", "5"),
        ]
        blocks.append(("throughput", _gpu_throughput(rng, accels, batches)))
    elif k in (1, 3, 7):  # CPU throughput
        cpu = rng.choice((2, 4, 8))  # the catalog's largest CPU instance has 8 vCPUs
        attrs += [
            ("cpu", str(cpu)),
            ("memory", f"{cpu * 4}GiB"),
            ("replicas", f"1..{rng.choice((2, 4, 8))}"),
            ("spot", rng.choice(("allowed", "never"))),
            ("timeout", "2h"),
        ]
        blocks.append(("throughput", (("cpu", f"{rng.uniform(50, 2000):.1f}"),)))
        if k == 7:
            after = (step_name(g, 5),)
    elif k == 4:  # GPU, duration per type
        gpus = 8
        attrs += [
            ("accelerators", '[A100-80GB, H100, "g5.48xlarge"]'),
            ("gpus", "8"),
            ("startup", "10m"),
            ("spot", "allowed"),
            ("checkpoint", "30m"),
            ("retries", "1"),
            ("secrets", _qlist(["HF_TOKEN"])),
        ]
        h = rng.randrange(2, 8)
        blocks.append(
            (
                "duration",
                (
                    ("A100-80GB", f"{h}h"),
                    ("H100", f"{h // 2 + 1}h30m"),
                    ('"g5.48xlarge"', f"{h * 3}h"),
                ),
            )
        )
    elif k == 5:  # CPU, fixed duration, fan-in
        cpu = 4
        after = (step_name(g, 1), step_name(g, 2))
        attrs += [("cpu", "4"), ("memory", "8GiB"), ("duration", f"{rng.randrange(5, 50)}m")]
    elif k == 8:  # GPU, fixed duration, an edge to an earlier group
        gpus = 1
        attrs += [
            ("accelerators", "[L4, A10G]"),
            ("duration", f"{rng.randrange(10, 60)}m"),
            ("spot", "never"),
        ]
        if g > 0:  # the report of an earlier group: edges only go forward, no cycle
            after = (step_name(rng.randrange(0, g), 9),)
    else:  # k == 9: CPU report, fan-in of four
        cpu = 2
        after = (step_name(g, 0), step_name(g, 3), step_name(g, 6), step_name(g, 7))
        attrs += [("cpu", "2"), ("memory", "4GiB"), ("duration", "5m"), ("retries", "3")]
        blocks.append(("env", (("REPORT_BUCKET", '"s3://acme-ml/reports"'),)))
    return StepSpec(
        name=name,
        slot=slot,
        group=g,
        input=inp,
        input_is_dataset=inp_ds,
        after=after,
        attrs=tuple(attrs),
        blocks=tuple(blocks),
        gpus=gpus,
        cpu=cpu,
    )


# --- exo ------------------------------------------------------------------------------


#: Steps one unit of quota serves: up to this many steps the quotas below hold as
#: written; a larger workflow gets them multiplied (an account sized for the work).
#: Held fixed, the 4,096 vCPUs cannot run 10,000 steps in 30 days: their leanest
#: options alone need 4.7 million vCPU-hours against 2.9 million (``infeasible``).
QUOTA_STEPS = 1_000


def quota_scale(n_steps: int) -> int:
    return max(1, -(-n_steps // QUOTA_STEPS))


def to_exo(spec: WorkflowSpec) -> str:
    scale = quota_scale(len(spec.steps))
    out: list[str] = [f"# Generated by benchmarks/gen_workflows.py: {len(spec.steps)} steps.", ""]
    out += [f"param {n} = {v}" for n, v in spec.params]
    out += [
        "",
        "workflow bench {",
        "  deadline   = 30d",
        "  budget     = $5000000",
        "  objective  = cost",
        '  catalog    = "aws/us-east-1"',
        "  confidence = 0.9",
        "  quota {",
        f"    A100 = {64 * scale}",
        f"    H100 = {64 * scale}",
        f"    cpu  = {4096 * scale}",
        "  }",
        "}",
        "",
    ]
    for d in spec.datasets:
        out += [f"dataset {d.name} {{", f"  uri   = {_q(d.uri)}", f"  items = {d.items}", "}", ""]
    for s in spec.steps:
        out.append(f"step {s.name} {{")
        out.append(f"  input = {s.input}")
        if s.after:
            out.append(f"  after = [{', '.join(s.after)}]")
        out += [f"  {k} = {v}" for k, v in s.attrs]
        for bname, rows in s.blocks:
            out.append(f"  {bname} {{")
            out += [f"    {k} = {v}" for k, v in rows]
            out.append("  }")
        out.append("}")
        out.append("")
    return "\n".join(out)


# --- Snakemake ------------------------------------------------------------------------


def dataset_file(name: str) -> str:
    return f"data/{name}.parquet"


def _job_output(name: str) -> str:
    return f"out/{name}.done"


def _deps(spec: WorkflowSpec, s: StepSpec) -> list[str]:
    first = dataset_file(s.input) if s.input_is_dataset else _job_output(s.input)
    return [first, *(_job_output(a) for a in s.after)]


def _shell(slot: str) -> str:
    return (
        f"python -m acme.{slot} --model {{params.model}} --in {{input[0]}} "
        "--out {output} --shard 0 --run bench"
    )


def to_snakefile(spec: WorkflowSpec, style: str = "wildcards") -> str:
    """One job per step with the same dependencies: ``wildcards`` (one rule per slot,
    dependencies in a table; the idiomatic form) or ``rules`` (one rule per step)."""
    head = [
        f"# Generated by benchmarks/gen_workflows.py: {len(spec.steps)} jobs.",
        'MODEL = "llama-3.1-8b-instruct"',
        "",
    ]
    if style == "wildcards":
        head.append("DEPS = {")
        head += [f"    {s.name!r}: {_deps(spec, s)!r}," for s in spec.steps]
        head += ["}", ""]
        head += [
            "rule all:",
            "    input: [f'out/{n}.done' for n in DEPS]",
            "",
        ]
        for slot in SLOTS:
            ex = next((s for s in spec.steps if s.slot == slot), None)
            if ex is None:
                continue
            head += [
                f"rule {slot}:",
                "    input: lambda wc: DEPS[f'g{wc.g}-" + slot + "']",
                f"    output: 'out/g{{g}}-{slot}.done'",
                "    wildcard_constraints: g='[0-9]+'",
                f"    threads: {max(ex.cpu, 1)}",
                f"    resources: gpu={ex.gpus}, mem_mb={max(ex.cpu, 1) * 4096}",
                "    params: model=MODEL",
                f"    shell: {_shell(slot)!r}",
                "",
            ]
        return "\n".join(head)
    if style != "rules":
        raise ValueError(f"unknown Snakefile style {style!r}")
    head += [
        "rule all:",
        "    input:",
        *(f"        {_job_output(s.name)!r}," for s in spec.steps),
        "",
    ]
    for s in spec.steps:
        rule = s.name.replace("-", "_")
        head += [
            f"rule {rule}:",
            f"    input: {_deps(spec, s)!r}",
            f"    output: {_job_output(s.name)!r}",
            f"    threads: {max(s.cpu, 1)}",
            f"    resources: gpu={s.gpus}, mem_mb={max(s.cpu, 1) * 4096}",
            "    params: model=MODEL",
            f"    shell: {_shell(s.slot)!r}",
            "",
        ]
    return "\n".join(head)


def write(spec: WorkflowSpec, out: Path, snakefile_style: str = "wildcards") -> None:
    """Write ``flow.exo``, ``Snakefile`` and the dataset files Snakemake reads."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "flow.exo").write_text(to_exo(spec), encoding="utf-8")
    (out / "Snakefile").write_text(to_snakefile(spec, snakefile_style), encoding="utf-8")
    for d in spec.datasets:
        p = out / dataset_file(d.name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--snakefile", choices=("wildcards", "rules"), default="wildcards")
    a = ap.parse_args(argv)
    spec = generate(a.steps, a.seed)
    write(spec, a.out, a.snakefile)
    edges = sum(1 for _ in spec.edges())
    print(f"{a.out}: {len(spec.steps)} steps, {len(spec.datasets)} datasets, {edges} edges")


if __name__ == "__main__":
    main()
