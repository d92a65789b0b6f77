#!/usr/bin/env bash
# Desktop benchmarks on the real app under Xvfb (software rendering): cold start to an
# interactive canvas, idle memory, and frame rate while dragging on a 200-node plan.
#   scripts/bench-desktop.sh               build (debug), then measure
#   E2E_SKIP_BUILD=1 scripts/bench-desktop.sh   measure the current build
#   BENCH_RUNS=10 ...                      more cold starts
#   E2E_PROFILE=release scripts/bench-desktop.sh   the release build
set -euo pipefail
cd "$(dirname "$0")/.."
E2E_SCRIPT=tests/e2e/bench.mjs exec tests/e2e/run.sh "$@"
