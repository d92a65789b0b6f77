#!/usr/bin/env bash
# A UEFI machine with Secure Boot on (Debian's OVMF secboot build, Microsoft's keys enrolled)
# network-boots through `flatlab serve --dhcp proxy` beside dnsmasq playing the router: its
# firmware loads Debian's iPXE over TFTP and refuses to run it (it is not signed for Secure
# Boot), so the machine never comes back as iPXE. The boot server must say why on the machine's
# timeline: the `secure-boot` diagnosis, about a minute after the transfer. Also: a planned
# static address that another device on the LAN already answers for is reported at start, and
# a second DHCP server offering a boot file (dnsmasq with --dhcp-boot) to a planned machine is
# named on that machine's timeline, and a firewall that drops the boot server's ports is a
# warning at its start (one that accepts them is not).
# Needs root (network namespaces). Logs of a failed run: artifacts/netboot-secureboot/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
flatlab=${FLATLAB_BIN:-$root/target/debug/flatlab}
source "$root/tests/lib/required.sh"
source "$root/tests/lib/qemu.sh"
[[ $(id -u) -eq 0 ]] || cannot_run secureboot "needs root (network namespaces)"
for tool in qemu-system-x86_64 dnsmasq curl ip python3 nft; do
  command -v "$tool" >/dev/null || { echo "secureboot: $tool is missing (scripts/setup-debian.sh installs it)" >&2; exit 1; }
done
for f in /usr/share/OVMF/OVMF_CODE_4M.secboot.fd /usr/share/OVMF/OVMF_VARS_4M.ms.fd /usr/lib/ipxe/snponly.efi "$flatlab"; do
  [[ -e $f ]] || { echo "secureboot: $f is missing (scripts/setup-debian.sh; cargo build -p flatlab-cli)" >&2; exit 1; }
done

