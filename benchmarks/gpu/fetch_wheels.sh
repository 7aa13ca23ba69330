#!/usr/bin/env bash
# Fill .whl/ (git-ignored, in the repository root) with what the GPU machine
# needs to run exoc and lacks: the exoc wheel built from this checkout and the
# runtime dependencies it does not have, one version of each, for CPython 3.12
# on x86_64 Linux. The GPU machine has no network; benchmarks/gpu/device.sh
# installs these with --no-index --no-deps into a scratch folder.
#
#   bash benchmarks/gpu/fetch_wheels.sh            # then carry .whl/
#   PY_VERSION=3.11 DEST=whl311 bash benchmarks/gpu/fetch_wheels.sh   # wheels for a rehearsal
#
# NOT carried, because the GPU machine has them (two versions of one package
# on the path break the install): numpy, scipy, typer, click, rich, jinja2,
# networkx, pyyaml, torch, transformers (typing-extensions: see if-older/
# below). Not carried either: kubernetes (only `exoc compile --target
# kubernetes` imports it) and exoc's
# optional lark-cython (the pure-Python parser gives the same result).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
py_version=${PY_VERSION:-3.12}
dest=${DEST:-$repo/.whl}
python=${PYTHON:-python3}

# The pins: the versions the test suite runs with (pyproject.toml's lower
# bounds allow them). Checked with each wheel's Requires-Dist: cvxpy needs
# clarabel, osqp, scs (numpy, scipy: on the machine); osqp needs joblib (and
# jinja2, setuptools: only for its code generation, which exo does not use);
# clarabel needs cffi, which needs pycparser; pydantic needs pydantic-core,
# annotated-types and typing-inspection; lark[interegular] needs interegular.
wheels=(
    lark==1.3.1
    interegular==0.3.3
    pydantic==2.14.4
    pydantic-core==2.50.5
    annotated-types==0.8.0
    typing-inspection==0.4.5
    cvxpy==1.9.3
    clarabel==0.11.1
    osqp==1.1.3
    scs==3.2.9
    qdldl==0.1.9.post1
    sparsediffpy==0.6.1
    joblib==1.6.0
    cloudpickle==3.1.3
    cffi==2.1.1
    pycparser==2.23
    highspy==1.16.0
)

rm -rf "$dest"
mkdir -p "$dest"
"$python" -m pip wheel --quiet --no-deps "$repo" -w "$dest"
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version "$py_version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$dest" "${wheels[@]}"

# Carried, but installed on the device only where the machine's own copy is
# older than this (device.sh compares the versions): pydantic-core needs
# typing-extensions >= 4.16 (typing_extensions.Sentinel); a newer copy on
# PYTHONPATH is harmless to torch and transformers, an older one breaks exoc.
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version "$py_version" --implementation cp \
    -d "$dest/if-older" typing-extensions==4.16.0

# One wheel per distribution, or the install on the device is ambiguous.
count=$(find "$dest" -type f -name '*.whl' | wc -l)
distinct=$(find "$dest" -type f -name '*.whl' -printf '%f\n' | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort -u | wc -l)
if [ "$count" -ne "$distinct" ]; then
    echo "fetch_wheels: two wheels of one distribution in $dest" >&2
    exit 1
fi
ls -1R "$dest"
echo "$count wheels, $(du -sh "$dest" | cut -f1) in $dest"
