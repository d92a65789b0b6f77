//! What the desktop app needs besides plans: build identity, the host's network interfaces and
//! public SSH keys, previews of rendered files, and the boot-server sidecar's line protocol.

use std::path::{Path, PathBuf};

use flatlab_bootd::{Event, MachineStatus};
use serde::Serialize;
use ts_rs::TS;

use crate::ErrorBody;

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
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
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

/// One line the boot-server sidecar (`flatlab serve --json`) writes on stdout.
///
/// The desktop app runs the boot server as a separate process, so that only that process needs
/// the privilege for ports 67 and 69; these lines are how it hears what happens. On stdin the
/// sidecar reads `arm NODE` lines; it stops when stdin closes, so it never outlives the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[ts(export)]
pub enum SidecarMessage {
    /// Listening; the first line.
    Ready { plan: String, interface: String, http: String, tftp: Option<String>, admin: String, warnings: Vec<String> },
    /// Every machine the server knows, right after `ready`.
    Machines { machines: Vec<MachineStatus> },
    /// Something happened to a machine.
    Event { event: Event },
    /// A node was armed for reinstall on request.
    Armed { node: String },
    /// A request or the server failed; when the server itself failed, it exits after this line.
    Error { error: ErrorBody },
}

impl SidecarMessage {
    /// The message as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","error":{{"code":"internal","message":"cannot encode a message: {e}"}}}}"#)
        })
    }
}