step() { printf 'secureboot: %s\n' "$*"; }
work=$(mktemp -d /tmp/flatlab-secureboot.XXXXXX)
id=$$
ns_sw=flsbw$id ns_r=flsbr$id ns_b=flsbb$id ns_x=flsbx$id ns_c=flsbc$id
pids=()
status=1
cleanup() {
  if [[ $status -ne 0 && -S $work/monitor.sock ]]; then
    python3 "$root/tests/netboot/screendump.py" "$work/monitor.sock" "$work/screen.png" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$ns_sw" "$ns_r" "$ns_b" "$ns_x" "$ns_c"; do ip netns del "$ns" 2>/dev/null || true; done
  if [[ $status -ne 0 ]]; then
    out=$root/artifacts/netboot-secureboot
    rm -rf "$out"; mkdir -p "$out"
    cp "$work"/*.log "$work"/*.json "$work"/*.png "$out/" 2>/dev/null || true
    for f in "$work"/*.log; do echo "----- $(basename "$f") (last 30 lines)"; tail -n 30 "$f" | cut -c1-220; done
    echo "secureboot: logs kept in $out"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mac=52:54:00:5b:00:01
cat >"$work/plan.yaml" <<EOF
version: 1
name: secureboot
os: {channel: stable, version: 4593.2.5, arch: amd64}
kubernetes: {k3s_version: v1.32.2+k3s1}
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j test@flatlab
network: {subnet: 10.78.0.0/24, gateway: 10.78.0.1, dns: [10.78.0.1]}
nodes:
  - {name: sb1, mac: "$mac", role: server, install_disk: /dev/vda, address: 10.78.0.11/24}
  # Another device on the LAN already has this address: serve says so at its start.
  - {name: dup1, mac: "52:54:00:5b:00:02", role: agent, install_disk: /dev/vda, address: 10.78.0.9/24}
EOF

#   [router: dnsmasq 10.78.0.1] --veth-- [switch: bridge + tap] --veth-- [flatlab 10.78.0.2]
for ns in "$ns_sw" "$ns_r" "$ns_b"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$ns_sw" link add br0 type bridge
ip -n "$ns_sw" link set br0 up
ip -n "$ns_sw" tuntap add dev tap0 mode tap
ip -n "$ns_sw" link set tap0 master br0 up
ip -n "$ns_sw" link add sw-r type veth peer name r-eth netns "$ns_r"
ip -n "$ns_sw" link add sw-b type veth peer name b-eth netns "$ns_b"
ip -n "$ns_sw" link set sw-r master br0 up
ip -n "$ns_sw" link set sw-b master br0 up
ip -n "$ns_r" addr add 10.78.0.1/24 dev r-eth
ip -n "$ns_r" addr add 10.78.0.9/24 dev r-eth
ip -n "$ns_r" link set r-eth up
ip -n "$ns_b" addr add 10.78.0.2/24 dev b-eth
ip -n "$ns_b" link set b-eth up
ip netns exec "$ns_r" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=r-eth --bind-interfaces \
  --dhcp-range=10.78.0.100,10.78.0.150,255.255.255.0,1h --dhcp-leasefile="$work/dnsmasq.leases" --log-dhcp \
  >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
# A rival: another dnsmasq that offers a boot file (to dup1 only, so that sb1's firmware keeps
# to Flatlab), and a client that asks as dup1 would.
for ns in "$ns_x" "$ns_c"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$ns_sw" link add sw-x type veth peer name x-eth netns "$ns_x"
ip -n "$ns_sw" link add sw-c type veth peer name c-eth netns "$ns_c"
ip -n "$ns_sw" link set sw-x master br0 up
ip -n "$ns_sw" link set sw-c master br0 up
ip -n "$ns_x" addr add 10.78.0.3/24 dev x-eth
ip -n "$ns_x" link set x-eth up
ip -n "$ns_c" link set c-eth up
# An address, so that its socket has a route for the broadcast (firmware sends from 0.0.0.0
# on a raw socket; the test client need not).
ip -n "$ns_c" addr add 10.78.0.250/24 dev c-eth
ip netns exec "$ns_x" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=x-eth --bind-interfaces \
  --dhcp-range=10.78.0.0,static,255.255.255.0,1h --dhcp-host=52:54:00:5b:00:02,10.78.0.201 \
  --dhcp-leasefile="$work/rival.leases" \
  --dhcp-boot=pxelinux.0,,10.78.0.3 --log-dhcp >"$work/rival-dnsmasq.log" 2>&1 &
pids+=($!)

# The boot server's own firewall drops what it does not accept, and accepts the boot server's
# ports: serve must not warn about it.
for rule in 'add table inet f' \
  'add chain inet f input { type filter hook input priority 0; policy drop; }' \
  'add rule inet f input ct state established,related accept' \
  'add rule inet f input iif lo accept' \
  'add rule inet f input udp dport { 67, 69, 4011 } accept' \
  'add rule inet f input tcp dport 8080 accept'; do
  ip netns exec "$ns_b" nft "$rule"
done

FLATLAB_LOG=info ip netns exec "$ns_b" "$flatlab" --db "$work/flatlab.db" serve "$work/plan.yaml" \
  --interface b-eth --dhcp proxy --ipxe-dir /usr/lib/ipxe --admin 127.0.0.1:7071 >"$work/flatlab.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  ip netns exec "$ns_b" curl -fs http://127.0.0.1:7071/api/v1/machines >/dev/null 2>&1 && break
  sleep 0.2
done
step "flatlab serve --dhcp proxy beside dnsmasq"

cp /usr/share/OVMF/OVMF_VARS_4M.ms.fd "$work/vars.fd"
qemu_accel_init
ip netns exec "$ns_sw" qemu-system-x86_64 "${qemu_accel[@]}" -m 512 -smp 1 -display none -monitor "unix:$work/monitor.sock,server,nowait" \
  -machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on \
  -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n \
  -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd \
  -drive if=pflash,format=raw,unit=1,file="$work/vars.fd" \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=,bootindex=1" \
  -serial "file:$work/serial.log" >"$work/qemu.log" 2>&1 &
pids+=($!)
t_start=$(date +%s)
step "QEMU (OVMF with Secure Boot and Microsoft's keys, TCG) started"
# dup1's DHCPDISCOVER (broadcast flag set), as its firmware would send it.
ip netns exec "$ns_c" python3 - <<'PY' >"$work/client.log" 2>&1 &
import socket, struct, time
mac = bytes.fromhex("5254005b0002")
pkt = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 0x1234, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4), mac + bytes(10), bytes(64), bytes(128))
pkt += bytes([99, 130, 83, 99, 53, 1, 1, 60, 9]) + b"PXEClient" + bytes([255])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"c-eth")
s.bind(("0.0.0.0", 68))
for _ in range(5):
    s.sendto(pkt, ("255.255.255.255", 67))
    time.sleep(2)
print("sent 5 DHCPDISCOVERs as 52:54:00:5b:00:02")
PY
pids+=($!)

diagnosed=""
while (($(date +%s) - t_start < 300)); do
  json=$(ip netns exec "$ns_b" curl -fs http://127.0.0.1:7071/api/v1/machines 2>/dev/null || true)
  [[ -n $json ]] && echo "$json" >"$work/machines.json"
  if grep -q '"diagnosis":"secure-boot"' <<<"$json" && grep -q '"diagnosis":"other-dhcp-server"' <<<"$json"; then
    diagnosed=$(($(date +%s) - t_start))
    break
  fi
  sleep 2
done

failures=()
grep -q "firewall" "$work/flatlab.log" && failures+=("serve warned about a firewall that accepts its ports: $(grep -m1 firewall "$work/flatlab.log")")
# A firewall that drops the boot server's HTTP port: serve says so at its start, and how to open it.
ns_f=flsbf$id
ip netns add "$ns_f"
ip -n "$ns_f" link set lo up
ip netns exec "$ns_f" nft 'add table inet f'
ip netns exec "$ns_f" nft 'add chain inet f input { type filter hook input priority 0; policy drop; }'
ip netns exec "$ns_f" nft 'add rule inet f input iif lo udp dport 53 accept'
timeout 10 ip netns exec "$ns_f" "$flatlab" --db "$work/firewalled.db" serve "$work/plan.yaml" --interface lo \
  --address 127.0.0.1 --dhcp off --http-port 8081 --tftp-port 0 --admin 127.0.0.1:7072 >"$work/firewalled.log" 2>&1 || true
# The same dropping chain with a rule that accepts all of lo (`iifname "lo" accept`): nothing is
# in the way on lo, so no warning.
ip netns exec "$ns_f" nft 'add rule inet f input iifname "lo" accept'
timeout 5 ip netns exec "$ns_f" "$flatlab" --db "$work/firewalled.db" serve "$work/plan.yaml" --interface lo \
  --address 127.0.0.1 --dhcp off --http-port 8081 --tftp-port 0 --admin 127.0.0.1:7072 >"$work/interface-open.log" 2>&1 || true
ip netns del "$ns_f"
grep -q "firewall" "$work/interface-open.log" \
  && failures+=("serve warned about a firewall that accepts everything on its interface: $(grep -m1 firewall "$work/interface-open.log")")
# `flatlab plan validate --lan` asks the same LAN: dup1's address is a warning on dup1's address.
ip netns exec "$ns_b" "$flatlab" plan validate "$work/plan.yaml" --lan --json >"$work/validate-lan.json" || true
python3 - "$work/validate-lan.json" <<'PY' || failures+=("plan validate --lan did not report dup1's taken address on nodes[dup1].address: $(head -c 600 "$work/validate-lan.json")")
import json, sys
found = json.load(open(sys.argv[1]))["findings"]
dup = [f for f in found if f["path"] == "nodes[dup1].address" and "10.78.0.9 is taken on the LAN" in f["message"]]
others = [f for f in found if "taken on the LAN" in f["message"] and f not in dup]
sys.exit(0 if len(dup) == 1 and dup[0]["severity"] == "warning" and not others else 1)
PY
grep -q "nftables chain inet f input, policy drop) may block 8081/tcp" "$work/firewalled.log" \
  || failures+=("no warning that the firewall blocks 8081/tcp: $(head -c 600 "$work/firewalled.log")")
grep -q "sudo ufw allow 8081/tcp" "$work/firewalled.log" || failures+=("the firewall warning does not say how to open the port")
grep -q "dup1's address 10.78.0.9 is taken on the LAN" "$work/flatlab.log" || failures+=("no warning that dup1's planned address is taken")
grep -q "sb1's address" "$work/flatlab.log" && failures+=("sb1's free address was reported taken")
grep -q 'TFTP transfer.*snponly.efi' "$work/flatlab.log" || failures+=("the firmware never fetched snponly.efi over TFTP")
grep -q '"diagnosis":"secure-boot"' "$work/machines.json" || failures+=("no secure-boot diagnosis on sb1's timeline in 300 s")
# Both ways on, and what Flatlab cannot do yet.
grep -q "turn Secure Boot off in the firmware setup.*enrol Flatcar's Secure Boot CA in the firmware's db.*no Microsoft-signed iPXE shim\|no Microsoft-signed iPXE shim.*turn Secure Boot off in the firmware setup.*enrol Flatcar's Secure Boot CA in the firmware's db" "$work/machines.json" \
  || failures+=("the secure-boot diagnosis does not name both ways on (Secure Boot off; Flatcar's CA enrolled) and the missing signed shim")
python3 - "$work/machines.json" <<'PY' || failures+=("no other-dhcp-server diagnosis naming the rival on dup1's timeline")
import json, sys
dup1 = [m for m in json.load(open(sys.argv[1])) if m["node"] == "dup1"][0]
d = [h["message"] for h in dup1["history"] if h.get("diagnosis") == "other-dhcp-server"]
sys.exit(0 if d and "10.78.0.3 (pxelinux.0 from 10.78.0.3)" in d[0] else 1)
PY
grep -q 'another DHCP server on the LAN offers boot options.*10.78.0.1\b' "$work/flatlab.log" && failures+=("the router, which offers no boot file, was named a rival")
grep -q '"stage":"ipxe"' "$work/machines.json" && failures+=("sb1 came back as iPXE: Secure Boot did not refuse it")
# OVMF's own refusal, on its serial console: `BdsDxe: failed to load Boot0001 "UEFI PXEv4 ..." ...: Access Denied`.
refusal=$(grep -a -m1 -E 'BdsDxe: failed to load .*PXEv4.*Access Denied' "$work/serial.log" | tr -d '\r' || true)
[[ -n $refusal ]] || failures+=("OVMF never refused the iPXE binary (no 'Access Denied' on its serial console)")
if ((${#failures[@]})); then
  printf "secureboot: FAILED: %s\n" "${failures[@]}"
  exit 1
fi
status=0
message=$(python3 -c 'import json,sys; m=[x for x in json.load(open(sys.argv[1])) if x["node"]=="sb1"][0]; print([h["message"] for h in m["history"] if h.get("kind")=="diagnosis"][0])' "$work/machines.json")
rival=$(python3 -c 'import json,sys; m=[x for x in json.load(open(sys.argv[1])) if x["node"]=="dup1"][0]; print([h["message"] for h in m["history"] if h.get("kind")=="diagnosis"][0])' "$work/machines.json")
step "the firmware refused iPXE${refusal:+ (serial: $refusal)}; diagnosed after ${diagnosed}s: sb1 $message"
step "dup1 $rival"
step "firewall: $(grep -m1 -o 'this machine.s firewall.*' "$work/firewalled.log" | cut -c1-160)..."
step "passed"
