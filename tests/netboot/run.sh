#!/usr/bin/env bash
# End to end: a QEMU machine network-boots through `flatlab serve`, with --dhcp proxy while dnsmasq
# in another network namespace plays the home router's DHCP, and with --dhcp full alone.
#
#   [fl-r: dnsmasq 10.77.0.1] --veth-- [fl-sw: bridge + tap + QEMU] --veth-- [fl-b: flatlab 10.77.0.2]
#
# The machine's iPXE ROM gets an address from the "router" and the boot script URL from Flatlab's
# proxy DHCP, loads the kernel and initrd from Flatlab's mirror (Debian's cloud kernel and a small
# initrd that plays the Flatcar live system), fetches its install Ignition config by token, and
# runs the *real* install.sh from that config, with a stand-in for flatcar-install that writes
# the mirror's disk image to the machine's disk. The admin API must then show it `installed`.
#
# Runs four times: `proxy` (dnsmasq is the router, Flatlab adds boot information), `full` (no
# other DHCP server: Flatlab hands out the addresses too), `ovmf` (proxy, with a UEFI machine
# whose firmware loads iPXE over TFTP) and `flood` (the same UEFI install while a LAN host sends
# 100,000 DHCPDISCOVERs from random MACs, 10,000 TFTP read requests it never acknowledges and
# 1,000 idle TCP connections at the boot server, from four addresses: its memory stays bounded,
# the tables of machines without a plan stay at their caps, and the machine still installs).
# Needs root (network namespaces). Prints `netboot: N passed, N failed`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $# -eq 0 ]]; then
  # Both DHCP modes, one machine each; one closing line for the lot.
  passed=0 failed=0
  for mode in proxy full ovmf flood; do
    if "$0" "$mode"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done
  echo "netboot: $passed passed, $failed failed"
  exit $((failed > 0))
fi
mode=$1  # proxy: dnsmasq is the router and Flatlab adds boot information; full: Flatlab alone; ovmf, flood: proxy, UEFI
dhcp=$mode
[[ $mode == ovmf || $mode == flood ]] && dhcp=proxy
flatlab=${FLATLAB_BIN:-$root/target/debug/flatlab}
timeout_secs=${NETBOOT_TIMEOUT:-300}
mac=52:54:00:77:00:01

source "$root/tests/lib/required.sh"
source "$root/tests/lib/qemu.sh"
[[ $(id -u) -eq 0 ]] || cannot_run netboot "needs root to create network namespaces"
for tool in qemu-system-x86_64 dnsmasq busybox cpio curl ip python3 sqlite3; do
  command -v "$tool" >/dev/null || { echo "netboot: $tool is missing (scripts/setup-debian.sh installs it)" >&2; exit 1; }
done
[[ -x $flatlab ]] || { echo "netboot: build flatlab first (cargo build -p flatlab-cli)" >&2; exit 1; }

