//! The image mirror use cases: what `flatlab mirror ...` and the app call.

use std::path::{Path, PathBuf};

use anyhow::Context;
use flatlab_mirror::{Fetcher, Keyring, Release};
pub use flatlab_mirror::{MirroredRelease, Progress};

/// The default mirror folder: `$XDG_DATA_HOME/flatlab/mirror`.
pub fn default_mirror_dir() -> anyhow::Result<PathBuf> {
    let base = dirs::data_dir().context("cannot find your data folder: set XDG_DATA_HOME or HOME, or pass --dir")?;
    Ok(base.join("flatlab").join("mirror"))
}

/// What to mirror.
#[derive(Debug, Clone)]
pub struct MirrorRequest {
    pub channel: String,
    pub arch: String,
    /// A release, or `current`.
    pub version: String,
    /// Replaces `https://<channel>.release.flatcar-linux.net`.
    pub base_url: Option<String>,
    /// A signing key file instead of the Flatcar key shipped with Flatlab.
    pub key: Option<PathBuf>,
    pub dir: PathBuf,
    /// Also fetch this K3s release's binary.
    pub k3s: Option<String>,
    pub k3s_base_url: Option<String>,
    /// With `k3s`: also the airgap images tarball.
    pub k3s_airgap: bool,
}

/// What was mirrored.
#[derive(Debug, Clone)]
pub struct Mirrored {
    pub version: String,
    pub files: Vec<PathBuf>,
    pub k3s: Option<PathBuf>,
}

/// The Flatcar image signing key's file name, in the package and in the source checkout.
const KEY_FILE: &str = "Flatcar_Image_Signing_Key.asc";

/// Where the Flatcar signing key is looked for when `--key` is not given: where the Debian
/// package puts it, then the source checkout's `assets/`. The first that exists wins, so a
/// key replaced on disk (Flatcar adds subkeys) takes effect without a rebuild.
pub fn default_key_paths() -> Vec<PathBuf> {
    vec![
        Path::new("/usr/share/flatlab").join(KEY_FILE),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets").join(KEY_FILE),
    ]
}

/// The keyring for `key`, else for the first of [`default_key_paths`] that exists, else for the
/// copy of the Flatcar key built into Flatlab.
pub fn keyring(key: Option<&Path>) -> anyhow::Result<Keyring> {
    let found;
    let key = match key {
        Some(path) => Some(path),
        None => {
            found = default_key_paths().into_iter().find(|p| p.is_file());
            found.as_deref()
        }
    };
    let text = match key {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading the key {}", path.display()))?,
        None => flatlab_mirror::FLATCAR_KEY.to_owned(),
    };
    Keyring::from_armored(&text).with_context(|| match key {
        Some(path) => format!("parsing the key {}", path.display()),
        None => "parsing the built-in Flatcar key".to_owned(),
    })
}

/// Fetches and verifies a Flatcar release (and optionally K3s) into the mirror. Blocking.
pub fn fetch(request: &MirrorRequest, progress: &mut dyn FnMut(Progress)) -> anyhow::Result<Mirrored> {
    let board = match request.arch.as_str() {
        "amd64" => "amd64-usr",
        "arm64" => "arm64-usr",
        other => anyhow::bail!("--arch {other}: Flatcar is built for amd64 and arm64"),
    };
    if !["stable", "beta", "alpha", "lts"].contains(&request.channel.as_str()) {
        anyhow::bail!("--channel {}: choose stable, beta, alpha or lts", request.channel);
    }
    let keyring = keyring(request.key.as_deref())?;
    let fetcher = Fetcher::new();
    let base = request.base_url.clone().unwrap_or_else(|| flatlab_mirror::default_base_url(&request.channel));
    let base = base.trim_end_matches('/');
    let version = flatlab_mirror::resolve_version(&fetcher, base, board, &request.version)?;
    let release = Release { channel: request.channel.clone(), board: board.into(), version: version.clone() };
    let files = flatlab_mirror::fetch_release(&fetcher, &keyring, base, &request.dir, &release, progress)
        .with_context(|| format!("mirroring Flatcar {version} ({}, {board})", request.channel))?;
    let k3s = match &request.k3s {
        Some(v) => {
            let k3s_base = request
                .k3s_base_url
                .clone()
                .unwrap_or_else(|| "https://github.com/k3s-io/k3s/releases/download".into());
            let k3s_base = k3s_base.trim_end_matches('/');
            let binary = flatlab_mirror::fetch_k3s(&fetcher, k3s_base, &request.dir, v, &request.arch, progress)
                .with_context(|| format!("mirroring K3s {v}"))?;
            if request.k3s_airgap {
                let name = flatlab_mirror::k3s_airgap_name(&request.arch);
                flatlab_mirror::fetch_k3s_asset(&fetcher, k3s_base, &request.dir, v, &request.arch, &name, progress)
                    .with_context(|| format!("mirroring K3s {v} airgap images"))?;
            }
            Some(binary)
        }
        None => None,
    };
    Ok(Mirrored { version, files, k3s })
}

/// The releases in the mirror at `dir`.
pub fn list(dir: &Path) -> anyhow::Result<Vec<MirroredRelease>> {
    flatlab_mirror::list(dir).with_context(|| format!("listing the mirror {}", dir.display()))
}

/// One file's verdict from [`verify`]: None when it checked out, else why not.
pub type FileVerdict = (PathBuf, Option<String>);

/// Checks every mirrored file again against its signature (with `key`, else the Flatcar key)
/// or its recorded SHA-256.
pub fn verify(dir: &Path, key: Option<&Path>) -> anyhow::Result<Vec<FileVerdict>> {
    let keyring = keyring(key)?;
    let report = flatlab_mirror::verify_all(dir, &keyring).with_context(|| format!("verifying {}", dir.display()))?;
    Ok(report.into_iter().map(|(file, result)| (file, result.err().map(|e| e.to_string()))).collect())
}

/// Keeps the newest `keep` releases of each channel and architecture; returns what was removed.
pub fn prune(dir: &Path, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    flatlab_mirror::prune(dir, keep).with_context(|| format!("pruning {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_key_is_found_and_is_flatcars() {
        let checkout = &default_key_paths()[1];
        assert!(checkout.is_file(), "{} is missing", checkout.display());
        let keyring = keyring(None).expect("the default key parses");
        assert_eq!(keyring.fingerprints(), [flatlab_mirror::FLATCAR_KEY_FINGERPRINT]);
    }

    #[test]
    fn a_bad_key_file_names_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.asc");
        std::fs::write(&path, "not a key").expect("write");
        let Err(e) = keyring(Some(&path)) else { panic!("a bad key was accepted") };
        assert!(format!("{e:#}").contains("bad.asc"), "{e:#}");
    }
}
