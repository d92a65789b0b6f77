#!/usr/bin/env bash
# Wake-on-LAN: `flatlab power-on` from a workstation namespace, the frames captured on the LAN
# side of a veth pair (an AF_PACKET socket sees them as a NIC would):
#
#   [flwa: flatlab, 10.0.0.2/24] --veth-- [flwl: the LAN: a raw capture of every frame]
#
# 1. `power-on demo-lab cp2` (the interface found by the plan's subnet): three magic packets,
#    Ethernet broadcast, UDP to 10.0.0.255:9, six 0xff bytes then cp2's MAC sixteen times;
#    nothing for any other node.
# 2. `power-on demo-lab` (every node), with --interface: three for each of the plan's nodes.
# 3. An unknown node, an unknown interface, an interface off the plan's subnet: clear errors.
# Needs root. Prints `power-on: N passed, N failed`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
flatlab=${FLATLAB_BIN:-$root/target/debug/flatlab}
source "$root/tests/lib/required.sh"
[[ $(id -u) -eq 0 ]] || cannot_run power-on "needs root (network namespaces)"
for tool in ip python3; do
  command -v "$tool" >/dev/null || { echo "power-on: $tool is missing" >&2; exit 1; }
done
[[ -x $flatlab ]] || { echo "power-on: $flatlab is missing (cargo build -p flatlab-cli)" >&2; exit 1; }

id=$$
ns_a=flwa$id ns_l=flwl$id
work=$(mktemp -d /tmp/flatlab-power-on.XXXXXX)
cleanup() {
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_l" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns_a"
ip netns add "$ns_l"
ip link add wa$id netns "$ns_a" type veth peer name wl$id netns "$ns_l"
ip -n "$ns_a" addr add 10.0.0.2/24 dev wa$id  # no brd: the broadcast address comes from the netmask
ip -n "$ns_a" link set wa$id up
ip -n "$ns_a" link set lo up
ip -n "$ns_l" link set wl$id up

passed=0 failed=0
ok() { echo "ok    $*"; passed=$((passed + 1)); }
not_ok() { echo "FAIL  $*"; failed=$((failed + 1)); }

# capture SECONDS OUT: every UDP-to-port-9 frame on the LAN side, as JSON lines.
capture() {
  ip netns exec "$ns_l" python3 - "$1" "wl$id" >"$2" <<'PY' &
import json, socket, sys, time
seconds, ifname = float(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((ifname, 0))
s.settimeout(0.2)
print(json.dumps({"ready": True}), flush=True)
end = time.time() + seconds
while time.time() < end:
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        continue
    ihl = (frame[14] & 0x0F) * 4
    udp = 14 + ihl
    if int.from_bytes(frame[udp + 2:udp + 4], "big") != 9:
        continue
    print(json.dumps({
        "dst_mac": frame[0:6].hex(":"),
        "dst_ip": socket.inet_ntoa(frame[30:34]),
        "payload": frame[udp + 8:].hex(),
    }), flush=True)
PY
  cap=$!
  for _ in $(seq 1 50); do grep -q ready "$2" 2>/dev/null && return 0; sleep 0.1; done
  echo "power-on: the capture never started" >&2
  exit 1
}

# check FILE MAC COUNT: COUNT magic packets for MAC, each well-formed.
check() {
  python3 - "$@" <<'PY'
import json, sys
path, mac, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
frames = [json.loads(l) for l in open(path) if '"payload"' in l]
magic = "ff" * 6 + mac.replace(":", "") * 16
mine = [f for f in frames if f["payload"] == magic]
bad = [f for f in mine if f["dst_mac"] != "ff:ff:ff:ff:ff:ff" or f["dst_ip"] != "10.0.0.255"]
if len(mine) != want or bad:
    print(f"{mac}: {len(mine)} magic packets (want {want}); not broadcast to 10.0.0.255: {bad}; all: {frames}")
    sys.exit(1)
PY
}

db=$work/flatlab.db
"$flatlab" --db "$db" plan import "$root/assets/demo-plan.yaml" >/dev/null 2>&1 || { echo "power-on: cannot import assets/demo-plan.yaml" >&2; exit 1; }
macs=(52:54:00:00:00:01 52:54:00:00:00:02 52:54:00:00:00:03 52:54:00:00:00:04 52:54:00:00:00:05)

capture 3 "$work/one.jsonl"
out=$(ip netns exec "$ns_a" "$flatlab" --db "$db" power-on demo-lab cp2 2>&1) || not_ok "power-on demo-lab cp2 failed: $out"
wait "$cap"
if why=$(check "$work/one.jsonl" 52:54:00:00:00:02 3); then ok "three magic packets for cp2, broadcast to 10.0.0.255:9 on the plan's subnet's interface"; else not_ok "$why"; fi
others=0
for m in "${macs[@]}"; do
  [[ $m == 52:54:00:00:00:02 ]] && continue
  check "$work/one.jsonl" "$m" 0 >/dev/null || others=1
done
((others == 0)) && ok "none for any other node" || not_ok "packets for nodes not asked for: $(cat "$work/one.jsonl")"
grep -q "cp2 (52:54:00:00:00:02): 3 magic packets to 10.0.0.255:9" <<<"$out" && ok "it says what it sent" || not_ok "output: $out"

capture 3 "$work/all.jsonl"
json=$(ip netns exec "$ns_a" "$flatlab" --db "$db" power-on demo-lab --interface "wa$id" --json 2>&1) || not_ok "power-on demo-lab failed: $json"
wait "$cap"
all=0
for m in "${macs[@]}"; do check "$work/all.jsonl" "$m" 3 >/dev/null || all=1; done
((all == 0)) && ok "every node of the plan: three each, with --interface" || not_ok "every node: $(cat "$work/all.jsonl")"
[[ $(python3 -c 'import json,sys; print(len(json.loads(sys.stdin.read())))' <<<"$json" 2>/dev/null) == 5 ]] && ok "--json lists the five nodes" || not_ok "--json: $json"

err=$(ip netns exec "$ns_a" "$flatlab" --db "$db" power-on demo-lab cp9 2>&1) && not_ok "an unknown node was accepted"
grep -q "plan demo-lab has no node called \`cp9\`; its nodes: cp1, cp2, cp3, worker1, worker2" <<<"$err" && ok "an unknown node is named, with the plan's nodes" || not_ok "unknown node: $err"
err=$(ip netns exec "$ns_a" "$flatlab" --db "$db" power-on demo-lab --interface nope0 2>&1) && not_ok "an unknown interface was accepted"
grep -q "there is no network interface called \`nope0\`" <<<"$err" && ok "an unknown interface is named" || not_ok "unknown interface: $err"
ip -n "$ns_a" addr flush dev wa$id
err=$(ip netns exec "$ns_a" "$flatlab" --db "$db" power-on demo-lab 2>&1) && not_ok "no interface on the subnet, and it sent anyway"
grep -q "no network interface of this computer has an address on plan demo-lab's subnet 10.0.0.0/24" <<<"$err" && ok "no interface on the plan's subnet: it says to give --interface" || not_ok "off the subnet: $err"

echo "power-on: $passed passed, $failed failed"
exit $((failed > 0))
