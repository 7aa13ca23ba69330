#!/usr/bin/env bash
# GPU plan vs run (docs/benchmarks.md § GPU: plan vs run), on a machine with one
# H100 or H200, python3 with torch and transformers, and no network:
#
#   1. install exoc and the dependencies the machine lacks from .whl/
#      (benchmarks/gpu/fetch_wheels.sh fills it) into a scratch folder;
#   2. `exoc profile` the embed step of embed.exo on the GPU (startup, items/s
#      at batch 256 and 1024) into a calibration file;
#   3. size the run to ~60 s of embedding at the measured rate, and
#      `exoc plan --calibration` it (JSON);
#   4. `exoc run` that plan with the local backend (one replica: one process
#      on this GPU), then `exoc status --format json` (planned vs actual);
#   5. the contrast: a few micro-batches each in a process of its own (model
#      built again each time), projected to the whole run;
#   6. injected preemptions: the same step planned on spot with a catalog whose
#      spot offers are preempted at a set rate, and run a few times with the
#      local backend emulating that rate (each run its own seed; no fallback to
#      on-demand, as the cost model's expected figures assume): the mean real
#      duration, replica-hours and cost against the plan's expected ones, and
#      each restart's real startup against the one the model charges;
#   7. one summary line per step: planned and real duration, real/planned,
#      planned cost and the cost of the real replica-time at the catalog price.
#
#   bash benchmarks/gpu/device.sh            # on the GPU machine, from the repository root
#   bash benchmarks/gpu/device.sh --tiny     # a rehearsal on a CPU (see below)
#
# Everything is written under $OUT (a temporary folder when unset): device.log
# (every command's output), calibration.json, plan.json, status.json,
# status.html, contrast.json, spot.tar.gz (the injected-preemption runs: their
# catalog, plan, and each run's status.json and ledger.jsonl), summary.txt
# (also on stdout). Eight files: what a lent GPU machine sends back.
#
# --tiny rehearses the same steps on a machine without a GPU: a 2-layer,
# 64-wide encoder on the CPU (EXO_GPU_BENCH_TINY=1), a stand-in `nvidia-smi`
# on PATH that names an H100 (so that `exoc profile` measures the step as it
# would there), and a shorter run. Its figures say nothing about a GPU.
#
# Environment: OUT; PYTHON (default python3: the interpreter for exoc, the
# command's `python3` is the first on PATH); WHEELS (default .whl);
# EXO_GPU_BENCH_SITE (default /tmp/site: where the wheels are installed);
# EXO_GPU_BENCH_SECONDS (seconds of embedding the run is sized to, default 60;
# 15 with --tiny); EXO_GPU_BENCH_CONTRAST (processes of the contrast, default 3;
# 0 skips it); EXO_GPU_BENCH_BUDGET_S (the contrast is skipped when the script
# has run longer than this by then, default 200);
# EXO_GPU_BENCH_SPOT_RUNS (injected-preemption runs, default 3; 0 skips them),
# EXO_GPU_BENCH_SPOT_RATE (their preemptions per hour, default 60: one a minute
# on average, the most a catalog may declare), EXO_GPU_BENCH_SPOT_SECONDS
# (seconds of embedding each is sized to, default 40; 10 with --tiny).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

tiny=0
if [ "${1:-}" = "--tiny" ]; then
    tiny=1
fi
python=${PYTHON:-python3}
wheels=${WHEELS:-.whl}
site=${EXO_GPU_BENCH_SITE:-/tmp/site}
contrast=${EXO_GPU_BENCH_CONTRAST:-3}
budget=${EXO_GPU_BENCH_BUDGET_S:-200}
spot_runs=${EXO_GPU_BENCH_SPOT_RUNS:-3}
spot_rate=${EXO_GPU_BENCH_SPOT_RATE:-60}
if [ -z "${OUT:-}" ]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/exo-gpu-out.XXXXXX")
fi
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/exo-gpu-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$OUT/device.log
: >"$log"
flow=benchmarks/gpu/embed.exo
begin=$(date +%s.%N)

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%6ss] %s\n' "$(elapsed "$begin")" "$*" | tee -a "$log"; }
# Runs a command with its output in device.log; on failure, its tail on stdout too.
logged() {
    echo "\$ $*" >>"$log"
    if ! "$@" >>"$log" 2>&1; then
        echo "FAILED: $*" | tee -a "$log"
        tail -n 40 "$log"
        return 1
    fi
}

