#!/usr/bin/env bash
# mDNS interoperability with a real avahi-daemon, in network namespaces this test creates:
#
#   [fl-a: avahi-daemon + its own D-Bus, private /run (unshare -m)] --veth-- [fl-f: flatlab]
#
# 1. avahi publishes _ssh._tcp, _workstation._tcp (with the MAC) and _flatlab._tcp (as an
#    installed node does): `flatlab discover --json` must find them, merged into one host.
# 2. `flatlab serve` announces _flatlab-boot._tcp: `avahi-browse` must see it.
# 3. An installed node announcing _flatlab._tcp is recorded as booted.
# 4. With only loopback, `flatlab discover` says so in one line.
# Needs root. Prints `discovery: N passed, N failed`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
flatlab=${FLATLAB_BIN:-$root/target/debug/flatlab}
source "$root/tests/lib/required.sh"
[[ $(id -u) -eq 0 ]] || cannot_run discovery "needs root to create network namespaces"
for tool in avahi-daemon avahi-publish avahi-browse dbus-daemon unshare python3 sqlite3; do
  command -v "$tool" >/dev/null || { echo "discovery: $tool is missing (scripts/setup-debian.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/flatlab-discovery.XXXXXX)
chmod 755 "$work"
ns_a=fla$$ ns_f=flf$$
pids=()
status=1
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for pidfile in "$work/avahi.pid" "$work/dbus.pid"; do
    [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  pkill -f "avahi-publish -s .*(Peer SSH|avahi-peer|cp1)" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_f" 2>/dev/null || true
  if [[ $status -ne 0 ]]; then
    for f in "$work"/*.log "$work"/*.json "$work"/*.txt; do [[ -f $f ]] && { echo "----- $(basename "$f")"; tail -n 30 "$f"; }; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_f"
ip -n "$ns_a" link set lo up
ip -n "$ns_f" link set lo up
ip -n "$ns_a" link add a-eth type veth peer name f-eth netns "$ns_f"
ip -n "$ns_a" addr add 10.78.0.1/24 dev a-eth
ip -n "$ns_f" addr add 10.78.0.2/24 dev f-eth
ip -n "$ns_a" link set a-eth up multicast on
ip -n "$ns_f" link set f-eth up multicast on

# The avahi side: its own mount namespace with a private /run, its own system D-Bus.
cat > "$work/avahi-side.sh" <<EOF
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/dbus /run/avahi-daemon
hostname flatlab-avahi-test
dbus-daemon --system --fork --nopidfile --print-pid > $work/dbus.pid
cat > $work/avahi.conf <<CONF
[server]
host-name=avahi-peer
use-ipv4=yes
use-ipv6=no
allow-interfaces=a-eth
enable-dbus=yes
[publish]
publish-workstation=no
[reflector]
[rlimits]
CONF
avahi-daemon --file=$work/avahi.conf --no-drop-root --no-chroot --no-rlimits >$work/avahi.log 2>&1 &
echo \$! > $work/avahi.pid
for i in \$(seq 1 50); do avahi-browse -at >/dev/null 2>&1 && break; sleep 0.2; done
avahi-publish -s "Peer SSH" _ssh._tcp 22 >$work/publish-ssh.log 2>&1 &
avahi-publish -s "avahi-peer [52:54:00:aa:bb:cc]" _workstation._tcp 9 >$work/publish-ws.log 2>&1 &
avahi-publish -s "cp1" _flatlab._tcp 6443 plan=lab node=cp1 role=server >$work/publish-fl.log 2>&1 &
touch $work/published
# Look for the boot server Flatlab announces, for up to 40 s.
for i in \$(seq 1 40); do
  avahi-browse -rtp _flatlab-boot._tcp 2>/dev/null > $work/browse.txt || true
  grep -q '^=' $work/browse.txt && break
  sleep 1
done
touch $work/browsed
sleep 600
EOF
ip netns exec "$ns_a" unshare -m -u bash "$work/avahi-side.sh" >"$work/avahi-side.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -f $work/published ]] && break; sleep 0.1; done

failures=()
# 1. flatlab discover finds avahi's services, merged into one host.
ip netns exec "$ns_f" "$flatlab" --db "$work/flatlab.db" discover --timeout 6 --json >"$work/discover.json" 2>"$work/discover.log" \
  || failures+=("flatlab discover failed")
python3 - "$work/discover.json" <<'PY' || failures+=("flatlab discover did not find avahi's services merged into one host")
import json, sys
hosts = json.load(open(sys.argv[1]))
peer = [h for h in hosts if h.get("name") == "avahi-peer"]
assert len(peer) == 1, hosts
h = peer[0]
types = sorted(s["service_type"] for s in h["services"])
assert types == ["_flatlab._tcp", "_ssh._tcp", "_workstation._tcp"], types
assert h["mac"] == "52:54:00:aa:bb:cc", h
assert "10.78.0.1" in h["addresses"], h
assert h["flatlab"] == {"plan": "lab", "node": "cp1", "role": "server"}, h
assert (h["plan"], h["node"]) == ("lab", "cp1"), h
PY

# 2. the boot server's announcement is seen by avahi-browse.
cat > "$work/plan.yaml" <<'EOF'
version: 1
name: lab
os: {channel: stable, version: 4593.2.5, arch: amd64}
kubernetes: {k3s_version: v1.32.2+k3s1}
nodes:
  - {name: cp1, mac: "52:54:00:00:00:01", role: server, install_disk: /dev/sda}
EOF
ip netns exec "$ns_f" "$flatlab" --db "$work/flatlab.db" serve "$work/plan.yaml" --interface f-eth --dhcp off \
  --tftp-port 6969 --http-port 8080 --admin 127.0.0.1:7070 >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 450); do [[ -f $work/browsed ]] && break; sleep 0.1; done
grep -q '^=;a-eth;IPv4;Flatlab\\032boot\\032server\\032for\\032lab;_flatlab-boot._tcp;local;.*;10.78.0.2;8080;.*"plan=lab"' "$work/browse.txt" \
  || failures+=("avahi-browse did not see the boot server's _flatlab-boot._tcp announcement")

# 2b. an installed node announcing itself (avahi publishes _flatlab._tcp plan=lab node=cp1) moves
#     from installed to booted when discovered.
kill "${pids[-1]}" 2>/dev/null || true
wait "${pids[-1]}" 2>/dev/null || true
sqlite3 "$work/flatlab.db" "UPDATE machines SET stage = 'installed' WHERE node = 'cp1'"
ip netns exec "$ns_f" "$flatlab" --db "$work/flatlab.db" discover --timeout 4 >/dev/null 2>&1 || true
stage=$(sqlite3 "$work/flatlab.db" "SELECT stage FROM machines WHERE node = 'cp1'")
[[ $stage == booted ]] || failures+=("the announcing node was not moved to booted (stage: $stage)")

# 3. with nothing but loopback, a clear one-line error.
out=$(unshare -n "$flatlab" --db "$work/flatlab.db" discover --timeout 1 2>&1 || true)
[[ $out == "error: no network interface besides loopback is up"* ]] || failures+=("no-interface message: $out")

if ((${#failures[@]})); then
  printf 'discovery: FAILED: %s\n' "${failures[@]}"
  echo "discovery: $((4 - ${#failures[@]})) passed, ${#failures[@]} failed"
  exit 1
fi
status=0
echo "discovery: 4 passed, 0 failed"
