//! The image mirror use cases: what `flatlab mirror ...` and the app call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use flatlab_mirror::{Fetcher, Keyring, Release};
pub use flatlab_mirror::{K3S_CHANNELS_URL, K3sChannel, MirroredK3s, MirroredRelease, Progress};
use flatlab_model::Plan;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Flatlab;

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
    /// Once set, the fetch stops with [`flatlab_mirror::Error::Cancelled`]; the next resumes.
    pub cancel: Option<Arc<AtomicBool>>,
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
    let fetcher = match &request.cancel {
        Some(flag) => Fetcher::with_cancel(flag.clone()),
        None => Fetcher::new(),
    };
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

/// The app's mirror settings, kept in the database (setting `mirror`). Empty fields take the
/// defaults: [`default_mirror_dir`], the Flatcar key shipped with Flatlab, the public servers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MirrorSettings {
    /// The mirror folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub dir: Option<String>,
    /// A signing key file instead of the Flatcar key shipped with Flatlab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub key: Option<String>,
    /// Replaces `https://<channel>.release.flatcar-linux.net`; `{channel}` in it is replaced by
    /// the channel's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub flatcar_base_url: Option<String>,
    /// Replaces `https://github.com/k3s-io/k3s/releases/download`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub k3s_base_url: Option<String>,
    /// Replaces the K3s channel server [`K3S_CHANNELS_URL`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub k3s_channels_url: Option<String>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl MirrorSettings {
    /// The mirror folder these settings name, else the default one.
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        match given(&self.dir) {
            Some(d) => Ok(PathBuf::from(d)),
            None => default_mirror_dir(),
        }
    }

    pub fn key(&self) -> Option<PathBuf> {
        given(&self.key).map(PathBuf::from)
    }

    /// The release server of `channel`.
    pub fn flatcar_base_url(&self, channel: &str) -> String {
        match given(&self.flatcar_base_url) {
            Some(url) => url.replace("{channel}", channel),
            None => flatlab_mirror::default_base_url(channel),
        }
    }

    /// A fetch into this mirror, with these settings' servers and key.
    pub fn request(&self, channel: &str, arch: &str, version: &str) -> anyhow::Result<MirrorRequest> {
        Ok(MirrorRequest {
            channel: channel.to_owned(),
            arch: arch.to_owned(),
            version: version.to_owned(),
            base_url: Some(self.flatcar_base_url(channel)),
            key: self.key(),
            dir: self.dir()?,
            k3s: None,
            k3s_base_url: given(&self.k3s_base_url).map(str::to_owned),
            k3s_airgap: false,
            cancel: None,
        })
    }
}

/// What the mirror holds, for the Images view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MirrorOverview {
    pub dir: String,
    pub releases: Vec<MirroredRelease>,
    pub k3s: Vec<MirroredK3s>,
    /// Bytes the mirror takes (releases and K3s).
    #[ts(type = "number")]
    pub bytes: u64,
    /// Bytes free on its filesystem.
    #[ts(type = "number | null")]
    pub free_bytes: Option<u64>,
}

/// What the mirror at `dir` holds.
pub fn overview(dir: &Path) -> anyhow::Result<MirrorOverview> {
    let releases = list(dir)?;
    let k3s = flatlab_mirror::list_k3s(dir).with_context(|| format!("listing K3s in {}", dir.display()))?;
    let bytes = releases.iter().map(|r| r.bytes).sum::<u64>() + k3s.iter().map(|k| k.bytes).sum::<u64>();
    Ok(MirrorOverview {
        dir: dir.display().to_string(),
        releases,
        k3s,
        bytes,
        free_bytes: flatlab_mirror::free_bytes(dir),
    })
}

/// A Flatcar channel's current release on its release server, or why it is not known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ChannelRelease {
    pub channel: String,
    pub version: Option<String>,
    pub error: Option<String>,
}

/// The releases on the release servers: each Flatcar channel's current one and the K3s
/// channels' newest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ReleaseVersions {
    pub flatcar: Vec<ChannelRelease>,
    pub k3s: Vec<K3sChannel>,
    /// Why the K3s channel server did not answer, if it did not.
    pub k3s_error: Option<String>,
}

