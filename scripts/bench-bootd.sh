#!/usr/bin/env bash
# Benchmark of the boot server's file serving beside the usual tools, for a classroom of machines
# booting at once (not a test: it prints figures). Flatlab runs alone in one network namespace,
# nginx and dnsmasq in another, clients on each namespace's loopback; rounds alternate between
# the two so that both see the same machine state.
#   HTTP: one 400 MiB file to 8, then 64 clients at once, Flatlab vs nginx (sendfile).   Goal >= 1.0
#   TFTP: ipxe.efi to 8, then 64 clients at once, blksize 1432, Flatlab vs dnsmasq.      Goal >= 1.0
#   Memory: Flatlab's resident set, sampled every 50 ms: its peak while serving 8 and 64 clients.
#           Goal: flat (64 clients within 16 MiB of 8).
# A ratio is the reference's time over Flatlab's for one round (above 1: Flatlab was faster); the
# summary gives every round's ratio and their median.
# Usage: scripts/bench-bootd.sh [ROUNDS]   (default 3; needs root; installs nginx-light if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
flatlab=${FLATLAB_BIN:-$root/target/release/flatlab}
[[ $(id -u) -eq 0 ]] || { echo "bench: needs root (network namespaces)" >&2; exit 1; }
for tool in bc curl dnsmasq ip; do
  command -v $tool >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
[[ -x $flatlab ]] || (cd "$root" && cargo build -q --release -p flatlab-cli)

work=$(mktemp -d /tmp/flatlab-bench.XXXXXX)
chmod 755 "$work" # nginx's workers run as another user
pids=()
ns_f=flbenchf$$ # Flatlab's namespace
ns_r=flbenchr$$ # the references' namespace
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns_f" 2>/dev/null || true
  ip netns del "$ns_r" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for ns in "$ns_f" "$ns_r"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done

mkdir -p "$work/mirror/stable/amd64-usr/1.0.0" "$work/tftp"
big=$((400 << 20))
head -c $big /dev/urandom >"$work/mirror/stable/amd64-usr/1.0.0/big.bin"
ipxe=/usr/lib/ipxe/ipxe.efi
[[ -f $ipxe ]] || { echo "bench: $ipxe missing (apt-get install ipxe)" >&2; exit 1; }
cp "$ipxe" "$work/tftp/"
size_ipxe=$(stat -L -c %s "$ipxe")
cat >"$work/plan.yaml" <<'PLAN'
version: 1
name: bench
os: {channel: stable, version: 1.0.0, arch: amd64}
kubernetes: {k3s_version: v1.32.2+k3s1}
nodes:
  - {name: n1, mac: "52:54:00:00:00:01", role: server, install_disk: /dev/sda}
PLAN

(FLATLAB_LOG=warn exec ip netns exec "$ns_f" "$flatlab" --db "$work/db" serve "$work/plan.yaml" --interface lo \
  --address 127.0.0.1 --http-port 18080 --tftp-port 69 --dhcp off --mirror "$work/mirror" --ipxe-dir "$work/tftp" \
  --admin 127.0.0.1:17070 >"$work/flatlab.log" 2>&1) &
