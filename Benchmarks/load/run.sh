#!/usr/bin/env bash
# The load harness, one command: installs nginx and wrk if missing, builds the release binary (as the
# container image does), runs Benchmarks/load/run.py (about 4 minutes) and writes
# Benchmarks/load/results.json. Options are passed to run.py (e.g. --rounds 5 --seconds 6).
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
scripts/install-deps.sh
echo "== release build"
swift build -c release --static-swift-stdlib --product pay-sidecar 2>&1 | tail -1
work=.build/bench-load
mkdir -p "$work"
binary=$(swift build -c release --show-bin-path)/pay-sidecar
cp "$binary" "$work/pay-sidecar.stripped" && strip "$work/pay-sidecar.stripped"
echo "== load run (machine: $(nproc) cores, $(uname -r))"
python3 Benchmarks/load/run.py --binary "$work/pay-sidecar.stripped" --work "$work" "$@"
cp "$work/results.json" Benchmarks/load/results.json
echo "== written: Benchmarks/load/results.json"
