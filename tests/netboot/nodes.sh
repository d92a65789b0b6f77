#!/usr/bin/env bash
# End to end with real Ignition and real systemd, from the firmware's first DHCP packet to
# `k3s-ready`: QEMU machines network-boot through `flatlab serve --dhcp proxy` beside dnsmasq
# playing the home router, into Debian-built stand-ins for Flatcar (tests/netboot/debian/):
#
#   firmware (SeaBIOS + iPXE ROM, or OVMF's own PXE -> ipxe.efi over TFTP) -> iPXE -> boot.ipxe
#   -> live system: Ignition 2.14 applies install.ign, systemd runs flatlab-install.service
#   -> install.sh -> flatcar-install (stand-in): the signed image onto the disk -> reboot
#   -> network boot again: the boot server sends it to its disk -> GRUB -> initramfs: Ignition
#   applies config.ign -> systemd: networkd with the plan's address, the report units, K3s (a
#   stand-in that checks config.yaml, the CA files and the token's pin) -> `k3s-ready`.
#
#   tests/netboot/nodes.sh one     one machine (OVMF), K3s by the download-and-verify unit
#   tests/netboot/nodes.sh three   the HA plan's three servers at once (SeaBIOS, OVMF, SeaBIOS),
#                                  K3s pinned by hash (an Ignition remote file); the boot server
#                                  is killed with SIGKILL once all three are installed, and
#                                  started again: none loses its state, none installs twice;
#                                  then cp1 is powered off and cp2 armed and reset: it reinstalls
#                                  and joins through cp3, the one server that answers; then all
#                                  three are lost and the cluster is restored from a snapshot
#                                  onto new disks (cp1 restores, cp2 and cp3 rejoin it wiped)
#   tests/netboot/nodes.sh         both; prints `nodes: N passed, N failed` and the timings.
#                                  `one` runs while `three` reinstalls cp2 (one machine busy
#                                  there), not after it: the QEMU machines wait on each other's
#                                  network and disks more than on the two cores, and CI gains
#                                  about five minutes. Each run has its own namespaces and files.
# Needs root (network namespaces, mmdebstrap). Logs of a failed run (of every run with
# NODES_KEEP_LOGS=1): artifacts/netboot-nodes/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $# -eq 0 ]]; then
  mkdir -p "$root/target"
  : >"$root/target/netboot-nodes-times.txt"
  marker=$(mktemp -u /tmp/flatlab-nodes-three-reinstalls.XXXXXX)
  NODES_REINSTALL_MARKER=$marker "$0" three &
  three=$!
  # Until `three` has its first installs behind it (or has ended: then `one` runs alone).
  while kill -0 "$three" 2>/dev/null && [[ ! -e $marker ]]; do sleep 2; done
  passed=0 failed=0
  if "$0" one; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  if wait "$three"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  rm -f "$marker"
  cat "$root/target/netboot-nodes-times.txt"
  echo "nodes: $passed passed, $failed failed"
  exit $((failed > 0))
fi
run=$1
case $run in one | three) ;; *) echo "usage: $0 [one|three]" >&2; exit 2 ;; esac
flatlab=${FLATLAB_BIN:-$root/target/debug/flatlab}
k3s_standin=${FLATLAB_K3S_STANDIN:-$root/target/debug/flatlab-k3s-standin}
timeout_secs=${NODES_TIMEOUT:-$([[ $run == one ]] && echo 900 || echo 2400)}
version=4593.2.5
k3s_version=v1.32.2+k3s1

source "$root/tests/lib/required.sh"
source "$root/tests/lib/qemu.sh"
[[ $(id -u) -eq 0 ]] || cannot_run nodes "needs root (network namespaces, mmdebstrap)"
for tool in qemu-system-x86_64 dnsmasq mmdebstrap gpg cpio curl ip python3 sgdisk mcopy grub-mkimage strip; do
  command -v "$tool" >/dev/null || { echo "nodes: $tool is missing (scripts/setup-debian.sh installs it)" >&2; exit 1; }
