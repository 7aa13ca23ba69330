"""The runner's per-shard work outside its event loop, function by function (issue #16).

Times, in this interpreter (so in the build it imports), what the local runner calls
once or twice per shard attempt: the ledger's start and end lines (through the
recorder, which also looks at the shard's checkpoint folder; the file is ``/dev/null``,
so the write costs what a write costs, not what the disk's history does), the runtime
placeholders' values, the emulated spot's placement of a spot step, and a shard's
environment as the spawner gets it (``shard_env`` and each entry encoded as
``spawner._entry`` does, or, where the build has it, ``StepEnvironment.entries``).
Every figure is the best of ``--repeat`` rounds over 1,000 shards, in microseconds a
call. ``--python`` runs the same in another build's interpreter, alternated round by
round with this one (the same minutes of a shared host).

Usage::

    python benchmarks/bench_shard_cpu.py [--repeat 7] [--python NAME=PYTHON ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SHARDS = 1000


def _best(run: Callable[[], None], repeat: int, before: Callable[[], None] | None = None) -> float:
    """Microseconds a shard: the best of ``repeat`` runs of ``run`` over every shard."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times) / SHARDS * 1e6


def _ledger(work: Path, repeat: int) -> dict[str, float]:
    from exo.backends.runtime import ledger

    writer = ledger.LedgerWriter(work / "ledger.jsonl")
    os.close(writer.fd)
    writer.fd = os.open(os.devnull, os.O_WRONLY)
    rec = ledger.Recorder(writer, {"noop": ledger.Tier("c6i.xlarge", True, None)}, work / "ck")
    t = time.time()

    def started() -> None:
        for i in range(SHARDS):
            rec.started("noop", i, 1, (i, i + 1), t)

    def ended() -> None:
        for i in range(SHARDS):
            rec.ended("noop", i, 1, (i, i + 1), 0, "succeeded")

    out = {"Recorder.started": _best(started, repeat), "Recorder.ended": _best(ended, repeat)}
    rec.close()
    return out


def _values() -> list[dict[str, str]]:
    from exo.backends.runtime.placeholders import runtime_values
    from exo.backends.runtime.shards import Shard

    return [
        runtime_values(
            step="noop",
            shard=Shard(i, i, i + 1),
            shard_count=SHARDS,
            batch_size=None,
            run_id="20261127-120000-abcdef",
            attempt=1,
            input="",
            output=f"/home/user/flow/.exo/staging/noop/shard-{i}.attempt-1",
            checkpoint=f"/home/user/flow/.exo/checkpoints/r/noop/shard-{i}",
        )
        for i in range(SHARDS)
    ]


def _environment(repeat: int) -> dict[str, float]:
    from exo.backends.local import spawner
    from exo.backends.runtime import launch

    base, values, lib = dict(os.environ), _values(), "/home/user/flow/.exo/lib"

    def per_entry() -> None:
        for v in values:
            env = launch.shard_env(base, {}, v, secrets={}, helper_lib=lib)
            [spawner._entry(k, x) for k, x in env.items()]

    # The spawner's cache of entries starts empty in every run, as in a runner's process.
    out = {"shard_env + spawner._entry": _best(per_entry, repeat, spawner._ENTRIES.clear)}
    if hasattr(launch, "StepEnvironment"):
        made = launch.StepEnvironment(base, {}, secrets={}, helper_lib=lib)

        def entries() -> None:
            for v in values:
                made.entries(v)

        out["StepEnvironment.entries"] = _best(entries, repeat)
    return out


def _small(work: Path, repeat: int) -> dict[str, float]:
    from exo.backends.local.spot import SpotConfig
    from exo.backends.runtime.fallback import SpotStep
    from exo.backends.runtime.placeholders import runtime_values
    from exo.backends.runtime.shards import Shard

    shards = [Shard(i, i, i + 1) for i in range(SHARDS)]

    def values() -> None:
        for sh in shards:
            runtime_values(
                step="noop",
                shard=sh,
                shard_count=SHARDS,
                batch_size=None,
                run_id="r",
                attempt=1,
                input="",
                output="/o",
                checkpoint="/c",
            )

    # The bench_local step: on spot, 1,000 shards, a preemption keeps no work.
    step = SpotStep("noop", 24.0, 0.0, 1 / 3600, 1 / 3600, SHARDS, SHARDS)
    emulation = SpotConfig({"noop": step}, fallback=True).start(work / "spot", time.monotonic())
    now = time.monotonic()

    def place() -> None:
        for i in range(SHARDS):
            emulation.place("noop", i, now)

    return {"runtime_values": _best(values, repeat), "SpotEmulation.place": _best(place, repeat)}


def measure(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        return {**_ledger(work, repeat), **_small(work, repeat), **_environment(repeat)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds of every build")
    ap.add_argument("--python", action="append", default=[], metavar="NAME=PYTHON")
    ap.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.json_only:
        print(json.dumps(measure(args.repeat)))
        return 0
    builds = {"this build": sys.executable}
    builds.update(spec.split("=", 1) for spec in args.python)
    best: dict[str, dict[str, float]] = {name: {} for name in builds}
    for _ in range(args.rounds):
        for name, python in builds.items():
            cmd = [python, __file__, "--json-only", "--repeat", str(args.repeat)]
            got = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
            for key, us in got.items():
                best[name][key] = min(us, best[name].get(key, us))
    keys = list(dict.fromkeys(k for b in best.values() for k in b))
    print(f"load average {os.getloadavg()[0]:.1f}; us a call, best of {args.rounds} rounds")
    print("| call | " + " | ".join(builds) + " |")
    print("|---|" + "---:|" * len(builds))
    for key in keys:
        cells = [f"{best[n][key]:.2f}" if key in best[n] else "-" for n in builds]
        print(f"| {key} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
