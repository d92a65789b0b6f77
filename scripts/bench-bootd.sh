#!/usr/bin/env bash
# Benchmark of the boot server's file serving, beside the usual tools (not a test: it prints
# figures). Each server runs alone in its own network namespace, clients on its loopback.
#   HTTP: one 400 MiB file to 8 clients at once, Flatlab vs nginx.   Goal: >= 0.9 of nginx.
#   TFTP: ipxe.efi to 16 clients at once, Flatlab vs dnsmasq.       Goal: >= dnsmasq.
# Usage: scripts/bench-bootd.sh [ROUNDS]   (needs root; installs nginx-light if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
flatlab=${FLATLAB_BIN:-$root/target/release/flatlab}
[[ $(id -u) -eq 0 ]] || { echo "bench: needs root (network namespaces)" >&2; exit 1; }
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
[[ -x $flatlab ]] || (cd "$root" && cargo build -q --release -p flatlab-cli)

work=$(mktemp -d /tmp/flatlab-bench.XXXXXX)
chmod 755 "$work"  # nginx's workers run as another user
pids=()
ns=flbench$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
run() { exec ip netns exec "$ns" "$@"; }
client() { ip netns exec "$ns" "$@"; }

mkdir -p "$work/mirror/stable/amd64-usr/1.0.0" "$work/tftp"
head -c $((400 << 20)) /dev/urandom > "$work/mirror/stable/amd64-usr/1.0.0/big.bin"
ipxe=/usr/lib/ipxe/ipxe.efi
[[ -f $ipxe ]] || { echo "bench: $ipxe missing (apt-get install ipxe)" >&2; exit 1; }
cp "$ipxe" "$work/tftp/"
size_ipxe=$(stat -L -c %s "$ipxe")
cat > "$work/plan.yaml" <<'EOF'
version: 1
name: bench
os: {channel: stable, version: 1.0.0, arch: amd64}
kubernetes: {k3s_version: v1.32.2+k3s1}
nodes:
  - {name: n1, mac: "52:54:00:00:00:01", role: server, install_disk: /dev/sda}
EOF

# Wall-clock seconds for N parallel curl downloads of URL, each checked for its full size.
# Bodies go to /dev/null so that the clients' disk writes do not weigh on the figures.
parallel_get() {
  local n=$1 url=$2 expect=$3 extra=${4:-}
  local start end clients=() failed=0
  start=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    client curl -fsS $extra -o /dev/null -w '%{size_download}\n' "$url" >"$work/size.$i" &
    clients+=($!)
  done
  for job in "${clients[@]}"; do wait "$job" || failed=1; done
  end=$(date +%s.%N)
  [[ $failed -eq 0 ]] || { echo "bench: a download failed" >&2; return 1; }
  for i in $(seq 1 "$n"); do
    [[ $(cat "$work/size.$i") -eq $expect ]] || { echo "bench: client $i got $(cat "$work/size.$i") bytes" >&2; return 1; }
  done
  echo "$end - $start" | bc -l
}

best() { # the fastest of ROUNDS runs
  local b=""
  for _ in $(seq 1 "$rounds"); do
    t=$("$@") || exit 1
    if [[ -z $b ]] || (( $(echo "$t < $b" | bc -l) )); then b=$t; fi
  done
  echo "$b"
}

echo "bench: HTTP, 400 MiB to 8 clients at once (best of $rounds)"
(FLATLAB_LOG=warn run "$flatlab" --db "$work/db" serve "$work/plan.yaml" --interface lo --address 127.0.0.1 \
  --http-port 18080 --tftp-port 69 --dhcp off --mirror "$work/mirror" --ipxe-dir "$work/tftp" --admin 127.0.0.1:17070 \
  >"$work/flatlab.log" 2>&1) &
pids+=($!)
cat > "$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server { listen 127.0.0.1:18081; root $work/mirror; }
}
EOF
(run nginx -c "$work/nginx.conf" -g 'daemon off;') &
pids+=($!)
sleep 1.5
big=$((400 << 20))
t_flatlab=$(best parallel_get 8 http://127.0.0.1:18080/mirror/stable/amd64-usr/1.0.0/big.bin $big)
t_nginx=$(best parallel_get 8 http://127.0.0.1:18081/stable/amd64-usr/1.0.0/big.bin $big)
mbps() { echo "scale=0; 8 * 400 / $1" | bc -l; }
echo "  flatlab: ${t_flatlab}s  ($(mbps "$t_flatlab") MiB/s)"
echo "  nginx:   ${t_nginx}s  ($(mbps "$t_nginx") MiB/s)"
http_ratio=$(echo "scale=3; $t_nginx / $t_flatlab" | bc -l)
echo "  flatlab/nginx throughput: $http_ratio (goal >= 0.9)"

echo "bench: TFTP, ipxe.efi ($size_ipxe bytes) to 16 clients at once, blksize 1432 (best of $((rounds * 3)))"
rounds=$((rounds * 3))  # TFTP runs are short: take the best of more
t_tftp_flatlab=$(best parallel_get 16 tftp://127.0.0.1/ipxe.efi "$size_ipxe" "--tftp-blksize 1432")
kill "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true
(run dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$work/tftp" \
  --listen-address=127.0.0.1 --bind-interfaces --pid-file="$work/dnsmasq.pid" >"$work/dnsmasq.log" 2>&1) &
pids+=($!)
sleep 1
t_tftp_dnsmasq=$(best parallel_get 16 tftp://127.0.0.1/ipxe.efi "$size_ipxe" "--tftp-blksize 1432")
echo "  flatlab: ${t_tftp_flatlab}s"
echo "  dnsmasq: ${t_tftp_dnsmasq}s"
tftp_ratio=$(echo "scale=3; $t_tftp_dnsmasq / $t_tftp_flatlab" | bc -l)
echo "  flatlab/dnsmasq throughput: $tftp_ratio (goal >= 1.0)"