done
for f in /usr/share/OVMF/OVMF_CODE_4M.fd /usr/lib/ipxe/ipxe.efi /usr/lib/ipxe/undionly.kpxe "$flatlab" "$k3s_standin"; do
  [[ -e $f ]] || { echo "nodes: $f is missing (scripts/setup-debian.sh; cargo build -p flatlab-cli -p flatlab-kube-standin)" >&2; exit 1; }
done

step() { printf 'nodes (%s): %s\n' "$run" "$*"; }
cache=$("$root/tests/netboot/debian/build.sh")
step "Debian-built live system and install image from $cache"
qemu_accel_init "$cache/live.vmlinuz"

work=$(mktemp -d /tmp/flatlab-nodes.XXXXXX)
id=$$
ns_sw=flnsw$id ns_r=flnr$id ns_b=flnb$id
pids=()
status=1
cleanup() {
  if [[ $status -ne 0 ]]; then
    for sock in "$work"/monitor-*.sock; do
      [[ -S $sock ]] || continue
      m=${sock##*/monitor-}; m=${m%.sock}
      python3 "$root/tests/netboot/screendump.py" "$sock" "$work/screen-$m.png" 2>/dev/null || true
    done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$ns_sw" "$ns_r" "$ns_b"; do ip netns del "$ns" 2>/dev/null || true; done
  if [[ $status -ne 0 || -n ${NODES_KEEP_LOGS:-} ]]; then
    out=$root/artifacts/netboot-nodes/$run
    rm -rf "$out"; mkdir -p "$out"
    # What each screen showed (firmware menus and iPXE do not always reach the serial console).
    cp "$work"/*.log "$work"/*.json "$work"/*.png "$out/" 2>/dev/null || true
    for f in "$work"/*.log; do echo "----- $(basename "$f") (last 30 lines)"; tail -n 30 "$f" | cut -c1-220; done
    echo "nodes ($run): logs kept in $out"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- the mirror: the stand-ins, the image signed with a throwaway key --------------------------
release=$work/mirror/stable/amd64-usr/$version
mkdir -p "$release" "$work/key/usr/share/flatlab" "$work/gnupg"
chmod 700 "$work/gnupg"
export GNUPGHOME=$work/gnupg
gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-gen-key 'Flatlab test images <test@flatlab.invalid>' ed25519 sign never
gpg --batch --armor --export >"$work/key/usr/share/flatlab/image-signing-key.asc"
# A copy (or a hard link), not a symlink: the boot server refuses links out of its mirror.
ln "$cache/disk.bin.bz2" "$release/flatcar_production_image.bin.bz2" 2>/dev/null || cp "$cache/disk.bin.bz2" "$release/flatcar_production_image.bin.bz2"
gpg --batch --quiet --detach-sign -o "$release/flatcar_production_image.bin.bz2.sig" "$cache/disk.bin.bz2"
unset GNUPGHOME
cp "$cache/live.vmlinuz" "$release/flatcar_production_pxe.vmlinuz"
# The key flatcar-install trusts goes into the live initrd as a second, concatenated cpio archive.
(cd "$work/key" && find . | cpio -o -H newc -R 0:0 --quiet | gzip) | cat "$cache/live.cpio.gz" - >"$release/flatcar_production_pxe_image.cpio.gz"
k3s_dir=$work/mirror/k3s/$k3s_version
mkdir -p "$k3s_dir"
# Stripped, as K3s's release binary is: the debug symbols are most of the stand-in's size, and
# every node's Ignition fetches it and hashes it under TCG.
strip -o "$k3s_dir/k3s" "$k3s_standin"
k3s_sha=$(sha256sum "$k3s_dir/k3s" | cut -d' ' -f1)
if [[ $run == three ]]; then
  echo "$k3s_sha  k3s" >"$k3s_dir/k3s.sha256"          # pinned: an Ignition remote file
  # A mirrored air-gap image tarball: every node's Ignition fetches it, pinned by its hash.
  head -c 1048576 /dev/urandom >"$k3s_dir/k3s-airgap-images-amd64.tar.zst"
  echo "$(sha256sum "$k3s_dir/k3s-airgap-images-amd64.tar.zst" | cut -d' ' -f1)  k3s-airgap-images-amd64.tar.zst" \
    >"$k3s_dir/k3s-airgap-images-amd64.tar.zst.sha256"
else
  echo "$k3s_sha  k3s" >"$k3s_dir/sha256sum-amd64.txt"  # as on the release page: the get-k3s unit
fi

# --- the plan --------------------------------------------------------------------------------------
declare -A firmware mac address
if [[ $run == one ]]; then
  nodes=(cp1)
  firmware=([cp1]=ovmf)
else
  nodes=(cp1 cp2 cp3)
  firmware=([cp1]=seabios [cp2]=ovmf [cp3]=seabios)
fi
i=0
for n in "${nodes[@]}"; do
  i=$((i + 1))
  mac[$n]=52:54:00:78:00:0$i
  address[$n]=10.77.0.1$i
done
{
  cat <<EOF
version: 1
name: nodes-$run
os: {channel: stable, version: $version, arch: amd64}
kubernetes: {k3s_version: $k3s_version}
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j test@flatlab
network: {subnet: 10.77.0.0/24, gateway: 10.77.0.1, dns: [10.77.0.1], ntp: [10.77.0.1]}
nodes:
EOF
  for n in "${nodes[@]}"; do
    # `one` names its disk as the inventory suggests (the udev by-id link of -drive serial=).
    disk=/dev/vda
    [[ $run == one ]] && disk=/dev/disk/by-id/virtio-flatlab-$n
    echo "  - {name: $n, mac: \"${mac[$n]}\", role: server, install_disk: $disk, address: ${address[$n]}/24}"
  done
} >"$work/plan.yaml"

# --- the network -----------------------------------------------------------------------------------
#   [router: dnsmasq 10.77.0.1] --veth-- [switch: bridge + one tap per machine] --veth-- [flatlab 10.77.0.2]
for ns in "$ns_sw" "$ns_r" "$ns_b"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$ns_sw" link add br0 type bridge
ip -n "$ns_sw" link set br0 up
for n in "${nodes[@]}"; do
  ip -n "$ns_sw" tuntap add dev "tap-$n" mode tap
  ip -n "$ns_sw" link set "tap-$n" master br0 up
done
ip -n "$ns_sw" link add sw-r type veth peer name r-eth netns "$ns_r"
ip -n "$ns_sw" link add sw-b type veth peer name b-eth netns "$ns_b"
ip -n "$ns_sw" link set sw-r master br0 up
ip -n "$ns_sw" link set sw-b master br0 up
ip -n "$ns_r" addr add 10.77.0.1/24 dev r-eth
ip -n "$ns_r" link set r-eth up
ip -n "$ns_b" addr add 10.77.0.2/24 dev b-eth
ip -n "$ns_b" link set b-eth up

ip netns exec "$ns_r" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=r-eth --bind-interfaces \
  --dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --dhcp-leasefile="$work/dnsmasq.leases" --log-dhcp \
  >"$work/dnsmasq.log" 2>&1 &
pids+=($!)

serve() {
  FLATLAB_LOG=info ip netns exec "$ns_b" "$flatlab" --db "$work/flatlab.db" serve "$work/plan.yaml" \
    --interface b-eth --dhcp proxy --mirror "$work/mirror" --ipxe-dir /usr/lib/ipxe --admin 127.0.0.1:7070 \
    >>"$work/flatlab.log" 2>&1 &
  serve_pid=$!
  pids+=($serve_pid)
  for _ in $(seq 1 100); do
    ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/machines >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "nodes: flatlab serve did not start" >&2
  return 1
}
step "flatlab serve --dhcp proxy beside dnsmasq"
serve
if [[ $run == one ]]; then
  # Inspected before its install, from another process while serve runs: at its first network
  # boot the machine reports its hardware and waits; armed then, it installs from where it is.
  "$flatlab" --db "$work/flatlab.db" inspect "nodes-$run" cp1 >>"$work/flatlab.log" 2>&1
  step "cp1: to be inspected at its first network boot (flatlab inspect)"
fi

# --- the machines ------------------------------------------------------------------------------------
start_machine() {  # start_machine NODE SERIAL_LOG: power the machine on (its disk as it is)
  local n=$1 serial=$2 fw
  case ${firmware[$n]} in
    seabios) fw=(-machine pc -device "virtio-net-pci,netdev=n0,mac=${mac[$n]},bootindex=1") ;;
    ovmf)
      [[ -f $work/vars-$n.fd ]] || cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars-$n.fd"
      # No iPXE ROM: OVMF's own PXE client fetches ipxe.efi from Flatlab's TFTP. IPv6 PXE off,
      # as docs/boot-server.md advises for UEFI machines: an installed machine's `exit` would
      # otherwise wait out a DHCPv6 PXE attempt before the firmware reaches the disk.
      fw=(-machine q35 -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n
          -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
          -drive if=pflash,format=raw,unit=1,file="$work/vars-$n.fd"
          -device "virtio-net-pci,netdev=n0,mac=${mac[$n]},romfile=,bootindex=1") ;;
  esac
  ip netns exec "$ns_sw" qemu-system-x86_64 "${qemu_accel[@]}" -m 1024 -smp 1 -display none -monitor "unix:$work/monitor-$n.sock,server,nowait" \
    -serial "file:$serial" -netdev "tap,id=n0,ifname=tap-$n,script=no,downscript=no" \
    "${fw[@]}" -drive "file=$work/disk-$n.img,if=none,id=d0,format=raw" -device "virtio-blk-pci,drive=d0,serial=flatlab-$n,bootindex=2" \
    >>"$work/qemu-$n.log" 2>&1 &
  pids+=($!)
  step "$n: QEMU (${firmware[$n]}, $qemu_accel_kind) started"
}
t_start=$(date +%s)
for n in "${nodes[@]}"; do
  truncate -s 2G "$work/disk-$n.img"
  start_machine "$n" "$work/serial-$n.log"
done

machines() { ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/machines 2>/dev/null; }
stage_of() { python3 -c 'import json,sys; m=[x for x in json.load(sys.stdin) if x["node"]==sys.argv[1]]; print(m[0]["stage"] if m else "")' "$1"; }
all_reached() {  # all_reached JSON STAGE...: every node's stage is one of STAGE
  local json=$1 n s; shift
  for n in "${nodes[@]}"; do
    s=$(printf '%s' "$json" | stage_of "$n" 2>/dev/null || true)
    [[ " $* " == *" $s "* ]] || return 1
  done
}

killed=0 inspected=0 stage_when_inspected=""
declare -A seen_stage
json=""
step "waiting for every machine to report k3s-ready (at most ${timeout_secs}s)"
while (( $(date +%s) - t_start < timeout_secs )); do
  json=$(machines || true)
  if [[ -n $json ]]; then
    echo "$json" >"$work/machines.json"
    for n in "${nodes[@]}"; do
      s=$(printf '%s' "$json" | stage_of "$n" 2>/dev/null || true)
      if [[ -n $s && ${seen_stage[$n]:-} != "$s" ]]; then
        seen_stage[$n]=$s
        step "$n: $s at $(( $(date +%s) - t_start ))s"
        echo "$n $s $(( $(date +%s) - t_start ))" >>"$work/stages.log"
      fi
    done
    all_reached "$json" k3s-ready && break
    printf '%s' "$json" | grep -q '"stage":"failed"' && { step "a machine failed"; break; }
    # `one`: once the inspected machine's hardware is in, arm it; its live system installs.
    if [[ $run == one && $inspected -eq 0 ]] \
      && "$flatlab" --db "$work/flatlab.db" inventory "nodes-$run" --json 2>/dev/null | grep -q '"node": *"cp1"'; then
      stage_when_inspected=$(printf '%s' "$json" | stage_of cp1)
      step "cp1: inspected (its hardware is in, stage $stage_when_inspected); flatlab arm: it installs from its live system"
      "$flatlab" --db "$work/flatlab.db" arm "nodes-$run" cp1 >>"$work/flatlab.log" 2>&1
      inspected=1
    fi
    # Once every machine is installed (they reboot into their disks now, nothing streams an
    # image), kill the boot server without warning and start it again.
    if [[ $run == three && $killed -eq 0 ]] && all_reached "$json" installed booted k3s-ready; then
      step "SIGKILL to flatlab serve (pid $serve_pid) with every machine installed; starting it again"
      kill -9 "$serve_pid"
      wait "$serve_pid" 2>/dev/null || true
      killed=1
      serve
    fi
  fi
  sleep 2
done
elapsed=$(( $(date +%s) - t_start ))
json=$(machines || true)
echo "$json" >"$work/machines.json"

# --- three: a server lost, another reinstalled through whichever server is up ----------------------
monitor() {  # monitor NODE COMMAND: a QEMU monitor command
  python3 - "$work/monitor-$1.sock" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10); s.connect(sys.argv[1])
s.recv(4096); s.sendall((sys.argv[2] + "\n").encode()); time.sleep(0.5); s.close()
PY
}
rejoin_elapsed=""
if [[ $run == three ]] && all_reached "$json" k3s-ready; then
  step "cp1 powered off; cp2 armed (flatlab arm) and reset: it reinstalls with cp1 gone"
  [[ -n ${NODES_REINSTALL_MARKER:-} ]] && touch "$NODES_REINSTALL_MARKER"
  monitor cp1 quit || true
  "$flatlab" --db "$work/flatlab.db" arm "nodes-$run" cp2 >>"$work/flatlab.log" 2>&1
  # The running serve takes up what another process armed within 2 s.
  for _ in $(seq 1 20); do
    [[ $(machines | stage_of cp2) == armed ]] && break
    sleep 0.5
  done
  joins_before=$(grep -ac 'k3s-standin: server joins' "$work/serial-cp2.log" || true)
  monitor cp2 system_reset
  t_rejoin=$(date +%s)
  seen_stage[cp2]=armed
  while (( $(date +%s) - t_rejoin < 900 )); do
    json=$(machines || true)
    s=$(printf '%s' "$json" | stage_of cp2 2>/dev/null || true)
    if [[ -n $s && ${seen_stage[cp2]} != "$s" ]]; then
      seen_stage[cp2]=$s
      step "cp2 (reinstall): $s at $(( $(date +%s) - t_rejoin ))s"
    fi
    [[ $s == k3s-ready || $s == failed ]] && break
    sleep 2
  done
  rejoin_elapsed=$(( $(date +%s) - t_rejoin ))
  echo "$json" >"$work/machines.json"
fi

# --- three: every server lost, the cluster restored from a snapshot onto new disks -----------------
# The snapshot is the one a server of this cluster would have taken: the identity cp1's K3s
# started the cluster with, made with the token of what Flatlab rendered. `flatlab cluster
# restore` arms cp1 to restore it and cp2, cp3 to rejoin; all three are powered off, their disks
# wiped, and powered on again.
restore_elapsed="" identity=""
if [[ $run == three && $(printf '%s' "$json" | stage_of cp2) == k3s-ready ]]; then
  identity=$(grep -ao 'k3s-standin: started a new cluster [0-9a-f-]*' "$work/serial-cp1.log" | head -n 1 | awk '{print $NF}')
  step "every server lost: restoring cluster $identity from a snapshot onto new disks"
  "$flatlab" --db "$work/flatlab.db" render "nodes-$run" -o "$work/bundle" >>"$work/flatlab.log" 2>&1
  snapshot=$("$k3s_standin" snapshot --config-ign "$work/bundle/nodes/cp1/config.ign" --identity "$identity" --node cp1 \
    --taken "$(date +%s)" --k3s "$k3s_version" --out "$work/snapshot")
  for n in cp2 cp3; do monitor "$n" quit || true; done
  sleep 1
  "$flatlab" --db "$work/flatlab.db" cluster restore "nodes-$run" "$snapshot" --no-wait >>"$work/flatlab.log" 2>&1
  for _ in $(seq 1 20); do
    all_reached "$(machines)" armed && break
    sleep 0.5
  done
  t_restore=$(date +%s)
  for n in "${nodes[@]}"; do
    rm -f "$work/disk-$n.img" "$work/vars-$n.fd"
    truncate -s 2G "$work/disk-$n.img"
    start_machine "$n" "$work/serial-$n-restore.log"
    seen_stage[$n]=armed
  done
  while (( $(date +%s) - t_restore < 1200 )); do
    json=$(machines || true)
    for n in "${nodes[@]}"; do
      s=$(printf '%s' "$json" | stage_of "$n" 2>/dev/null || true)
      if [[ -n $s && ${seen_stage[$n]} != "$s" ]]; then
        seen_stage[$n]=$s
        step "$n (restore): $s at $(( $(date +%s) - t_restore ))s"
      fi
    done
    all_reached "$json" k3s-ready && break
    printf '%s' "$json" | grep -q '"stage":"failed"' && break
    sleep 2
  done
  restore_elapsed=$(( $(date +%s) - t_restore ))
  echo "$json" >"$work/machines.json"
fi

# --- checks --------------------------------------------------------------------------------------------
failures=()
all_reached "$json" k3s-ready || failures+=("not every machine reached k3s-ready in ${elapsed}s: $(tr '\n' ' ' <"$work/stages.log" 2>/dev/null)")
for n in "${nodes[@]}"; do
  # In `three` the servers are installed again (cp2 twice, all three by the restore): the history
  # keeps what came before; the last install's own is what follows the last `armed`.
  since_armed=0
  [[ $run == three ]] && since_armed=1
  hist=$(printf '%s' "$json" | python3 -c 'import json,sys; m=[x for x in json.load(sys.stdin) if x["node"]==sys.argv[1]][0]; s=[h["stage"] for h in m["history"] if h.get("kind","stage")=="stage"]; a=[i for i,x in enumerate(s) if x=="armed"]; print(" ".join(s[a[-1]+1:] if a and sys.argv[2]=="1" else s))' "$n" "$since_armed" 2>/dev/null || true)
  for s in dhcp ipxe kernel initrd ignition installing installed booted k3s-ready; do
    want=1
    # The inspected machine installed from its inspection's live system: no second network
    # install (no iPXE script, kernel or initrd of an install).
    [[ $run == one && " ipxe kernel initrd " == *" $s "* ]] && want=0
    count=$(grep -o " $s " <<<" $hist " | wc -l || true)
    [[ $count -eq $want ]] || failures+=("$n: '$s' $count times in its history (not $want): $hist")
  done
  serial=$work/serial-$n.log
  # Once (cp2 of `three` twice: it is reinstalled): flatcar-install wrote the disk once per
  # install, Ignition ran on the first disk boot.
  installs=1
  [[ $run == three && $n == cp2 ]] && installs=2
  [[ $(grep -ac 'Success! Flatcar Container Linux (Flatlab stand-in)' "$serial") -eq $installs ]] || failures+=("$n: flatcar-install did not succeed exactly $installs time(s)")
  grep -aq 'disk-init: Ignition done' "$serial" || failures+=("$n: Ignition did not run on the first disk boot")
  grep -aq 'k3s-standin: server ready' "$serial" || failures+=("$n: the K3s stand-in never got ready")
  # Real udev applied the rendered .link that arms Wake-on-LAN to the planned NIC.
  grep -aqi "standin-facts: [^ ]* (${mac[$n]}) link file /etc/systemd/network/50-flatlab-wol.link" "$serial" \
    || failures+=("$n: udev did not apply Flatlab's Wake-on-LAN .link to ${mac[$n]}: $(grep -a 'standin-facts' "$serial" | head -n 2 | tr -d '\r' | tr '\n' ' ')")
  if [[ ${firmware[$n]} == ovmf ]]; then
    # After `exit` from the disk-boot script, OVMF's next entry is UEFI HTTP boot (option 60
    # HTTPClient): Flatlab answers it with the URL of its iPXE, which OVMF loads and starts.
    grep -aq 'BdsDxe: starting Boot[0-9A-F]* "UEFI HTTPv4' "$serial" || failures+=("$n: OVMF never started iPXE by UEFI HTTP boot")
    grep -aq 'HTTPClient:Arch:00016' "$work/dnsmasq.log" || failures+=("$n: no UEFI HTTP boot request was seen on the LAN")
  fi
  if grep -aq 'k3s-standin: .*FAILED' "$serial"; then failures+=("$n: $(grep -a 'k3s-standin: .*FAILED' "$serial" | head -1 | tr -d '\r')"); fi
done
# Each install posted the machine's hardware: what QEMU gave it.
inventory=$("$flatlab" --db "$work/flatlab.db" inventory "nodes-$run" --json 2>&1) || failures+=("flatlab inventory failed: $inventory")
echo "$inventory" >"$work/inventory.json"
for n in "${nodes[@]}"; do
  why=$(python3 - "$n" "${mac[$n]}" "$work/inventory.json" <<'PY'
import json, sys
node, mac, path = sys.argv[1:]
m = [x for x in json.load(open(path)) if x["node"] == node]
if not m:
    print(f"{node}: no inventory"); sys.exit(1)
inv = m[0]["inventory"]
disks = [d for d in inv["disks"] if d["size_bytes"] == 2 << 30 and d["serial"] == f"flatlab-{node}"]
problems = []
if inv["memory_bytes"] != 1 << 30: problems.append(f"memory {inv['memory_bytes']} (QEMU -m 1024)")
if not disks: problems.append(f"no 2 GiB disk with serial flatlab-{node}: {inv['disks']}")
elif f"/dev/disk/by-id/virtio-flatlab-{node}" not in disks[0]["by_id"]: problems.append(f"by-id links {disks[0]['by_id']}")
if m[0]["suggested_install_disk"] != f"/dev/disk/by-id/virtio-flatlab-{node}": problems.append(f"suggested {m[0]['suggested_install_disk']}")
if not any(n["mac"] == mac for n in inv["nics"]): problems.append(f"no NIC {mac}: {inv['nics']}")
if problems:
    print(f"{node}: inventory: " + "; ".join(problems)); sys.exit(1)
PY
  ) || failures+=("$why")
done
if [[ $run == one ]]; then
  ((inspected == 1)) || failures+=("cp1 was never inspected (no inventory from its inspection's live system)")
  [[ " armed dhcp " == *" $stage_when_inspected "* ]] || failures+=("cp1's install began before it was armed (stage $stage_when_inspected)")
  grep -q 'inspecting: the live system boots' "$work/flatlab.log" || failures+=("cp1 never got its inspection's live system")
  grep -q 'machine inventory received' "$work/flatlab.log" || failures+=("cp1's inspection never reported its hardware")
  grep -q "installing from the inspection's live system" "$work/machines.json" \
    || failures+=("cp1 did not install from its inspection's live system")
fi
if [[ $run == three ]]; then
  for n in "${nodes[@]}"; do
    grep -aq 'k3s-standin: air-gap images: k3s-airgap-images-amd64.tar.zst (1048576 bytes)' "$work/serial-$n.log" \
      || failures+=("$n: the mirrored air-gap images did not reach /var/lib/rancher/k3s/agent/images")
  done
  grep -aq 'k3s-standin: first server: 11 CA files, token pins server-ca.crt' "$work/serial-cp1.log" || failures+=("cp1 did not start the cluster with Flatlab's CA files")
  for n in cp2 cp3; do
    grep -aqE "k3s-standin: server joins https://10\.77\.0\.1[123]:6443: its CA matches the token, and it took the token.s secret" "$work/serial-$n.log" || failures+=("$n did not join a server with a token that pins its CA")
  done
  ((killed == 1)) || failures+=("the boot server was never killed (not every machine got installed)")
  # The reinstall: cp2 found cp1 gone and joined through cp3 (its join step wrote cp3 into the
  # drop-in; the stand-in read it there), to k3s-ready.
  if [[ -z $restore_elapsed ]]; then
    failures+=("the cluster was never restored (cp2's reinstall did not reach k3s-ready)")
  else
    all_reached "$json" k3s-ready || failures+=("not every server reached k3s-ready after the restore, in ${restore_elapsed}s")
    [[ -n $identity ]] || failures+=("cp1's K3s never said which cluster it started")
    name=$(basename "$snapshot")
    sha=$(sha256sum "$snapshot" | cut -d' ' -f1)
    r1=$work/serial-cp1-restore.log
    grep -aq "k3s-standin: restored snapshot $name (sha256 $sha, [0-9]* bytes, taken by cp1) of cluster $identity: reset done, the token opens it" "$r1" \
      || failures+=("cp1 did not restore $name (sha256 $sha) of cluster $identity: $(grep -a 'k3s-standin' "$r1" | tr -d '\r' | tail -n 3 | tr '\n' ' ')")
    grep -aq "k3s-standin: cluster $identity from its datastore" "$r1" || failures+=("cp1 did not start the restored cluster $identity")
    grep -aq 'k3s-standin: the reset flag is cleared' "$r1" || failures+=("cp1 never started normally after the reset")
    for n in cp2 cp3; do
      grep -aq "k3s-standin: joined cluster $identity with an empty datastore" "$work/serial-$n-restore.log" \
        || failures+=("$n did not rejoin the restored cluster $identity with a wiped datastore")
    done
    grep -q "serving a machine's private file" "$work/flatlab.log" || failures+=("the boot server never served the snapshot to cp1")
    if grep -aq 'k3s-standin: .*FAILED' "$work"/serial-*-restore.log; then
      failures+=("after the restore: $(grep -ah 'k3s-standin: .*FAILED' "$work"/serial-*-restore.log | head -n 2 | tr -d '\r' | tr '\n' ' ')")
    fi
  fi
  if [[ -z $rejoin_elapsed ]]; then
    failures+=("cp2 was never reinstalled (the first installs did not all reach k3s-ready)")
  else
    [[ $(printf '%s' "$json" | stage_of cp2) == k3s-ready ]] || failures+=("cp2's reinstall did not reach k3s-ready in ${rejoin_elapsed}s")
    joins=$(grep -a 'k3s-standin: server joins' "$work/serial-cp2.log" | tail -n +$((joins_before + 1)) | tr -d '\r')
    grep -q 'server joins https://10.77.0.13:6443: its CA matches the token, and it took the token.s secret' <<<"$joins" || failures+=("cp2's reinstall did not join through cp3: ${joins:-nothing}")
    grep -aq 'k3s-standin: /etc/rancher/k3s/config.yaml.d/50-flatlab-join.yaml sets server' "$work/serial-cp2.log" || failures+=("cp2's K3s never read the join step's drop-in")
  fi
fi
# The live system's own DHCP client took a second lease (Flatcar's DUID client identifier):
# the install followed it there (crates/bootd/src/neighbors.rs).
grep -q 'moved to a new address' "$work/flatlab.log" || failures+=("no install moved to the live system's second address (did dnsmasq hand out one?)")
# Real Ignition, systemd and the install fetch each config once per boot attempt, from the
# machine's own MAC: a legitimate install raises no alert.
if grep -q '"kind":"alert"' "$work/machines.json"; then
  failures+=("a legitimate install raised an alert: $(grep -o '"kind":"alert"[^}]*' "$work/machines.json" | head -n 3 | tr '\n' ' ')")
fi
grep -q 'served once for this boot attempt' "$work/flatlab.log" || failures+=("no config was marked served for its boot attempt")

if ((${#failures[@]})); then
  printf "nodes ($run): FAILED: %s\n" "${failures[@]}"
  exit 1
fi
status=0
mkdir -p "$root/target"
times=$root/target/netboot-nodes-times.txt
echo "nodes ($run): ${#nodes[@]} machine(s) from power-on to k3s-ready in ${elapsed}s" | tee -a "$times"
# (if, not `[[ ]] &&`: the script's last command is its exit status.)
if [[ -n $rejoin_elapsed ]]; then
  echo "nodes ($run): cp2 reinstalled with cp1 off, joined through cp3, k3s-ready in ${rejoin_elapsed}s" | tee -a "$times"
fi
if [[ -n $restore_elapsed ]]; then
  echo "nodes ($run): every server lost, restored from a snapshot onto new disks: all k3s-ready in ${restore_elapsed}s" | tee -a "$times"
fi
