//! `install.ign`: applied by the network-booted live system. One unit fetches the node's final
//! config, installs Flatcar to disk from the boot server's mirror, reports each stage, and reboots.

use flatlab_model::{ValidatedNode, ValidatedPlan};

use crate::Urls;
use crate::ignition::{ConfigBuilder, IgnitionSpec, MODE_0644, MODE_0755};

pub(crate) fn render(plan: &ValidatedPlan, node: &ValidatedNode, urls: &Urls, spec: IgnitionSpec) -> String {
    let mut b = ConfigBuilder::default();
    // The live system takes the same keys, so a stuck install can be looked at.
    b.ssh_keys(&plan.ssh_keys());
    // A hostname is at most 63 characters.
    let hostname: String = format!("{}-installer", node.name).chars().take(63).collect();
    b.file("/etc/hostname", MODE_0644, &format!("{}\n", hostname.trim_end_matches('-')));
    b.file("/opt/flatlab/install.sh", MODE_0755, &script(plan, node, urls));
    b.file("/opt/flatlab/inventory.sh", MODE_0755, INVENTORY);
    b.unit("flatlab-install.service", true, UNIT);
    b.build(spec)
}

const UNIT: &str = "\
[Unit]
Description=Flatlab: install Flatcar to disk
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/opt/flatlab/install.sh
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
";

pub(crate) fn script(plan: &ValidatedPlan, node: &ValidatedNode, urls: &Urls) -> String {
    let os = &plan.plan().os;
    format!(
        r#"#!/bin/bash
# Flatlab: install Flatcar {version} ({channel}, {arch}) to {disk} on node {name}.
# Every stage is reported to the boot server; any failure is reported with its reason.
set -euo pipefail

report_url='{report}'
final_url='{final_url}'
mirror='{mirror}'
disk='{disk}'

report() {{
  # Reporting must never stop the install; the boot server logs what it gets.
  curl -fsS --max-time 10 --retry 5 --retry-delay 2 --retry-all-errors -X POST \
    --data-urlencode "reason=${{2:-}}" "$report_url?stage=$1" >/dev/null || true
}}
fail() {{
  echo "flatlab: install failed: $1" >&2
  report failed "$1"
  exit 1
}}
trap 'fail "command failed (line $LINENO): $BASH_COMMAND"' ERR

report installing

# The machine's hardware, for the plan's inventory (never stops the install).
if inventory=$(/opt/flatlab/inventory.sh); then
  curl -fsS --max-time 10 --retry 3 --retry-delay 2 -X POST -H 'Content-Type: application/json' \
    --data-binary "$inventory" '{inventory}' >/dev/null || echo "flatlab: could not post the inventory" >&2
fi

final=$(mktemp)
for attempt in $(seq 1 30); do
  if curl -fsS --max-time 60 -o "$final" "$final_url" && [ -s "$final" ]; then
    break
  fi
  echo "flatlab: cannot fetch the final config yet (attempt $attempt of 30)" >&2
  sleep 5
done
[ -s "$final" ] || fail "could not download the final config from $final_url"

[ -b "$disk" ] || fail "install disk $disk does not exist on this machine; fix install_disk in the plan"

flatcar-install -d "$disk" -V '{version}' -b "$mirror" -i "$final" -o '' \
  || fail "flatcar-install to $disk failed (see the console or journalctl -u flatlab-install)"

report installed
sync
systemctl reboot
"#,
        version = os.version,
        channel = os.channel.as_str(),
        arch = os.arch.as_str(),
        disk = node.install_disk,
        name = node.name,
        report = urls.report,
        inventory = urls.inventory,
        final_url = urls.final_ignition,
        mirror = urls.mirror_board,
    )
}

/// Prints the machine's hardware as JSON (flatlab_model::Inventory), from /sys, /proc and
/// lsblk only, so it runs in any live system with bash and util-linux.
pub(crate) const INVENTORY: &str = r#"#!/bin/bash
# Flatlab: this machine's hardware as JSON, for the plan's inventory.
set -uo pipefail
json_str() {  # a JSON string, or null when empty
  local s=${1-}
  [ -z "$s" ] && { printf 'null'; return; }
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=$(printf '%s' "$s" | tr -d '\000-\037')
  printf '"%s"' "$s"
}
read_trim() { [ -r "$1" ] && tr -d '\n' <"$1" | sed 's/[[:space:]]*$//'; }

