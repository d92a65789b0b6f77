//! Finds machines on the LAN over mDNS / DNS-SD, and announces Flatlab's boot server.
//!
//! Browses the service types that tell about machines (installed Flatlab nodes announce
//! `_flatlab._tcp`; avahi announces `_workstation._tcp` with the MAC in the instance name;
//! `_ssh._tcp` and `_device-info._tcp` are common), resolves each instance, and merges the
//! instances of one host into one [`Host`]. Knows nothing of plans: `api` matches hosts to
//! plan nodes and merges in what the boot server saw.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::Serialize;
use ts_rs::TS;

/// The service types browsed, without the `.local.` domain.
pub const SERVICE_TYPES: &[&str] = &["_flatlab._tcp", "_ssh._tcp", "_workstation._tcp", "_device-info._tcp"];

/// The service type the boot server announces.
pub const BOOT_SERVICE: &str = "_flatlab-boot._tcp";

/// Why discovery cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no network interface besides loopback is up, so there is nothing to discover on; connect this machine to the LAN"
    )]
    NoInterface,
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    #[error("cannot list network interfaces: {0}")]
    Interfaces(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One service instance of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ServiceRecord {
    /// Such as `_ssh._tcp`.
    pub service_type: String,
    pub instance: String,
    pub port: u16,
    pub txt: BTreeMap<String, String>,
}

/// What an installed Flatlab node says about itself (`_flatlab._tcp` TXT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct FlatlabNode {
    pub plan: String,
    pub node: String,
    pub role: String,
}

/// A machine, with everything it announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Host {
    /// The mDNS host name without `.local.`, such as `cp1`.
    pub name: String,
    pub addresses: Vec<String>,
    /// From avahi's `_workstation._tcp` instance name `host [52:54:00:12:34:56]`.
    pub mac: Option<String>,
    pub services: Vec<ServiceRecord>,
    pub flatlab: Option<FlatlabNode>,
}

/// A change to the list of hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Updated(Host),
    /// The host's last record expired or was withdrawn.
    Removed(String),
}

#[derive(Default)]
struct HostState {
    addresses: BTreeSet<IpAddr>,
    /// By full instance name.
    services: BTreeMap<String, ServiceRecord>,
}

/// A running mDNS browse of [`SERVICE_TYPES`].
pub struct Browser {
    daemon: ServiceDaemon,
    events: mpsc::Receiver<ServiceEvent>,
    hosts: BTreeMap<String, HostState>,
    /// Full instance name -> host key, to find a host when its service is removed.
    owners: HashMap<String, String>,
}

/// Fails with [`Error::NoInterface`] when only loopback is up.
pub fn check_interfaces() -> Result<()> {
    let interfaces = if_addrs::get_if_addrs().map_err(Error::Interfaces)?;
    if interfaces.iter().any(|i| !i.is_loopback()) { Ok(()) } else { Err(Error::NoInterface) }
}

impl Browser {
    /// Starts browsing on every interface, IPv4 and IPv6.
    pub fn start() -> Result<Browser> {
        check_interfaces()?;
        let daemon = ServiceDaemon::new()?;
        let (tx, events) = mpsc::channel();
        for ty in SERVICE_TYPES {
            let receiver = daemon.browse(&format!("{ty}.local."))?;
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("mdns-{ty}"))
                .spawn(move || {
                    while let Ok(event) = receiver.recv() {
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| Error::Mdns(mdns_sd::Error::Msg(e.to_string())))?;
        }
        Ok(Browser { daemon, events, hosts: BTreeMap::new(), owners: HashMap::new() })
    }

    /// Waits up to `timeout` for the next change.
    pub fn next_change(&mut self, timeout: Duration) -> Option<Change> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.events.recv_timeout(left).ok()?;
            if let Some(change) = self.apply(event) {
                return Some(change);
            }
        }
    }

    /// Collects for `duration`, then returns every host seen and still there.
    pub fn collect(&mut self, duration: Duration) -> Vec<Host> {
        let deadline = Instant::now() + duration;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let _ = self.next_change(left);
        }
        self.hosts()
    }

    pub fn hosts(&self) -> Vec<Host> {
        self.hosts.iter().map(|(name, state)| host(name, state)).collect()
    }

    fn apply(&mut self, event: ServiceEvent) -> Option<Change> {
        match event {
            ServiceEvent::ServiceResolved(info) => {
                let key = info.host.trim_end_matches('.').trim_end_matches(".local").to_owned();
                let ty = info.ty_domain.trim_end_matches('.').trim_end_matches(".local").to_owned();
                let instance = instance_name(&info.fullname, &info.ty_domain);
                let txt = info.txt_properties.iter().map(|p| (p.key().to_owned(), p.val_str().to_owned())).collect();
                let state = self.hosts.entry(key.clone()).or_default();
                state.addresses.extend(info.addresses.iter().map(|a| a.to_ip_addr()));
                state
                    .services
                    .insert(info.fullname.clone(), ServiceRecord { service_type: ty, instance, port: info.port, txt });
                self.owners.insert(info.fullname.clone(), key.clone());
                Some(Change::Updated(host(&key, state)))
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                let key = self.owners.remove(&fullname)?;
                let state = self.hosts.get_mut(&key)?;
                state.services.remove(&fullname);
                if state.services.is_empty() {
                    self.hosts.remove(&key);
                    Some(Change::Removed(key))
                } else {
                    Some(Change::Updated(host(&key, state)))
                }
            }
            _ => None,
        }
    }

    pub fn stop(self) {
        // The daemon thread ends on shutdown; a failure here only means it is gone already.
        let _ = self.daemon.shutdown();
    }
}

