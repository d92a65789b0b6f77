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

/// The LAN the workstation is on, for a new plan's network section: the subnet and router of the
/// interface that holds the default route, and the upstream DNS servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNetwork {
    pub interface: String,
    /// Such as `192.168.1.0/24`.
    pub subnet: String,
    pub gateway: String,
    pub dns: Vec<String>,
}

/// The workstation's LAN, if it has a default route through an interface with an IPv4 address.
pub fn local_network() -> Option<LocalNetwork> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let (interface, gateway) = default_route(&routes)?;
    let (ip, prefix) = if_addrs::get_if_addrs().ok()?.into_iter().find_map(|i| match i.addr {
        if_addrs::IfAddr::V4(v4) if i.name == interface => Some((v4.ip, u32::from(v4.netmask).count_ones())),
        _ => None,
    })?;
    let subnet = ipnet::Ipv4Net::new(ip, prefix as u8).ok()?.trunc();
    // systemd-resolved's file lists the real servers; /etc/resolv.conf may hold only its stub.
    let dns = ["/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|text| nameservers(&text))
        .find(|list| !list.is_empty())
        .unwrap_or_default();
    Some(LocalNetwork { interface, subnet: subnet.to_string(), gateway: gateway.to_string(), dns })
}

/// The interface and router of the IPv4 default route in `/proc/net/route`'s text.
fn default_route(text: &str) -> Option<(String, std::net::Ipv4Addr)> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags ... Mask: a default route is destination 0, mask 0, flag UG.
        let (iface, dest, gw, flags, mask) = (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
        let flags = u16::from_str_radix(flags, 16).ok()?;
        if *dest != "00000000" || *mask != "00000000" || flags & 0x3 != 0x3 {
            return None;
        }
        // The kernel prints addresses as host-order hex of network-order bytes (little-endian here).
        let gw = u32::from_str_radix(gw, 16).ok()?;
        Some(((*iface).to_owned(), std::net::Ipv4Addr::from(gw.to_le_bytes())))
    })
}

/// The IPv4 `nameserver` lines of a resolv.conf, without loopback stubs (127.0.0.53 and the like).
fn nameservers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<std::net::Ipv4Addr>().ok())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .map(|ip| ip.to_string())
        .collect()
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

#[cfg(test)]
mod network_tests {
    use super::*;

    #[test]
    fn the_default_route_and_upstream_dns_are_read_from_the_kernel_and_resolv_conf() {
        let routes = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            wlp2s0\t0000A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n\
            wlp2s0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n";
        assert_eq!(default_route(routes), Some(("wlp2s0".to_owned(), std::net::Ipv4Addr::new(192, 168, 1, 1))));
        assert_eq!(default_route("Iface\tDestination\n"), None);
        let stub = "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0\n";
        assert!(nameservers(stub).is_empty(), "the local stub is never a node's DNS");
        let real = "nameserver 192.168.1.1\nnameserver 2001:db8::1\nnameserver 9.9.9.9\nsearch lan\n";
        assert_eq!(nameservers(real), ["192.168.1.1", "9.9.9.9"]);
    }
}

/// Why the app could not open its database: shown in the window with a way on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DbProblem {
    pub path: String,
    pub error: crate::ErrorBody,
}

impl DbProblem {
    pub fn new(path: &Path, e: &anyhow::Error) -> Self {
        DbProblem { path: path.display().to_string(), error: crate::ErrorBody::from(e) }
    }
}
