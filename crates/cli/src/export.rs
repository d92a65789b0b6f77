//! `flatlab export git|usb`: a plan's rendered configs to a repository or a drive.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use flatlab_api::Flatlab;

use crate::args::ExportCommand;
use crate::output::{human_size, shell_quote};
use crate::plan::plan_name;

pub async fn run(app: &Flatlab, cmd: ExportCommand) -> anyhow::Result<ExitCode> {
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
            eprintln!(
                "note: nodes/*/config.ign on the drive hold the cluster's K3s token, and the first server's the keys of its certificate authorities"
            );
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
