#!/usr/bin/env bash
# Records the DHCP packets that real firmware sends to Flatlab's proxy DHCP, and writes the
# client packets as test fixtures (crates/bootd/tests/fixtures/dhcp/, see its README.md).
# Not a test: run it by hand, as root, when a fixture should be recorded again.
#
#   [r: dnsmasq 10.77.0.1] --veth-- [sw: bridge br0 + tap0 + QEMU, tcpdump] --veth-- [b: flatlab 10.77.0.2]
#
# Boots QEMU (TCG) once per firmware, each just long enough for its DHCP exchanges:
#   seabios       SeaBIOS with the virtio NIC's iPXE ROM (ipxe-qemu)           -> seabios-ipxe-*
#   ovmf          OVMF's PXE client, then the ipxe.efi it loads from Flatlab   -> ovmf-pxe-*, ovmf-ipxe-*
#   ovmf-secboot  OVMF with Secure Boot: refuses ipxe.efi, falls back to UEFI HTTP boot -> ovmf-http-*
# Usage: capture-dhcp.sh [RUN...] (default: all three). Environment: FLATLAB_BIN (default
# target/debug/flatlab), CAPTURE_OUT (default crates/bootd/tests/fixtures/dhcp), CAPTURE_TIMEOUT
# (seconds per QEMU run, default 240). The captures are kept in artifacts/dhcp-capture/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
flatlab=${FLATLAB_BIN:-$root/target/debug/flatlab}
out=${CAPTURE_OUT:-$root/crates/bootd/tests/fixtures/dhcp}
timeout_secs=${CAPTURE_TIMEOUT:-240}
fixtures=$root/tests/netboot/dhcp-fixtures.py
runs=("$@")
((${#runs[@]})) || runs=(seabios ovmf ovmf-secboot)

[[ $(id -u) -eq 0 ]] || { echo "capture-dhcp: needs root (network namespaces)" >&2; exit 1; }
source "$root/tests/lib/qemu.sh"
for tool in qemu-system-x86_64 dnsmasq tcpdump ip python3; do
  command -v "$tool" >/dev/null || { echo "capture-dhcp: $tool is missing (apt-get install tcpdump qemu-system-x86 dnsmasq-base)" >&2; exit 1; }
done
for f in /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE_4M.secboot.fd /usr/lib/ipxe/ipxe.efi /usr/lib/ipxe/undionly.kpxe; do
  [[ -f $f ]] || { echo "capture-dhcp: $f is missing (apt-get install ovmf ipxe ipxe-qemu)" >&2; exit 1; }
done
[[ -x $flatlab ]] || { echo "capture-dhcp: build flatlab first (cargo build -p flatlab-cli)" >&2; exit 1; }

work=$(mktemp -d /tmp/flatlab-capture.XXXXXX)
id=$$
ns_sw=fcsw$id ns_r=fcr$id ns_b=fcb$id
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$ns_sw" "$ns_r" "$ns_b"; do ip netns del "$ns" 2>/dev/null || true; done
  mkdir -p "$root/artifacts/dhcp-capture"
  cp "$work"/*.pcap "$work"/*.log "$root/artifacts/dhcp-capture/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
forget() {  # drops ended processes from pids, so that cleanup kills no reused id
  local p q keep=()
  for p in "${pids[@]}"; do
    for q in "$@"; do [[ $p == "$q" ]] && continue 2; done
    keep+=("$p")
  done
  pids=("${keep[@]}")
}
step() { printf 'capture-dhcp: %s\n' "$*"; }
started=$(date +%s)

# --- mirror (dummy files: no machine gets as far as booting them) and plan ---------------------
version=4593.2.5
release=$work/mirror/stable/amd64-usr/$version
mkdir -p "$release"
for f in flatcar_production_pxe.vmlinuz flatcar_production_pxe_image.cpio.gz flatcar_production_image.bin.bz2; do
  head -c 4096 /dev/urandom > "$release/$f"
done
declare -A macs=([seabios]=52:54:00:77:01:01 [ovmf]=52:54:00:77:01:02 [ovmf-secboot]=52:54:00:77:01:03)
# SMBIOS system UUIDs (QEMU's is all zeros without -uuid): with distinct bytes, a fixture shows
# how each firmware orders the UUID's bytes in option 97.
declare -A uuids=([seabios]=00112233-4455-6677-8899-aabbccdd0101 [ovmf]=00112233-4455-6677-8899-aabbccdd0102
  [ovmf-secboot]=00112233-4455-6677-8899-aabbccdd0103)
cat > "$work/plan.yaml" <<EOF
version: 1
name: dhcp-capture
os: {channel: stable, version: $version, arch: amd64}
kubernetes: {k3s_version: v1.32.2+k3s1}
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j test@flatlab
network: {subnet: 10.77.0.0/24, gateway: 10.77.0.1, dns: [10.77.0.1]}
nodes:
  - {name: seabios, mac: "${macs[seabios]}", role: server, install_disk: /dev/vda}
  - {name: ovmf, mac: "${macs[ovmf]}", role: server, install_disk: /dev/vda}
  - {name: ovmf-secboot, mac: "${macs[ovmf-secboot]}", role: server, install_disk: /dev/vda}
EOF

# --- the network -------------------------------------------------------------------------------
step "creating network namespaces $ns_sw, $ns_r, $ns_b"
for ns in "$ns_sw" "$ns_r" "$ns_b"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$ns_sw" link add br0 type bridge
ip -n "$ns_sw" link set br0 up
ip -n "$ns_sw" tuntap add dev tap0 mode tap
ip -n "$ns_sw" link set tap0 master br0 up
ip -n "$ns_sw" link add sw-r type veth peer name r-eth netns "$ns_r"
ip -n "$ns_sw" link add sw-b type veth peer name b-eth netns "$ns_b"
ip -n "$ns_sw" link set sw-r master br0 up
ip -n "$ns_sw" link set sw-b master br0 up
ip -n "$ns_r" addr add 10.77.0.1/24 dev r-eth
ip -n "$ns_r" link set r-eth up
ip -n "$ns_b" addr add 10.77.0.2/24 dev b-eth
ip -n "$ns_b" link set b-eth up

step "starting dnsmasq as the home router (addresses only) and flatlab serve --dhcp proxy"
ip netns exec "$ns_r" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=r-eth --bind-interfaces \
  --dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --dhcp-leasefile="$work/dnsmasq.leases" --log-dhcp \
  >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
FLATLAB_LOG=info ip netns exec "$ns_b" "$flatlab" --db "$work/flatlab.db" serve "$work/plan.yaml" \
  --interface b-eth --dhcp proxy --mirror "$work/mirror" --ipxe-dir /usr/lib/ipxe --admin 127.0.0.1:7070 \
  >"$work/flatlab.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/machines >/dev/null 2>&1 && break
  sleep 0.2
done
ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/machines >/dev/null \
  || { echo "capture-dhcp: flatlab serve did not start:" >&2; cat "$work/flatlab.log" >&2; exit 1; }

# capture RUN WANT... : boots firmware RUN while tcpdump records br0, until the capture holds a
# client packet of each WANT (dhcp-fixtures.py seen), then a few seconds more for what follows.
capture() {
  local run=$1 mac=${macs[$1]}
  shift
  local pcap=$work/$run.pcap qemu_args=()
  case $run in
    seabios)
      qemu_args=(-machine pc -device "virtio-net-pci,netdev=n0,mac=$mac,bootindex=1") ;;
    ovmf)
      cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/$run-vars.fd"
      qemu_args=(-machine q35
        -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
        -drive if=pflash,format=raw,unit=1,file="$work/$run-vars.fd"
        -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=,bootindex=1") ;;
    ovmf-secboot)
      cp /usr/share/OVMF/OVMF_VARS_4M.ms.fd "$work/$run-vars.fd"
      qemu_args=(-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on
        -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
        -drive if=pflash,format=raw,unit=1,file="$work/$run-vars.fd"
        -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=,bootindex=1") ;;
    *) echo "capture-dhcp: unknown run $run (seabios, ovmf, ovmf-secboot)" >&2; exit 1 ;;
  esac
  : >"$work/$run-tcpdump.log"
  ip netns exec "$ns_sw" tcpdump -i br0 -U -s 0 -Z root -w "$pcap" 'udp and (port 67 or port 68 or port 4011)' \
    >"$work/$run-tcpdump.log" 2>&1 &
  local tcpdump_pid=$!
  pids+=($tcpdump_pid)
  for _ in $(seq 1 50); do grep -q "listening on" "$work/$run-tcpdump.log" && break; sleep 0.1; done
  qemu_accel_init
  step "$run: booting QEMU ($qemu_accel_kind) until it sent: $*"
  local t0
  t0=$(date +%s)
  ip netns exec "$ns_sw" qemu-system-x86_64 "${qemu_accel[@]}" -m 512 -display none -no-reboot -monitor none -uuid "${uuids[$run]}" \
    -serial "file:$work/$run-serial.log" -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
    "${qemu_args[@]}" >"$work/$run-qemu.log" 2>&1 &
  local qemu_pid=$!
  pids+=($qemu_pid)
  local ok=0
  while (( $(date +%s) - t0 < timeout_secs )); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    local seen=0
    python3 "$fixtures" seen "$pcap" "$@" || seen=$?
    ((seen == 0)) && { ok=1; break; }
    ((seen == 1)) || { echo "capture-dhcp: $fixtures failed" >&2; break; }
    sleep 1
  done
  ((ok)) && sleep 6  # a proxy REQUEST to port 4011 comes after the address's ACK
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  sleep 0.5
  kill "$tcpdump_pid" 2>/dev/null || true
  wait "$tcpdump_pid" 2>/dev/null || true
  forget "$qemu_pid" "$tcpdump_pid"
  if ((ok)); then
    step "$run: done in $(( $(date +%s) - t0 ))s"
  else
    step "$run: FAILED: no $* after $(( $(date +%s) - t0 ))s (logs in artifacts/dhcp-capture/)"
    return 1
  fi
}

failed=()
for run in "${runs[@]}"; do
  case $run in
    seabios) want=(ipxe:request) ;;
    ovmf) want=(pxe:request ipxe:request) ;;
    ovmf-secboot) want=(http:request) ;;
    *) want=() ;;
  esac
  capture "$run" "${want[@]}" || failed+=("$run")
done

# --- the fixtures --------------------------------------------------------------------------------
mkdir -p "$out"
written=()
for run in "${runs[@]}"; do
  [[ -f $work/$run.pcap && " ${failed[*]} " != *" $run "* ]] || continue  # keep the old fixtures of a failed run
  case $run in
    seabios) args=(seabios --kinds ipxe) ;;
    ovmf) args=(ovmf --kinds pxe,ipxe) ;;
    ovmf-secboot) args=(ovmf --kinds http) ;;  # its PXE packets are the same firmware's as ovmf's
  esac
  mapfile -t files < <(python3 "$fixtures" extract "$work/$run.pcap" "${args[0]}" "$out" "${args[@]:1}")
  written+=("${files[@]}")
done
step "wrote ${#written[@]} fixtures in $(( $(date +%s) - started ))s:"
if ((${#written[@]})); then
  python3 "$fixtures" table "${written[@]}"
fi
step "captures and logs: artifacts/dhcp-capture/"
if ((${#failed[@]})); then
  step "FAILED: ${failed[*]}"
  exit 1
fi
