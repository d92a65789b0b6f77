//! Per-machine install state: what the boot server has seen of each machine, its boot token,
//! and the events that tell the rest of Flatlab (and the user) about it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;
use ts_rs::TS;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Where time comes from; passed in so that tests are exact.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// How far a machine has come, from armed to a ready K3s node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum Stage {
    /// Planned and waiting for its first network boot.
    Armed,
    /// Its firmware asked for boot information (DHCP).
    Dhcp,
    /// iPXE is running and fetched its script.
    Ipxe,
    /// The Flatcar kernel is downloading.
    Kernel,
    /// The Flatcar initrd is downloading.
    Initrd,
    /// The live system fetched its install config.
    Ignition,
    /// `flatcar-install` is writing the disk.
    Installing,
    /// Flatcar is on the disk; the machine reboots into it.
    Installed,
    /// The installed system booted and applied its final config.
    Booted,
    /// K3s runs on the node.
    K3sReady,
    /// Something went wrong; `reason` says what.
    Failed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Armed => "armed",
            Stage::Dhcp => "dhcp",
            Stage::Ipxe => "ipxe",
            Stage::Kernel => "kernel",
            Stage::Initrd => "initrd",
            Stage::Ignition => "ignition",
            Stage::Installing => "installing",
            Stage::Installed => "installed",
            Stage::Booted => "booted",
            Stage::K3sReady => "k3s-ready",
            Stage::Failed => "failed",
        }
    }

    pub const ALL: [Stage; 11] = [
        Stage::Armed,
        Stage::Dhcp,
        Stage::Ipxe,
        Stage::Kernel,
        Stage::Initrd,
        Stage::Ignition,
        Stage::Installing,
        Stage::Installed,
        Stage::Booted,
        Stage::K3sReady,
        Stage::Failed,
    ];

    /// A stage by its name, as [`Stage::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The stages a node reports itself (`POST /v1/report/<token>?stage=`).
    pub fn from_report(s: &str) -> Option<Stage> {
        Some(match s {
            "installing" => Stage::Installing,
            "installed" => Stage::Installed,
            "booted" => Stage::Booted,
            "k3s-ready" => Stage::K3sReady,
            "failed" => Stage::Failed,
            _ => return None,
        })
    }

    /// Once on disk, the machine boots from disk until it is armed again.
    pub fn is_installed(self) -> bool {
        matches!(self, Stage::Installed | Stage::Booted | Stage::K3sReady)
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for Mac {
    type Err = ();

    /// `52:54:00:12:34:56` or `52-54-00-12-34-56`.
    fn from_str(s: &str) -> Result<Self, ()> {
        let sep = if s.contains(':') { ':' } else { '-' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for slot in &mut out {
            let p = parts.next().ok_or(())?;
            if p.len() != 2 {
                return Err(());
            }
            *slot = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        if parts.next().is_some() {
            return Err(());
        }
        Ok(Mac(out))
    }
}

/// Everything the boot server needs to install one planned machine. Made by the caller (which
/// knows plans and renders configs); the boot server only serves it.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub mac: Mac,
    pub node: String,
    /// This install's token: in the Ignition and report URLs, and nowhere else.
    pub token: String,
    /// Where the machine stands (from the store, after a restart).
    pub stage: Stage,
    pub history: Vec<HistoryEntry>,
    /// The node's iPXE script (`boot.ipxe`).
    pub ipxe_script: String,
    /// The install config (`install.ign`).
    pub install_ignition: String,
    /// The final config (`config.ign`).
    pub final_ignition: String,
}

/// One step of a machine's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct HistoryEntry {
    pub stage: Stage,
    #[ts(type = "number")]
    pub at: Millis,
    /// What was seen: a file name, a failure's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub detail: Option<String>,
}

/// A machine as the admin API and the app show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MachineStatus {
    pub mac: String,
    /// The planned node; none for a machine that network-booted without a plan.
    pub node: Option<String>,
    pub stage: Option<Stage>,
    /// Its last address, as seen by the boot server.
    pub ip: Option<String>,
    /// Firmware as told in DHCP: `bios`, `uefi-ia32`, `uefi-x64`, `uefi-arm64`, `uefi-http`,
    /// `ipxe`, or `arch-N` for other architecture numbers.
    pub firmware: Option<String>,
    pub vendor_class: Option<String>,
    pub history: Vec<HistoryEntry>,
}

