#!/usr/bin/env bash
# End-to-end tests of the real desktop app: the debug build under Xvfb, driven through
# tauri-driver and WebKitWebDriver. Screenshots land in target/e2e-artifacts/.
#
#   tests/e2e/run.sh            build, then run every scenario
#   E2E_SKIP_BUILD=1 tests/e2e/run.sh   reuse the current build
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

# E2E_PROFILE=release runs the release build (scripts/bench-desktop.sh measures both).
profile=${E2E_PROFILE:-debug}
if [[ -z "${E2E_SKIP_BUILD:-}" ]]; then
  echo "e2e: building the app ($profile, no bundle) and the flatlab CLI it runs as its boot server"
  if [[ $profile == release ]]; then
    # tauri reads CI as its --ci flag, which takes only true or false.
    env ${CI:+CI=true} npx tauri build --no-bundle >/dev/null
    cargo build -q --release -p flatlab-cli -p flatlab-kube-standin
  else
    env ${CI:+CI=true} npx tauri build --debug --no-bundle >/dev/null
    cargo build -q -p flatlab-cli -p flatlab-kube-standin
  fi
fi
command -v tauri-driver >/dev/null || { echo "e2e: tauri-driver is missing (scripts/setup-debian.sh installs it)" >&2; exit 1; }
command -v WebKitWebDriver >/dev/null || { echo "e2e: WebKitWebDriver is missing (apt install webkit2gtk-driver)" >&2; exit 1; }

work=$(mktemp -d)
artifacts=$root/target/e2e-artifacts
rm -rf "$artifacts"
mkdir -p "$artifacts"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

source tests/e2e/driver.sh
start_display "$work/xvfb.log"

# As root, the app runs in a network namespace of its own with one veth pair, e2e0 and e2e1
# (10.123.0.1/24), so its boot server binds real ports 67/69/8080 without touching the host's
# network. Otherwise the boot-server scenario is skipped.
netns=()
if [[ $(id -u) == 0 ]] && command -v ip >/dev/null; then
  ns=flatlab-e2e-$$
  ip netns add "$ns"
  cleanup_ns() { ip netns del "$ns" 2>/dev/null || true; }
  trap 'cleanup; cleanup_ns' EXIT
  ip -n "$ns" link set lo up
  ip -n "$ns" link add e2e0 type veth peer name e2e1
  ip -n "$ns" link set e2e1 up
  ip -n "$ns" addr add 10.123.0.1/24 dev e2e0
  ip -n "$ns" link set e2e0 up
  netns=(ip netns exec "$ns")
  export E2E_BOOT_INTERFACE=e2e0 E2E_BOOT_ADDRESS=10.123.0.1
else
  source tests/lib/required.sh
  must_run && { echo "e2e: FAILED: the boot-server scenario needs root and ip (a network namespace), and every test must run here" >&2; exit 1; }
  echo "e2e: not root: the boot-server scenario is skipped (it needs a network namespace)"
fi

export FLATLAB_DB=$work/flatlab.db FLATLAB_E2E_DIALOG_DIR=$work/dialogs
export XDG_DATA_HOME=$work/data HOME=$work/home
mkdir -p "$FLATLAB_E2E_DIALOG_DIR" "$HOME/.ssh"
start_driver "$artifacts/tauri-driver.log" "${netns[@]}"

E2E_APP=$root/target/$profile/flatlab-desktop E2E_DRIVER=$driver E2E_ARTIFACTS=$artifacts \
  E2E_WORK=$work "${netns[@]}" node "${E2E_SCRIPT:-tests/e2e/app.e2e.mjs}" "$@"