if [ "$tiny" = 1 ]; then
    export EXO_GPU_BENCH_TINY=1
    seconds=${EXO_GPU_BENCH_SECONDS:-15}
    spot_seconds=${EXO_GPU_BENCH_SPOT_SECONDS:-10}
    profile_items=2048
    limit=900 # a loaded CPU imports torch slowly
    mkdir -p "$work/bin"
    printf '#!/bin/sh\n# stand-in for a rehearsal on a CPU (device.sh --tiny)\necho "NVIDIA H100 80GB HBM3"\n' >"$work/bin/nvidia-smi"
    chmod +x "$work/bin/nvidia-smi"
    export PATH="$work/bin:$PATH"
    say "REHEARSAL on CPU (--tiny): stand-in nvidia-smi, 2-layer encoder; no GPU figures"
else
    seconds=${EXO_GPU_BENCH_SECONDS:-60}
    spot_seconds=${EXO_GPU_BENCH_SPOT_SECONDS:-40}
    profile_items=24576 # 24 batches of 1024, 96 of 256
    limit=150           # seconds for the profile, and for the run (which is ~80 s)
fi

# --- 1. the machine and the install ----------------------------------------------------------
say "machine: $(nproc) CPUs, $(uname -r)"
nvidia-smi -L | tee -a "$log"
"$python" - <<'EOF' | tee -a "$log"
import sys, torch, transformers, numpy, scipy
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}, "
      f"available: {torch.cuda.is_available()}), transformers {transformers.__version__}, "
      f"numpy {numpy.__version__}, scipy {scipy.__version__}")
