//! Full DHCP mode's address settings and leases, kept in a JSON file across restarts.
//!
//! A lease expires: an address offered but never requested is held for [`OFFER_HOLD_MS`], one
//! acknowledged for the lease time. A flood of DISCOVERs from made-up MACs therefore holds the
//! range only for a minute, and is never written to disk (only acknowledged leases are). A
//! planned machine with a static address in the plan gets that address; any other keeps its
//! address across leases while nobody else took it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mac::Mac;
use crate::stage::Millis;

/// How long an offered address is held for the client that was offered it.
pub const OFFER_HOLD_MS: Millis = 60_000;

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
    /// Addresses never handed out from the range: this server's, the gateway, the nodes'
    /// static addresses.
    pub reserved: Vec<Ipv4Addr>,
    /// Planned machines with a static address in the plan: each gets its own (it need not lie
    /// in the range).
    pub fixed: BTreeMap<Mac, Ipv4Addr>,
}

/// An address lease in full mode.
pub struct Lease<'a> {
    pub ip: Ipv4Addr,
    pub config: &'a FullDhcp,
}

/// One MAC's address and until when it is its.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    ip: Ipv4Addr,
    /// Milliseconds since the Unix epoch; leases from files written before leases expired
    /// read as expired (the MAC still gets its address back while it is free).
    #[serde(default)]
    expires: Millis,
}

/// On disk: MAC to entry. Files of earlier versions (MAC to address) read too.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredEntry {
    Entry(Entry),
    Address(Ipv4Addr),
}

/// Leases of full mode, by MAC, kept in a JSON file.
#[derive(Debug, Default)]
pub struct Leases {
    leases: BTreeMap<Mac, Entry>,
}

#[derive(Serialize, Deserialize)]
struct File {
    leases: BTreeMap<String, serde_json::Value>,
}

impl Leases {
    pub fn load(config: &FullDhcp) -> Leases {
        let Some(file) = std::fs::read(&config.leases_file).ok().and_then(|b| serde_json::from_slice::<File>(&b).ok())
        else {
            return Leases::default();
        };
        let leases = file
            .leases
            .into_iter()
            .filter_map(|(mac, v)| {
                let entry = match serde_json::from_value::<StoredEntry>(v).ok()? {
                    StoredEntry::Entry(e) => e,
                    StoredEntry::Address(ip) => Entry { ip, expires: 0 },
                };
                Some((mac.parse().ok()?, entry))
            })
            .collect();
        Leases { leases }
    }

