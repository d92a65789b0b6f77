//! `flatlab-kube-standin --config cp1/config.ign --fixture nodes.yaml --listen 127.0.0.1:6443`
//!
//! Serves a stand-in of a plan's Kubernetes API until killed (see the library's docs). Prints
//! `listening on <address>` once it accepts connections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "A TLS stand-in of a Flatlab plan's Kubernetes API, for tests")]
struct Args {
    /// The first server's config.ign (rendered by `flatlab render`).
    #[arg(long)]
    config: PathBuf,
    /// The config.ign of the server it answers as (default: the first server's).
    #[arg(long)]
    node_config: Option<PathBuf>,
    /// The cluster's nodes (YAML; see crates/kube-standin/fixtures/).
    #[arg(long)]
    fixture: PathBuf,
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// The cluster's identity (the kube-system namespace's UID): as a cluster restored from a
    /// snapshot keeps it. A new one when not given, as a cluster just made.
    #[arg(long)]
    identity: Option<String>,
    /// A folder for the Plans received and the request log.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Milliseconds an upgrade takes per node.
    #[arg(long, default_value_t = 1000)]
    upgrade_step_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config =
        std::fs::read_to_string(&args.config).with_context(|| format!("cannot read {}", args.config.display()))?;
    let fixture = std::fs::read_to_string(&args.fixture)
        .with_context(|| format!("cannot read {}", args.fixture.display()))
        .and_then(|t| flatlab_kube_standin::Fixture::from_yaml(&t))?;
    let node_config = match &args.node_config {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let running = flatlab_kube_standin::start(flatlab_kube_standin::Options {
        config,
        node_config,
        listen: args.listen,
        fixture,
        identity: args.identity,
        record: args.record,
        upgrade_step: Duration::from_millis(args.upgrade_step_ms),
        client_ca_override: None,
    })
    .await?;
    println!("listening on {} (cluster identity {})", running.addr, running.state.lock().identity);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
