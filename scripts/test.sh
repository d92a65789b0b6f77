#!/usr/bin/env bash
# Sets up a Debian 12 machine and runs every check and test Flatlab has: formatting, lints, type
# checks, Rust unit and integration tests, UI tests, the generated-types and sqlx-data checks, and
# the Debian package (built, inspected and installed into a throwaway root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh

# Each step says how long the one before it took, and the total so far: where CI's minutes go.
step_started=$SECONDS
step() {
  if ((SECONDS > 0)); then printf '=== (%ds; %dm%02ds in all)\n' $((SECONDS - step_started)) $((SECONDS / 60)) $((SECONDS % 60)); fi
  step_started=$SECONDS
  printf '\n=== %s\n' "$*"
}

# As root or in CI every test must run: one that cannot (a program missing) fails instead of
# skipping (tests/lib/required.sh, crates/export/tests/support/required.rs).
if [[ $(id -u) -eq 0 || -n ${CI:-} ]]; then
  export FLATLAB_TESTS_REQUIRE_ALL=${FLATLAB_TESTS_REQUIRE_ALL:-1}
fi

step "UI build (the desktop shell embeds ui/dist)"
npm run -s build

# The cheap checks first: a formatting slip or a UI type error fails in a minute, not after the
# Rust builds.
step "UI: tsc, eslint, vitest"
npm run -s typecheck
npm run -s lint
npm test -s

step "cargo fmt --check"
cargo fmt --all --check

# Before clippy: the dependencies it checks are the ones clippy needs anyway.
step "committed sqlx offline data is current"
./scripts/sqlx-prepare.sh --check

step "cargo clippy"
cargo clippy --workspace --all-targets --features flatlab-desktop/custom-protocol --locked -- -D warnings

step "cargo test"
cargo test --workspace --features flatlab-desktop/custom-protocol --locked

step "generated TypeScript types are committed and current"
if ! git diff --exit-code --stat -- ui/src/lib/ipc/bindings || [[ -n "$(git status --porcelain -- ui/src/lib/ipc/bindings)" ]]; then
  echo "ui/src/lib/ipc/bindings changed when regenerated: run cargo test and commit the result" >&2
  exit 1
fi

# The CLI and the K3s stand-in as the network tests run them (a plain build: cargo test's feature
# set differs), before any of them starts.
cargo build -q -p flatlab-cli -p flatlab-kube-standin

step "Debian package: built with no network, inspected, installed into a throwaway root"
tests/package/run.sh

step "network boot: QEMU through flatlab serve, --dhcp proxy beside a dnsmasq router, --dhcp full, a UEFI machine over TFTP, and the same under a flood of DHCP, TFTP and TCP"
tests/netboot/run.sh

# The Secure Boot test mostly waits (a minute for the diagnosis) with one QEMU machine: it runs
# beside the fuzzing, which compiles and then keeps one core busy; its output follows it.
mkdir -p target
tests/netboot/secureboot.sh >target/ci-secureboot.log 2>&1 &
secureboot=$!

step "fuzzing the boot server's parsers: DHCP, TFTP and HTTP request heads, 30 s each (the long run: scripts/fuzz-bootd.sh 1800 10000000)"
./scripts/fuzz-bootd.sh 30

step "Secure Boot: OVMF with Microsoft's keys refuses Debian's iPXE, and the boot server says why (ran beside the fuzzing)"
secureboot_status=0
wait "$secureboot" || secureboot_status=$?
cat target/ci-secureboot.log
((secureboot_status == 0)) || { echo "secureboot: exit $secureboot_status" >&2; exit 1; }

step "Debian-built nodes: real Ignition and systemd from PXE to k3s-ready, one machine (inspected first) and three at once"
tests/netboot/nodes.sh

step "Wake-on-LAN: flatlab power-on's magic packets captured on a LAN in network namespaces"
tests/netboot/power-on.sh

step "discovery: mDNS both ways with a real avahi-daemon in network namespaces"
tests/discovery/run.sh

step "desktop app end to end: the real app under Xvfb through tauri-driver (screenshots in target/e2e-artifacts)"
# The app the package step built (the debug build; its config differs only in what bundling
# adds), and the CLI built above: not built a third time.
E2E_SKIP_BUILD=1 tests/e2e/run.sh

step "all checks passed"
