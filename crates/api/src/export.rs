//! Exporting a stored plan's rendered bundle to Git or a USB drive.

use std::path::Path;

use flatlab_export::{File, GitExport, GitOutcome, SecretPolicy};
use rand::Rng;

use crate::Flatlab;

pub use flatlab_export::{Drive, DriveSource, EjectAction, Ejection, list_drives, mountpoint_of};

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
    async fn bundle_files(&self, name: &str, base_url: &str, rng: &mut impl Rng) -> anyhow::Result<(Vec<File>, i64)> {
        let revision = self.show_plan(name, None).await?.revision;
        let bundle = self.render_plan(name, base_url, rng).await?;
        let files = bundle
            .files()
            .into_iter()
            .map(|(path, f)| File { path, contents: f.contents.as_bytes().to_vec(), secret: f.secret })
            .collect();
        Ok((files, revision))
    }

    /// Commits the plan file and its rendered bundle to `<repo>/<plan>/`; pushes if asked.
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
        let (files, revision) = self.bundle_files(name, base_url, rng).await?;
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
        Ok(outcome)
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
        let (files, _) = self.bundle_files(name, base_url, rng).await?;
        let mountpoint = mountpoint.to_owned();
        let folder = name.to_owned();
        Ok(tokio::task::spawn_blocking(move || flatlab_export::export_usb(&files, &mountpoint, &folder)).await??)
    }
}
