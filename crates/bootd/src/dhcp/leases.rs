//! Full DHCP mode's address settings and leases, kept in a JSON file across restarts.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mac::Mac;

/// Address settings for full DHCP mode.
#[derive(Debug, Clone, PartialEq)]
pub struct FullDhcp {
    pub range_start: Ipv4Addr,
    pub range_end: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: u32,
    /// Where leases are kept across restarts (JSON).
    pub leases_file: PathBuf,
    /// Addresses never handed out: this server's, the gateway, the nodes' static addresses.
    pub reserved: Vec<Ipv4Addr>,
}

/// An address lease in full mode.
pub struct Lease<'a> {
    pub ip: Ipv4Addr,
    pub config: &'a FullDhcp,
}

/// Leases of full mode, by MAC, kept in a JSON file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Leases {
    leases: BTreeMap<String, Ipv4Addr>,
}

impl Leases {
    pub fn load(config: &FullDhcp) -> Leases {
        std::fs::read(&config.leases_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    fn save(&self, config: &FullDhcp) {
        let tmp = config.leases_file.with_extension("tmp");
        let result = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &config.leases_file));
        if let Err(e) = result {
            tracing::warn!(file = %config.leases_file.display(), error = %e, "cannot save DHCP leases");
        }
    }

    /// The address for `mac`: its lease, else the first free one in the range.
    pub fn allocate(&mut self, mac: Mac, config: &FullDhcp) -> Option<Ipv4Addr> {
        let key = mac.to_string();
        if let Some(ip) = self.leases.get(&key) {
            return Some(*ip);
        }
        let mut taken: std::collections::HashSet<Ipv4Addr> = self.leases.values().copied().collect();
        taken.extend(config.reserved.iter().copied());
        let (start, end) = (u32::from(config.range_start), u32::from(config.range_end));
        let ip = (start..=end).map(Ipv4Addr::from).find(|ip| !taken.contains(ip))?;
        self.leases.insert(key, ip);
        self.save(config);
        Some(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_mode_leases_are_stable_and_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = FullDhcp {
            range_start: Ipv4Addr::new(10, 0, 0, 100),
            range_end: Ipv4Addr::new(10, 0, 0, 101),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            router: None,
            dns: vec![],
            lease_secs: 3600,
            leases_file: dir.path().join("leases.json"),
            reserved: vec![],
        };
        let mut leases = Leases::default();
        let a = leases.allocate(Mac([1, 0, 0, 0, 0, 1]), &config);
        let b = leases.allocate(Mac([1, 0, 0, 0, 0, 2]), &config);
        assert_eq!((a, b), (Some(Ipv4Addr::new(10, 0, 0, 100)), Some(Ipv4Addr::new(10, 0, 0, 101))));
        assert_eq!(leases.allocate(Mac([1, 0, 0, 0, 0, 3]), &config), None, "range exhausted");
        let reloaded = Leases::load(&config);
        let mut reloaded = reloaded;
        assert_eq!(reloaded.allocate(Mac([1, 0, 0, 0, 0, 2]), &config), b, "kept across restarts");
    }
}