/// What happened, for the app's live view and for the caller to persist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Event {
    #[ts(type = "number")]
    pub at: Millis,
    pub mac: String,
    pub node: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[ts(export)]
pub enum EventKind {
    /// A planned machine reached a stage.
    Stage {
        stage: Stage,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A machine without a plan network-booted.
    Discovered { firmware: Option<String>, vendor_class: Option<String> },
    /// A large download goes on.
    Progress {
        file: String,
        #[ts(type = "number")]
        sent: u64,
        #[ts(type = "number")]
        total: u64,
    },
}

struct Machine {
    spec: MachineSpec,
    stage: Stage,
    history: Vec<HistoryEntry>,
    ip: Option<Ipv4Addr>,
    firmware: Option<String>,
    vendor_class: Option<String>,
}

#[derive(Default)]
struct Sighting {
    firmware: Option<String>,
    vendor_class: Option<String>,
    ip: Option<Ipv4Addr>,
    at: Millis,
}

#[derive(Default)]
struct Inner {
    machines: BTreeMap<Mac, Machine>,
    by_ip: HashMap<Ipv4Addr, Mac>,
    unknown: BTreeMap<Mac, Sighting>,
}

/// The boot server's view of every machine. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Event>,
    clock: Clock,
}

/// What the node-facing HTTP server may hand a machine.
pub(crate) enum BootAnswer {
    /// Its install script.
    Install(String),
    /// It is installed: boot from disk.
    LocalDisk,
    /// Not in the plan.
    Unknown,
}

