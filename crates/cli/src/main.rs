//! `flatlab`: everything the desktop app does, headless, for scripts, a boot-server Pi, and tests.
//!
//! A thin clap layer over `flatlab-api`: parse arguments, call one use case, print the result.
//! Exit codes: 0 success, 1 failure (including a plan with errors), 2 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flatlab_api::{ApiError, Flatlab, ImportPolicy, default_db_path, format_time, read_plan_file, validate_text};
use flatlab_model::{Finding, Severity, count};

#[derive(Parser)]
#[command(name = "flatlab", version = flatlab_api::VERSION_LINE, about = "Plan and install Flatcar + K3s edge clusters", propagate_version = true)]
struct Cli {
    /// The Flatlab database [default: $XDG_DATA_HOME/flatlab/flatlab.db]
    #[arg(long, global = true, env = "FLATLAB_DB", value_name = "PATH")]
    db: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, check, store and export cluster plans
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Render a plan's Ignition configs, iPXE scripts and K3s configuration into a bundle folder
    Render {
        /// A stored plan's name, or a plan file (which is imported first, to keep its secrets)
        plan: String,
        /// The bundle folder: plan.yaml, README.md, nodes/<name>/{config.ign,install.ign,boot.ipxe}
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// The boot server's URL the files point at [default: a placeholder, see the bundle's README]
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Run the boot server: network-install the plan's machines and show their progress live
    Serve(ServeArgs),
    /// Export a plan and its rendered configs to a Git repository or a USB drive
    #[command(subcommand)]
    Export(ExportCommand),
    /// Fetch, verify and keep Flatcar images and K3s binaries for offline installs
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// List machines found on the LAN (mDNS) and machines seen network-booting
    Discover {
        /// How long to listen, in seconds
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        /// Print a JSON array of hosts
        #[arg(long)]
        json: bool,
    },
    /// Arm a machine again so that its next network boot reinstalls it
    Arm {
        plan: String,
        /// The node's name in the plan
        node: String,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Commit the plan file and rendered bundle to <repo>/<plan>/ (files with the K3s token are
    /// left out unless --encrypt-to is given), and push through the system git
    Git {
        plan: String,
        #[arg(long, value_name = "DIR")]
        repo: PathBuf,
        #[arg(long, value_name = "B")]
        branch: Option<String>,
        /// Push to this remote after committing
        #[arg(long, value_name = "REMOTE")]
        push: Option<String>,
        /// Commit the secret files encrypted to this age recipient (age1...); repeatable
        #[arg(long, value_name = "RECIPIENT")]
        encrypt_to: Vec<String>,
        /// The boot server URL the files point at [default: a placeholder]
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Write the rendered bundle to <drive>/flatlab/<plan>/, verified by reading back
    Usb {
        /// The plan (not needed with --list, nor with --eject alone, which only ejects the drive)
        #[arg(required_unless_present_any = ["list", "eject"])]
        plan: Option<String>,
        /// The drive's mount point
        #[arg(long, value_name = "MOUNTPOINT", conflicts_with = "device")]
        to: Option<PathBuf>,
        /// The drive's device, such as /dev/sdb1 (mounted through UDisks2 when it is not mounted)
        #[arg(long, value_name = "DEV")]
        device: Option<PathBuf>,
        /// List candidate drives, mounted or not
        #[arg(long, conflicts_with = "eject")]
        list: bool,
        /// Eject the drive safely after the bundle is written and verified: unmount it and power
        /// it off (through UDisks2; without it, only unmount)
        #[arg(long)]
        eject: bool,
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum MirrorCommand {
    /// Download a Flatcar release (and optionally K3s), verifying every file's signature
    // `--version` here names the release to fetch (the contract), not Flatlab's own version.
    #[command(disable_version_flag = true)]
    Fetch {
        #[arg(long, default_value = "stable")]
        channel: String,
        #[arg(long, default_value = "amd64")]
        arch: String,
        /// A release such as 4593.2.5, or `current`
        #[arg(long, default_value = "current")]
        version: String,
        /// Replaces https://<channel>.release.flatcar-linux.net (files at <base>/<arch>-usr/<version>/)
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// The signing key [default: the Flatcar image signing key shipped with Flatlab]
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The mirror [default: $XDG_DATA_HOME/flatlab/mirror]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Also fetch this K3s release's binary, checked against its sha256sum file
        #[arg(long, value_name = "VERSION")]
        k3s: Option<String>,
        /// Replaces https://github.com/k3s-io/k3s/releases/download
        #[arg(long, value_name = "URL")]
        k3s_base_url: Option<String>,
        /// With --k3s: also the airgap images tarball (k3s-airgap-images-<arch>.tar.zst)
        #[arg(long, requires = "k3s")]
        k3s_airgap: bool,
    },
    /// List the mirrored releases
    List {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Check every mirrored file again against its signature or checksum
    Verify {
        /// The mirror [default: $XDG_DATA_HOME/flatlab/mirror]
        dir: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Keep the newest N releases of each channel and architecture; remove the rest
    Prune {
        #[arg(long)]
        keep: usize,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A stored plan's name, or a plan file (imported first)
    plan: String,
    /// The network interface the machines boot on
    #[arg(long, value_name = "IF")]
    interface: String,
    /// This server's address on that interface [default: the interface's first IPv4 address]
    #[arg(long, value_name = "IP")]
    address: Option<std::net::Ipv4Addr>,
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    #[arg(long, default_value_t = 69)]
    tftp_port: u16,
    /// proxy: next to your router's DHCP; full: also hand out addresses (isolated switch); off
    #[arg(long, value_enum, default_value_t = DhcpArg::Proxy)]
    dhcp: DhcpArg,
    /// With --dhcp full: the addresses to hand out, START-END [default: the top quarter of the subnet]
    #[arg(long, value_name = "START-END")]
    dhcp_range: Option<String>,
    /// The image mirror: <channel>/<board>/<version>/<file>, as `flatcar-install -b` expects
    #[arg(long, value_name = "DIR")]
    mirror: Option<PathBuf>,
    /// The admin API (machines and live events), loopback only
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    admin: std::net::SocketAddr,
    /// Where undionly.kpxe / ipxe.efi / snponly.efi are [default: /usr/lib/ipxe, assets/ipxe]
    #[arg(long, value_name = "DIR")]
    ipxe_dir: Option<PathBuf>,
    /// Exit (status 0) once every planned machine reached this stage, such as `installed`;
    /// exit 1 if one fails
    #[arg(long, value_name = "STAGE")]
    exit_after: Option<String>,
    /// For programs (the desktop app runs the boot server this way): one JSON message per line
    /// on stdout (docs/boot-server.md), `arm NODE` lines read from stdin; stops when stdin closes
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DhcpArg {
    Proxy,
    Full,
    Off,
}

#[derive(Subcommand)]
enum PlanCommand {
    /// Check a plan file; exit 0 if it has no errors (warnings allowed), 1 if it has
    Validate {
        /// The plan file (`-` for standard input)
        file: PathBuf,
        /// Print {"findings":[{"severity","path","message"}]}
        #[arg(long)]
        json: bool,
    },
    /// Add a plan from a file, or save it as a new revision of the plan of that name; prints the name
    Import {
        /// The plan file (`-` for standard input)
        file: PathBuf,
        /// Store the plan even if it has validation errors, to fix them later (unknown fields still refuse)
        #[arg(long)]
        allow_errors: bool,
    },
    /// List the stored plans
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print a stored plan as a plan file
    Show {
        name: String,
        /// Show this revision instead of the newest
        #[arg(long, short)]
        revision: Option<i64>,
        /// Print the plan with its findings as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a stored plan to a plan file
    Export {
        name: String,
        /// Where to write (`-` for standard output)
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Export this revision instead of the newest
        #[arg(long, short)]
        revision: Option<i64>,
    },
    /// Delete a stored plan with its history and secrets
    Rm { name: String },
    /// List a plan's revisions, newest first
    History {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier revision the newest again (the history keeps everything)
    Revert { name: String, revision: i64 },
    /// Rename a plan, keeping its history and secrets
    Rename { name: String, new_name: String },
    /// Copy a plan under a new name (the copy gets its own secrets)
    Copy { name: String, new_name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLATLAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::FAILURE
        }
    }
}

fn report_error(e: &anyhow::Error) {
    if let Some(ApiError::InvalidPlan { findings, .. }) = e.chain().find_map(|c| c.downcast_ref::<ApiError>())
        && findings.len() > 1
    {
        for f in findings {
            eprintln!("{f}");
        }
    }
    eprintln!("error: {e:#}");
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plan(PlanCommand::Validate { file, json }) => validate(&file, json),
        Command::Plan(cmd) => {
            let app = open(cli.db.as_deref()).await?;
            let code = plan(&app, cmd).await;
            app.close().await;
            code
        }
        Command::Serve(args) => {
            let app = open(cli.db.as_deref()).await?;
            let code = serve(&app, args).await;
            app.close().await;
            code
        }
        Command::Mirror(cmd) => tokio::task::spawn_blocking(move || mirror(cmd)).await?,
        Command::Export(cmd) => {
            let app = open(cli.db.as_deref()).await?;
            let code = export(&app, cmd).await;
            app.close().await;
            code
        }
        Command::Discover { timeout, json } => {
            let app = open(cli.db.as_deref()).await?;
            let found = app.discover(std::time::Duration::from_secs(timeout)).await;
            app.close().await;
            let found = found?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else if found.is_empty() {
                eprintln!(
                    "nothing found in {timeout} s (machines announce themselves over mDNS; try a longer --timeout)"
                );
            } else {
                for s in &found {
                    let services: Vec<String> =
                        s.services.iter().map(|r| format!("{}:{}", r.service_type, r.port)).collect();
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
        Command::Arm { plan, node } => {
            let app = open(cli.db.as_deref()).await?;
            app.arm_machine(&plan, &node, None, &mut rand::rng()).await?;
            eprintln!("armed {node}: its next network boot reinstalls it (start or restart `flatlab serve {plan}`)");
            app.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { plan, output, base_url } => {
            let app = open(cli.db.as_deref()).await?;
            let code = render(&app, &plan, &output, base_url.as_deref()).await;
            app.close().await;
            code
        }
    }
}

async fn open(db: Option<&Path>) -> anyhow::Result<Flatlab> {
    let path = match db {
        Some(p) => p.to_owned(),
        None => default_db_path()?,
    };
    Flatlab::open(&path).await
}

fn validate(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = read_plan_file(file)?;
    let findings = validate_text(&text);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))?);
    } else {
        for f in &findings {
            println!("{f}");
        }
        eprintln!("{}: {}", file.display(), tally(&findings));
    }
    Ok(if count(&findings, Severity::Error) > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn plan(app: &Flatlab, cmd: PlanCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Validate { .. } => unreachable!("handled without a database"),
        PlanCommand::Import { file, allow_errors } => {
            let policy = if allow_errors { ImportPolicy::KeepErrors } else { ImportPolicy::Strict };
            let outcome = app.import_file(&file, policy).await?;
            for f in &outcome.findings {
                eprintln!("{f}");
            }
            let s = &outcome.saved;
            if s.changed {
                eprintln!("saved plan {} as revision {} ({})", s.name, s.revision, tally(&outcome.findings));
            } else {
                eprintln!("plan {} is unchanged (revision {})", s.name, s.revision);
            }
            println!("{}", s.name);
        }
        PlanCommand::List { json } => {
            let plans = app.list_plans().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            } else if plans.is_empty() {
                eprintln!("no plans yet: `flatlab plan import FILE` adds one");
            } else {
                let width = plans.iter().map(|p| p.summary.name.len()).max().unwrap_or(4).max(4);
                println!("{:<width$}  {:>8}  {:>5}  {:<20}  PROBLEMS", "NAME", "REVISION", "NODES", "UPDATED");
                for p in &plans {
                    println!(
                        "{:<width$}  {:>8}  {:>5}  {:<20}  {}",
                        p.summary.name,
                        p.summary.revision,
                        p.nodes,
                        format_time(p.summary.updated_at),
                        problems(p.errors as usize, p.warnings as usize)
                    );
                }
            }
        }
        PlanCommand::Show { name, revision, json } => {
            if json {
                let view = app.show_plan(&name, revision).await?;
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", app.export_text(&name, revision).await?);
            }
        }
        PlanCommand::Export { name, output, revision } => {
            if output == Path::new("-") {
                print!("{}", app.export_text(&name, revision).await?);
            } else {
                let written = app.export_plan(&name, revision, &output).await?;
                eprintln!("wrote revision {written} of plan {name} to {}", output.display());
            }
        }
        PlanCommand::Rm { name } => {
            let revisions = app.delete_plan(&name).await.with_context(|| format!("removing plan {name}"))?;
            eprintln!("removed plan {name} and its {}", plural(revisions as usize, "revision"));
        }
        PlanCommand::History { name, json } => {
            let history = app.history(&name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&history)?);
            } else {
                println!("{:>8}  {:<20}  MESSAGE", "REVISION", "SAVED");
                for h in history {
                    println!("{:>8}  {:<20}  {}", h.revision, format_time(h.created_at), h.message);
                }
            }
        }
        PlanCommand::Revert { name, revision } => {
            let saved = app.revert(&name, revision).await?;
            if saved.changed {
                eprintln!("plan {name} is back to revision {revision}, saved as revision {}", saved.revision);
            } else {
                eprintln!("plan {name} already equals revision {revision}; nothing saved");
            }
        }
        PlanCommand::Rename { name, new_name } => {
            app.rename_plan(&name, &new_name).await?;
            eprintln!("renamed plan {name} to {new_name}");
            println!("{new_name}");
        }
        PlanCommand::Copy { name, new_name } => {
            app.duplicate_plan(&name, &new_name).await?;
            eprintln!("copied plan {name} to {new_name}");
            println!("{new_name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn plan_name(app: &Flatlab, plan: &str) -> anyhow::Result<String> {
    if is_plan_file(plan) {
        let outcome = app.import_file(Path::new(plan), ImportPolicy::Strict).await?;
        let s = &outcome.saved;
        eprintln!("stored {plan} as plan {} revision {} (its secrets stay in the database)", s.name, s.revision);
        Ok(s.name.clone())
    } else {
        Ok(plan.to_owned())
    }
}

async fn serve(app: &Flatlab, args: ServeArgs) -> anyhow::Result<ExitCode> {
    use flatlab_api::{BootEventKind, DhcpChoice, ServeOptions, Stage};
    let name = plan_name(app, &args.plan).await?;
    if args.dhcp_range.is_some() && !matches!(args.dhcp, DhcpArg::Full) {
        anyhow::bail!("--dhcp-range only applies with --dhcp full");
    }
    let dhcp = match args.dhcp {
        DhcpArg::Off => DhcpChoice::Off,
        DhcpArg::Proxy => DhcpChoice::Proxy,
        DhcpArg::Full => DhcpChoice::Full { range: args.dhcp_range.as_deref().map(parse_range).transpose()? },
    };
    let exit_after = match args.exit_after.as_deref() {
        None => None,
        Some(s) => Some(
            Stage::parse(s).ok_or_else(|| anyhow::anyhow!("--exit-after: `{s}` is not a stage (armed, dhcp, ipxe, kernel, initrd, ignition, installing, installed, booted, k3s-ready)"))?,
        ),
    };
    let mut options = ServeOptions {
        interface: Some(args.interface.clone()),
        address: args.address,
        http_port: args.http_port,
        tftp_port: args.tftp_port,
        dhcp,
        mirror: args.mirror.clone(),
        admin: args.admin,
        ..ServeOptions::default()
    };
    if let Some(dir) = args.ipxe_dir {
        options.ipxe_dirs = vec![dir];
    }
    if args.json {
        return serve_json(app, &name, &args.interface, options).await;
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
            eprintln!("  {node} ({}): {}", m.mac, stage.as_str());
        }
    }
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
                        println!("{when} {who} {}{detail}", stage.as_str());
                        if stage == Stage::Failed && exit_after.is_some() {
                            break ExitCode::FAILURE;
                        }
                    }
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

/// `flatlab serve --json`: the boot server as the desktop app's sidecar. One
/// [`SidecarMessage`](flatlab_api::SidecarMessage) per stdout line; `arm NODE` lines on stdin;
/// stops when stdin closes (the app quit or stopped it) or on Ctrl-C.
async fn serve_json(
    app: &Flatlab,
    name: &str,
    interface: &str,
    options: flatlab_api::ServeOptions,
) -> anyhow::Result<ExitCode> {
    use flatlab_api::{ErrorBody, SidecarMessage};
    use tokio::io::AsyncBufReadExt;

    fn say(message: &SidecarMessage) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed stdout means the app is gone; stdin's end stops the loop below.
        let _ = writeln!(out, "{}", message.to_line());
        let _ = out.flush();
    }

    let session = match app.start_boot_server(name, options, &mut rand::rng()).await {
        Ok(s) => s,
        Err(e) => {
            say(&SidecarMessage::Error { error: ErrorBody::from(&e) });
            return Err(e);
        }
    };
    let server = session.server();
    say(&SidecarMessage::Ready {
        plan: name.to_owned(),
        interface: interface.to_owned(),
        http: server.http_addr().to_string(),
        tftp: server.tftp_addr().map(|a| a.to_string()),
        admin: server.admin_addr().to_string(),
        warnings: session.warnings.clone(),
    });
    let mut events = server.registry().subscribe();
    say(&SidecarMessage::Machines { machines: server.registry().machines() });
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.recv() => match event {
                Ok(event) => say(&SidecarMessage::Event { event }),
                // Fell behind: send the whole picture again.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    say(&SidecarMessage::Machines { machines: server.registry().machines() });
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            line = stdin.next_line() => {
                let Ok(Some(line)) = line else { break };
                let line = line.trim();
                let Some(node) = line.strip_prefix("arm ").map(str::trim).filter(|n| !n.is_empty()) else {
                    if !line.is_empty() {
                        say(&SidecarMessage::Error { error: ErrorBody {
                            code: flatlab_api::ErrorCode::Internal,
                            message: format!("unknown request `{line}`; the sidecar understands `arm NODE`"),
                        }});
                    }
                    continue;
                };
                match app.arm_machine(name, node, Some(&session), &mut rand::rng()).await {
                    Ok(()) => {
                        say(&SidecarMessage::Armed { node: node.to_owned() });
                        say(&SidecarMessage::Machines { machines: session.server().registry().machines() });
                    }
                    Err(e) => say(&SidecarMessage::Error { error: ErrorBody::from(&e) }),
                }
            }
        }
    }
    session.stop().await;
    Ok(ExitCode::SUCCESS)
}

async fn export(app: &Flatlab, cmd: ExportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExportCommand::Git { plan, repo, branch, push, encrypt_to, base_url } => {
            let name = plan_name(app, &plan).await?;
            let base = base_url.as_deref().unwrap_or(flatlab_api::PLACEHOLDER_BASE_URL);
            let outcome =
                app.export_git(&name, &repo, branch, push.clone(), encrypt_to, base, &mut rand::rng()).await?;
            match &outcome.commit {
                None => eprintln!("plan {name} is unchanged in {}: no new commit", repo.display()),
                Some(c) => {
                    eprintln!(
                        "committed {} changed file(s) of plan {name} to {} ({})",
                        outcome.changed.len(),
                        repo.display(),
                        &c[..12.min(c.len())]
                    );
                    if let Some(remote) = push.filter(|_| outcome.pushed) {
                        eprintln!("pushed to {remote}");
                    }
                }
            }
        }
        ExportCommand::Usb { list: true, .. } => {
            let drives = flatlab_api::export::list_drives().await;
            if drives.is_empty() {
                eprintln!("no removable drive found; plug one in (and open it in your file manager)");
            }
            for d in drives {
                let mut line = format!(
                    "{}  {}  {}  {}",
                    d.device,
                    if d.mounted { d.mountpoint.as_str() } else { "(not mounted)" },
                    d.filesystem,
                    human_size(d.size_bytes)
                );
                for extra in [d.label.map(|l| format!("\"{l}\"")), d.model, d.removable.then(|| "removable".into())] {
                    line.extend(extra.map(|e| format!("  {e}")));
                }
                println!("{line}");
            }
        }
        ExportCommand::Usb { plan: None, to, device, .. } => {
            let Some(target) = to.or(device) else {
                anyhow::bail!("give the drive to eject with --to MOUNTPOINT or --device DEV");
            };
            eject(&target).await?;
        }
        ExportCommand::Usb { plan: Some(plan), to, device, eject: then_eject, base_url, .. } => {
            let name = plan_name(app, &plan).await?;
            let mountpoint = match (to, &device) {
                (Some(m), _) => m,
                (None, Some(dev)) => {
                    let was_mounted = flatlab_api::export::mountpoint_of(dev).is_ok();
                    let mountpoint = flatlab_api::export::mount_drive(&dev.to_string_lossy()).await?;
                    if !was_mounted {
                        eprintln!("mounted {} at {}", dev.display(), mountpoint.display());
                    }
                    mountpoint
                }
                (None, None) => anyhow::bail!(
                    "give the drive with --to MOUNTPOINT or --device DEV (`flatlab export usb --list` shows them)"
                ),
            };
            let base = base_url.as_deref().unwrap_or(flatlab_api::PLACEHOLDER_BASE_URL);
            let dir = app.export_usb(&name, &mountpoint, base, &mut rand::rng()).await?;
            eprintln!("wrote and verified plan {name} in {}", dir.display());
            eprintln!("note: nodes/*/config.ign on the drive hold the cluster's K3s token");
            let target = device.unwrap_or(mountpoint);
            if then_eject {
                eject(&target).await.context("the bundle is written and verified, but ejecting the drive failed")?;
            } else {
                let flag = if target.starts_with("/dev") { "--device" } else { "--to" };
                let target = shell_quote(&target.to_string_lossy());
                eprintln!("to remove the drive safely: flatlab export usb --eject {flag} {target}");
                if flag == "--device" {
                    eprintln!("  (or: udisksctl unmount -b {target} && udisksctl power-off -b {target})");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `flatlab export usb --eject`: one line saying what was done.
async fn eject(target: &Path) -> anyhow::Result<()> {
    let ejection = flatlab_api::export::eject_drive(&target.to_string_lossy()).await?;
    eprintln!("{ejection}");
    Ok(())
}

/// 1.5 GiB, 16 MiB: sizes of drives as people read them.
fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 { format!("{:.1} GiB", mib / 1024.0) } else { format!("{mib:.0} MiB") }
}

/// A path as it can be pasted into a shell.
fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=@".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn mirror(cmd: MirrorCommand) -> anyhow::Result<ExitCode> {
    use flatlab_api::mirror::{MirrorRequest, default_mirror_dir, fetch, keyring};
    let dir = |d: Option<PathBuf>| d.map(Ok).unwrap_or_else(default_mirror_dir);
    match cmd {
        MirrorCommand::Fetch { channel, arch, version, base_url, key, dir: d, k3s, k3s_base_url, k3s_airgap } => {
            let request =
                MirrorRequest { channel, arch, version, base_url, key, dir: dir(d)?, k3s, k3s_base_url, k3s_airgap };
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let mut last_file = String::new();
            let mut progress = |p: flatlab_api::mirror::Progress| {
                let file = p.url.rsplit('/').next().unwrap_or(&p.url).to_owned();
                let mib = |b: u64| b as f64 / 1048576.0;
                let line = match (p.total, p.eta) {
                    (Some(t), Some(eta)) => format!(
                        "{file}: {:.1} of {:.1} MiB, {:.1} MiB/s, {}:{:02} left",
                        mib(p.done),
                        mib(t),
                        p.rate / 1048576.0,
                        eta.as_secs() / 60,
                        eta.as_secs() % 60
                    ),
                    _ => format!("{file}: {:.1} MiB, {:.1} MiB/s", mib(p.done), p.rate / 1048576.0),
                };
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else if file != last_file {
                    eprintln!("downloading {file}");
                }
                last_file = file;
            };
            let done = fetch(&request, &mut progress);
            if tty {
                eprintln!();
            }
            let done = done?;
            eprintln!(
                "Flatcar {} verified and mirrored in {} ({} files){}",
                done.version,
                request.dir.display(),
                done.files.len(),
                done.k3s.map(|k| format!("; K3s at {}", k.display())).unwrap_or_default()
            );
            println!("{}", done.version);
        }
        MirrorCommand::List { dir: d } => {
            let releases = flatlab_mirror::list(&dir(d)?)?;
            if releases.is_empty() {
                eprintln!("the mirror is empty: `flatlab mirror fetch` adds the current stable release");
            }
            for r in releases {
                println!(
                    "{}/{}/{}  {:.0} MiB  {}",
                    r.channel,
                    r.board,
                    r.version,
                    r.bytes as f64 / 1048576.0,
                    if r.complete {
                        "complete".to_owned()
                    } else {
                        format!("incomplete ({} of 3 files)", r.files.len())
                    }
                );
            }
        }
        MirrorCommand::Verify { dir: d, key } => {
            let report = flatlab_mirror::verify_all(&dir(d)?, &keyring(key.as_deref())?)?;
            let mut bad = 0;
            for (file, result) in &report {
                match result {
                    Ok(()) => println!("ok      {}", file.display()),
                    Err(e) => {
                        bad += 1;
                        println!("FAILED  {}: {e}", file.display());
                    }
                }
            }
            eprintln!("{} checked, {bad} failed", report.len());
            if bad > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        MirrorCommand::Prune { keep, dir: d } => {
            for removed in flatlab_mirror::prune(&dir(d)?, keep)? {
                eprintln!("removed {}", removed.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_range(s: &str) -> anyhow::Result<(std::net::Ipv4Addr, std::net::Ipv4Addr)> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| anyhow::anyhow!("--dhcp-range: write START-END, such as 10.0.0.200-10.0.0.250"))?;
    Ok((a.trim().parse()?, b.trim().parse()?))
}

/// A plan argument names a file when it looks like a path or a YAML file name.
fn is_plan_file(arg: &str) -> bool {
    arg == "-" || arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml") || Path::new(arg).is_file()
}

async fn render(app: &Flatlab, plan: &str, output: &Path, base_url: Option<&str>) -> anyhow::Result<ExitCode> {
    let name = plan_name(app, plan).await?;
    for f in app.show_plan(&name, None).await?.findings.iter().filter(|f| f.severity == Severity::Warning) {
        eprintln!("{f}");
    }
    let base_url = base_url.unwrap_or(flatlab_api::PLACEHOLDER_BASE_URL);
    let bundle = app.render_plan(&name, base_url, &mut rand::rng()).await?;
    let written = flatlab_api::write_bundle(&bundle, output)?;
    eprintln!(
        "wrote {} for plan {name} ({}) to {}",
        plural(written.len(), "file"),
        plural(bundle.nodes.len(), "node"),
        output.display()
    );
    eprintln!("note: nodes/*/config.ign hold the cluster's K3s token; node files are readable by you only");
    if base_url == flatlab_api::PLACEHOLDER_BASE_URL {
        eprintln!("note: no --base-url given: boot.ipxe and install.ign point at {base_url} (see README.md)");
    }
    Ok(ExitCode::SUCCESS)
}

fn tally(findings: &[Finding]) -> String {
    problems(count(findings, Severity::Error), count(findings, Severity::Warning))
}

fn problems(e: usize, w: usize) -> String {
    match (e, w) {
        (0, 0) => "no problems".into(),
        _ => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (duplicate flags and the like).
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
