//! `flatlab inventory`: the hardware the plan's machines reported from their live systems.

use std::process::ExitCode;

use flatlab_api::{Flatlab, MachineInventory};
use flatlab_model::{FirmwareKind, human_bytes};

pub async fn run(app: &Flatlab, plan: &str, json: bool) -> anyhow::Result<ExitCode> {
    let all = app.inventories(plan).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        eprintln!(
            "no machine of plan {plan} has reported its hardware yet: each does when its install starts (`flatlab serve {plan}`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (i, m) in all.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", describe(m));
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(m: &MachineInventory) -> String {
    let inv = &m.inventory;
    let mut out = String::new();
    let firmware = match inv.firmware {
        FirmwareKind::Bios => "BIOS",
        FirmwareKind::Uefi => "UEFI",
    };
    let what = [inv.vendor.as_deref(), inv.product.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let what = if what.is_empty() { String::new() } else { format!(", {what}") };
    let node = if m.node.is_empty() { "(not in the plan)" } else { m.node.as_str() };
    out += &format!("{node} ({}){what}, {firmware}\n", m.mac);
    out += &format!(
        "  cpu     {} ({} logical)\n  memory  {}\n",
        inv.cpu_model.as_deref().unwrap_or("unknown"),
        inv.cpus,
        human_bytes(inv.memory_bytes)
    );
    for nic in &inv.nics {
        let speed = nic.speed_mbps.map(|s| format!(", {s} Mbit/s")).unwrap_or_default();
        out += &format!(
            "  nic     {} {} ({}{speed})\n",
            nic.name,
            nic.mac,
            nic.driver.as_deref().unwrap_or("unknown driver")
        );
    }
    for d in &inv.disks {
        let mut flags = Vec::new();
        if d.removable {
            flags.push("removable");
        }
        if d.rotational {
            flags.push("rotational");
        }
        let flags = if flags.is_empty() { String::new() } else { format!(", {}", flags.join(", ")) };
        let serial = d.serial.as_deref().map(|s| format!(", serial {s}")).unwrap_or_default();
        out += &format!("  disk    {}{serial}{flags}\n          {}\n", d.describe_contents(), d.stable_path());
    }
    if let Some(disk) = &m.suggested_install_disk {
        out += &format!("  install disk (suggested): {disk}\n");
    }
    for w in &m.warnings {
        out += &format!("  warning: {w}\n");
    }
    out
}
