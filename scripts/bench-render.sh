#!/usr/bin/env bash
# Benchmark of rendering a large plan into a bundle folder (not a test: it prints figures).
#   A 1000-node plan (3 servers, 997 agents): 3002 files, each node's three owner-only.
#   Goal: `flatlab render` under 0.5 s here (2 cores), durable and swapped in whole.
# Usage: scripts/bench-render.sh [NODES] [ROUNDS]   (FLATLAB_BIN: the flatlab to run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nodes=${1:-1000}
rounds=${2:-5}
flatlab=${FLATLAB_BIN:-$root/target/release/flatlab}
[[ -x $flatlab ]] || (cd "$root" && cargo build -q --release -p flatlab-cli)
# The bundles are written to a fresh journaled ext4 filesystem (a loop-mounted image, as root):
# the same filesystem every run, as on a workstation. This machine's own root filesystem has
# no journal, and there ext4 checks every free inode it considers for a new file against the
# inode table (to skip ones freed in the last seconds), which after the previous round's
# deleted bundle costs seconds of kernel time per round, whatever writes the files.
# FLATLAB_BENCH_DIR=DIR measures on DIR's filesystem instead.
work=$(mktemp -d /tmp/flatlab-bench-render.XXXXXX)
cleanup() {
  if mountpoint -q "$work/fs" 2>/dev/null; then umount "$work/fs"; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -n ${FLATLAB_BENCH_DIR:-} ]]; then
  out_dir=$(mktemp -d "$FLATLAB_BENCH_DIR/bench-render.XXXXXX")
  fs="$(df -T "$out_dir" | awk 'NR == 2 { print $2 }') at $FLATLAB_BENCH_DIR"
elif [[ $(id -u) -eq 0 ]]; then
  truncate -s 2G "$work/fs.img"
  mkfs.ext4 -q -F "$work/fs.img"
  mkdir -p "$work/fs"
  mount -o loop "$work/fs.img" "$work/fs"
  out_dir=$work/fs
  fs="a fresh journaled ext4 (loop device)"
else
  echo "bench: needs root to loop-mount a journaled ext4 filesystem; or set FLATLAB_BENCH_DIR" >&2
  exit 1
fi

python3 - "$nodes" > "$work/plan.yaml" <<'PY'
import sys
n = int(sys.argv[1])
print("version: 1\nname: big\nos: {channel: stable, version: 4593.2.5, arch: amd64}")
print("kubernetes: {k3s_version: v1.32.2+k3s1}")
print("ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j bench@flatlab']")
print("nodes:")
for i in range(n):
    role = "server" if i < 3 else "agent"
    print(f"  - {{name: n{i}, mac: '52:54:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01', role: {role}, install_disk: /dev/sda}}")
PY
db=$work/flatlab.db
"$flatlab" --db "$db" plan import "$work/plan.yaml" >/dev/null 2>&1

# Seconds of wall time (and CPU) of one render into a fresh or an existing bundle folder.
one() {
  local out=$1 start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$work/cpu" "$flatlab" --db "$db" render big -o "$out" --base-url http://10.0.0.2:8080 >/dev/null 2>&1
  end=$(date +%s.%N)
  printf '%s %s\n' "$(echo "$end - $start" | bc -l)" "$(awk '{ print $1 + $2 }' "$work/cpu")"
}

echo "bench: render a $nodes-node plan ($(( nodes * 3 + 2 )) files) onto $fs, best and median of $rounds"
first=$(one "$out_dir/first")
echo "  first render (makes each machine's install token): $(cut -d' ' -f1 <<<"$first") s wall, $(cut -d' ' -f2 <<<"$first") s CPU"
walls=()
for i in $(seq 1 "$rounds"); do
  r=$(one "$out_dir/bundle")   # from the second round on, an existing bundle is replaced
  walls+=("$(cut -d' ' -f1 <<<"$r")")
  echo "  round $i: $(cut -d' ' -f1 <<<"$r") s wall, $(cut -d' ' -f2 <<<"$r") s CPU"
done
sorted=$(printf '%s\n' "${walls[@]}" | sort -n)
echo "  best $(head -n1 <<<"$sorted") s, median $(sed -n "$(( (rounds + 1) / 2 ))p" <<<"$sorted") s (goal < 0.5 s)"
files=$(find "$out_dir/bundle" -type f | wc -l)
[[ $files -eq $(( nodes * 3 + 2 )) ]] || { echo "bench: the bundle has $files files" >&2; exit 1; }
