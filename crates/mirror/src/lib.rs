//! A local mirror of Flatcar releases and K3s binaries, verified before anything is served.
//!
//! Layout, as on the release server so that `flatcar-install -b` can use it:
//! `DIR/<channel>/<board>/<version>/<file>` and `DIR/k3s/<version>/<binary>` (+ `.sha256`).
//! Downloads go to `DIR/.partial/...` (the boot server never serves names starting with a dot),
//! resume after an interruption, and move into place only once their OpenPGP signature (Flatcar)
//! or published SHA-256 (K3s) checked out. Knows nothing of plans.

mod error;
mod fetch;
mod verify;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use ts_rs::TS;

pub use error::{Error, Result};
pub use fetch::{Fetcher, Progress};
pub use verify::{Keyring, Verified};

/// The Flatcar image signing key, shipped in `assets/`.
pub const FLATCAR_KEY: &str = include_str!("../../../assets/Flatcar_Image_Signing_Key.asc");
/// Its fingerprint, as published.
pub const FLATCAR_KEY_FINGERPRINT: &str = "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A";

/// The files of a release the boot server needs: PXE kernel and initrd, and the disk image.
pub const RELEASE_FILES: &[&str] =
    &["flatcar_production_pxe.vmlinuz", "flatcar_production_pxe_image.cpio.gz", "flatcar_production_image.bin.bz2"];

/// A Flatcar release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub channel: String,
    /// `amd64-usr` or `arm64-usr`.
    pub board: String,
    pub version: String,
}

impl Release {
    pub fn dir(&self, mirror: &Path) -> PathBuf {
        mirror.join(&self.channel).join(&self.board).join(&self.version)
    }
}

/// A release in the mirror, as `flatlab mirror list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MirroredRelease {
    pub channel: String,
    pub board: String,
    pub version: String,
    /// Which of [`RELEASE_FILES`] are there.
    pub files: Vec<String>,
    pub complete: bool,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// A K3s release in the mirror (`DIR/k3s/<version>/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MirroredK3s {
    pub version: String,
    /// The binaries there: `k3s` (amd64), `k3s-arm64`.
    pub binaries: Vec<String>,
    /// The air-gap image tarballs there (`k3s-airgap-images-<arch>.tar.zst`).
    pub airgap: Vec<String>,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// The K3s releases in the mirror, newest first.
