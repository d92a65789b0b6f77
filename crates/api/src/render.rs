//! Rendering stored plans into bundles, and writing bundles to folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use flatlab_render::{Bundle, Inputs, K3sSource, render};
use rand::Rng;

use crate::Flatlab;

/// The boot token that exported boot scripts and install configs carry instead of a machine's
/// live one: a Git repository must not hold a key to the boot server's configs.
pub const PLACEHOLDER_BOOT_TOKEN: &str = "BootTokenNotInThisExport";

/// Which boot tokens a rendered bundle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BootTokens {
    /// Each machine's install token, the one the boot server answers (`flatlab render`, USB).
    Live,
    /// [`PLACEHOLDER_BOOT_TOKEN`] (Git exports).
    Placeholder,
}

impl Flatlab {
    /// Renders the newest revision of a stored plan, with each machine's install token (the
    /// one `flatlab serve` answers). Secrets are generated on first use and stored, so
    /// rendering again gives identical files.
    pub async fn render_plan(&self, name: &str, base_url: &str, rng: &mut impl Rng) -> anyhow::Result<Bundle> {
        self.render_stored(name, base_url, BootTokens::Live, rng).await
    }

    pub(crate) async fn render_stored(
        &self,
        name: &str,
        base_url: &str,
        tokens: BootTokens,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Bundle> {
        let plan =
            self.validated_plan(name, "fix the plan's errors before rendering (`flatlab plan validate`)").await?;
        let k3s_token = self.k3s_token(name, rng).await?;
        let node_tokens: BTreeMap<String, String> = match tokens {
            BootTokens::Live => {
                self.machine_states(name, &plan, rng).await?.into_iter().map(|s| (s.node, s.token)).collect()
            }
            BootTokens::Placeholder => {
                plan.nodes().iter().map(|n| (n.name.clone(), PLACEHOLDER_BOOT_TOKEN.to_owned())).collect()
            }
        };
        let p = plan.plan();
        let k3s = K3sSource::upstream(&p.kubernetes.k3s_version, p.os.arch, p.kubernetes.k3s_sha256.clone());
        let inputs = Inputs { base_url, k3s_token: &k3s_token, node_tokens: &node_tokens, k3s: &k3s };
        render(&plan, &inputs).with_context(|| format!("rendering plan {name}"))
    }
}

/// Writes a bundle into `dir`, replacing a bundle already there. The new bundle is written
/// beside it and swapped in with renames, so `dir` never holds half a bundle. Files that carry
/// secrets are owner-only. Refuses to replace a folder that is not a Flatlab bundle.
pub fn write_bundle(bundle: &Bundle, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    if dir.exists() && !is_replaceable(dir)? {
        bail!(
            "{} exists and is not a Flatlab bundle; choose an empty or new folder (nothing was written)",
            dir.display()
        );
    }
    let staging = tempfile::Builder::new()
        .prefix(".flatlab-bundle-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    let mut written = Vec::new();
    for (path, file) in bundle.files() {
        let target = staging.path().join(&path);
        if let Some(d) = target.parent() {
            std::fs::create_dir_all(d)?;
        }
        // Every node file is owner-only: config.ign holds the K3s token, and the boot token in
        // install.ign and boot.ipxe fetches config.ign while the boot server runs.
        let private = file.secret || path.starts_with("nodes/");
        write_file(&target, file.contents.as_bytes(), private).with_context(|| format!("writing {path}"))?;
        written.push(dir.join(&path));
    }
    let staged = staging.keep();
    if dir.exists() {
        let old = parent.join(format!(".flatlab-old-{}", std::process::id()));
        std::fs::rename(dir, &old).with_context(|| format!("moving the old bundle {} aside", dir.display()))?;
        std::fs::rename(&staged, dir).with_context(|| format!("moving the new bundle into {}", dir.display()))?;
        std::fs::remove_dir_all(&old).with_context(|| format!("removing the old bundle {}", old.display()))?;
    } else {
        std::fs::rename(&staged, dir).with_context(|| format!("moving the new bundle into {}", dir.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if secret { 0o600 } else { 0o644 });
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// An empty folder, or one holding a bundle Flatlab wrote before and nothing else (a `.git`
/// or a file of the user's in it means it is not ours to replace).
fn is_replaceable(dir: &Path) -> anyhow::Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(true);
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
    Ok(readme.starts_with("# Flatlab bundle")
        && names.iter().all(|n| matches!(n.as_str(), "README.md" | "plan.yaml" | "nodes")))
}