flatlab_pid=$!
pids+=($flatlab_pid)
cat >"$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server { listen 127.0.0.1:18080; root $work/mirror; }
}
NGINX
(exec ip netns exec "$ns_r" nginx -c "$work/nginx.conf" -g 'daemon off;') &
pids+=($!)
(exec ip netns exec "$ns_r" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$work/tftp" \
  --tftp-max=200 --listen-address=127.0.0.1 --bind-interfaces --pid-file="$work/dnsmasq.pid" >"$work/dnsmasq.log" 2>&1) &
pids+=($!)
ready() { ip netns exec "$1" curl -fsS -o /dev/null -r 0-0 "$2" 2>/dev/null; }
for _ in $(seq 50); do
  ready "$ns_f" http://127.0.0.1:18080/mirror/stable/amd64-usr/1.0.0/big.bin &&
    ready "$ns_r" http://127.0.0.1:18080/stable/amd64-usr/1.0.0/big.bin && break
  sleep 0.2
done
kill -0 "$flatlab_pid" 2>/dev/null || { cat "$work/flatlab.log" >&2; echo "bench: flatlab serve did not start" >&2; exit 1; }

# Wall-clock seconds for N parallel curl downloads of URL inside namespace NS, each checked for its
# full size. Bodies go to /dev/null so that the clients' disk writes do not weigh on the figures.
parallel_get() {
  local ns=$1 n=$2 url=$3 expect=$4 extra=${5:-}
  local start end clients=() failed=0
  start=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    ip netns exec "$ns" curl -fsS $extra -o /dev/null -w '%{size_download}\n' "$url" >"$work/size.$i" &
    clients+=($!)
  done
  for job in "${clients[@]}"; do wait "$job" || failed=1; done
  end=$(date +%s.%N)
  [[ $failed -eq 0 ]] || { echo "bench: a download failed ($url in $ns)" >&2; return 1; }
  for i in $(seq 1 "$n"); do
    [[ $(cat "$work/size.$i") -eq $expect ]] || { echo "bench: client $i got $(cat "$work/size.$i") bytes" >&2; return 1; }
  done
  echo "$end - $start" | bc -l
}

# Flatlab's resident set in KiB, now, and the peak of samples every 50 ms while a round runs.
rss_now() { awk '/^VmRSS:/ {print $2}' "/proc/$flatlab_pid/status"; }
sample_rss() { # sample_rss FILE: until killed, keeps in FILE the highest VmRSS seen (and FILE's)
  local peak r
  peak=$(cat "$1")
  while true; do
    r=$(rss_now) || return 0
    if ((r > peak)); then
      peak=$r
      echo "$peak" >"$1"
    fi
    sleep 0.05
  done
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# run_case NAME CLIENTS FLATLAB_URL REFERENCE_URL SIZE [CURL_ARGS]: ROUNDS alternating rounds.
summary=()
run_case() {
  local name=$1 n=$2 url_f=$3 url_r=$4 size=$5 extra=${6:-}
  local ratios=() tf tr sampler med peak_file=$work/rss.$name.$n
  echo 0 >"$peak_file"
  for r in $(seq 1 "$rounds"); do
    sample_rss "$peak_file" &
    sampler=$!
    tf=$(parallel_get "$ns_f" "$n" "$url_f" "$size" "$extra") || exit 1
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    tr=$(parallel_get "$ns_r" "$n" "$url_r" "$size" "$extra") || exit 1
    ratios+=("$(echo "scale=3; $tr / $tf" | bc -l)")
    printf '  %s, %2d clients, round %d: flatlab %6.3f s, reference %6.3f s, ratio %s\n' "$name" "$n" "$r" "$tf" "$tr" "${ratios[-1]}"
  done
  med=$(printf '%s\n' "${ratios[@]}" | median)
  summary+=("$(printf '%s %2d clients: ratios %s, median %s; flatlab peak RSS %d MiB' "$name" "$n" "${ratios[*]}" "$med" $(($(cat "$peak_file") / 1024)))")
}

echo "bench: flatlab's resident set at rest: $(($(rss_now) / 1024)) MiB"
echo "bench: HTTP, one 400 MiB file to N clients at once, against nginx ($rounds rounds)"
for n in 8 64; do
  run_case HTTP "$n" http://127.0.0.1:18080/mirror/stable/amd64-usr/1.0.0/big.bin \
    http://127.0.0.1:18080/stable/amd64-usr/1.0.0/big.bin $big
done
echo "bench: TFTP, ipxe.efi ($size_ipxe bytes) to N clients at once, blksize 1432, against dnsmasq ($rounds rounds)"
for n in 8 64; do
  run_case TFTP "$n" tftp://127.0.0.1/ipxe.efi tftp://127.0.0.1/ipxe.efi "$size_ipxe" "--tftp-blksize 1432"
done

echo
echo "bench: summary (ratio = reference time / Flatlab time, goal >= 1.0; memory flat from 8 to 64 clients)"
printf '  %s\n' "${summary[@]}"
for proto in HTTP TFTP; do
  a=$(cat "$work/rss.$proto.8")
  b=$(cat "$work/rss.$proto.64")
  echo "  $proto memory: peak $((a / 1024)) MiB at 8 clients, $((b / 1024)) MiB at 64: $(((b - a) / 1024)) MiB more (goal: under 16)"
done