pub fn list_k3s(mirror: &Path) -> Result<Vec<MirroredK3s>> {
    let root = mirror.join("k3s");
    let mut out = Vec::new();
    for version in subdirs(&root)? {
        let dir = root.join(&version);
        let (mut binaries, mut airgap, mut bytes) = (Vec::new(), Vec::new(), 0);
        let entries = std::fs::read_dir(&dir).map_err(Error::io(&dir))?;
        for e in entries {
            let e = e.map_err(Error::io(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            // Only what was checked: each asset has its `.sha256` beside it.
            if name.starts_with('.') || name.ends_with(".sha256") || !dir.join(format!("{name}.sha256")).is_file() {
                continue;
            }
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            if name == "k3s" || name == "k3s-arm64" {
                binaries.push(name);
            } else if name.starts_with("k3s-airgap-images-") {
                airgap.push(name);
            }
        }
        binaries.sort();
        airgap.sort();
        out.push(MirroredK3s { version, binaries, airgap, bytes });
    }
    out.sort_by_key(|k| std::cmp::Reverse(k3s_version_key(&k.version)));
    Ok(out)
}

/// `v1.32.2+k3s1` as numbers to sort by: 1, 32, 2, 1.
fn k3s_version_key(v: &str) -> Vec<u64> {
    v.trim_start_matches('v').split(['.', '+', '-']).map(|p| p.trim_start_matches("k3s").parse().unwrap_or(0)).collect()
}

/// Bytes free for the mirror on the filesystem that holds `mirror` (or its nearest existing
/// parent, before the first fetch creates it).
pub fn free_bytes(mirror: &Path) -> Option<u64> {
    let existing = mirror.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statvfs(existing).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The default K3s channel server, which names each channel's newest release.
pub const K3S_CHANNELS_URL: &str = "https://update.k3s.io/v1-release/channels";

/// A K3s release channel and its newest release, as the channel server lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct K3sChannel {
    /// `stable`, `latest`, `v1.32`, ...
    pub id: String,
    pub latest: String,
}

/// The channels of the K3s channel server at `url` (`{"data": [{"id", "latest"}, ...]}`).
pub fn k3s_channels(fetcher: &Fetcher, url: &str) -> Result<Vec<K3sChannel>> {
    #[derive(serde::Deserialize)]
    struct Channels {
        data: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        latest: Option<String>,
    }
    let text = fetcher.get_text(url)?;
    let channels: Channels =
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{url} does not list K3s channels: {e}")))?;
    Ok(channels
        .data
        .into_iter()
        .filter_map(|e| Some(K3sChannel { latest: e.latest.filter(|l| !l.is_empty())?, id: e.id }))
        .collect())
}

/// The default release server for a channel.
pub fn default_base_url(channel: &str) -> String {
    format!("https://{channel}.release.flatcar-linux.net")
}

/// Resolves `current` through `<base>/<board>/current/version.txt`.
pub fn resolve_version(fetcher: &Fetcher, base: &str, board: &str, version: &str) -> Result<String> {
    if version != "current" {
        return Ok(version.to_owned());
    }
    let url = format!("{base}/{board}/current/version.txt");
    let text = fetcher.get_text(&url)?;
    text.lines()
        .find_map(|l| l.strip_prefix("FLATCAR_VERSION="))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .ok_or_else(|| Error::Other(format!("{url} does not say FLATCAR_VERSION=")))
}

/// Fetches and verifies a release into the mirror. Files already there are checked again, not
/// downloaded again.
pub fn fetch_release(
    fetcher: &Fetcher,
    keyring: &Keyring,
    base: &str,
    mirror: &Path,
    release: &Release,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<PathBuf>> {
    let dir = release.dir(mirror);
    let partial = mirror.join(".partial").join(&release.channel).join(&release.board).join(&release.version);
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    std::fs::create_dir_all(&partial).map_err(Error::io(&partial))?;
    let remote = format!("{base}/{}/{}", release.board, release.version);
    let mut done = Vec::new();
    for file in RELEASE_FILES {
        let target = dir.join(file);
        let sig_target = dir.join(format!("{file}.sig"));
        if target.is_file() && sig_target.is_file() {
            verify_file(keyring, &target, &sig_target)?;
            done.push(target);
            continue;
        }
        // The signature first (small): no point in downloading an image that cannot be checked.
        let sig = match fetcher.get_bytes(&format!("{remote}/{file}.sig")) {
            Ok(s) => s,
            // Some releases lack the PXE kernel's .sig; the same kernel is signed as the image's.
            Err(Error::NotFound { .. }) if *file == "flatcar_production_pxe.vmlinuz" => {
                fetcher.get_bytes(&format!("{remote}/flatcar_production_image.vmlinuz.sig"))?
            }
            Err(e) => return Err(e),
        };
        let part = partial.join(format!("{file}.part"));
        fetcher.download(&format!("{remote}/{file}"), &part, &mut *progress).map_err(|e| match e {
            Error::NotFound { url, .. } => Error::NotFound {
                url,
                hint: format!("; release {} may not have this file (check another version)", release.version),
            },
            other => other,
        })?;
        let checked = std::fs::File::open(&part).map_err(Error::io(&part)).and_then(|f| {
            keyring
                .verify(&sig, std::io::BufReader::with_capacity(1 << 20, f))
                .map_err(|e| Error::Refused { file: (*file).to_owned(), reason: e.to_string() })
        });
        if let Err(e) = checked {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        std::fs::write(&sig_target, &sig).map_err(Error::io(&sig_target))?;
        std::fs::rename(&part, &target).map_err(Error::io(&target))?;
        tracing::info!(file = %target.display(), "verified and mirrored");
        done.push(target);
    }
    Ok(done)
}

/// Checks a mirrored file against its `.sig`.
pub fn verify_file(keyring: &Keyring, file: &Path, sig: &Path) -> Result<Verified> {
    let sig_bytes = std::fs::read(sig).map_err(Error::io(sig))?;
    let f = std::fs::File::open(file).map_err(Error::io(file))?;
    keyring
        .verify(&sig_bytes, std::io::BufReader::with_capacity(1 << 20, f))
        .map_err(|e| Error::Refused { file: file.display().to_string(), reason: e.to_string() })
}

/// The releases in the mirror, newest version first within each channel and board.
pub fn list(mirror: &Path) -> Result<Vec<MirroredRelease>> {
    let mut out = Vec::new();
    for channel in subdirs(mirror)? {
        if channel.starts_with('.') || channel == "k3s" {
            continue;
        }
        for board in subdirs(&mirror.join(&channel))? {
            for version in subdirs(&mirror.join(&channel).join(&board))? {
                let dir = mirror.join(&channel).join(&board).join(&version);
                let files: Vec<String> =
                    RELEASE_FILES.iter().filter(|f| dir.join(f).is_file()).map(|f| (*f).to_owned()).collect();
                let bytes = files.iter().filter_map(|f| std::fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum();
                out.push(MirroredRelease {
                    complete: files.len() == RELEASE_FILES.len(),
                    channel: channel.clone(),
                    board: board.clone(),
                    version,
                    files,
                    bytes,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.channel, &a.board)
            .cmp(&(&b.channel, &b.board))
            .then_with(|| version_key(&b.version).cmp(&version_key(&a.version)))
    });
    Ok(out)
}

fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn subdirs(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { path: dir.to_owned(), source: e }),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(Error::io(dir))?;
        if e.file_type().map_err(Error::io(e.path()))?.is_dir() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Re-checks every mirrored file against its signature (Flatcar) or checksum (K3s).
/// Returns one line per file: `ok`, or what is wrong.
pub fn verify_all(mirror: &Path, keyring: &Keyring) -> Result<Vec<(PathBuf, Result<()>)>> {
    let mut out = Vec::new();
    for r in list(mirror)? {
        let dir = mirror.join(&r.channel).join(&r.board).join(&r.version);
        for f in &r.files {
            let file = dir.join(f);
            let sig = dir.join(format!("{f}.sig"));
            let result = if sig.is_file() {
                verify_file(keyring, &file, &sig).map(|_| ())
            } else {
                Err(Error::Refused { file: file.display().to_string(), reason: "its .sig is missing".into() })
            };
            out.push((file, result));
        }
    }
    for k in list_k3s(mirror)? {
        let dir = mirror.join("k3s").join(&k.version);
        for binary in k.binaries.iter().chain(&k.airgap) {
            let file = dir.join(binary);
            let result = (|| {
                let want = std::fs::read_to_string(dir.join(format!("{binary}.sha256")))
                    .map_err(Error::io(dir.join(format!("{binary}.sha256"))))?;
                let got = sha256_file(&file)?;
                if want.split_whitespace().next() == Some(got.as_str()) {
                    Ok(())
                } else {
                    Err(Error::Refused { file: file.display().to_string(), reason: "its SHA-256 changed".into() })
                }
            })();
            out.push((file, result));
        }
    }
    Ok(out)
}

/// Keeps the newest `keep` releases of each channel and board; removes the rest.
pub fn prune(mirror: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let releases = list(mirror)?;
    let mut seen: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for r in releases {
        let n = seen.entry((r.channel.clone(), r.board.clone())).or_default();
        *n += 1;
        if *n > keep {
            let dir = mirror.join(&r.channel).join(&r.board).join(&r.version);
            std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
            removed.push(dir);
        }
    }
    Ok(removed)
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(Error::io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(Error::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Fetches a K3s binary (`k3s` or `k3s-arm64`) and checks it against the release's
/// `sha256sum-<arch>.txt`; stores it with a `.sha256` beside it.
pub fn fetch_k3s(
    fetcher: &Fetcher,
    base: &str,
    mirror: &Path,
    version: &str,
    arch: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf> {
    let binary = if arch == "arm64" { "k3s-arm64" } else { "k3s" };
    fetch_k3s_asset(fetcher, base, mirror, version, arch, binary, progress)
}

/// The K3s airgap images tarball name for an architecture (`k3s-airgap-images-amd64.tar.zst`).
pub fn k3s_airgap_name(arch: &str) -> String {
    format!("k3s-airgap-images-{arch}.tar.zst")
}

/// Fetches one asset of a K3s release (the binary, the airgap images tarball) and checks it
/// against the release's `sha256sum-<arch>.txt`; stores it with a `.sha256` beside it.
pub fn fetch_k3s_asset(
    fetcher: &Fetcher,
    base: &str,
    mirror: &Path,
    version: &str,
    arch: &str,
    binary: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf> {
    // `v1.32.2+k3s1` as one path segment: a `+` in a path reaches some servers as a space.
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let remote = format!("{base}/{}", percent_encoding::utf8_percent_encode(version, SEGMENT));
    let sums = fetcher.get_text(&format!("{remote}/sha256sum-{arch}.txt"))?;
    let want = sums
        .lines()
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            let (sum, name) = (parts.next()?, parts.next()?);
            (name.trim_start_matches('*') == binary).then(|| sum.to_ascii_lowercase())
        })
        .ok_or_else(|| Error::Other(format!("{binary} is not listed in sha256sum-{arch}.txt of K3s {version}")))?;
    let dir = mirror.join("k3s").join(version);
    let target = dir.join(binary);
    if target.is_file() && sha256_file(&target)? == want {
        return Ok(target);
    }
    let partial = mirror.join(".partial").join("k3s").join(version);
    std::fs::create_dir_all(&partial).map_err(Error::io(&partial))?;
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let part = partial.join(format!("{binary}.part"));
    fetcher.download(&format!("{remote}/{binary}"), &part, progress)?;
    let got = sha256_file(&part)?;
    if got != want {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Refused {
            file: binary.into(),
            reason: format!("SHA-256 {got} is not the published {want}"),
        });
    }
    let sha_file = dir.join(format!("{binary}.sha256"));
    std::fs::write(&sha_file, format!("{want}  {binary}\n")).map_err(Error::io(&sha_file))?;
    std::fs::rename(&part, &target).map_err(Error::io(&target))?;
    Ok(target)
}