    fn save(&self, config: &FullDhcp, now: Millis) {
        // Only leases that were acknowledged and have not expired; offers are not kept.
        let leases = self
            .leases
            .iter()
            .filter(|(_, e)| e.expires > now + OFFER_HOLD_MS || e.expires == 0)
            .map(|(mac, e)| (mac.to_string(), serde_json::json!(e)))
            .collect();
        let tmp = config.leases_file.with_extension("tmp");
        let result = serde_json::to_vec_pretty(&File { leases })
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &config.leases_file));
        if let Err(e) = result {
            tracing::warn!(file = %config.leases_file.display(), error = %e, "cannot save DHCP leases");
        }
    }

    /// The address to offer `mac`: its fixed one, its lease, else a free one in the range
    /// (held for [`OFFER_HOLD_MS`]). None when the range is full.
    pub fn offer(&mut self, mac: Mac, config: &FullDhcp, now: Millis) -> Option<Ipv4Addr> {
        if let Some(ip) = config.fixed.get(&mac) {
            return Some(*ip);
        }
        if let Some(e) = self.leases.get(&mac).copied()
            && (e.expires > now || self.free(e.ip, Some(mac), config, now))
        {
            self.leases.insert(mac, Entry { ip: e.ip, expires: e.expires.max(now + OFFER_HOLD_MS) });
            return Some(e.ip);
        }
        let (start, end) = (u32::from(config.range_start), u32::from(config.range_end));
        let ip = (start..=end).map(Ipv4Addr::from).find(|ip| self.free(*ip, Some(mac), config, now))?;
        // An expired lease of another MAC on this address gives way.
        self.leases.retain(|m, e| !(e.ip == ip && *m != mac));
        self.leases.insert(mac, Entry { ip, expires: now + OFFER_HOLD_MS });
        Some(ip)
    }

    /// `mac` asks for its address: it is acknowledged (and saved) for the lease time. None when
    /// it has none (the range is full).
    pub fn acknowledge(&mut self, mac: Mac, config: &FullDhcp, now: Millis) -> Option<Ipv4Addr> {
        let ip = self.offer(mac, config, now)?;
        if config.fixed.contains_key(&mac) {
            return Some(ip);
        }
        let expires = now + Millis::from(config.lease_secs) * 1000;
        if let Some(e) = self.leases.get_mut(&mac) {
            e.expires = expires;
        }
        self.save(config, now);
        Some(ip)
    }

    /// Whether `ip` may go to `mac`: in no unexpired lease of another MAC, and not reserved.
    fn free(&self, ip: Ipv4Addr, mac: Option<Mac>, config: &FullDhcp, now: Millis) -> bool {
        !config.reserved.contains(&ip)
            && !config.fixed.values().any(|f| *f == ip)
            && !self.leases.iter().any(|(m, e)| e.ip == ip && Some(*m) != mac && e.expires > now)
    }

    /// How many leases (offered or acknowledged) have not expired.
    pub fn live(&self, now: Millis) -> usize {
        self.leases.values().filter(|e| e.expires > now).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> FullDhcp {
        FullDhcp {
            range_start: Ipv4Addr::new(10, 0, 0, 100),
            range_end: Ipv4Addr::new(10, 0, 0, 101),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            router: None,
            dns: vec![],
            lease_secs: 3600,
            leases_file: dir.join("leases.json"),
            reserved: vec![],
            fixed: BTreeMap::new(),
        }
    }

    const fn mac(n: u8) -> Mac {
        Mac([1, 0, 0, 0, 0, n])
    }

    #[test]
    fn leases_are_stable_bounded_and_kept_across_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = config(dir.path());
        let mut leases = Leases::default();
        let a = leases.acknowledge(mac(1), &config, 0);
        let b = leases.acknowledge(mac(2), &config, 0);
        assert_eq!((a, b), (Some(Ipv4Addr::new(10, 0, 0, 100)), Some(Ipv4Addr::new(10, 0, 0, 101))));
        assert_eq!(leases.offer(mac(3), &config, 1000), None, "range exhausted");
        assert_eq!(leases.offer(mac(2), &config, 1000), b, "the same address again");
        let mut reloaded = Leases::load(&config);
        assert_eq!(reloaded.offer(mac(2), &config, 2000), b, "kept across restarts");
        assert_eq!(reloaded.offer(mac(3), &config, 2000), None);
    }

    #[test]
    fn offers_nobody_requests_are_held_a_minute_and_never_saved() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = config(dir.path());
        let mut leases = Leases::default();
        // A flood of DISCOVERs from made-up MACs fills the range, for a minute.
        assert!(leases.offer(mac(10), &config, 0).is_some());
        assert!(leases.offer(mac(11), &config, 0).is_some());
        assert_eq!(leases.offer(mac(1), &config, 1000), None);
        assert_eq!(leases.live(1000), 2);
        assert!(!config.leases_file.exists(), "offers are not written");
        // A minute later the real machine gets one.
        let ip = leases.offer(mac(1), &config, OFFER_HOLD_MS + 1).expect("an address");
        assert_eq!(leases.acknowledge(mac(1), &config, OFFER_HOLD_MS + 2), Some(ip));
        assert_eq!(Leases::load(&config).live(OFFER_HOLD_MS + 3), 1, "only the acknowledged lease is saved");
    }

    #[test]
    fn an_expired_lease_gives_way_but_its_mac_gets_its_address_back_while_free() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut config = config(dir.path());
        config.range_end = config.range_start;
        let mut leases = Leases::default();
        let ip = leases.acknowledge(mac(1), &config, 0).expect("leased");
        let hour = 3_600_000;
        assert_eq!(leases.offer(mac(2), &config, hour - 1), None, "not before it expires");
        assert_eq!(leases.offer(mac(1), &config, hour + 5), Some(ip), "its own, after");
        assert_eq!(leases.offer(mac(2), &config, hour + OFFER_HOLD_MS + 10), Some(ip), "another's once free");
        assert_eq!(leases.live(hour + OFFER_HOLD_MS + 10), 1);
    }

    #[test]
    fn a_planned_machine_gets_its_plan_address_and_nobody_else_does() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut config = config(dir.path());
        let planned = Ipv4Addr::new(10, 0, 0, 11);
        config.fixed.insert(mac(1), planned);
        config.range_start = planned;
        let mut leases = Leases::default();
        assert_eq!(leases.acknowledge(mac(1), &config, 0), Some(planned));
        assert_eq!(leases.offer(mac(2), &config, 0), Some(Ipv4Addr::new(10, 0, 0, 12)), "not the planned one");
    }

    #[test]
    fn files_of_earlier_versions_still_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = config(dir.path());
        std::fs::write(&config.leases_file, r#"{"leases":{"01:00:00:00:00:02":"10.0.0.101","bad":"x"}}"#).expect("w");
        let mut leases = Leases::load(&config);
        assert_eq!(leases.offer(mac(2), &config, 5), Some(Ipv4Addr::new(10, 0, 0, 101)));
    }
}
