//! What the desktop app needs besides plans: build identity, the host's network interfaces and
//! public SSH keys.

use std::path::{Path, PathBuf};

use serde::Serialize;
use ts_rs::TS;

/// The package version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this build came from (12 hex digits), or `unknown` when built outside a git
/// checkout. Packagers may set `FLATLAB_GIT_REVISION` at build time.
pub const GIT_REVISION: &str = env!("FLATLAB_GIT_REVISION");

/// `0.1.0 (3f2a9c1d0b7e)`: what `flatlab --version` and the app's About box show.
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FLATLAB_GIT_REVISION"), ")");

/// What the About box and the status bar show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct AppInfo {
    pub version: String,
    pub revision: String,
    #[ts(type = "string")]
    pub db_path: PathBuf,
}

impl AppInfo {
    pub fn new(db_path: &Path) -> Self {
        AppInfo { version: VERSION.to_owned(), revision: GIT_REVISION.to_owned(), db_path: db_path.to_owned() }
    }
}

/// The first file called `name` in the folders of `PATH`, as a shell would find the program.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    which::which(name).ok()
}

/// A network interface machines could network-boot on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct NetInterface {
    pub name: String,
    /// Its IPv4 addresses with prefix length, such as `192.168.1.20/24`.
    pub addresses: Vec<String>,
}

/// Interfaces with an IPv4 address, loopback left out, sorted by name.
pub fn list_interfaces() -> anyhow::Result<Vec<NetInterface>> {
    use anyhow::Context;
    let mut out: Vec<NetInterface> = Vec::new();
    for i in if_addrs::get_if_addrs().context("listing network interfaces")? {
        if i.is_loopback() {
            continue;
        }
        let if_addrs::IfAddr::V4(v4) = &i.addr else { continue };
        let prefix = u32::from(v4.netmask).count_ones();
        let address = format!("{}/{prefix}", v4.ip);
        match out.iter_mut().find(|n| n.name == i.name) {
            Some(n) => n.addresses.push(address),
            None => out.push(NetInterface { name: i.name.clone(), addresses: vec![address] }),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A public key found in `~/.ssh`, offered for the plan's `ssh_authorized_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SshPublicKey {
    /// The file it came from, such as `/home/ada/.ssh/id_ed25519.pub`.
    #[ts(type = "string")]
    pub file: PathBuf,
    /// The whole line: type, key and comment.
    pub key: String,
}

/// The public keys in `dir` (normally `~/.ssh`): only `*.pub` files, only lines that look like
/// OpenSSH public keys. Private key files are never opened.
pub fn ssh_public_keys(dir: &Path) -> Vec<SshPublicKey> {
    const TYPES: [&str; 6] =
        ["ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-", "sk-ssh-ed25519@", "sk-ecdsa-sha2-", "ssh-dss "];
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pub") && p.is_file())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        // A public key file is one short line; anything big is not one.
        if std::fs::metadata(&file).map(|m| m.len() > 16 * 1024).unwrap_or(true) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for line in text.lines().map(str::trim) {
            if TYPES.iter().any(|t| line.starts_with(t)) {
                out.push(SshPublicKey { file: file.clone(), key: line.to_owned() });
            }
        }
    }
    out
}
