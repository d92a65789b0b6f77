//! What a machine gets when it is inspected before its install: the Flatcar live system with
//! an inventory-only Ignition config. Its unit posts the machine's hardware, then keeps asking
//! the boot server; once the user arms the machine for install, the boot server answers with
//! the node's install script, which runs from where it is (no reboot, no hand on the power
//! button). A machine the boot server no longer knows reboots to network-boot again.

use flatlab_model::ValidatedPlan;

use crate::error::{Error, Result};
use crate::ignition::{ConfigBuilder, IgnitionSpec, MODE_0644, MODE_0755};
use crate::install::INVENTORY;
use crate::ipxe::live_system_script;

/// The files of one inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The machine's iPXE script while it is inspected.
    pub ipxe: String,
    /// The live system's Ignition config (`/v1/inspect/<token>.ign`).
    pub ignition: String,
}

/// Renders the inspection of machine `mac` with `token`, served from `base_url`.
pub fn render_inspection(plan: &ValidatedPlan, base_url: &str, token: &str, mac: &str) -> Result<Inspection> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::BadNodeToken { node: mac.to_owned() });
    }
    let os = &plan.plan().os;
    if !os.version.bytes().all(|b| b.is_ascii_digit() || b == b'.') || os.version.is_empty() {
        return Err(Error::UnpinnedVersion);
    }
    let mirror = format!("{base_url}/mirror/{}/{}/{}", os.channel.as_str(), os.arch.board(), os.version);
    let ignition_url = format!("{base_url}/v1/inspect/{token}.ign");
    let ipxe = live_system_script(
        &format!("inspect {mac}: boot the Flatcar {} live system to report its hardware", os.version),
        &mirror,
        "loading the Flatcar live system to inspect this machine",
        &ignition_url,
        "Check that the boot server is running and its mirror holds the plan's release. Rebooting in 30 seconds.",
    );
    let mut b = ConfigBuilder::default();
    b.ssh_keys(&plan.ssh_keys());
    b.file("/etc/hostname", MODE_0644, "flatlab-inspect\n");
    b.file("/opt/flatlab/inventory.sh", MODE_0755, INVENTORY);
    b.file("/opt/flatlab/inspect.sh", MODE_0755, &script(base_url, token));
    b.unit("flatlab-inspect.service", true, UNIT);
    Ok(Inspection { ipxe, ignition: b.build(IgnitionSpec::for_plan(plan)?) })
}

const UNIT: &str = "\
[Unit]
Description=Flatlab: report this machine's hardware, then wait to be armed for install
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=/opt/flatlab/inspect.sh
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
";

fn script(base: &str, token: &str) -> String {
    format!(
        r#"#!/bin/bash
# Flatlab: report this machine's hardware, then ask the boot server every 5 seconds whether it
# has been armed for install; when it has, run the node's install script from here.
set -uo pipefail
inventory_url='{base}/v1/inventory/{token}'
next_url='{base}/v1/inspect/{token}/next'
posted=0
refused=0
while true; do
  if [ "$posted" = 0 ] && inventory=$(/opt/flatlab/inventory.sh); then
    if curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' --data-binary "$inventory" "$inventory_url" >/dev/null; then
      posted=1
      echo "flatlab: hardware reported; waiting to be armed for install in Flatlab"
    fi
  fi
  code=$(curl -sS --max-time 10 -o /run/flatlab-install.sh -w '%{{http_code}}' "$next_url" 2>/dev/null || true)
  case "$code" in
    200)
      echo "flatlab: armed for install; installing from this live system"
      exec /bin/bash /run/flatlab-install.sh
      ;;
    403|404)
      refused=$((refused + 1))
      if [ "$refused" -ge 6 ]; then
        echo "flatlab: the boot server no longer knows this inspection; rebooting to network-boot again"
        systemctl reboot
        exit 0
      fi
      ;;
    *) refused=0 ;;
  esac
  sleep 5
done
"#
    )
}