EOF
# .whl/if-older/: wheels of packages the machine has, installed only where its copy is older.
older=()
for w in "$wheels"/if-older/*.whl; do
    [ -e "$w" ] || continue
    if "$python" - "$w" <<'EOF'; then
import importlib.metadata as md, re, sys
name, version = re.match(r"([^-]+)-([^-]+)-", sys.argv[1].rsplit("/", 1)[-1]).groups()
key = lambda v: tuple(int(x) for x in re.findall(r"\d+", v)[:3])
try:
    have = md.version(name)
except md.PackageNotFoundError:
    sys.exit(0)
print(f"{name}: {have} here, {version} carried: installing it" if key(have) < key(version) else f"{name}: {have} here")
sys.exit(0 if key(have) < key(version) else 1)
EOF
        older+=("$w")
    fi
done
logged "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$wheels"/*.whl "${older[@]}"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
exoc() { "$python" -m exo.compiler "$@"; }
say "installed $(find "$wheels" -maxdepth 1 -type f -name '*.whl' | wc -l) + ${#older[@]} wheels into $site"
logged exoc --version

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
case "$gpu" in
*H200*) quota=(-p h100=0 -p h200=1) ;;
*H100*) quota=(-p h100=1 -p h200=0) ;;
*)
    echo "no H100 or H200 here ($gpu): embed.exo plans for those" | tee -a "$log"
    exit 1
    ;;
esac
say "GPU: $gpu (plan limited to it: ${quota[*]})"

# --- 2. profile on this GPU --------------------------------------------------------------------
say "exoc profile: batch sizes 256 and 1024, $profile_items items each"
logged timeout "$limit" "$python" -m exo.compiler profile "$flow" embed --batch-sizes 256,1024 \
    --items "$profile_items" "${quota[@]}" -o "$OUT/calibration.json"
grep -E '^(throughput|startup)' "$log" | tail -n 2 | sed 's/^/  /'

# --- 3. size the run and plan it ---------------------------------------------------------------
items=$("$python" benchmarks/gpu/summarize.py size "$OUT/calibration.json" --seconds "$seconds")
say "items: $items (~${seconds}s at the best measured rate)"
run_args=("$flow" -p "items=$items" "${quota[@]}" --calibration "$OUT/calibration.json")
logged exoc plan "${run_args[@]}" --format json -o "$OUT/plan.json"

# --- 4. run it for real, then planned vs actual --------------------------------------------------
say "exoc run (local backend)"
t0=$(date +%s.%N)
run_rc=0
logged timeout "$limit" "$python" -m exo.compiler run "${run_args[@]}" --state-dir "$work/state" \
    --fresh || run_rc=$?
run_wall=$(elapsed "$t0")
say "exoc run: exit $run_rc after ${run_wall}s"
exoc status "$flow" -p "items=$items" "${quota[@]}" --state-dir "$work/state" --calibration "$OUT/calibration.json" --format json \
    >"$OUT/status.json" 2>>"$log"
exoc status "$flow" -p "items=$items" "${quota[@]}" --state-dir "$work/state" --calibration "$OUT/calibration.json" --format html \
    >"$OUT/status.html" 2>>"$log"
rm -rf "$work/state" # the embeddings: ~1.5 KB an item

# --- 5. the contrast: one process per micro-batch --------------------------------------------
contrast_args=()
if [ "$tiny" = 0 ] && awk -v e="$(elapsed "$begin")" -v b="$budget" 'BEGIN { exit !(e > b) }'; then
    say "contrast skipped: more than ${budget}s spent already (EXO_GPU_BENCH_BUDGET_S)"
    contrast=0
fi
if [ "$contrast" -gt 0 ]; then
    say "contrast: $contrast micro-batches, one process each"
    logged "$python" benchmarks/gpu/summarize.py contrast "$OUT/plan.json" \
        --processes "$contrast" --items "$items" --work "$work/contrast" -o "$OUT/contrast.json"
    contrast_args=(--contrast "$OUT/contrast.json")
fi

# --- 6. injected preemptions: the step on spot, preempted at a set rate --------------------------
# Its files go into one archive, spot.tar.gz (what comes back from a lent machine is counted
# in files): catalog-injected.csv, plan-spot.json, seed-<k>/status.json and ledger.jsonl.
spot_summary=""
if [ "$spot_runs" -gt 0 ]; then
    spot=$work/spot
    mkdir -p "$spot"
    spot_items=$("$python" benchmarks/gpu/summarize.py size "$OUT/calibration.json" --seconds "$spot_seconds")
    "$python" benchmarks/gpu/injected.py catalog benchmarks/gpu/catalog.csv --rate "$spot_rate" \
        -o "$spot/catalog-injected.csv"
    spot_args=("$flow" -p "items=$spot_items" -p tier=only "${quota[@]}"
        --catalog "$spot/catalog-injected.csv" --calibration "$OUT/calibration.json")
    logged exoc plan "${spot_args[@]}" --format json -o "$spot/plan-spot.json"
    say "injected preemptions: $spot_runs runs of $spot_items items on spot, $spot_rate preemptions/h"
    for seed in $(seq 1 "$spot_runs"); do
        state=$work/state-$seed
        mkdir -p "$spot/seed-$seed"
        logged timeout "$limit" "$python" -m exo.compiler run "${spot_args[@]}" --state-dir "$state" \
            --fresh --local-spot-rate "$spot_rate" --local-spot-seed "$seed" --local-fallback none ||
            say "injected run $seed failed (its status and ledger are kept)"
        exoc status "${spot_args[@]}" --state-dir "$state" --format json \
            >"$spot/seed-$seed/status.json" 2>>"$log"
        cat "$state"/ledger/*.jsonl >"$spot/seed-$seed/ledger.jsonl"
        rm -rf "$state"
        say "injected run $seed done"
    done
    "$python" benchmarks/gpu/injected.py report "$spot/plan-spot.json" "$spot"/seed-* \
        --rate "$spot_rate" --calibration "$OUT/calibration.json" >"$work/spot-summary.txt"
    spot_summary=$work/spot-summary.txt
    tar -czf "$OUT/spot.tar.gz" -C "$work" spot
fi

# --- 7. the summary ----------------------------------------------------------------------------
say "summary"
"$python" benchmarks/gpu/summarize.py report "$OUT/plan.json" "$OUT/status.json" \
    --calibration "$OUT/calibration.json" --run-wall-s "$run_wall" --gpu "$gpu" \
    "${contrast_args[@]}" >"$OUT/summary.txt"
if [ -n "$spot_summary" ]; then
    cat "$spot_summary" >>"$OUT/summary.txt"
fi
cat "$OUT/summary.txt"
say "done; files in $OUT: $(cd "$OUT" && echo *)"
exit "$run_rc"
