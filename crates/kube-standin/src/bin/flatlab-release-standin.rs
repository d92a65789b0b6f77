//! `flatlab-release-standin --root DIR [--listen ADDR] [--rate BYTES]`: serves a folder laid out
//! as the Flatcar and K3s release servers are (see `flatlab_kube_standin::release`), for the
//! app's end-to-end run. Prints `listening http://ADDR` once it accepts connections.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The folder to serve.
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Bytes a second per response (unlimited when not given).
    #[arg(long)]
    rate: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = flatlab_kube_standin::release::serve_releases(args.root, args.listen, args.rate).await?;
    println!("listening {}", server.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