/// Asks the release servers (all at once, each with the fetcher's timeouts) what is current.
/// Blocking.
pub fn release_versions(settings: &MirrorSettings, arch: &str) -> ReleaseVersions {
    let board = if arch == "arm64" { "arm64-usr" } else { "amd64-usr" };
    let fetcher = Fetcher::new();
    let channels_url = given(&settings.k3s_channels_url).unwrap_or(K3S_CHANNELS_URL).to_owned();
    std::thread::scope(|scope| {
        let flatcar: Vec<_> = ["stable", "beta", "alpha", "lts"]
            .into_iter()
            .map(|channel| {
                let (fetcher, base) = (&fetcher, settings.flatcar_base_url(channel));
                scope.spawn(move || {
                    match flatlab_mirror::resolve_version(fetcher, base.trim_end_matches('/'), board, "current") {
                        Ok(v) => ChannelRelease { channel: channel.into(), version: Some(v), error: None },
                        Err(e) => ChannelRelease { channel: channel.into(), version: None, error: Some(e.to_string()) },
                    }
                })
            })
            .collect();
        let k3s = scope.spawn(|| flatlab_mirror::k3s_channels(&fetcher, &channels_url));
        let flatcar = flatcar
            .into_iter()
            .zip(["stable", "beta", "alpha", "lts"])
            .map(|(h, channel)| {
                h.join().unwrap_or_else(|_| ChannelRelease {
                    channel: channel.into(),
                    version: None,
                    error: Some("the lookup stopped".into()),
                })
            })
            .collect();
        let (k3s, k3s_error) = match k3s.join() {
            Ok(Ok(list)) => (list, None),
            Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
            Err(_) => (Vec::new(), Some("the lookup stopped".into())),
        };
        ReleaseVersions { flatcar, k3s, k3s_error }
    })
}

/// Whether the mirror holds what a plan's machines need to install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ImagesReadiness {
    pub dir: String,
    pub channel: String,
    pub arch: String,
    /// The plan's Flatcar release (`current` when it did not pin one).
    pub flatcar_version: String,
    /// The release's files the mirror lacks; empty when it holds them all.
    pub flatcar_missing: Vec<String>,
    pub k3s_version: String,
    /// The mirror holds the plan's K3s binary (else nodes download it from GitHub).
    pub k3s_mirrored: bool,
    /// The mirror holds the air-gap image tarball (else nodes pull images from registries).
    pub airgap_mirrored: bool,
}

impl ImagesReadiness {
    /// Machines can install from this mirror with no internet for Flatcar.
    pub fn flatcar_ready(&self) -> bool {
        self.flatcar_missing.is_empty()
    }
}

/// What the mirror at `dir` holds of what `plan` needs.
pub fn readiness(plan: &Plan, dir: &Path) -> ImagesReadiness {
    let os = &plan.os;
    let release = dir.join(os.channel.as_str()).join(os.arch.board()).join(&os.version);
    let flatcar_missing = if os.version.trim().is_empty() || os.version == "current" {
        flatlab_mirror::RELEASE_FILES.iter().map(|f| (*f).to_owned()).collect()
    } else {
        flatlab_mirror::RELEASE_FILES.iter().filter(|f| !release.join(f).is_file()).map(|f| (*f).to_owned()).collect()
    };
    let arch = os.arch.as_str();
    let k3s = &plan.kubernetes.k3s_version;
    let k3s_dir = dir.join("k3s").join(k3s);
    // The names the boot server serves K3s and its air-gap images by.
    let binary = flatlab_render::k3s_binary(os.arch);
    ImagesReadiness {
        dir: dir.display().to_string(),
        channel: os.channel.as_str().to_owned(),
        arch: arch.to_owned(),
        flatcar_version: os.version.clone(),
        flatcar_missing,
        k3s_version: k3s.clone(),
        k3s_mirrored: !k3s.is_empty() && k3s_dir.join(binary).is_file(),
        airgap_mirrored: !k3s.is_empty() && k3s_dir.join(flatlab_render::airgap_name(os.arch)).is_file(),
    }
}

/// A fetch the app asks for: into the mirror of its settings, from their servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct FetchRequest {
    pub channel: String,
    pub arch: String,
    /// A release, or `current`.
    pub version: String,
    /// Also this K3s release's binary.
    #[serde(default)]
    pub k3s: Option<String>,
    /// With `k3s`: also its air-gap image tarball.
    #[serde(default)]
    pub k3s_airgap: bool,
}

/// How a fetch is going, as the app shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct MirrorProgress {
    /// The file being downloaded (its name on the server).
    pub file: String,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number | null")]
    pub total: Option<u64>,
    /// Bytes per second.
    pub rate: f64,
    /// Seconds left, when the size is known.
    pub eta_secs: Option<f64>,
}

impl From<&Progress> for MirrorProgress {
    fn from(p: &Progress) -> Self {
        let file = p.url.rsplit('/').next().unwrap_or(&p.url);
        let file = percent_encoding::percent_decode_str(file).decode_utf8_lossy().into_owned();
        MirrorProgress { file, done: p.done, total: p.total, rate: p.rate, eta_secs: p.eta.map(|d| d.as_secs_f64()) }
    }
}

/// What a fetch mirrored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct FetchOutcome {
    /// The Flatcar release (`current` resolved).
    pub version: String,
    pub files: Vec<String>,
    pub k3s: Option<String>,
}

/// One mirrored file checked again: no problem, or what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct FileCheck {
    pub file: String,
    pub problem: Option<String>,
}

/// At most one fetch at a time, and a way to cancel it: what the app keeps for its Images view.
#[derive(Debug, Default)]
pub struct FetchJob {
    running: std::sync::Mutex<Option<Arc<AtomicBool>>>,
}