work=$(mktemp -d /tmp/flatlab-netboot.XXXXXX)
id=$$
ns_sw=flsw$id ns_r=flr$id ns_b=flb$id ns_a=fla$id
pids=()
status=1
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$ns_sw" "$ns_r" "$ns_b" "$ns_a"; do ip netns del "$ns" 2>/dev/null || true; done
  if [[ $status -ne 0 ]]; then
    mkdir -p "$root/artifacts/netboot"
    cp "$work"/*.log "$root/artifacts/netboot/" 2>/dev/null || true
    for f in "$work"/*.log; do echo "----- $(basename "$f") (last 40 lines)"; tail -n 40 "$f"; done
    echo "netboot: logs kept in artifacts/netboot/"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf 'netboot: %s\n' "$*"; }

# --- the "Flatcar" kernel and live system ------------------------------------------------------
cache=$root/target/netboot-cache
if [[ ! -f $cache/vmlinuz ]]; then
  step "fetching Debian's cloud kernel package (once; extracted, not installed)"
  mkdir -p "$cache/pkg"
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  if [[ -z $pkg ]]; then
    apt-get update -qq
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  (cd "$cache/pkg" && apt-get download "$pkg" >/dev/null 2>&1 && dpkg-deb -x "$pkg"_*.deb x)
  kver=${pkg#linux-image-}
  cp "$cache/pkg/x/boot/vmlinuz-$kver" "$cache/vmlinuz"
  mkdir -p "$cache/modules"
  for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk; do
    find "$cache/pkg/x/lib/modules/$kver" -name "$m.ko" -exec cp {} "$cache/modules/" \;
  done
  rm -rf "$cache/pkg"
fi

step "building the live system's initrd"
rd=$work/initrd
mkdir -p "$rd"/{bin,sbin,usr/bin,usr/sbin,usr/share/udhcpc,lib,lib64,modules,proc,sys,dev,tmp,run,etc,var/lib}
cp "$(command -v busybox)" "$rd/bin/busybox"
cp "$cache"/modules/*.ko "$rd/modules/"
# bash and curl with their libraries, so that the real install.sh runs unchanged.
for bin in /bin/bash /usr/bin/curl; do
  cp "$bin" "$rd$bin"
  for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /^[[:space:]]*\// { print $1 }'); do
    mkdir -p "$rd$(dirname "$lib")"
    cp -L "$lib" "$rd$lib"
  done
done
cat > "$rd/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/busybox sh
case "$1" in
  bound|renew)
    ifconfig "$interface" "$ip" netmask "$subnet" up
    [ -n "$router" ] && route add default gw "$router" dev "$interface" 2>/dev/null
    echo "live: $interface has $ip" ;;
esac
EOF
cat > "$rd/usr/bin/flatcar-install" <<'EOF'
#!/bin/bash
# Stands in for Flatcar's flatcar-install: checks its arguments, fetches the disk image from the
# mirror the way the real one does (BASEURL/VERSION/flatcar_production_image.bin.bz2) and writes it.
set -euo pipefail
while getopts "d:V:b:i:o:C:B:u" opt; do
  case $opt in d) disk=$OPTARG ;; V) version=$OPTARG ;; b) base=$OPTARG ;; i) ign=$OPTARG ;; *) ;; esac
done
grep -q '"ignition"' "$ign" || { echo "flatcar-install: $ign is not an Ignition config" >&2; exit 1; }
curl -fsS -o /tmp/image.bin.bz2 "$base/$version/flatcar_production_image.bin.bz2"
dd if=/tmp/image.bin.bz2 of="$disk" conv=fsync 2>/dev/null
echo "live: flatcar-install wrote $(wc -c </tmp/image.bin.bz2) bytes of $version to $disk"
EOF
cat > "$rd/usr/bin/systemctl" <<'EOF'
#!/bin/busybox sh
echo "live: systemctl $*"
[ "$1" = reboot ] && poweroff -f
exit 0
EOF
cat > "$rd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
exec >/dev/ttyS0 2>&1
echo "live: Flatlab test live system starting"
for pass in 1 2 3; do
  for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk; do
    grep -q "^$m " /proc/modules || insmod /modules/$m.ko 2>/dev/null
  done
done
sleep 1
ifconfig lo up
ifconfig eth0 up
until udhcpc -i eth0 -n -q -t 5 -s /usr/share/udhcpc/default.script; do echo "live: no DHCP yet"; done
url=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^ignition.config.url=//p')
echo "live: install config at $url"
curl -fsS --retry 5 -o /tmp/install.ign "$url" || { echo "live: cannot fetch the install config"; poweroff -f; }
# The way Ignition would write /opt/flatlab/install.sh: take its data URL and decode it.
src=$(awk '/"source":/ { s = $2 } /"path": "\/opt\/flatlab\/install.sh"/ { print s }' /tmp/install.ign | tr -d '",')
mkdir -p /opt/flatlab
/bin/bash -c 'printf "%b" "$(printf "%s" "${1#data:,}" | sed "s/%/\\\\x/g")"' _ "$src" > /opt/flatlab/install.sh
chmod 755 /opt/flatlab/install.sh
head -3 /opt/flatlab/install.sh
echo "live: running install.sh"
/bin/bash /opt/flatlab/install.sh
echo "live: install.sh exited $?"
poweroff -f
EOF
chmod 755 "$rd/init" "$rd/usr/bin/flatcar-install" "$rd/usr/bin/systemctl" "$rd/usr/share/udhcpc/default.script"
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.cpio.gz"

# --- mirror, plan ---------------------------------------------------------------------------------
version=4593.2.5
release=$work/mirror/stable/amd64-usr/$version
mkdir -p "$release"
cp "$cache/vmlinuz" "$release/flatcar_production_pxe.vmlinuz"
cp "$work/initrd.cpio.gz" "$release/flatcar_production_pxe_image.cpio.gz"
head -c 1048576 /dev/urandom > "$release/flatcar_production_image.bin.bz2"
cat > "$work/plan.yaml" <<EOF
version: 1
name: netboot-test
os: {channel: stable, version: $version, arch: amd64}
kubernetes: {k3s_version: v1.32.2+k3s1}
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j test@flatlab
network: {subnet: 10.77.0.0/24, gateway: 10.77.0.1, dns: [10.77.0.1]}
nodes:
  - {name: node1, mac: "$mac", role: server, install_disk: /dev/vda}
EOF
truncate -s 64M "$work/disk.img"

# --- the network ---------------------------------------------------------------------------------
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

if [[ $dhcp == proxy ]]; then
step "starting dnsmasq as the home router"
ip netns exec "$ns_r" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=r-eth --bind-interfaces \
  --dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --dhcp-leasefile="$work/dnsmasq.leases" --log-dhcp \
  >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
fi

step "starting flatlab serve --dhcp $dhcp"
range=""
[[ $dhcp == full ]] && range=10.77.0.200-10.77.0.210
FLATLAB_LOG=info ip netns exec "$ns_b" "$flatlab" --db "$work/flatlab.db" serve "$work/plan.yaml" \
  --interface b-eth --dhcp "$dhcp" ${range:+--dhcp-range "$range"} --mirror "$work/mirror" --ipxe-dir /usr/lib/ipxe --admin 127.0.0.1:7070 \
  >"$work/flatlab.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 1 50); do
  ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/machines >/dev/null 2>&1 && break
  sleep 0.2
done

firmware=(-device "virtio-net-pci,netdev=n0,mac=$mac,bootindex=1")
if [[ $mode == ovmf || $mode == flood ]]; then
  # UEFI: OVMF's own PXE (no iPXE ROM on the card) loads snponly.efi over TFTP.
  cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
  firmware=(-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
    -drive if=pflash,format=raw,unit=1,file="$work/vars.fd" -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n
    -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=,bootindex=1")
fi

if [[ $mode == flood ]]; then
  # The attacker: four addresses on the same switch.
  ip netns add "$ns_a"
  ip -n "$ns_a" link set lo up
  ip -n "$ns_sw" link add sw-a type veth peer name a-eth netns "$ns_a"
  ip -n "$ns_sw" link set sw-a master br0 up
  for a in 60 61 62 63; do ip -n "$ns_a" addr add "10.77.0.$a/24" dev a-eth; done
  ip -n "$ns_a" link set a-eth up
  sources=10.77.0.60,10.77.0.61,10.77.0.62,10.77.0.63
  step "flooding the boot server from $sources"
  ip netns exec "$ns_a" python3 "$root/tests/netboot/flood.py" tcp 10.77.0.2:8080 "$sources" 1000 90 >"$work/flood-tcp.log" 2>&1 &
  pids+=($!)
  ip netns exec "$ns_a" python3 "$root/tests/netboot/flood.py" tftp 10.77.0.2 "$sources" 10000 60 >"$work/flood-tftp.log" 2>&1 &
  pids+=($!)
  udp_before=$(ip netns exec "$ns_b" awk '/^Udp: [0-9]/ { print $2, $4 }' /proc/net/snmp)
  ip netns exec "$ns_a" python3 "$root/tests/netboot/flood.py" dhcp 10.77.0.2 "$sources" 100000 30 >"$work/flood-dhcp.log" 2>&1 &
  pids+=($!)
  # And it tries to get the machine's configs: its script with the machine's MAC from its own
  # address, then guessed tokens (once its idle connections were closed, 10 s on).
  (sleep 15
   ip netns exec "$ns_a" curl -s -o /dev/null -w 'script %{http_code}\n' --interface 10.77.0.60 \
     "http://10.77.0.2:8080/v1/boot/${mac//:/-}.ipxe"
   for i in $(seq 1 25); do
     ip netns exec "$ns_a" curl -s -o /dev/null -w 'guess %{http_code}\n' --interface 10.77.0.61 \
       "http://10.77.0.2:8080/v1/ignition/GuessedToken$(printf %020d "$i")"
   done) >"$work/steal.log" 2>&1 &
  pids+=($!)
  # The boot server's memory, every second.
  (while kill -0 "$serve_pid" 2>/dev/null; do awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status" 2>/dev/null; sleep 1; done) >"$work/rss.log" &
  pids+=($!)
fi

# NETBOOT_CAPTURE_HTTP=DIR: record the HTTP request heads the machine sends (iPXE, curl) as
# fixtures for the HTTP fuzz target and tests (crates/bootd/tests/fixtures/http).
if [[ -n ${NETBOOT_CAPTURE_HTTP:-} ]]; then
  ip netns exec "$ns_b" tcpdump -i b-eth -w "$work/http.pcap" -U -s 0 'tcp dst port 8080' >"$work/tcpdump.log" 2>&1 &
  tcpdump_pid=$!
  pids+=($tcpdump_pid)
  sleep 1
fi

qemu_accel_init "$cache/vmlinuz"
step "booting the machine in QEMU ($qemu_accel_kind${firmware[1]:+, OVMF})"
ip netns exec "$ns_sw" qemu-system-x86_64 "${qemu_accel[@]}" -m 768 -nographic -no-reboot -serial "file:$work/serial.log" -monitor none \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
  "${firmware[@]}" \
  -drive file="$work/disk.img",if=virtio,format=raw,index=0 \
  >"$work/qemu.log" 2>&1 &
qemu_pid=$!
pids+=($qemu_pid)

step "waiting for the admin API to show the machine installed (at most ${timeout_secs}s)"
start=$(date +%s)
stage=""
while (( $(date +%s) - start < timeout_secs )); do
  json=$(ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/machines || true)
  stage=$(printf '%s' "$json" | python3 -c 'import json,sys; m=[x for x in json.load(sys.stdin) if x["node"]=="node1"]; print(m[0]["stage"] if m else "")' 2>/dev/null || true)
  [[ $stage == installed || $stage == failed ]] && break
  kill -0 "$qemu_pid" 2>/dev/null || { sleep 2; continue_after_exit=$((${continue_after_exit:-0} + 1)); (( continue_after_exit > 3 )) && break; }
  sleep 2
done
elapsed=$(( $(date +%s) - start ))
echo "$json" > "$work/machines.log"
if [[ -n ${NETBOOT_CAPTURE_HTTP:-} ]]; then
  kill "$tcpdump_pid" 2>/dev/null || true
  sleep 1
  python3 "$root/tests/netboot/http-heads.py" "$work/http.pcap" "$NETBOOT_CAPTURE_HTTP" "$mode"
fi

failures=()
[[ $stage == installed ]] || failures+=("machine stage is '$stage', not installed, after ${elapsed}s")
history=$(printf '%s' "$json" | python3 -c 'import json,sys; m=[x for x in json.load(sys.stdin) if x["node"]=="node1"][0]; print(" ".join(h["stage"] for h in m["history"] if h.get("kind", "stage") == "stage"))' 2>/dev/null || true)
for s in dhcp ipxe kernel initrd ignition installing installed; do
  [[ " $history " == *" $s "* ]] || failures+=("history lacks '$s': $history")
done
grep -q "live: flatcar-install wrote 1048576 bytes of $version to /dev/vda" "$work/serial.log" \
  || failures+=("the live system did not write the image to its disk")
cmp -n 1048576 "$release/flatcar_production_image.bin.bz2" "$work/disk.img" >/dev/null \
  || failures+=("the disk does not hold the mirror's image")
if [[ $mode == ovmf || $mode == flood ]]; then
  grep -q 'TFTP transfer.*snponly.efi' "$work/flatlab.log" || failures+=("the firmware never fetched snponly.efi over TFTP")
fi
flood_figures=""
if [[ $mode == flood ]]; then
  # Let the floods end (the TCP holder holds 90 s), then read the figures.
  for _ in $(seq 1 120); do
    [[ -s $work/flood-tcp.log && -s $work/flood-tftp.log && -s $work/flood-dhcp.log ]] && break
    sleep 1
  done
  peak=$(awk '/^VmHWM/ { print $2 }' "/proc/$serve_pid/status")
  # How many datagrams the boot server's namespace took in, and dropped for a full socket buffer.
  read -r in_before err_before <<<"$udp_before"
  read -r in_after err_after <<<"$(ip netns exec "$ns_b" awk '/^Udp: [0-9]/ { print $2, $4 }' /proc/net/snmp)"
  udp="UDP datagrams received by the boot server's sockets $((in_after - in_before)), dropped (receive errors) $((err_after - err_before))"
  json=$(ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/machines || true)
  strangers=$(printf '%s' "$json" | python3 -c 'import json,sys; print(sum(1 for m in json.load(sys.stdin) if m["node"] is None))')
  rows=$(sqlite3 "$work/flatlab.db" 'SELECT count(*) FROM discovered_machines')
  ((strangers <= 1024)) || failures+=("$strangers machines without a plan in the boot server (cap 1024)")
  ((rows <= 1024)) || failures+=("$rows machines without a plan in the database (cap 1024)")
  ((strangers >= 1000)) || failures+=("only $strangers strangers listed: did the DHCP flood reach the boot server?")
  ((peak < 200 * 1024)) || failures+=("the boot server's peak RSS was $((peak / 1024)) MiB (limit 200 MiB)")
  grep -q "sent 100000 DHCPDISCOVERs" "$work/flood-dhcp.log" || failures+=("the DHCP flood did not run: $(cat "$work/flood-dhcp.log")")
  grep -q "sent 10000 TFTP read requests" "$work/flood-tftp.log" || failures+=("the TFTP flood did not run: $(cat "$work/flood-tftp.log")")
  grep -q "opened [0-9]* idle TCP" "$work/flood-tcp.log" || failures+=("the TCP flood did not run: $(cat "$work/flood-tcp.log")")
  kill -0 "$serve_pid" 2>/dev/null || failures+=("the boot server died")
  # The attempts to steal the machine's configs were refused, and raised alerts.
  for _ in $(seq 1 30); do [[ $(grep -c . "$work/steal.log" 2>/dev/null) -ge 26 ]] && break; sleep 1; done
  grep -q '^script 403$' "$work/steal.log" || failures+=("the attacker's request for node1's script was not refused: $(head -n 1 "$work/steal.log")")
  [[ $(grep -c '^guess 403$' "$work/steal.log") -eq 25 ]] || failures+=("not every guessed token was refused: $(sort "$work/steal.log" | uniq -c | tr '\n' ' ')")
  alerts=$(printf '%s' "$json" | python3 -c 'import json,sys; m=[x for x in json.load(sys.stdin) if x["node"]=="node1"][0]; print(" ".join(h["alert"] + "<" + h.get("from", "") for h in m["history"] if h.get("kind") == "alert"))')
  [[ " $alerts " == *" foreign-mac<10.77.0.60 "* ]] || failures+=("no foreign-mac alert from 10.77.0.60 on node1's timeline: $alerts")
  server_alerts=$(ip netns exec "$ns_b" curl -fs http://127.0.0.1:7070/api/v1/alerts || true)
  grep -q '"alert":"wrong-tokens".*"from":"10.77.0.61"' <<<"$server_alerts" || failures+=("no wrong-tokens alert for 10.77.0.61: $server_alerts")
  flood_alerts="alerts: node1 $alerts; server $(printf '%s' "$server_alerts" | python3 -c 'import json,sys; print(" ".join(a["alert"] + "<" + a["from"] for a in json.load(sys.stdin)))')"
  flood_figures="; boot server peak RSS $((peak / 1024)) MiB (RSS samples: $(sort -n "$work/rss.log" | head -n 1)-$(sort -n "$work/rss.log" | tail -n 1) KiB), $strangers strangers listed, $rows in the database; $udp; $(cat "$work/flood-dhcp.log" "$work/flood-tftp.log" "$work/flood-tcp.log" | sed 's/^flood: //' | tr '\n' ';') $flood_alerts"
fi
if [[ $dhcp == proxy ]]; then
  grep -q "DHCPOFFER" "$work/dnsmasq.log" || failures+=("dnsmasq never offered an address")
  grep -q '"ip":"10.77.0.1[0-5][0-9]"' "$work/machines.log" || failures+=("the machine did not use the router's address")
else
  grep -q '"ip":"10.77.0.20[0-9]"' "$work/machines.log" || failures+=("the machine did not get an address from Flatlab's range")
  grep -q "live: eth0 has 10.77.0.20" "$work/serial.log" || failures+=("the live system did not get an address from Flatlab")
fi

if ((${#failures[@]})); then
  printf "netboot ($mode): FAILED: %s\n" "${failures[@]}"
  exit 1
fi
status=0
step "$mode: installed in ${elapsed}s; history: $history$flood_figures"
