#!/usr/bin/env bash
# Fuzzes the boot server's packet parsers (DHCP and TFTP) with cargo-fuzz / libFuzzer for a
# bounded time each, and prints the figures. Usage: scripts/fuzz-bootd.sh [SECONDS_PER_TARGET]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FLATLAB_FUZZ_SEEDS="$work/seeds" cargo test -q -p flatlab-bootd --lib -- --ignored write_fuzz_seeds >/dev/null
cd crates/bootd/fuzz
# cargo-fuzz asks the compiler for instrumentation flags of nightly Rust; the stable compiler
# allows them with RUSTC_BOOTSTRAP. No sanitizer: the code under test has no unsafe.
export RUSTC_BOOTSTRAP=1
for target in dhcp tftp; do
  mkdir -p "$work/corpus-$target"
  cp "$work/seeds/$target"/* "$work/corpus-$target/"
  echo "fuzz: $target for ${secs}s"
  cargo fuzz run --sanitizer none "$target" "$work/corpus-$target" -- \
    -max_total_time="$secs" -max_len=1500 -print_final_stats=1 2>"$work/$target.log" || {
    tail -n 40 "$work/$target.log"
    echo "fuzz: $target FAILED"
    exit 1
  }
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$work/$target.log" | sed "s/^/  $target /"
  grep -E "cov: [0-9]+" "$work/$target.log" | tail -n 1 | sed "s/^/  $target last: /"
done
echo "fuzz: no crashes"
