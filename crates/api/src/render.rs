//! Rendering stored plans into bundles, and writing bundles to folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
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

/// A bundle's files as the export crate writes them.
pub(crate) fn bundle_files(bundle: &Bundle) -> Vec<flatlab_export::File> {
    bundle
        .files()
        .into_iter()
        .map(|(path, f)| flatlab_export::File { path, contents: f.contents.as_bytes().to_vec(), secret: f.secret })
        .collect()
}

impl Flatlab {
    /// Renders a stored plan (as [`Flatlab::render_plan`]) into the bundle folder `dir`, which is
    /// replaced whole; returns the bundle and the paths written. Refuses a folder that is not a
    /// bundle.
    pub async fn render_to_folder(
        &self,
        name: &str,
        base_url: &str,
        dir: &Path,
        rng: &mut impl Rng,
    ) -> anyhow::Result<(Bundle, Vec<PathBuf>)> {
        let bundle = self.render_plan(name, base_url, rng).await?;
        let files = bundle_files(&bundle);
        let dir = dir.to_owned();
        let written = tokio::task::spawn_blocking(move || flatlab_export::write_bundle(&files, &dir)).await??;
        Ok((bundle, written))
    }

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
        let states = self.machine_states(name, &plan, rng).await?;
        let cluster = self.cluster_secrets(name, &states, rng).await?;
        let node_tokens: BTreeMap<String, String> = match tokens {
            BootTokens::Live => states.into_iter().map(|s| (s.node, s.token)).collect(),
            BootTokens::Placeholder => {
                plan.nodes().iter().map(|n| (n.name.clone(), PLACEHOLDER_BOOT_TOKEN.to_owned())).collect()
            }
        };
        let p = plan.plan();
        let k3s = K3sSource::upstream(&p.kubernetes.k3s_version, p.os.arch, p.kubernetes.k3s_sha256.clone());
        let inputs = Inputs { base_url, cluster: &cluster, node_tokens: &node_tokens, k3s: &k3s };
        render(&plan, &inputs).with_context(|| format!("rendering plan {name}"))
    }
}
