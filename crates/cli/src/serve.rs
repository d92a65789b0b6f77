//! `flatlab serve` and `flatlab arm`: the boot server, for people (event lines) and for the
//! desktop app (`--json`, the sidecar protocol).

use std::process::ExitCode;

use flatlab_api::{BootEventKind, DhcpMode, Flatlab, ServeOptions, Stage};

use crate::args::ServeArgs;
use crate::plan::plan_name;

pub async fn run(app: &Flatlab, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let name = plan_name(app, &args.plan).await?;
    if args.dhcp_range.is_some() && args.dhcp != DhcpMode::Full {
        anyhow::bail!("--dhcp-range only applies with --dhcp full");
    }
    let mut options = ServeOptions {
        interface: Some(args.interface.clone()),
        address: args.address,
        http_port: args.http_port,
        tftp_port: args.tftp_port,
        dhcp: args.dhcp,
        dhcp_range: args.dhcp_range.as_deref().map(parse_range).transpose()?,
        mirror: args.mirror.clone(),
        admin: args.admin,
        no_boot_after: std::time::Duration::from_secs(args.no_boot_after),
        ..ServeOptions::default()
    };
    if let Some(dir) = args.ipxe_dir {
        options.ipxe_dirs = vec![dir];
    }
    if args.json {
        let input = tokio::io::BufReader::new(tokio::io::stdin());
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let out = std::io::stdout();
        flatlab_api::sidecar::serve(app, &name, options, input, out, stop, &mut rand::rng()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let session = app.start_boot_server(&name, options, &mut rand::rng()).await?;
    for w in &session.warnings {
        eprintln!("warning: {w}");
    }
    let server = session.server();
    eprintln!(
        "serving plan {name} on {} ({}): HTTP {}, TFTP {}, admin http://{}/api/v1/machines. Ctrl-C stops.",
        args.interface,
        server.http_addr().ip(),
        server.http_addr(),
        server.tftp_addr().map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        server.admin_addr()
    );
    let mut events = server.registry().subscribe();
    for m in server.registry().machines() {
        if let (Some(node), Some(stage)) = (&m.node, m.stage) {
            eprintln!("  {node} ({}): {stage}", m.mac);
        }
    }
    let exit_after = args.exit_after;
    let code = loop {
        if let Some(target) = exit_after {
            let machines = server.registry().machines();
            let planned: Vec<_> = machines.iter().filter(|m| m.node.is_some()).collect();
            if planned.iter().all(|m| m.stage.is_some_and(|s| s >= target && s != Stage::Failed)) {
                break ExitCode::SUCCESS;
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break ExitCode::SUCCESS,
            event = events.recv() => {
                let Ok(e) = event else { continue };
                let when = flatlab_api::format_time_of_day(e.at);
                let who = match &e.node { Some(n) => format!("{n} ({})", e.mac), None => e.mac.clone() };
                match e.kind {
                    BootEventKind::Stage { stage, detail } => {
                        let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
                        println!("{when} {who} {stage}{detail}");
                        if stage == Stage::Failed && exit_after.is_some() {
                            break ExitCode::FAILURE;
                        }
                    }
                    BootEventKind::Alert { message, from, .. } => {
                        let from = from.filter(|f| !message.contains(f.as_str())).map(|f| format!(" (from {f})")).unwrap_or_default();
                        println!("{when} {who} ALERT: {message}{from}");
                    }
                    BootEventKind::Diagnosis { message, .. } => println!("{when} {who} {message}"),
                    BootEventKind::Discovered { firmware, .. } => println!(
                        "{when} {who} network-booted ({}) but is not in the plan: add it in the app or the plan file",
                        firmware.unwrap_or_else(|| "unknown firmware".into())
                    ),
                    BootEventKind::Progress { file, sent, total } => {
                        println!("{when} {who} {file}: {} of {} MiB", sent >> 20, total >> 20)
                    }
                }
            }
        }
    };
    session.stop().await;
    Ok(code)
}

pub async fn arm(app: &Flatlab, plan: &str, node: &str, new_cluster: bool) -> anyhow::Result<ExitCode> {
    let armed = app.arm_machine(plan, node, new_cluster, None, &mut rand::rng()).await?;
    eprintln!(
        "armed {node}: its next network boot reinstalls it (a running `flatlab serve {plan}` takes this up within 2 s; a machine waiting in its inspection installs from there)"
    );
    if let Some(what) = armed.describe() {
        eprintln!("{what}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn power_on(
    app: &Flatlab,
    plan: &str,
    node: Option<&str>,
    interface: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let sent = app.power_on(plan, node, interface).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&sent)?);
    } else {
        for s in &sent {
            println!("{} ({}): {} magic packets to {}", s.node, s.mac, s.packets, s.to);
        }
        eprintln!(
            "a machine that is off and still has power starts within seconds (one whose NIC does not keep Wake-on-LAN armed when off needs it on in its firmware setup); `flatlab serve {plan}` shows its network boot"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn inspect(app: &Flatlab, plan: &str, node: Option<String>, mac: Option<String>) -> anyhow::Result<ExitCode> {
    let target = match (node, mac) {
        (Some(node), _) => flatlab_api::InspectTarget::Node(node),
        (None, Some(mac)) => {
            flatlab_api::InspectTarget::Mac(mac.parse().map_err(|e| anyhow::anyhow!("--mac {mac}: {e}"))?)
        }
        (None, None) => anyhow::bail!("name a node of the plan, or a machine with --mac"),
    };
    let done = app.inspect_machine(plan, &target, &mut rand::rng()).await?;
    let who = done.node.as_ref().map(|n| format!("{n} ({})", done.mac)).unwrap_or_else(|| done.mac.clone());
    eprintln!(
        "{who} is inspected at its next network boot: it reports its hardware (`flatlab inventory {plan}`) and waits; `flatlab arm {plan} NODE` then installs it from there. A running `flatlab serve {plan}` takes this up within 2 s."
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_range(s: &str) -> anyhow::Result<(std::net::Ipv4Addr, std::net::Ipv4Addr)> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| anyhow::anyhow!("--dhcp-range: write START-END, such as 10.0.0.200-10.0.0.250"))?;
    Ok((a.trim().parse()?, b.trim().parse()?))
}
