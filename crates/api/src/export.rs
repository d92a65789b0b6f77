//! Exporting a stored plan's rendered bundle to Git or a USB drive.

use std::path::{Path, PathBuf};

use flatlab_export::{File, GitExport, SecretPolicy};
use rand::Rng;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Flatlab;
use crate::render::BootTokens;

/// A Git export's sealed secrets backup, beside the plan file.
pub const SECRETS_BACKUP_FILE: &str = "secrets-backup.json";

pub use flatlab_export::{Drive, DriveSource, EjectAction, Ejection, GitOutcome, list_drives, mountpoint_of};

/// How far an export is: `step` of `total`, with what is being done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ExportProgress {
    pub step: u32,
    pub total: u32,
    pub message: String,
}

/// A Git export as the app asks for it. Blank branch and remote mean none; blank recipients
/// are left out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct GitExportOptions {
    pub name: String,
    #[ts(type = "string")]
    pub repo: PathBuf,
    pub branch: Option<String>,
    pub push: Option<String>,
    /// age recipients (`age1...`); none leaves files with secrets out of the repository.
    pub encrypt_to: Vec<String>,
}

/// Mounts a drive by its device (`/dev/sdb1`, or a `/dev/disk/by-label/...` link) through UDisks2
/// when it is not mounted yet; returns its mount point. Without UDisks2 it must be mounted.
pub async fn mount_drive(device: &str) -> anyhow::Result<std::path::PathBuf> {
    Ok(flatlab_export::mount_drive(Path::new(device)).await?)
}

/// Ejects a drive safely, named by its device or a mount point: unmounts it, then powers it off
/// (or ejects its media) through UDisks2; without UDisks2 it is only unmounted.
pub async fn eject_drive(device_or_mountpoint: &str) -> anyhow::Result<Ejection> {
    Ok(flatlab_export::eject_drive(Path::new(device_or_mountpoint)).await?)
}

impl Flatlab {
    async fn bundle_files(
        &self,
        name: &str,
        base_url: &str,
        tokens: BootTokens,
        rng: &mut impl Rng,
    ) -> anyhow::Result<(Vec<File>, i64)> {
        let revision = self.show_plan(name, None).await?.revision;
        let bundle = self.render_stored(name, base_url, tokens, rng).await?;
        Ok((crate::render::bundle_files(&bundle), revision))
    }

    /// Commits the plan file and its rendered bundle to `<repo>/<plan>/`; pushes if asked. Boot
    /// scripts and install configs carry a placeholder instead of the machines' boot tokens.
    #[allow(clippy::too_many_arguments)]
    pub async fn export_git(
        &self,
        name: &str,
        repo: &Path,
        branch: Option<String>,
        push: Option<String>,
        encrypt_to: Vec<String>,
        base_url: &str,
        rng: &mut impl Rng,
    ) -> anyhow::Result<GitOutcome> {
        let (mut files, revision) = self.bundle_files(name, base_url, BootTokens::Placeholder, rng).await?;
        let backed_up = !encrypt_to.is_empty();
        if backed_up {
            // The keys to the cluster go along, sealed like the other secret files: a restore is
            // `flatlab secrets import secrets-backup.json.age --identity KEY`.
            let backup = self.secrets_backup(name, rng).await?;
            files.push(File { path: SECRETS_BACKUP_FILE.into(), contents: backup, secret: true });
        }
        let export = GitExport {
            repo: repo.to_owned(),
            folder: name.to_owned(),
            branch,
            push,
            secrets: if encrypt_to.is_empty() { SecretPolicy::Omit } else { SecretPolicy::Encrypt(encrypt_to) },
            summary: format!("flatlab: plan {name}, revision {revision}"),
            how_to_render: format!("flatlab render {name} -o DIR"),
        };
        let outcome = tokio::task::spawn_blocking(move || flatlab_export::export_git(&files, &export)).await??;
        if backed_up {
            self.record_secrets_backup(name).await?;
        }
        Ok(outcome)
    }

    /// [`Flatlab::export_git`] for the app: options as the form gives them, with progress.
    pub async fn export_git_with_progress(
        &self,
        options: GitExportOptions,
        base_url: &str,
        progress: impl Fn(ExportProgress),
        rng: &mut impl Rng,
    ) -> anyhow::Result<GitOutcome> {
        let GitExportOptions { name, repo, branch, push, encrypt_to } = options;
        let branch = branch.filter(|b| !b.trim().is_empty());
        let push = push.filter(|p| !p.trim().is_empty());
        let encrypt_to: Vec<String> =
            encrypt_to.into_iter().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
        let total = if push.is_some() { 3 } else { 2 };
        let step = |step, message: String| progress(ExportProgress { step, total, message });
        step(1, format!("rendering plan {name} and committing it to {}", repo.display()));
        let outcome = self.export_git(&name, &repo, branch, push.clone(), encrypt_to, base_url, rng).await?;
        if let Some(remote) = push.filter(|_| outcome.pushed) {
            step(2, format!("pushed to {remote}"));
        }
        step(total, if outcome.commit.is_some() { "committed".into() } else { "unchanged: no new commit".into() });
        Ok(outcome)
    }

    /// [`Flatlab::export_usb`] for the app, with progress.
    pub async fn export_usb_with_progress(
        &self,
        name: &str,
        mountpoint: &Path,
        base_url: &str,
        progress: impl Fn(ExportProgress),
        rng: &mut impl Rng,
    ) -> anyhow::Result<PathBuf> {
        let step = |step, message: String| progress(ExportProgress { step, total: 2, message });
        step(1, format!("rendering plan {name} and writing it to {}", mountpoint.display()));
        let folder = self.export_usb(name, mountpoint, base_url, rng).await?;
        step(2, format!("written and read back: {}", folder.display()));
        Ok(folder)
    }

    /// Writes the rendered bundle (secrets included: a stick is carried to the machines) to
    /// `<mountpoint>/flatlab/<plan>/`.
    pub async fn export_usb(
        &self,
        name: &str,
        mountpoint: &Path,
        base_url: &str,
        rng: &mut impl Rng,
    ) -> anyhow::Result<std::path::PathBuf> {
        let (files, _) = self.bundle_files(name, base_url, BootTokens::Live, rng).await?;
        let mountpoint = mountpoint.to_owned();
        let folder = name.to_owned();
        Ok(tokio::task::spawn_blocking(move || flatlab_export::export_usb(&files, &mountpoint, &folder)).await??)
    }
}