firmware=bios; [ -d /sys/firmware/efi ] && firmware=uefi
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cpus=$(grep -c '^processor' /proc/cpuinfo)
# Installed memory: the kernel's memory blocks (MemTotal leaves out what the kernel reserved).
memory=0
if [ -r /sys/devices/system/memory/block_size_bytes ]; then
  block=$((16#$(cat /sys/devices/system/memory/block_size_bytes)))
  blocks=$(grep -l online /sys/devices/system/memory/memory*/state 2>/dev/null | wc -l)
  memory=$((block * blocks))
fi
[ "$memory" -gt 0 ] || memory=$(( $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024 ))

nics=""
for d in /sys/class/net/*; do
  [ -e "$d/device" ] || continue
  n=${d##*/}
  driver=$(basename "$(readlink -f "$d/device/driver")" 2>/dev/null)
  speed=$(cat "$d/speed" 2>/dev/null); [[ $speed =~ ^[0-9]+$ ]] && [ "$speed" -gt 0 ] || speed=null
  nics+="${nics:+,}{\"name\":$(json_str "$n"),\"mac\":$(json_str "$(cat "$d/address")"),\"driver\":$(json_str "$driver"),\"speed_mbps\":$speed}"
done

disks=""
while read -r name; do
  sys=/sys/block/$name
  size=$(( $(cat "$sys/size") * 512 ))
  [ "$size" -gt 0 ] || continue
  links=""
  for l in /dev/disk/by-id/*; do
    [ -e "$l" ] && [ "$(readlink -f "$l")" = "/dev/$name" ] && links+="${links:+,}$(json_str "$l")"
  done
  parts=""
  # One KEY="value" line per device (lsblk escapes quotes inside values); the disk comes first.
  while IFS= read -r line; do
    [[ $line =~ ^NAME=\"([^\"]*)\"\ SIZE=\"([^\"]*)\"\ FSTYPE=\"([^\"]*)\"\ LABEL=\"([^\"]*)\"$ ]] || continue
    [ "${BASH_REMATCH[1]}" = "$name" ] && continue
    parts+="${parts:+,}{\"name\":$(json_str "${BASH_REMATCH[1]}"),\"size_bytes\":${BASH_REMATCH[2]:-0},\"fstype\":$(json_str "${BASH_REMATCH[3]}"),\"label\":$(json_str "${BASH_REMATCH[4]}")}"
  done < <(lsblk -bnP -o NAME,SIZE,FSTYPE,LABEL "/dev/$name" 2>/dev/null)
  rota=false; [ "$(cat "$sys/queue/rotational" 2>/dev/null)" = 1 ] && rota=true
  rm=false; [ "$(cat "$sys/removable" 2>/dev/null)" = 1 ] && rm=true
  # Model and serial as udev knows them (ATA, NVMe, USB), else from sysfs (virtio has serial).
  model=$(lsblk -dno MODEL "/dev/$name" 2>/dev/null | sed 's/[[:space:]]*$//')
  [ -n "$model" ] || model=$(read_trim "$sys/device/model")
  serial=$(lsblk -dno SERIAL "/dev/$name" 2>/dev/null | sed 's/[[:space:]]*$//')
  [ -n "$serial" ] || serial=$(read_trim "$sys/serial")
  disks+="${disks:+,}{\"name\":$(json_str "$name"),\"by_id\":[${links}],\"size_bytes\":$size,\"model\":$(json_str "$model"),\"serial\":$(json_str "$serial"),\"rotational\":$rota,\"removable\":$rm,\"partitions\":[${parts}]}"
done < <(ls /sys/block | grep -Ev '^(loop|ram|zram|dm-|md|sr|fd|nbd)')

printf '{"firmware":"%s","vendor":%s,"product":%s,"cpu_model":%s,"cpus":%s,"memory_bytes":%s,"nics":[%s],"disks":[%s]}\n' \
  "$firmware" "$(json_str "$(read_trim /sys/class/dmi/id/sys_vendor)")" "$(json_str "$(read_trim /sys/class/dmi/id/product_name)")" \
  "$(json_str "$cpu_model")" "${cpus:-0}" "$memory" "$nics" "$disks"
"#;
