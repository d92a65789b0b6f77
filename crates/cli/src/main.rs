//! `flatlab`: everything the desktop app does, headless, for scripts, a boot-server Pi, and tests.
//!
//! A thin clap layer over `flatlab-api`: parse arguments ([`args`]), call one use case per
//! command (one module per command group), print the result ([`output`]).
//! Exit codes: 0 success, 1 failure (including a plan with errors), 2 bad usage.

mod args;
mod cluster;
mod discover;
mod export;
mod inventory;
mod mirror;
mod output;
mod plan;
mod serve;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use flatlab_api::{ApiError, Flatlab, default_db_path};

use args::{Cli, Command, PlanCommand};

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

/// An error as one line (`error: ` and the whole chain), after each finding when a plan has
/// several.
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
        // Needs no database.
        Command::Plan(PlanCommand::Validate { file, json, lan }) => plan::validate(&file, json, lan).await,
        Command::Mirror(cmd) => tokio::task::spawn_blocking(move || mirror::run(cmd)).await?,
        command => {
            let app = open(cli.db.as_deref()).await?;
            let code = with_app(&app, command).await;
            app.close().await;
            code
        }
    }
}

async fn with_app(app: &Flatlab, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Plan(cmd) => plan::run(app, cmd).await,
        Command::Render { plan, output, base_url } => plan::render(app, &plan, &output, base_url.as_deref()).await,
        Command::Serve(args) => serve::run(app, args).await,
        Command::Arm { plan, node, new_cluster } => serve::arm(app, &plan, &node, new_cluster).await,
        Command::PowerOn { plan, node, interface, json } => {
            serve::power_on(app, &plan, node.as_deref(), interface.as_deref(), json).await
        }
        Command::Inspect { plan, node, mac } => serve::inspect(app, &plan, node, mac).await,
        Command::Inventory { plan, json } => inventory::run(app, &plan, json).await,
        Command::Export(cmd) => export::run(app, cmd).await,
        Command::Discover { timeout, json } => discover::run(app, timeout, json).await,
        Command::Kubeconfig { plan, output, merge } => cluster::kubeconfig(app, &plan, output.as_deref(), merge).await,
        Command::Secrets(cmd) => cluster::secrets(app, cmd).await,
        Command::Cluster(cmd) => cluster::run(app, cmd).await,
        // `run` handles it before opening a database; here too it needs none.
        Command::Mirror(cmd) => tokio::task::spawn_blocking(move || mirror::run(cmd)).await?,
    }
}

async fn open(db: Option<&Path>) -> anyhow::Result<Flatlab> {
    let path = match db {
        Some(p) => p.to_owned(),
        None => default_db_path()?,
    };
    Flatlab::open(&path).await
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
