//! `flatlab kubeconfig` and `flatlab secrets`: reaching the plan's cluster from this
//! workstation, and keeping the keys to it safe.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use flatlab_api::Flatlab;
use flatlab_api::kubeconfig::{merge_kubeconfig, write_kubeconfig};

use crate::args::SecretsCommand;

/// Where `--merge` adds a context: `$KUBECONFIG`'s first file, else `~/.kube/config`.
fn default_kubeconfig() -> anyhow::Result<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next())
        && !first.as_os_str().is_empty()
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").context("cannot find your home folder: set HOME, or give -o FILE")?;
    Ok(Path::new(&home).join(".kube/config"))
}

pub async fn kubeconfig(app: &Flatlab, plan: &str, output: Option<&Path>, merge: bool) -> anyhow::Result<ExitCode> {
    let config = app.kubeconfig(plan, &mut rand::rng()).await?;
    let expires = flatlab_api::format_time(config.expires_at);
    if merge {
        let path = match output {
            Some(p) => p.to_owned(),
            None => default_kubeconfig()?,
        };
        let existing = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {}", path.display()))),
        };
        let merged = merge_kubeconfig(existing.as_deref(), &config)
            .with_context(|| format!("merging into {}", path.display()))?;
        write_kubeconfig(&path, &merged)?;
        eprintln!(
            "added context {plan} ({}) to {}; its certificate is valid until {expires}: `kubectl --context {plan} get nodes`",
            config.server,
            path.display()
        );
    } else if let Some(path) = output {
        write_kubeconfig(path, &config.yaml)?;
        eprintln!(
            "wrote a kubeconfig for plan {plan} ({}) to {} (readable by you only: it holds an admin key); valid until {expires}",
            config.server,
            path.display()
        );
    } else {
        print!("{}", config.yaml);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn secrets(app: &Flatlab, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCommand::Export { plan, encrypt_to, output } => {
            let sealed = app.export_secrets(&plan, &encrypt_to, &mut rand::rng()).await?;
            flatlab_api::write_private(&output, &sealed).with_context(|| format!("writing {}", output.display()))?;
            eprintln!(
                "wrote plan {plan}'s secrets, encrypted to {} recipient(s), to {}; keep it somewhere safe: it holds the keys to the cluster",
                encrypt_to.len(),
                output.display()
            );
        }
        SecretsCommand::Import { file, identity, replace } => {
            let sealed = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let restored = app.import_secrets(&sealed, &identity, replace).await?;
            if restored.changed {
                eprintln!("restored {} secret(s) of plan {}", restored.secrets, restored.plan);
            } else {
                eprintln!("plan {} holds these {} secret(s) already; nothing changed", restored.plan, restored.secrets);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
