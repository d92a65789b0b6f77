#!/usr/bin/env bash
# Installs what Flatlab needs on Debian 12 to build, run and test: Debian packages and the npm
# packages of the UI. Idempotent and quick when everything is already there.
# Rust (cargo) and Node.js 20+ are expected to be installed already (rustup, NodeSource or similar).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config git curl file
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev  # Tauri
  sqlite3              # store tests and scripts/sqlx-prepare.sh
  ignition             # ignition-validate, run on every generated Ignition config in tests
  xvfb xauth webkit2gtk-driver imagemagick  # the desktop app's end-to-end tests (and their screenshots)
  ipxe                 # the iPXE binaries the boot server hands out
  qemu-system-x86 ipxe-qemu dnsmasq-base busybox-static cpio iproute2 python3  # network-boot test
  ovmf tcpdump         # UEFI machines in the network-boot tests; recording firmware's DHCP packets
  nftables             # the firewall check of the boot server (tests/netboot/secureboot.sh)
  mmdebstrap grub-efi-amd64-bin grub-pc-bin mtools gdisk bzip2 kmod  # the Debian-built test nodes (tests/netboot/debian)
  avahi-daemon avahi-utils dbus  # mDNS interoperability test (run in a network namespace only)
  gnupg                # the mirror tests sign files with a throwaway key
  fusefat dosfstools fuse3  # the USB export test writes to a real FAT filesystem (this kernel has no vfat)
  udisks2 e2fsprogs    # the USB export tests run a real udisksd (and udev) on a private bus with loop devices
  desktop-file-utils libcap2-bin lintian  # the package test: desktop-file-validate, setcap/getcap in a throwaway root, lintian
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # Install without starting services (avahi-daemon, nginx, ...): tests start their own copies
  # inside network namespaces, never on this machine's real network.
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo_cmd[@]}" chmod 755 /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
    "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
    exit 1
  }
  "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
fi

# Debian's own kubectl (package kubernetes-client) for the cluster tests. Another kubectl (the
# Google Cloud SDK's, say) may own /usr/bin/kubectl, so the package is unpacked into a cache.
kubectl_dir="${XDG_CACHE_HOME:-$HOME/.cache}/flatlab-tests/kubernetes-client"
if [[ ! -x $kubectl_dir/usr/bin/kubectl ]]; then
  echo "setup: unpacking Debian's kubectl into $kubectl_dir"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download kubernetes-client 2>/dev/null) || {
    [[ $(id -u) -eq 0 ]] && apt-get update -qq || sudo apt-get update -qq
    (cd "$tmp" && apt-get download kubernetes-client)
  }
  mkdir -p "$kubectl_dir"
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$kubectl_dir"
  rm -rf "$tmp"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if ((node_major < 20)); then
  echo "setup: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt 2>/dev/null || true
# The WebDriver bridge the end-to-end tests drive the real app through (from crates.io).
if ! command -v tauri-driver >/dev/null; then
  echo "setup: installing tauri-driver (cargo install, about a minute)"
  cargo install --quiet --locked tauri-driver --version 2.1.0
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
