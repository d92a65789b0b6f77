//! `flatlab discover`: machines on the LAN (mDNS) and machines seen network-booting.

use std::process::ExitCode;

use flatlab_api::Flatlab;

pub async fn run(app: &Flatlab, timeout: u64, json: bool) -> anyhow::Result<ExitCode> {
    let found = app.discover(std::time::Duration::from_secs(timeout)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else if found.is_empty() {
        eprintln!("nothing found in {timeout} s (machines announce themselves over mDNS; try a longer --timeout)");
    } else {
        for s in &found {
            let services: Vec<String> = s.services.iter().map(|r| format!("{}:{}", r.service_type, r.port)).collect();
            let planned = match (&s.plan, &s.node) {
                (Some(p), Some(n)) => format!("plan {p} node {n}"),
                _ => "not in a plan".into(),
            };
            println!(
                "{}  {}  {}  {}  {}{}",
                s.name.as_deref().unwrap_or("-"),
                if s.addresses.is_empty() { "-".into() } else { s.addresses.join(",") },
                s.mac.as_deref().unwrap_or("-"),
                if services.is_empty() { "-".into() } else { services.join(" ") },
                planned,
                s.firmware.as_deref().map(|f| format!("  network-booted ({f})")).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