impl Registry {
    pub fn new(machines: Vec<MachineSpec>, clock: Clock) -> Self {
        let (events, _) = broadcast::channel(1024);
        let mut inner = Inner::default();
        for spec in machines {
            inner.machines.insert(
                spec.mac,
                Machine {
                    stage: spec.stage,
                    history: spec.history.clone(),
                    spec,
                    ip: None,
                    firmware: None,
                    vendor_class: None,
                },
            );
        }
        Self { inner: Arc::new(Mutex::new(inner)), events, clock }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn now(&self) -> Millis {
        (self.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a harmful way.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms a machine for a (re)install with a new spec and token. The old token stops working.
    pub fn arm(&self, mut spec: MachineSpec) {
        let at = self.now();
        spec.stage = Stage::Armed;
        let mac = spec.mac;
        let node = spec.node.clone();
        {
            let mut inner = self.lock();
            let history = inner.machines.get(&mac).map(|m| m.history.clone()).unwrap_or_default();
            let mut history = history;
            history.push(HistoryEntry { stage: Stage::Armed, at, detail: None });
            inner.unknown.remove(&mac);
            inner.machines.insert(
                mac,
                Machine { stage: Stage::Armed, history, spec, ip: None, firmware: None, vendor_class: None },
            );
        }
        self.emit(mac, Some(node), EventKind::Stage { stage: Stage::Armed, detail: None }, at);
    }

    pub fn machines(&self) -> Vec<MachineStatus> {
        let inner = self.lock();
        let mut out: Vec<MachineStatus> = inner
            .machines
            .iter()
            .map(|(mac, m)| MachineStatus {
                mac: mac.to_string(),
                node: Some(m.spec.node.clone()),
                stage: Some(m.stage),
                ip: m.ip.map(|i| i.to_string()),
                firmware: m.firmware.clone(),
                vendor_class: m.vendor_class.clone(),
                history: m.history.clone(),
            })
            .collect();
        out.extend(inner.unknown.iter().map(|(mac, s)| MachineStatus {
            mac: mac.to_string(),
            node: None,
            stage: None,
            ip: s.ip.map(|i| i.to_string()),
            firmware: s.firmware.clone(),
            vendor_class: s.vendor_class.clone(),
            history: Vec::new(),
        }));
        out
    }

    pub fn is_planned(&self, mac: Mac) -> bool {
        self.lock().machines.contains_key(&mac)
    }

    /// A DHCP request from `mac`; unplanned machines are recorded as discovered.
    pub(crate) fn saw_dhcp(&self, mac: Mac, firmware: Option<&str>, vendor_class: Option<&str>, ip: Option<Ipv4Addr>) {
        let at = self.now();
        let event = {
            let mut inner = self.lock();
            if let Some(m) = inner.machines.get_mut(&mac) {
                m.firmware = firmware.map(str::to_owned).or(m.firmware.take());
                m.vendor_class = vendor_class.map(str::to_owned).or(m.vendor_class.take());
                if let Some(ip) = ip {
                    m.ip = Some(ip);
                    inner.by_ip.insert(ip, mac);
                }
                None
            } else {
                let new = !inner.unknown.contains_key(&mac);
                let s = inner.unknown.entry(mac).or_default();
                s.firmware = firmware.map(str::to_owned).or(s.firmware.take());
                s.vendor_class = vendor_class.map(str::to_owned).or(s.vendor_class.take());
                s.ip = ip.or(s.ip);
                s.at = at;
                new.then(|| EventKind::Discovered {
                    firmware: s.firmware.clone(),
                    vendor_class: s.vendor_class.clone(),
                })
            }
        };
        match event {
            Some(kind) => self.emit(mac, None, kind, at),
            None => self.advance(mac, Stage::Dhcp, None),
        }
    }

    /// iPXE asked for `mac`'s script from `ip`.
    pub(crate) fn boot_script(&self, mac: Mac, ip: Ipv4Addr) -> BootAnswer {
        let answer = {
            let mut inner = self.lock();
            let answer = match inner.machines.get_mut(&mac) {
                Some(m) if m.stage.is_installed() => BootAnswer::LocalDisk,
                Some(m) => {
                    m.ip = Some(ip);
                    BootAnswer::Install(m.spec.ipxe_script.clone())
                }
                None => {
                    let s = inner.unknown.entry(mac).or_default();
                    s.ip = Some(ip);
                    s.firmware = s.firmware.take().or(Some("ipxe".into()));
                    BootAnswer::Unknown
                }
            };
            if matches!(answer, BootAnswer::Install(_)) {
                inner.by_ip.insert(ip, mac);
            }
            answer
        };
        if matches!(answer, BootAnswer::Install(_)) {
            self.advance(mac, Stage::Ipxe, None);
        }
        answer
    }

    /// A mirror file was requested from `ip`: kernel and initrd downloads move its machine on.
    pub(crate) fn saw_download(&self, ip: Ipv4Addr, file: &str) {
        let stage = if file.ends_with("_pxe.vmlinuz") {
            Stage::Kernel
        } else if file.ends_with("_pxe_image.cpio.gz") {
            Stage::Initrd
        } else {
            return;
        };
        let mac = self.lock().by_ip.get(&ip).copied();
        if let Some(mac) = mac {
            self.advance(mac, stage, Some(file.to_owned()));
        }
    }

    pub(crate) fn progress(&self, ip: Ipv4Addr, file: &str, sent: u64, total: u64) {
        let (mac, node) = {
            let inner = self.lock();
            let Some(mac) = inner.by_ip.get(&ip).copied() else { return };
            (mac, inner.machines.get(&mac).map(|m| m.spec.node.clone()))
        };
        self.emit(mac, node, EventKind::Progress { file: file.to_owned(), sent, total }, self.now());
    }

    /// The install or final Ignition config for `token`, if the token is live and `ip` is the
    /// machine it belongs to.
    pub(crate) fn ignition(&self, token: &str, ip: Ipv4Addr, final_config: bool) -> Result<String, &'static str> {
        let (mac, config) = {
            let inner = self.lock();
            let Some((mac, m)) = find_token(&inner, token) else { return Err("unknown token") };
            if m.stage.is_installed() {
                return Err("this install has ended; arm the machine again to reinstall");
            }
            if m.ip != Some(ip) {
                return Err("this token belongs to another machine");
            }
            let config = if final_config { m.spec.final_ignition.clone() } else { m.spec.install_ignition.clone() };
            (mac, config)
        };
        if !final_config {
            self.advance(mac, Stage::Ignition, None);
        }
        Ok(config)
    }

    /// A node's report of its own progress.
    pub(crate) fn report(&self, token: &str, stage: Stage, reason: Option<String>) -> Result<(), &'static str> {
        let mac = {
            let inner = self.lock();
            let Some((mac, _)) = find_token(&inner, token) else { return Err("unknown token") };
            mac
        };
        self.advance(mac, stage, reason);
        Ok(())
    }

    /// Moves a planned machine to `stage`, unless it is that far already (a machine that boots
    /// from disk does not go back to `dhcp`). `failed`, and anything after a failure (a retry),
    /// always applies.
    fn advance(&self, mac: Mac, stage: Stage, detail: Option<String>) {
        let at = self.now();
        let node = {
            let mut inner = self.lock();
            let Some(m) = inner.machines.get_mut(&mac) else { return };
            let applies = match (m.stage, stage) {
                // Once on disk, a late failure report must not make the next boot reinstall.
                (current, Stage::Failed) => !current.is_installed(),
                (Stage::Failed, _) => true,
                (current, new) => new > current,
            };
            if !applies {
                return;
            }
            m.stage = stage;
            m.history.push(HistoryEntry { stage, at, detail: detail.clone() });
            m.spec.node.clone()
        };
        tracing::info!(mac = %mac, node = %node, stage = stage.as_str(), detail = detail.as_deref().unwrap_or(""), "machine progress");
        self.emit(mac, Some(node), EventKind::Stage { stage, detail }, at);
    }

    fn emit(&self, mac: Mac, node: Option<String>, kind: EventKind, at: Millis) {
        // No subscriber is fine: events are also kept in each machine's history.
        let _ = self.events.send(Event { at, mac: mac.to_string(), node, kind });
    }
}

/// Finds a machine by token, comparing every token in constant time.
fn find_token<'a>(inner: &'a Inner, token: &str) -> Option<(Mac, &'a Machine)> {
    let mut found = None;
    for (mac, m) in &inner.machines {
        let equal: bool = m.spec.token.as_bytes().ct_eq(token.as_bytes()).into();
        if equal && !m.spec.token.is_empty() {
            found = Some((*mac, m));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mac: u8, stage: Stage) -> MachineSpec {
        MachineSpec {
            mac: Mac([0x52, 0x54, 0, 0, 0, mac]),
            node: format!("n{mac}"),
            token: format!("token{mac}aaaaaaaaaaaaaaaaaaaaaaaaaa"),
            stage,
            history: vec![],
            ipxe_script: "#!ipxe\n".into(),
            install_ignition: "{install}".into(),
            final_ignition: "{final}".into(),
        }
    }

    fn registry(specs: Vec<MachineSpec>) -> Registry {
        Registry::new(specs, Arc::new(|| 1000))
    }

    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

    #[test]
    fn a_machine_walks_through_every_stage_once() {
        let r = registry(vec![spec(1, Stage::Armed)]);
        let mac = Mac([0x52, 0x54, 0, 0, 0, 1]);
        r.saw_dhcp(mac, Some("bios"), Some("PXEClient"), None);
        assert!(matches!(r.boot_script(mac, IP), BootAnswer::Install(_)));
        r.saw_download(IP, "flatcar_production_pxe.vmlinuz");
        r.saw_download(IP, "flatcar_production_pxe_image.cpio.gz");
        assert_eq!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).as_deref(), Ok("{install}"));
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::Installing, None).expect("report");
        assert_eq!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, true).as_deref(), Ok("{final}"));
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::Installed, None).expect("report");
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::Booted, None).expect("report");
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::K3sReady, None).expect("report");
        let m = &r.machines()[0];
        let stages: Vec<Stage> = m.history.iter().map(|h| h.stage).collect();
        use Stage::*;
        assert_eq!(stages, [Dhcp, Ipxe, Kernel, Initrd, Ignition, Installing, Installed, Booted, K3sReady]);
        assert_eq!(m.firmware.as_deref(), Some("bios"));
    }

    #[test]
    fn installed_machines_boot_from_disk_and_their_token_expires() {
        let r = registry(vec![spec(1, Stage::Armed)]);
        let mac = Mac([0x52, 0x54, 0, 0, 0, 1]);
        assert!(matches!(r.boot_script(mac, IP), BootAnswer::Install(_)));
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::Installed, None).expect("report");
        assert!(matches!(r.boot_script(mac, IP), BootAnswer::LocalDisk));
        assert!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).is_err());
        // A PXE boot of the installed machine does not move it back.
        r.saw_dhcp(mac, None, None, None);
        assert_eq!(r.machines()[0].stage, Some(Stage::Installed));
        // Re-arming with a new token starts over; the old token is dead.
        let mut again = spec(1, Stage::Armed);
        again.token = "newtokenbbbbbbbbbbbbbbbbbbbbbbbb".into();
        r.arm(again);
        assert!(matches!(r.boot_script(mac, IP), BootAnswer::Install(_)));
        assert!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).is_err());
        assert!(r.ignition("newtokenbbbbbbbbbbbbbbbbbbbbbbbb", IP, false).is_ok());
    }

    #[test]
    fn ignition_goes_only_to_the_machine_that_booted_with_the_token() {
        let r = registry(vec![spec(1, Stage::Armed), spec(2, Stage::Armed)]);
        let mac1 = Mac([0x52, 0x54, 0, 0, 0, 1]);
        assert!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).is_err(), "no boot seen yet");
        r.boot_script(mac1, IP);
        assert!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Ipv4Addr::new(10, 0, 0, 66), false).is_err());
        assert!(r.ignition("token2aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).is_err(), "another machine's token");
        assert!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).is_err(), "a prefix");
        assert!(r.ignition("", IP, false).is_err());
        assert!(r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).is_ok());
    }

    #[test]
    fn unknown_machines_are_discovered_once() {
        let r = registry(vec![]);
        let mut events = r.subscribe();
        let mac = Mac([0xaa, 0, 0, 0, 0, 1]);
        r.saw_dhcp(mac, Some("uefi-x64"), Some("PXEClient:Arch:00007"), None);
        r.saw_dhcp(mac, Some("uefi-x64"), Some("PXEClient:Arch:00007"), None);
        assert!(matches!(r.boot_script(mac, IP), BootAnswer::Unknown));
        let e = events.try_recv().expect("one event");
        assert!(matches!(e.kind, EventKind::Discovered { .. }));
        assert!(events.try_recv().is_err(), "only once");
        let m = &r.machines()[0];
        assert_eq!((m.node.as_deref(), m.firmware.as_deref()), (None, Some("uefi-x64")));
    }

    #[test]
    fn failures_are_kept_with_their_reason_and_a_retry_moves_on() {
        let r = registry(vec![spec(1, Stage::Armed)]);
        let mac = Mac([0x52, 0x54, 0, 0, 0, 1]);
        r.boot_script(mac, IP);
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::Failed, Some("disk /dev/sda not found".into())).expect("r");
        let m = &r.machines()[0];
        assert_eq!(m.stage, Some(Stage::Failed));
        assert_eq!(m.history.last().and_then(|h| h.detail.as_deref()), Some("disk /dev/sda not found"));
        r.saw_dhcp(mac, None, None, None);
        assert_eq!(r.machines()[0].stage, Some(Stage::Dhcp));
    }

    #[test]
    fn a_failure_reported_after_the_install_does_not_undo_it() {
        let r = registry(vec![spec(1, Stage::Armed)]);
        let mac = Mac([0x52, 0x54, 0, 0, 0, 1]);
        r.boot_script(mac, IP);
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::Installed, None).expect("r");
        r.report("token1aaaaaaaaaaaaaaaaaaaaaaaaaa", Stage::Failed, Some("late".into())).expect("r");
        assert_eq!(r.machines()[0].stage, Some(Stage::Installed));
        assert!(matches!(r.boot_script(mac, IP), BootAnswer::LocalDisk));
    }

    #[test]
    fn stage_names_round_trip_and_match_serde() {
        for st in Stage::ALL {
            assert_eq!(Stage::parse(st.as_str()), Some(st));
            assert_eq!(serde_json::to_value(st).expect("json"), serde_json::Value::String(st.as_str().into()));
        }
        assert_eq!(Stage::parse("rebooting"), None);
    }

    #[test]
    fn macs_parse() {
        assert_eq!("52:54:00:ab:cd:ef".parse::<Mac>(), Ok(Mac([0x52, 0x54, 0, 0xab, 0xcd, 0xef])));
        assert_eq!("52-54-00-AB-CD-EF".parse::<Mac>(), Ok(Mac([0x52, 0x54, 0, 0xab, 0xcd, 0xef])));
        assert!("52:54:00:ab:cd".parse::<Mac>().is_err());
        assert!("52:54:00:ab:cd:ef:00".parse::<Mac>().is_err());
    }
}
