#!/usr/bin/env bash
# Fuzzes the boot server's parsers with cargo-fuzz / libFuzzer: DHCP (decode, answer, encode),
# TFTP (read requests against the allow-list) and HTTP (the node-facing listener's own request
# head parser, its Range and mirror-path handling). Each target runs until it reached RUNS
# executions or SECONDS passed, whichever is first, from seeds that include DHCP packets real
# firmware sent (crates/bootd/tests/fixtures/dhcp) and request heads iPXE and curl sent
# (crates/bootd/tests/fixtures/http). Prints the figures; exits 1 on a crash (the reproducer is kept and printed).
#
# Usage: scripts/fuzz-bootd.sh [SECONDS_PER_TARGET [RUNS_PER_TARGET [TARGET...]]]
#   scripts/fuzz-bootd.sh 30               # what CI runs: 30 s each
#   scripts/fuzz-bootd.sh 1800 10000000    # the long run: ten million executions each
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
runs=${2:-0}
shift $(($# > 2 ? 2 : $#))
targets=("$@")
((${#targets[@]})) || targets=(dhcp tftp http)
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FLATLAB_FUZZ_SEEDS="$work/seeds" cargo test -q -p flatlab-bootd --lib -- --ignored write_fuzz_seeds >/dev/null
cd crates/bootd/fuzz
# cargo-fuzz asks the compiler for instrumentation flags of nightly Rust; the stable compiler
# allows them with RUSTC_BOOTSTRAP. No sanitizer: the code under test has no unsafe.
export RUSTC_BOOTSTRAP=1
cargo fuzz build --sanitizer none 2>"$work/build.log" || { tail -n 40 "$work/build.log"; exit 1; }
for target in "${targets[@]}"; do
  mkdir -p "$work/corpus-$target"
  cp "$work/seeds/$target"/* "$work/corpus-$target/"
  max_len=1500
  [[ $target == http ]] && max_len=16384
  goal=""
  ((runs > 0)) && goal=" or $runs executions"
  echo "fuzz: $target for at most ${secs}s$goal"
  args=(-max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$root/target/fuzz-$target-")
  ((runs > 0)) && args+=(-runs="$runs")
  started=$(date +%s)
  if ! cargo fuzz run --sanitizer none "$target" "$work/corpus-$target" -- "${args[@]}" 2>"$work/$target.log"; then
    tail -n 40 "$work/$target.log"
    echo "fuzz: $target FAILED (reproducer: $(ls "$root"/target/fuzz-"$target"-* 2>/dev/null | head -n 1))"
    exit 1
  fi
  executed=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/$target.log" | tail -n 1)
  echo "  $target: ${executed} executions in $(($(date +%s) - started)) s (${rate}/s), peak RSS ${rss} MB, ${cov}, corpus $(ls "$work/corpus-$target" | wc -l) inputs, 0 crashes"
done
echo "fuzz: no crashes"