fn host(name: &str, state: &HostState) -> Host {
    let services: Vec<ServiceRecord> = state.services.values().cloned().collect();
    let mac = services.iter().filter(|s| s.service_type == "_workstation._tcp").find_map(|s| mac_in(&s.instance));
    let flatlab = services.iter().find(|s| s.service_type == "_flatlab._tcp").and_then(|s| {
        Some(FlatlabNode {
            plan: s.txt.get("plan")?.clone(),
            node: s.txt.get("node")?.clone(),
            role: s.txt.get("role").cloned().unwrap_or_default(),
        })
    });
    Host {
        name: name.to_owned(),
        addresses: state.addresses.iter().map(IpAddr::to_string).collect(),
        mac,
        services,
        flatlab,
    }
}

/// `My Box._ssh._tcp.local.` -> `My Box` (mDNS escapes dots in instance names with `\.`).
fn instance_name(fullname: &str, ty_domain: &str) -> String {
    let name = fullname.strip_suffix(ty_domain).unwrap_or(fullname).trim_end_matches('.');
    name.replace("\\.", ".").replace("\\032", " ")
}

/// The MAC in avahi's workstation instance name: `box [52:54:00:12:34:56]`.
pub fn mac_in(instance: &str) -> Option<String> {
    let start = instance.rfind('[')?;
    let end = instance[start..].find(']')? + start;
    let mac = &instance[start + 1..end];
    let parts: Vec<&str> = mac.split(':').collect();
    (parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit())))
        .then(|| mac.to_ascii_lowercase())
}

/// Browses for `duration` and returns what was found.
pub fn discover(duration: Duration) -> Result<Vec<Host>> {
    let mut browser = Browser::start()?;
    let hosts = browser.collect(duration);
    browser.stop();
    Ok(hosts)
}

/// Keeps the boot server announced as `_flatlab-boot._tcp` until dropped.
pub struct Announcement {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Announcement {
    /// Announces `instance` at `address:port` with TXT `properties`.
    pub fn boot_server(
        instance: &str,
        address: IpAddr,
        port: u16,
        properties: &[(&str, &str)],
    ) -> Result<Announcement> {
        let daemon = ServiceDaemon::new()?;
        let host = format!("{}.local.", sanitize_host(instance));
        let info = ServiceInfo::new(&format!("{BOOT_SERVICE}.local."), instance, &host, address, port, properties)?;
        let fullname = info.get_fullname().to_owned();
        daemon.register(info)?;
        Ok(Announcement { daemon, fullname })
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

fn sanitize_host(s: &str) -> String {
    let out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    out.trim_matches('-').chars().take(63).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_come_from_workstation_instance_names() {
        assert_eq!(mac_in("box [52:54:00:AB:cd:01]").as_deref(), Some("52:54:00:ab:cd:01"));
        assert_eq!(mac_in("box"), None);
        assert_eq!(mac_in("box [not a mac]"), None);
        assert_eq!(mac_in("box [52:54:00:ab:cd]"), None);
    }

    #[test]
    fn instance_names_are_unescaped() {
        assert_eq!(instance_name("My\\.Box._ssh._tcp.local.", "_ssh._tcp.local."), "My.Box");
        assert_eq!(instance_name("cp1._flatlab._tcp.local.", "_flatlab._tcp.local."), "cp1");
    }

    #[test]
    fn hosts_merge_services_and_read_flatlab_txt() {
        let mut state = HostState::default();
        state.addresses.insert("10.0.0.11".parse().expect("ip"));
        state.services.insert(
            "a".into(),
            ServiceRecord {
                service_type: "_workstation._tcp".into(),
                instance: "cp1 [52:54:00:00:00:01]".into(),
                port: 9,
                txt: BTreeMap::new(),
            },
        );
        state.services.insert(
            "b".into(),
            ServiceRecord {
                service_type: "_flatlab._tcp".into(),
                instance: "cp1".into(),
                port: 6443,
                txt: [("plan", "lab"), ("node", "cp1"), ("role", "server")]
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            },
        );
        let h = host("cp1", &state);
        assert_eq!(h.mac.as_deref(), Some("52:54:00:00:00:01"));
        assert_eq!(h.flatlab, Some(FlatlabNode { plan: "lab".into(), node: "cp1".into(), role: "server".into() }));
        assert_eq!(h.addresses, ["10.0.0.11"]);
        assert_eq!(h.services.len(), 2);
    }

    #[test]
    fn host_names_for_announcements_are_labels() {
        assert_eq!(sanitize_host("Flatlab boot (demo-lab)"), "Flatlab-boot--demo-lab");
    }
}