/// Clears the job when its fetch ends, however it ends.
pub struct FetchTicket<'a> {
    job: &'a FetchJob,
    pub cancel: Arc<AtomicBool>,
}

impl Drop for FetchTicket<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.job.running.lock() {
            *running = None;
        }
    }
}

impl FetchJob {
    /// Begins a fetch; refused while another runs.
    pub fn begin(&self) -> anyhow::Result<FetchTicket<'_>> {
        let mut running = self.running.lock().map_err(|_| anyhow::anyhow!("the fetch state is damaged"))?;
        if running.is_some() {
            return Err(crate::ApiError::BadRequest("a fetch runs already: wait for it, or cancel it".into()).into());
        }
        let cancel = Arc::new(AtomicBool::new(false));
        *running = Some(cancel.clone());
        Ok(FetchTicket { job: self, cancel })
    }

    /// Cancels the running fetch; false when none runs.
    pub fn cancel(&self) -> bool {
        match self.running.lock().ok().and_then(|r| r.clone()) {
            Some(flag) => {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }
}

/// The setting the mirror settings live under.
const SETTINGS_KEY: &str = "mirror";

impl Flatlab {
    /// The app's mirror settings (defaults when never saved).
    pub async fn mirror_settings(&self) -> anyhow::Result<MirrorSettings> {
        match self.store().setting(SETTINGS_KEY).await? {
            Some(text) => serde_json::from_str(&text).context("reading the mirror settings"),
            None => Ok(MirrorSettings::default()),
        }
    }

    /// Saves the app's mirror settings. A key file that is given must parse.
    pub async fn save_mirror_settings(&self, settings: &MirrorSettings) -> anyhow::Result<()> {
        if let Some(key) = settings.key() {
            keyring(Some(&key))?;
        }
        for url in [&settings.flatcar_base_url, &settings.k3s_base_url, &settings.k3s_channels_url] {
            if let Some(u) = given(url)
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(crate::ApiError::BadRequest(format!(
                    "{u}: a server address starts with http:// or https://"
                ))
                .into());
            }
        }
        let text = serde_json::to_string(settings).context("encoding the mirror settings")?;
        self.store().set_setting(SETTINGS_KEY, &text, self.now()).await?;
        Ok(())
    }

    /// Fetches into the mirror of the app's settings, reporting progress at most every 200 ms;
    /// stops when `cancel` is set (what was downloaded is kept for the next fetch).
    pub async fn fetch_images(
        &self,
        request: &FetchRequest,
        cancel: Arc<AtomicBool>,
        mut progress: impl FnMut(MirrorProgress) + Send + 'static,
    ) -> anyhow::Result<FetchOutcome> {
        let settings = self.mirror_settings().await?;
        let mut mirror = settings.request(&request.channel, &request.arch, &request.version)?;
        mirror.k3s = request.k3s.clone().filter(|v| !v.trim().is_empty());
        mirror.k3s_airgap = request.k3s_airgap;
        mirror.cancel = Some(cancel);
        let done = tokio::task::spawn_blocking(move || fetch(&mirror, &mut |p| progress(MirrorProgress::from(&p))))
            .await
            .context("the fetch stopped")??;
        Ok(FetchOutcome {
            version: done.version,
            files: done.files.iter().map(|f| f.display().to_string()).collect(),
            k3s: done.k3s.map(|k| k.display().to_string()),
        })
    }

    /// What the mirror of the app's settings holds.
    pub async fn mirror_overview(&self) -> anyhow::Result<MirrorOverview> {
        let dir = self.mirror_settings().await?.dir()?;
        tokio::task::spawn_blocking(move || overview(&dir)).await.context("listing the mirror stopped")?
    }

    /// Checks every file of the app's mirror again.
    pub async fn verify_mirror(&self) -> anyhow::Result<Vec<FileCheck>> {
        let settings = self.mirror_settings().await?;
        let (dir, key) = (settings.dir()?, settings.key());
        let report = tokio::task::spawn_blocking(move || verify(&dir, key.as_deref()))
            .await
            .context("the verification stopped")??;
        Ok(report.into_iter().map(|(file, problem)| FileCheck { file: file.display().to_string(), problem }).collect())
    }

    /// Keeps the newest `keep` releases of each channel in the app's mirror.
    pub async fn prune_mirror(&self, keep: usize) -> anyhow::Result<Vec<String>> {
        if keep == 0 {
            return Err(crate::ApiError::BadRequest("keep at least one release".into()).into());
        }
        let dir = self.mirror_settings().await?.dir()?;
        let removed = tokio::task::spawn_blocking(move || prune(&dir, keep)).await.context("pruning stopped")??;
        Ok(removed.iter().map(|p| p.display().to_string()).collect())
    }

    /// What the mirror of the app's settings holds of what plan `name` needs.
    pub async fn images_readiness(&self, name: &str) -> anyhow::Result<ImagesReadiness> {
        let plan = self.show_plan(name, None).await?.plan;
        let dir = self.mirror_settings().await?.dir()?;
        Ok(readiness(&plan, &dir))
    }
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
