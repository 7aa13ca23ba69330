#!/usr/bin/env bash
# Debian packages the full test suite uses, installed when missing (as root):
#   slurm-wlm + munge   a real single-node Slurm cluster for the Slurm backend tests
#   shellcheck          lints every generated sbatch/submit script
#   chromium            renders the HTML plan report in the browser test
#   valgrind            counts instructions in the benchmark tests (bench_check --count)
# Not root, or no apt: print what is missing and go on; the tests that need a
# package then skip with a reason (CI sets EXO_REQUIRE_* to make that a failure).
set -euo pipefail

want=(slurm-wlm slurmctld slurmd munge shellcheck chromium valgrind)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: not installing (need root and apt-get): ${missing[*]}" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
