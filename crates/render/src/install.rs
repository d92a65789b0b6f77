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

fn script(plan: &ValidatedPlan, node: &ValidatedNode, urls: &Urls) -> String {
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
        final_url = urls.final_ignition,
        mirror = urls.mirror_board,
    )
}
