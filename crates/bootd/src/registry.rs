//! What the boot server knows of every machine: planned machines with their install state,
//! token and bound address, and machines that network-booted without a plan. Every change of a
//! planned machine is saved through the [`Booter`] before the answer that depends on it goes
//! out, and is told to subscribers as an [`Event`].

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

use crate::mac::Mac;
use crate::neighbors::Link;
use crate::neighbors::{KernelNeighbors, Neighbors};
use crate::policy::{Booter, Script, ScriptRequest};
use crate::stage::{
    Alert, Attempt, Clock, Diagnosis, Event, EventKind, HistoryEntry, InspectSpec, MachineRecord, MachineSpec,
    MachineStatus, Millis, Served, Stage, StrangerRecord,
};

struct Machine {
    spec: MachineSpec,
    stage: Stage,
    history: Vec<HistoryEntry>,
    ip: Option<Ipv4Addr>,
    firmware: Option<String>,
    vendor_class: Option<String>,
    /// The boot attempt under way, and which of its configs are being sent right now.
    attempt: Option<Attempt>,
    in_flight: [bool; 2],
    /// When each kind of alert was last put on the timeline, per asking address and what it
    /// asked for (an alert repeated within `ALERT_REPEAT_MS` is refused the same way but not
    /// recorded again).
    alerted: Vec<(Alert, Ipv4Addr, &'static str, Millis)>,
}

impl Machine {
    fn new(spec: MachineSpec) -> Self {
        Machine {
            stage: spec.stage,
            history: spec.history.clone(),
            ip: spec.ip,
            attempt: spec.attempt.clone(),
            spec,
            firmware: None,
            vendor_class: None,
            in_flight: [false; 2],
            alerted: Vec::new(),
        }
    }

    /// The token requests about this machine must carry: its attempt's. Without one, none
    /// before its first network boot, and the machine's own after it (an install begun by an
    /// earlier version, which had no attempts).
    fn current_token(&self) -> &str {
        match &self.attempt {
            Some(a) => &a.token,
            None if self.stage > Stage::Dhcp => &self.spec.token,
            None => "",
        }
    }

    /// A new boot attempt from `ip`, with a token of its own; the one before ends.
    fn begin_attempt(&mut self, at: Millis, ip: Ipv4Addr) {
        self.attempt = Some(Attempt { token: new_token(), at, ip: Some(ip), install_served: None, final_served: None });
        self.in_flight = [false; 2];
    }

    /// `text` (a script or config of this machine) with the attempt's token in place of the
    /// machine's.
    fn for_attempt(&self, text: &str) -> String {
        match &self.attempt {
            Some(a) if a.token != self.spec.token && !self.spec.token.is_empty() => {
                text.replace(&self.spec.token, &a.token)
            }
            _ => text.to_owned(),
        }
    }
}

/// Which config of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Config {
    Install,
    Final,
}

impl Config {
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Config::Install => "install config",
            Config::Final => "final config",
        }
    }
}

/// An address that sent wrong tokens: how many in the current window, and until when it is
/// refused.
#[derive(Clone, Copy)]
struct WrongTokens {
    window_start: Millis,
    count: u32,
    blocked_until: Millis,
}

#[derive(Default)]
struct Sighting {
    firmware: Option<String>,
    vendor_class: Option<String>,
    ip: Option<Ipv4Addr>,
    /// When it was last seen, and last saved (0: never).
    seen: Millis,
    saved: Millis,
}

/// The most machines without a plan the boot server keeps (the one seen longest ago is dropped
/// first, never one being inspected).
pub const MAX_STRANGERS: usize = 1024;
/// A stranger is saved at most once per this long.
const STRANGER_SAVE_EVERY_MS: Millis = 60_000;
/// Saves of strangers (and their `discovered` events) per second, and the burst allowed: a
/// flood of made-up MACs never keeps the database from planned machines' saves.
const STRANGER_SAVES_PER_S: f64 = 10.0;
const STRANGER_SAVES_BURST: f64 = 20.0;

/// A token bucket: `take` is true at most `rate` times a second on average.
struct Bucket {
    tokens: f64,
    at: Millis,
    /// Takes refused since the last time that was logged.
    refused: u64,
}

impl Bucket {
    fn take(&mut self, now: Millis) -> bool {
        let elapsed = (now - self.at).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * STRANGER_SAVES_PER_S).min(STRANGER_SAVES_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.refused += 1;
            false
        }
    }
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket { tokens: STRANGER_SAVES_BURST, at: 0, refused: 0 }
    }
}

/// A machine to inspect, and where its live system asks from.
struct Inspection {
    spec: InspectSpec,
    ip: Option<Ipv4Addr>,
    /// The machine was armed for install while inspected: its live system's next ask gets the
    /// install script, and its next network boot the install.
    armed: bool,
}

#[derive(Default)]
struct Inner {
    machines: BTreeMap<Mac, Machine>,
    by_ip: HashMap<Ipv4Addr, Mac>,
    unknown: BTreeMap<Mac, Sighting>,
    /// Strangers' saves and `discovered` events.
    stranger_saves: Bucket,
    inspections: BTreeMap<Mac, Inspection>,
    /// When each machine last got a UEFI iPXE binary over TFTP (for the Secure Boot diagnosis).
    efi_sent: HashMap<Mac, (Millis, String)>,
    /// Other DHCP servers seen offering boot options (each logged once).
    rivals: std::collections::HashSet<Ipv4Addr>,
    /// Addresses that sent wrong tokens lately (at most `MAX_WRONG_TOKEN_ADDRESSES`).
    wrong_tokens: HashMap<Ipv4Addr, WrongTokens>,
    /// Alerts about no machine in particular (wrong tokens), newest last, at most `MAX_SERVER_ALERTS`.
    server_alerts: std::collections::VecDeque<Event>,
}

impl Inner {
    /// The stranger `mac`, seen at `at`: added when new, dropping the one seen longest ago
    /// (never one being inspected) when the table is full.
    fn stranger(&mut self, mac: Mac, at: Millis) -> &mut Sighting {
        if !self.unknown.contains_key(&mac) && self.unknown.len() >= MAX_STRANGERS {
            let oldest = self
                .unknown
                .iter()
                .filter(|(m, _)| !self.inspections.contains_key(m))
                .min_by_key(|(_, s)| s.seen)
                .map(|(m, _)| *m);
            if let Some(oldest) = oldest {
                self.unknown.remove(&oldest);
            }
        }
        let s = self.unknown.entry(mac).or_default();
        s.seen = at;
        s
    }
}

/// The boot server's view of every machine. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Event>,
    clock: Clock,
    booter: Arc<dyn Booter>,
    /// Saves one at a time, each of the newest state, so the store never goes back in time.
    saving: Arc<tokio::sync::Mutex<()>>,
    /// Who the LAN says has an address the registry does not know (see `neighbors`).
    neighbors: Arc<dyn Neighbors>,
    /// When this boot server started: an armed machine's wait for its network boot counts
    /// from then at the earliest.
    started: Millis,
}

/// How long after loading a UEFI iPXE binary a machine must have come back as iPXE.
const SECURE_BOOT_AFTER_MS: Millis = 60_000;

/// The same alert from the same address is recorded once per this long.
const ALERT_REPEAT_MS: Millis = 60_000;
/// The most alerts one machine's timeline keeps (older ones are dropped first).
const MAX_ALERTS_PER_MACHINE: usize = 50;
/// Wrong tokens an address may send in `WRONG_TOKEN_WINDOW_MS` before it is refused for
/// `WRONG_TOKEN_BLOCK_MS`. A machine sends none: its files carry its attempt's token.
pub const MAX_WRONG_TOKENS: u32 = 20;
const WRONG_TOKEN_WINDOW_MS: Millis = 60_000;
const WRONG_TOKEN_BLOCK_MS: Millis = 300_000;
/// The most addresses the wrong-token count follows (the oldest window is dropped first).
const MAX_WRONG_TOKEN_ADDRESSES: usize = 4096;
/// The most alerts about no machine in particular that are kept.
const MAX_SERVER_ALERTS: usize = 100;

/// Why a config or report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownToken,
    InstallEnded,
    OtherMachine,
    /// A config of this attempt went out already (or is going out right now).
    AlreadyServed,
    /// The asking address sent too many wrong tokens lately.
    Blocked,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownToken => "unknown token",
            Refusal::InstallEnded => "this install has ended; arm the machine again to reinstall",
            Refusal::OtherMachine => "this token belongs to another machine",
            Refusal::AlreadyServed => {
                "this boot attempt's config was served already; reboot the machine to start a new one"
            }
            Refusal::Blocked => "this address sent too many wrong tokens and is refused for a while",
        }
    }
}

/// Why a machine's script was refused: the alert raised for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptRefusal {
    pub alert: Alert,
    pub message: String,
}

/// A config being sent: [`ServeGuard::finish`] once it went out in full marks it served for
/// its attempt; dropped before that (the client went away), the config may be asked for again.
pub(crate) struct ServeGuard {
    registry: Registry,
    mac: Mac,
    token: String,
    config: Config,
    to: Ipv4Addr,
    finished: bool,
}

impl ServeGuard {
    pub(crate) fn finish(mut self) {
        self.finished = true;
        let at = self.registry.now();
        let saved = {
            let mut inner = self.registry.lock();
            match inner.machines.get_mut(&self.mac) {
                Some(m) if m.attempt.as_ref().is_some_and(|a| a.token == self.token) => {
                    m.in_flight[self.config.index()] = false;
                    let stage = Some(m.stage);
                    if let Some(a) = m.attempt.as_mut() {
                        let served = Some(Served { to: self.to, at, stage });
                        match self.config {
                            Config::Install => a.install_served = served,
                            Config::Final => a.final_served = served,
                        }
                    }
                    true
                }
                _ => false,
            }
        };
        if saved {
            tracing::info!(mac = %self.mac, to = %self.to, config = self.config.name(), "served once for this boot attempt");
            let (registry, mac) = (self.registry.clone(), self.mac);
            tokio::spawn(async move { registry.commit(mac).await });
        }
    }
}

impl Drop for ServeGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut inner = self.registry.lock();
        if let Some(m) = inner.machines.get_mut(&self.mac)
            && m.attempt.as_ref().is_some_and(|a| a.token == self.token)
        {
            m.in_flight[self.config.index()] = false;
            tracing::info!(mac = %self.mac, to = %self.to, config = self.config.name(), "a config was not sent in full; it may be asked for again");
        }
    }
}

/// 32 letters and digits from the system's secure random source.
fn new_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32).map(|_| char::from(rng.sample(rand::distr::Alphanumeric))).collect()
}

impl Registry {
    pub fn new(machines: Vec<MachineSpec>, clock: Clock, booter: Arc<dyn Booter>) -> Self {
        let (events, _) = broadcast::channel(1024);
        let mut inner = Inner::default();
        for spec in machines {
            if let Some(ip) = spec.ip {
                inner.by_ip.insert(ip, spec.mac);
            }
            inner.machines.insert(spec.mac, Machine::new(spec));
        }
        let started = clock();
        Self {
            inner: Arc::new(Mutex::new(inner)),
            events,
            clock,
            booter,
            saving: Arc::default(),
            neighbors: Arc::new(KernelNeighbors),
            started,
        }
    }

    /// The same registry asking `neighbors` instead of the kernel's table (tests).
    pub fn with_neighbors(mut self, neighbors: Arc<dyn Neighbors>) -> Self {
        self.neighbors = neighbors;
        self
    }

    /// The planned machine a request from `ip` comes from: the one bound to `ip`, else the one
    /// the neighbour table puts at `ip` while its install runs, which is then bound to `ip` (and
    /// saved) before the caller answers.
    async fn machine_at(&self, ip: Ipv4Addr) -> Option<Mac> {
        if let Some(mac) = self.lock().by_ip.get(&ip).copied() {
            return Some(mac);
        }
        let mac = self.neighbors.mac_of(ip)?;
        let moved = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let m = inner.machines.get_mut(&mac)?;
            // Only an install in progress follows its machine; a new one binds at its iPXE script.
            if m.ip.is_none() || m.stage.is_installed() || m.stage == Stage::Armed {
                return None;
            }
            let old = m.ip.replace(ip);
            if let Some(old) = old {
                inner.by_ip.remove(&old);
            }
            inner.by_ip.insert(ip, mac);
            (m.spec.node.clone(), old)
        };
        tracing::info!(mac = %mac, node = %moved.0, from = ?moved.1, to = %ip, "machine moved to a new address (neighbour table)");
        self.commit(mac).await;
        Some(mac)
    }

    pub(crate) fn booter(&self) -> &dyn Booter {
        &*self.booter
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
    pub async fn arm(&self, mut spec: MachineSpec) {
        let at = self.now();
        spec.stage = Stage::Armed;
        let mac = spec.mac;
        let node = spec.node.clone();
        let entry = HistoryEntry::stage(at, Stage::Armed, None);
        {
            let mut inner = self.lock();
            let mut history = inner.machines.get(&mac).map(|m| m.history.clone()).unwrap_or_default();
            history.push(entry.clone());
            inner.unknown.remove(&mac);
            inner.by_ip.retain(|_, m| *m != mac);
            if let Some(i) = inner.inspections.get_mut(&mac) {
                i.armed = true;
            }
            spec.history = history;
            spec.ip = None;
            spec.attempt = None;
            inner.machines.insert(mac, Machine::new(spec));
        }
        self.commit(mac).await;
        self.emit(mac, Some(node), EventKind::from_history(&entry), at);
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
                inspecting: inner.inspections.get(mac).is_some_and(|i| !i.armed),
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
            inspecting: inner.inspections.contains_key(mac),
        }));
        // A machine to inspect that has not network-booted yet.
        out.extend(
            inner
                .inspections
                .iter()
                .filter(|(mac, _)| !inner.machines.contains_key(mac) && !inner.unknown.contains_key(mac))
                .map(|(mac, i)| MachineStatus {
                    mac: mac.to_string(),
                    node: None,
                    stage: None,
                    ip: i.ip.map(|ip| ip.to_string()),
                    firmware: None,
                    vendor_class: None,
                    history: Vec::new(),
                    inspecting: true,
                }),
        );
        out
    }

    /// Inspects machine `spec.mac` at its next network boot (replacing an earlier inspection of
    /// it): it gets the live system that reports its hardware and then waits, instead of its
    /// install. A machine the plan does not have is never dropped from the strangers while so.
    pub fn inspect(&self, spec: InspectSpec) {
        let mac = spec.mac;
        let node = spec.node.clone();
        self.lock().inspections.insert(mac, Inspection { spec, ip: None, armed: false });
        tracing::info!(mac = %mac, node = node.as_deref().unwrap_or("(not in the plan)"), "machine to inspect at its next network boot");
    }

    /// The token of machine `mac`'s inspection, if it is to be inspected.
    pub fn inspection_token(&self, mac: Mac) -> Option<String> {
        self.lock().inspections.get(&mac).map(|i| i.spec.token.clone())
    }

    /// The token and stage of planned machine `mac`.
    pub fn machine_token(&self, mac: Mac) -> Option<(String, Stage)> {
        self.lock().machines.get(&mac).map(|m| (m.spec.token.clone(), m.stage))
    }

    pub fn is_planned(&self, mac: Mac) -> bool {
        self.lock().machines.contains_key(&mac)
    }

    /// A DHCP request from `mac`; unplanned machines are recorded as discovered.
    pub(crate) async fn saw_dhcp(
        &self,
        mac: Mac,
        firmware: Option<&str>,
        vendor_class: Option<&str>,
        ip: Option<Ipv4Addr>,
    ) {
        let at = self.now();
        let stranger = {
            let mut inner = self.lock();
            if let Some(m) = inner.machines.get_mut(&mac) {
                m.firmware = firmware.map(str::to_owned).or(m.firmware.take());
                m.vendor_class = vendor_class.map(str::to_owned).or(m.vendor_class.take());
                None
            } else {
                let inner = &mut *inner;
                let s = inner.stranger(mac, at);
                s.firmware = firmware.map(str::to_owned).or(s.firmware.take());
                s.vendor_class = vendor_class.map(str::to_owned).or(s.vendor_class.take());
                s.ip = ip.or(s.ip);
                let new = s.saved == 0;
                let due = new || at - s.saved >= STRANGER_SAVE_EVERY_MS;
                let save = due && inner.stranger_saves.take(at);
                if save && let Some(s) = inner.unknown.get_mut(&mac) {
                    s.saved = at;
                }
                // What the bucket refused since the last save, said with the next one.
                if save && inner.stranger_saves.refused > 0 {
                    let refused = std::mem::take(&mut inner.stranger_saves.refused);
                    tracing::info!(refused, "sightings of machines without a plan not saved (more than 10 a second)");
                }
                let s = inner.unknown.get(&mac).expect("inserted");
                Some((new && save, save, s.firmware.clone(), s.vendor_class.clone()))
            }
        };
        match stranger {
            Some((_, false, _, _)) => {}
            Some((new, true, firmware, vendor_class)) => {
                let save = self.booter.save_stranger(StrangerRecord {
                    mac,
                    firmware: firmware.clone(),
                    vendor_class: vendor_class.clone(),
                    at,
                });
                tokio::spawn(async move {
                    if let Err(e) = save.await {
                        tracing::warn!(mac = %mac, error = %e, "cannot save a machine that is not in the plan");
                    }
                });
                if new {
                    self.emit(mac, None, EventKind::Discovered { firmware, vendor_class }, at);
                }
            }
            None => self.advance(mac, Stage::Dhcp, None).await,
        }
    }

    /// iPXE asked for `mac`'s script from `ip`. The booter decides what it gets. An install is
    /// a new boot attempt: its own token in the script, the machine's address bound, saved
    /// before the script goes out. A script that carries a token (an install or an inspection)
    /// goes only to the machine: when `ip` is on this link, the neighbour table must put it at
    /// `mac`; from beyond a router that cannot be checked, and a second address during an
    /// install is refused.
    pub(crate) async fn script(
        &self,
        mac: Mac,
        ip: Ipv4Addr,
        round: u32,
        http_base: &str,
    ) -> Result<String, ScriptRefusal> {
        let (known, inspect) = {
            let inner = self.lock();
            (
                inner.machines.get(&mac).map(|m| (m.spec.node.clone(), m.stage, m.spec.ipxe_script.clone())),
                inner.inspections.get(&mac).filter(|i| !i.armed).map(|i| i.spec.ipxe_script.clone()),
            )
        };
        let request = ScriptRequest {
            mac,
            node: known.as_ref().map(|(node, _, _)| node.as_str()),
            stage: known.as_ref().map(|(_, stage, _)| *stage),
            install_script: known.as_ref().map(|(_, _, script)| script.as_str()),
            inspect_script: inspect.as_deref(),
            round,
        };
        let answer = self.booter.script(&request, http_base);
        let off_link = match &answer {
            Script::Install(_) | Script::Inspect(_) => {
                self.check_requester(mac, ip, matches!(answer, Script::Install(_))).await?
            }
            Script::Other(_) => false,
        };
        let answer = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            // Back as iPXE: whatever it loaded over TFTP ran.
            inner.efi_sent.remove(&mac);
            if let (Script::Inspect(_), Some(i)) = (&answer, inner.inspections.get_mut(&mac)) {
                i.ip = Some(ip);
                tracing::info!(mac = %mac, ip = %ip, "inspecting: the live system boots to report the machine's hardware");
            }
            match (answer, inner.machines.get_mut(&mac)) {
                (Script::Install(text), Some(m)) => {
                    if let Some(old) = m.ip.replace(ip) {
                        inner.by_ip.remove(&old);
                    }
                    inner.by_ip.insert(ip, mac);
                    m.begin_attempt(self.now(), ip);
                    Script::Install(m.for_attempt(&text))
                }
                (answer, Some(_)) => answer,
                (answer, None) => {
                    let s = inner.stranger(mac, self.now());
                    s.ip = Some(ip);
                    s.firmware = s.firmware.take().or(Some("ipxe".into()));
                    answer
                }
            }
        };
        Ok(match answer {
            Script::Install(text) => {
                let detail = off_link.then(|| format!("from {ip}, beyond a router: its MAC could not be checked"));
                tracing::info!(mac = %mac, ip = %ip, off_link, "a new boot attempt");
                self.advance(mac, Stage::Ipxe, detail).await;
                if self.lock().machines.get(&mac).is_some_and(|m| m.stage > Stage::Ipxe) {
                    // A retry mid-install keeps its stage; its new attempt is still saved.
                    self.commit(mac).await;
                }
                text
            }
            Script::Inspect(text) | Script::Other(text) => text,
        })
    }

    /// Whether a script for `mac` may go to `ip` (true: it may, but `ip` is beyond a router).
    /// Refused, with an alert on the machine's timeline: an address the neighbour table puts at
    /// another MAC (or at none, on this link), and for an install from beyond a router, a
    /// second address while the machine's install runs.
    async fn check_requester(&self, mac: Mac, ip: Ipv4Addr, install: bool) -> Result<bool, ScriptRefusal> {
        // The kernel's tables are read with no registry lock held.
        let refusal = match self.neighbors.link_of(ip) {
            Link::Local => return Ok(false),
            Link::OnLink => match self.neighbors.mac_of(ip) {
                Some(m) if m == mac => return Ok(false),
                Some(other) => (
                    Alert::ForeignMac,
                    format!(
                        "{ip} asked for the boot script of {mac}, but the LAN puts {ip} at {other}: refused. Another device on the LAN tried to get this machine's configs"
                    ),
                ),
                None => (
                    Alert::ForeignMac,
                    format!("{ip} asked for the boot script of {mac}, but the LAN knows no MAC for {ip}: refused"),
                ),
            },
            Link::OffLink => {
                let bound = {
                    let inner = self.lock();
                    inner
                        .machines
                        .get(&mac)
                        .filter(|m| install && m.stage >= Stage::Ipxe && m.stage <= Stage::Installing)
                        .and_then(|m| Some((m.ip.filter(|b| *b != ip)?, m.attempt.as_ref().map_or(0, |a| a.at))))
                };
                let Some((bound, since)) = bound else { return Ok(true) };
                (
                    Alert::SecondAddress,
                    format!(
                        "{ip} asked for the boot script of {mac} while its install runs from {bound} (for {}), and is beyond a router, so its MAC cannot be checked: refused. If the machine itself rebooted behind a DHCP relay, arm it again",
                        spoken_duration(self.now() - since)
                    ),
                )
            }
        };
        let (alert, message) = refusal;
        self.alert(mac, alert, ip, "script", message.clone()).await;
        Err(ScriptRefusal { alert, message })
    }

    /// Puts `alert` on machine `mac`'s timeline (a planned machine's, saved; a stranger's as an
    /// event only), once per address and kind in `ALERT_REPEAT_MS`.
    async fn alert(&self, mac: Mac, alert: Alert, from: Ipv4Addr, what: &'static str, message: String) {
        let at = self.now();
        let entry = HistoryEntry::Alert { at, alert, message: message.clone(), from: Some(from.to_string()) };
        let planned = {
            let mut inner = self.lock();
            match inner.machines.get_mut(&mac) {
                Some(m) => {
                    let same = |a: &Alert, f: &Ipv4Addr, w: &&str| *a == alert && *f == from && *w == what;
                    if m.alerted.iter().any(|(a, f, w, t)| same(a, f, w) && at - t < ALERT_REPEAT_MS) {
                        tracing::debug!(mac = %mac, from = %from, alert = ?alert, "{message}");
                        return;
                    }
                    m.alerted.retain(|(a, f, w, t)| !same(a, f, w) && at - t < ALERT_REPEAT_MS);
                    m.alerted.push((alert, from, what, at));
                    m.history.push(entry.clone());
                    let alerts = m.history.iter().filter(|h| matches!(h, HistoryEntry::Alert { .. })).count();
                    if alerts > MAX_ALERTS_PER_MACHINE
                        && let Some(oldest) = m.history.iter().position(|h| matches!(h, HistoryEntry::Alert { .. }))
                    {
                        m.history.remove(oldest);
                    }
                    Some(m.spec.node.clone())
                }
                None => None,
            }
        };
        tracing::warn!(mac = %mac, from = %from, alert = ?alert, "{message}");
        if planned.is_some() {
            self.commit(mac).await;
        }
        self.emit(mac, planned, EventKind::from_history(&entry), at);
    }

    /// Counts a wrong token from `ip`: past `MAX_WRONG_TOKENS` in a minute, the address is
    /// refused for five minutes, with one alert (about no machine in particular).
    fn wrong_token(&self, ip: Ipv4Addr) {
        let at = self.now();
        let blocked = {
            let mut inner = self.lock();
            if !inner.wrong_tokens.contains_key(&ip) && inner.wrong_tokens.len() >= MAX_WRONG_TOKEN_ADDRESSES {
                let oldest = inner.wrong_tokens.iter().min_by_key(|(_, w)| w.window_start).map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    inner.wrong_tokens.remove(&oldest);
                }
            }
            let w =
                inner.wrong_tokens.entry(ip).or_insert(WrongTokens { window_start: at, count: 0, blocked_until: 0 });
            if at - w.window_start >= WRONG_TOKEN_WINDOW_MS {
                *w = WrongTokens { window_start: at, count: 0, blocked_until: w.blocked_until };
            }
            w.count += 1;
            let now_blocked = w.count > MAX_WRONG_TOKENS && w.blocked_until <= at;
            if now_blocked {
                w.blocked_until = at + WRONG_TOKEN_BLOCK_MS;
            }
            now_blocked
        };
        if blocked {
            let message = format!(
                "{ip} sent more than {MAX_WRONG_TOKENS} wrong tokens in a minute: it is refused for {}. Something on the LAN is guessing boot tokens",
                spoken_duration(WRONG_TOKEN_BLOCK_MS)
            );
            tracing::warn!(from = %ip, alert = "wrong-tokens", "{message}");
            let event = Event {
                at,
                mac: String::new(),
                node: None,
                kind: EventKind::Alert { alert: Alert::WrongTokens, message, from: Some(ip.to_string()) },
            };
            {
                let mut inner = self.lock();
                if inner.server_alerts.len() >= MAX_SERVER_ALERTS {
                    inner.server_alerts.pop_front();
                }
                inner.server_alerts.push_back(event.clone());
            }
            let _ = self.events.send(event);
        }
    }

    /// Whether `ip` is refused for wrong tokens right now.
    fn blocked(&self, ip: Ipv4Addr) -> bool {
        let at = self.now();
        self.lock().wrong_tokens.get(&ip).is_some_and(|w| w.blocked_until > at)
    }

    /// Alerts about no machine in particular (an address guessing tokens), oldest first.
    pub fn server_alerts(&self) -> Vec<Event> {
        self.lock().server_alerts.iter().cloned().collect()
    }

    /// The inspection a request with `token` from `ip` belongs to: its machine must be the one
    /// whose live system asks (bound at its script, or put at `ip` by the neighbour table, as
    /// an install follows its machine to a new lease).
    fn inspection_at(&self, token: &str, ip: Ipv4Addr) -> Result<Mac, Refusal> {
        if self.blocked(ip) {
            return Err(Refusal::Blocked);
        }
        let found = find_by_token(&self.lock().inspections, token, |i| &i.spec.token).map(|(mac, i)| (mac, i.ip));
        let Some((mac, bound)) = found else {
            self.wrong_token(ip);
            return Err(Refusal::UnknownToken);
        };
        if bound == Some(ip) {
            return Ok(mac);
        }
        // The neighbour table is read with no lock held, as `machine_at` does.
        if bound.is_some() && self.neighbors.mac_of(ip) == Some(mac) {
            if let Some(i) = self.lock().inspections.get_mut(&mac) {
                i.ip = Some(ip);
            }
            tracing::info!(mac = %mac, to = %ip, "inspection moved to a new address (neighbour table)");
            return Ok(mac);
        }
        Err(Refusal::OtherMachine)
    }

    /// The inspection live system's Ignition config for `token`, to the machine it belongs to.
    pub(crate) fn inspect_ignition(&self, token: &str, ip: Ipv4Addr) -> Result<String, Refusal> {
        let mac = self.inspection_at(token, ip)?;
        Ok(self.lock().inspections.get(&mac).map(|i| i.spec.ignition.clone()).unwrap_or_default())
    }

    /// What an inspected machine's live system does next: None to wait; once the machine is
    /// armed for install, its install script, to run from where it is. Handing it out starts the
    /// install: the machine's address is bound to its install token, and the inspection ends.
    pub(crate) async fn inspect_next(&self, token: &str, ip: Ipv4Addr) -> Result<Option<String>, Refusal> {
        let mac = self.inspection_at(token, ip)?;
        let script = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            let armed = inner.inspections.get(&mac).is_some_and(|i| i.armed);
            match inner.machines.get_mut(&mac) {
                // Armed, or seen in DHCP since (a full-DHCP server sees the live system's own).
                Some(m) if armed && m.stage < Stage::Ignition => {
                    if let Some(old) = m.ip.replace(ip) {
                        inner.by_ip.remove(&old);
                    }
                    inner.by_ip.insert(ip, mac);
                    inner.inspections.remove(&mac);
                    // The install from the live system is this machine's boot attempt.
                    m.begin_attempt(self.now(), ip);
                    Some(m.for_attempt(&m.spec.install_script))
                }
                _ => None,
            }
        };
        if script.is_some() {
            self.advance(mac, Stage::Ignition, Some("installing from the inspection's live system".into())).await;
        }
        Ok(script)
    }

    /// TFTP sent `file` to `ip` in full. A UEFI iPXE binary is remembered by the machine the
    /// neighbour table puts at `ip`: if it never comes back as iPXE, Secure Boot refused it.
    pub(crate) fn tftp_sent(&self, ip: Ipv4Addr, file: &str) {
        if !file.ends_with(".efi") {
            return;
        }
        let bound = self.lock().by_ip.get(&ip).copied();
        let Some(mac) = bound.or_else(|| self.neighbors.mac_of(ip)) else { return };
        let at = self.now();
        self.lock().efi_sent.insert(mac, (at, file.to_owned()));
    }

    /// Puts a diagnosis on the timeline of each planned machine that seems stuck, once per
    /// cause: a UEFI machine that loaded iPXE a minute ago and never came back as iPXE (Secure
    /// Boot), an armed machine that has not network-booted for `no_boot_after`.
    pub async fn diagnose(&self, no_boot_after: std::time::Duration) {
        let now = self.now();
        let wait = i64::try_from(no_boot_after.as_millis()).unwrap_or(i64::MAX);
        let mut found = Vec::new();
        {
            let inner = self.lock();
            for (mac, m) in &inner.machines {
                let since = |d: Diagnosis, t: Millis| {
                    m.history.iter().any(
                        |h| matches!(h, HistoryEntry::Diagnosis { diagnosis, at, .. } if *diagnosis == d && *at >= t),
                    )
                };
                if let Some((sent, file)) = inner.efi_sent.get(mac)
                    && now - sent >= SECURE_BOOT_AFTER_MS
                    && m.stage < Stage::Ipxe
                    && !since(Diagnosis::SecureBoot, *sent)
                {
                    found.push((*mac, Diagnosis::SecureBoot, format!(
                        "loaded iPXE ({file}) over TFTP {} s ago but never came back as iPXE: Secure Boot is probably on, and Debian's iPXE is not signed for it (Flatlab has no Microsoft-signed iPXE shim to offer yet). Two ways on: turn Secure Boot off in the firmware setup (often under Security or Boot; F2, Del or F10 at power-on) and network-boot the machine again; or, to keep Secure Boot for the installed system, install with it off, then enrol Flatcar's Secure Boot CA in the firmware's db as Flatcar's Secure Boot documentation describes (Flatcar's images are signed with its own CA, not Microsoft's) and turn Secure Boot on again: the disk boots, only the network boot stays refused",
                        (now - sent) / 1000
                    )));
                }
                if m.stage == Stage::Armed {
                    let armed_at = m
                        .history
                        .iter()
                        .rev()
                        .find(|h| h.reached() == Some(Stage::Armed))
                        .map(HistoryEntry::at)
                        .unwrap_or(self.started)
                        .max(self.started);
                    if now - armed_at >= wait && !since(Diagnosis::NoNetworkBoot, armed_at) {
                        found.push((*mac, Diagnosis::NoNetworkBoot, format!(
                            "has not network-booted in the {} since it was armed. At power-on, choose network boot in the one-time boot menu (F12 on Dell, Lenovo and Gigabyte; F11 on MSI and ASRock; F8 on ASUS; F9 on HP; F10 on Intel NUC), or put network (PXE, IPv4) before the disk in the firmware's boot order, with network boot enabled. Check its cable, and that its MAC in the plan is that of the port it is plugged in with",
                            spoken_duration(now - armed_at)
                        )));
                    }
                }
            }
        }
        for (mac, diagnosis, message) in found {
            let entry = HistoryEntry::Diagnosis { at: now, diagnosis, message: message.clone() };
            let node = {
                let mut inner = self.lock();
                let Some(m) = inner.machines.get_mut(&mac) else { continue };
                m.history.push(entry.clone());
                m.spec.node.clone()
            };
            tracing::warn!(mac = %mac, node = %node, diagnosis = ?diagnosis, "{message}");
            self.commit(mac).await;
            self.emit(mac, Some(node), EventKind::from_history(&entry), now);
        }
    }

    /// Another DHCP server offered `offer.client` boot options: logged once per server, and a
    /// diagnosis on that machine's timeline when it is planned (once).
    pub(crate) async fn saw_rival_offer(&self, offer: crate::rival::RivalOffer) {
        let now = self.now();
        let (first, planned) = {
            let mut inner = self.lock();
            let first = inner.rivals.insert(offer.server);
            let planned = inner.machines.get(&offer.client).is_some_and(|m| {
                !m.history
                    .iter()
                    .any(|h| matches!(h, HistoryEntry::Diagnosis { diagnosis: Diagnosis::OtherDhcpServer, .. }))
            });
            (first, planned)
        };
        if first {
            tracing::warn!(server = %offer.server, boot = %offer.boot, client = %offer.client, "another DHCP server on the LAN offers boot options; machines may boot from it instead of Flatlab");
        }
        if !planned {
            return;
        }
        let message = format!(
            "was offered a boot file by another DHCP server, {} ({}): it may boot from there instead of from Flatlab. Remove the boot options from that server (options 66 and 67 or a next-server; on a home router usually under its DHCP or LAN settings), or stop that PXE server; or put the machines on an isolated switch with Flatlab as the DHCP server (--dhcp full)",
            offer.server, offer.boot
        );
        let entry = HistoryEntry::Diagnosis { at: now, diagnosis: Diagnosis::OtherDhcpServer, message };
        let node = {
            let mut inner = self.lock();
            let Some(m) = inner.machines.get_mut(&offer.client) else { return };
            m.history.push(entry.clone());
            m.spec.node.clone()
        };
        self.commit(offer.client).await;
        self.emit(offer.client, Some(node), EventKind::from_history(&entry), now);
    }

    /// A mirror file was requested from `ip`: the booter says which downloads move its machine on.
    pub(crate) async fn saw_download(&self, ip: Ipv4Addr, file: &str) {
        let Some(stage) = self.booter.download_stage(file) else { return };
        if let Some(mac) = self.machine_at(ip).await {
            self.advance(mac, stage, Some(file.to_owned())).await;
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

    /// A private file of the machine whose current boot attempt `token` is (see
    /// [`MachineSpec::files`](crate::MachineSpec)): only from the machine's own address (the
    /// one its install is bound to, or where the neighbour table puts its MAC), from its
    /// install until it reports K3s ready. Unlike the configs it may be fetched again (Ignition
    /// retries a cut download), as it is the same file.
    pub(crate) async fn private_file(&self, token: &str, ip: Ipv4Addr, name: &str) -> Result<PathBuf, Refusal> {
        if self.blocked(ip) {
            return Err(Refusal::Blocked);
        }
        let found = {
            let mut inner = self.lock();
            find_current(&mut inner, token).map(|(mac, m)| {
                let file = m.spec.files.iter().find(|f| f.name == name).map(|f| f.path.clone());
                (mac, m.stage, m.ip, m.spec.node.clone(), file)
            })
        };
        let Some((mac, stage, bound, node, file)) = found else {
            self.wrong_token(ip);
            return Err(Refusal::UnknownToken);
        };
        if matches!(stage, Stage::Armed | Stage::K3sReady) {
            return Err(Refusal::InstallEnded);
        }
        let from_machine = bound == Some(ip)
            || self.neighbors.link_of(ip) == crate::neighbors::Link::Local
            || self.neighbors.mac_of(ip) == Some(mac);
        if !from_machine {
            self.alert(mac, Alert::SecondAddress, ip, "private file", format!(
                "{ip} asked for {node}'s {name} with the token of its boot attempt, and the LAN does not put {ip} at {mac}: refused"
            )).await;
            return Err(Refusal::OtherMachine);
        }
        file.ok_or(Refusal::UnknownToken)
    }

    /// The install or final Ignition config for `token`, if it is the token of the machine's
    /// boot attempt, `ip` is the machine, and that config has not gone out in this attempt yet,
    /// or went out to this address and the machine has not reported a stage since (a retry of
    /// a cut transfer). The guard marks it served once hyper takes the body. Fetching the
    /// install config moves the machine to `ignition`. A second address, or a second fetch
    /// after the machine moved on, is refused with an alert on the machine's timeline.
    pub(crate) async fn ignition(
        &self,
        token: &str,
        ip: Ipv4Addr,
        config: Config,
    ) -> Result<(String, ServeGuard), Refusal> {
        if self.blocked(ip) {
            return Err(Refusal::Blocked);
        }
        let found = {
            let mut inner = self.lock();
            match find_current(&mut inner, token) {
                None => None,
                Some((mac, m)) => {
                    if m.stage.is_installed() {
                        return Err(Refusal::InstallEnded);
                    }
                    if m.attempt.is_none() {
                        // Armed by an earlier version, mid-install: its machine token is its attempt.
                        m.attempt = Some(Attempt {
                            token: token.to_owned(),
                            at: self.now(),
                            ip: m.ip,
                            install_served: None,
                            final_served: None,
                        });
                    }
                    Some((mac, m.spec.node.clone(), m.ip == Some(ip), m.ip))
                }
            }
        };
        let Some((mac, node, bound, bound_ip)) = found else {
            self.wrong_token(ip);
            return Err(Refusal::UnknownToken);
        };
        if !bound && self.machine_at(ip).await != Some(mac) {
            let to = bound_ip.map_or_else(|| "no address yet".to_owned(), |b| b.to_string());
            self.alert(mac, Alert::SecondAddress, ip, config.name(), format!(
                "{ip} asked for {node}'s {} with the token of its boot attempt, which is {node}'s at {to}, and the LAN does not put {ip} at {mac}: refused",
                config.name()
            )).await;
            return Err(Refusal::OtherMachine);
        }
        // The config and the attempt's token, or (for the alert) what was asked for and when
        // it went out before.
        let taken = {
            let mut inner = self.lock();
            let Some(m) = inner.machines.get_mut(&mac) else { return Err(Refusal::UnknownToken) };
            let attempt = m.attempt.as_ref().expect("made above");
            let served = match config {
                Config::Install => attempt.install_served,
                Config::Final => attempt.final_served,
            };
            // A retry: the same machine at the address it went to, before it reported a stage
            // after the one it fetched at (its transfer was cut; curl and Ignition try again).
            let retry = served.is_some_and(|s| s.to == ip && s.stage == Some(m.stage));
            match served {
                Some(served) if !retry => Err((
                    config.name(),
                    format!("it went out in full to {} {} earlier", served.to, spoken_duration(self.now() - served.at)),
                )),
                _ if m.in_flight[config.index()] => Err(("in flight", "it is being sent right now".to_owned())),
                _ => {
                    m.in_flight[config.index()] = true;
                    let text = match config {
                        Config::Install => m.for_attempt(&m.spec.install_ignition),
                        Config::Final => m.for_attempt(&m.spec.final_ignition),
                    };
                    if retry {
                        tracing::info!(%mac, to = %ip, config = config.name(), stage = m.stage.as_str(), "the machine fetches its config again (a transfer cut before its end is retried)");
                    }
                    Ok((text, attempt.token.clone()))
                }
            }
        };
        let (text, attempt_token) = match taken {
            Ok(taken) => taken,
            Err((what, earlier)) => {
                self.alert(mac, Alert::RepeatedFetch, ip, what, format!(
                    "{ip} asked for {node}'s {} a second time in this boot attempt ({earlier}): refused. Only the machine itself, at the address it went to, may fetch it again, and only until it reports its next stage; if this was the machine, reboot it to start a new attempt",
                    config.name()
                )).await;
                return Err(Refusal::AlreadyServed);
            }
        };
        if config == Config::Install {
            self.advance(mac, Stage::Ignition, None).await;
        }
        let guard = ServeGuard { registry: self.clone(), mac, token: attempt_token, config, to: ip, finished: false };
        Ok((text, guard))
    }

    /// A node's report of its own progress, with its attempt's token.
    pub(crate) async fn report(
        &self,
        token: &str,
        ip: Ipv4Addr,
        stage: Stage,
        reason: Option<String>,
    ) -> Result<(), Refusal> {
        if self.blocked(ip) {
            return Err(Refusal::Blocked);
        }
        let mac = find_current(&mut self.lock(), token).map(|(mac, _)| mac);
        let Some(mac) = mac else {
            self.wrong_token(ip);
            return Err(Refusal::UnknownToken);
        };
        self.advance(mac, stage, reason).await;
        Ok(())
    }

    /// A node's hardware inventory, posted by its live system with its install token while the
    /// install runs (or before it ends). Saved through the booter before the answer.
    pub(crate) async fn inventory(
        &self,
        token: &str,
        ip: Ipv4Addr,
        body: Vec<u8>,
    ) -> Result<Result<(), String>, Refusal> {
        if self.blocked(ip) {
            return Err(Refusal::Blocked);
        }
        let planned = {
            let mut inner = self.lock();
            match find_current(&mut inner, token) {
                Some((_, m)) if m.stage.is_installed() => return Err(Refusal::InstallEnded),
                Some((mac, m)) => Some((mac, m.spec.node.clone())),
                None => None,
            }
        };
        let (mac, node) = match planned {
            Some(found) => found,
            None => {
                // An inspection's live system.
                let mac = self.inspection_at(token, ip)?;
                let node = self.lock().inspections.get(&mac).and_then(|i| i.spec.node.clone()).unwrap_or_default();
                (mac, node)
            }
        };
        let saved = self.booter.save_inventory(mac, &node, body).await;
        match &saved {
            Ok(()) => tracing::info!(mac = %mac, node = %node, "machine inventory received"),
            Err(why) => tracing::warn!(mac = %mac, node = %node, why = %why, "refused a machine inventory"),
        }
        Ok(saved)
    }

    /// Moves a planned machine to `stage`, unless it is that far already (a machine that boots
    /// from disk does not go back to `dhcp`). `failed`, and anything after a failure (a retry),
    /// always applies. Saved before it returns.
    async fn advance(&self, mac: Mac, stage: Stage, detail: Option<String>) {
        let at = self.now();
        let (node, entry) = {
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
            let entry = HistoryEntry::stage(at, stage, detail.clone());
            m.stage = stage;
            m.history.push(entry.clone());
            (m.spec.node.clone(), entry)
        };
        self.commit(mac).await;
        tracing::info!(mac = %mac, node = %node, stage = stage.as_str(), detail = detail.as_deref().unwrap_or(""), "machine progress");
        self.emit(mac, Some(node), EventKind::from_history(&entry), at);
    }

    /// Saves a planned machine's newest state through the booter.
    async fn commit(&self, mac: Mac) {
        let _one_at_a_time = self.saving.lock().await;
        let record = {
            let inner = self.lock();
            let Some(m) = inner.machines.get(&mac) else { return };
            MachineRecord {
                mac,
                node: m.spec.node.clone(),
                token: m.spec.token.clone(),
                stage: m.stage,
                history: m.history.clone(),
                ip: m.ip,
                attempt: m.attempt.clone(),
                at: self.now(),
            }
        };
        if let Err(e) = self.booter.save(record).await {
            tracing::error!(mac = %mac, error = %e, "cannot save a machine's install state; a restart of the boot server may lose it");
        }
    }

    fn emit(&self, mac: Mac, node: Option<String>, kind: EventKind, at: Millis) {
        // No subscriber is fine: events are also kept in each machine's history.
        let _ = self.events.send(Event { at, mac: mac.to_string(), node, kind });
    }
}

/// Finds a machine by the token of its boot attempt, comparing every token in constant time.
fn find_current<'a>(inner: &'a mut Inner, token: &str) -> Option<(Mac, &'a mut Machine)> {
    let mac = find_by_token(&inner.machines, token, Machine::current_token).map(|(mac, _)| mac)?;
    inner.machines.get_mut(&mac).map(|m| (mac, m))
}

/// The entry of `entries` whose token is `token`, comparing every token in constant time (an
/// empty token matches nothing).
fn find_by_token<'a, T>(
    entries: &'a BTreeMap<Mac, T>,
    token: &str,
    token_of: impl Fn(&T) -> &str,
) -> Option<(Mac, &'a T)> {
    let mut found = None;
    for (mac, entry) in entries {
        let own = token_of(entry);
        let equal: bool = own.as_bytes().ct_eq(token.as_bytes()).into();
        if equal && !own.is_empty() {
            found = Some((*mac, entry));
        }
    }
    found
}

/// A duration as a sentence says it: "5 minutes", "1 minute", "40 seconds", "less than a second".
fn spoken_duration(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    if s == 0 {
        return "less than a second".into();
    }
    let (n, unit) = if s >= 120 { (s / 60, "minute") } else { (s, "second") };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{BootClient, BootFile, SaveFuture};

    /// Installs planned machines that are not installed, sends installed ones to disk; keeps
    /// every saved record.
    #[derive(Default)]
    struct TestBooter {
        saved: Mutex<Vec<MachineRecord>>,
        strangers_saved: std::sync::atomic::AtomicUsize,
    }

    impl Booter for TestBooter {
        fn boot_file(&self, _: &BootClient, _: &str) -> Option<BootFile> {
            None
        }
        fn first_stage(&self, _: &str) -> String {
            "#!ipxe\n".into()
        }
        fn script(&self, r: &ScriptRequest<'_>, _: &str) -> Script {
            if let Some(inspect) = r.inspect_script {
                return Script::Inspect(inspect.to_owned());
            }
            match (r.stage, r.install_script) {
                (Some(s), _) if s.is_installed() => Script::Other("disk".into()),
                (Some(_), Some(script)) => Script::Install(script.to_owned()),
                _ => Script::Other("stranger".into()),
            }
        }
        fn download_stage(&self, file: &str) -> Option<Stage> {
            if file.ends_with("_pxe.vmlinuz") {
                Some(Stage::Kernel)
            } else if file.ends_with("_pxe_image.cpio.gz") {
                Some(Stage::Initrd)
            } else {
                None
            }
        }
        fn save(&self, record: MachineRecord) -> SaveFuture {
            self.saved.lock().expect("lock").push(record);
            Box::pin(async { Ok(()) })
        }
        fn save_stranger(&self, _: StrangerRecord) -> SaveFuture {
            self.strangers_saved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        }
        fn save_inventory(&self, _: Mac, _: &str, _: Vec<u8>) -> SaveFuture {
            Box::pin(async { Ok(()) })
        }
    }

    fn spec(mac: u8, stage: Stage) -> MachineSpec {
        let token = format!("token{mac}aaaaaaaaaaaaaaaaaaaaaaaaaa");
        MachineSpec {
            mac: Mac([0x52, 0x54, 0, 0, 0, mac]),
            node: format!("n{mac}"),
            stage,
            history: vec![],
            ip: None,
            ipxe_script: format!("#!ipxe\ninstall {token}\n"),
            install_ignition: format!("{{install {token}}}"),
            final_ignition: format!("{{final {token}}}"),
            install_script: format!("#!/bin/bash\necho install n{mac} {token}\n"),
            token,
            attempt: None,
            files: Vec::new(),
        }
    }

    /// A LAN whose neighbour table the test writes: an address in it is on the link, any other
    /// beyond a router (unless listed as on the link but unresolved).
    #[derive(Default)]
    struct Lan(Mutex<HashMap<Ipv4Addr, Mac>>, Mutex<Vec<Ipv4Addr>>);

    impl Neighbors for Lan {
        fn mac_of(&self, ip: Ipv4Addr) -> Option<Mac> {
            self.0.lock().expect("lock").get(&ip).copied()
        }
        fn link_of(&self, ip: Ipv4Addr) -> Link {
            if self.0.lock().expect("lock").contains_key(&ip) || self.1.lock().expect("lock").contains(&ip) {
                Link::OnLink
            } else {
                Link::OffLink
            }
        }
    }

    impl Lan {
        fn put(&self, ip: Ipv4Addr, mac: Mac) {
            self.0.lock().expect("lock").insert(ip, mac);
        }
    }

    fn registry(specs: Vec<MachineSpec>) -> (Registry, Arc<TestBooter>) {
        let (r, booter, _) = registry_on_lan(specs);
        (r, booter)
    }

    fn registry_on_lan(specs: Vec<MachineSpec>) -> (Registry, Arc<TestBooter>, Arc<Lan>) {
        let booter = Arc::new(TestBooter::default());
        let lan = Arc::new(Lan::default());
        (Registry::new(specs, Arc::new(|| 1000), booter.clone()).with_neighbors(lan.clone()), booter, lan)
    }

    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
    const BASE: &str = "http://10.0.0.2:8080";
    const TOKEN1: &str = "token1aaaaaaaaaaaaaaaaaaaaaaaaaa";
    const MAC1: Mac = Mac([0x52, 0x54, 0, 0, 0, 1]);

    fn stages(r: &Registry) -> Vec<Stage> {
        r.machines()[0].history.iter().filter_map(HistoryEntry::reached).collect()
    }

    /// The machine's script from `ip`: its boot attempt's token (the script's last word).
    async fn boot(r: &Registry, mac: Mac, ip: Ipv4Addr) -> String {
        let script = r.script(mac, ip, 0, BASE).await.expect("its script");
        assert!(script.starts_with("#!ipxe\ninstall "), "{script}");
        script.split_whitespace().last().expect("a token").to_owned()
    }

    /// A config, sent in full.
    async fn fetch(r: &Registry, token: &str, ip: Ipv4Addr, config: Config) -> Result<String, Refusal> {
        r.ignition(token, ip, config).await.map(|(text, guard)| {
            guard.finish();
            text
        })
    }

    fn alerts(r: &Registry) -> Vec<(Alert, String)> {
        r.machines()[0]
            .history
            .iter()
            .filter_map(|h| match h {
                HistoryEntry::Alert { alert, message, .. } => Some((*alert, message.clone())),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_machine_walks_through_every_stage_once_and_each_step_is_saved() {
        let (r, booter) = registry(vec![spec(1, Stage::Armed)]);
        r.saw_dhcp(MAC1, Some("bios"), Some("PXEClient"), None).await;
        let token = boot(&r, MAC1, IP).await;
        assert_ne!(token, TOKEN1, "each boot attempt has its own token");
        assert_eq!(token.len(), 32);
        r.saw_download(IP, "flatcar_production_pxe.vmlinuz").await;
        r.saw_download(IP, "flatcar_production_pxe_image.cpio.gz").await;
        assert_eq!(fetch(&r, &token, IP, Config::Install).await, Ok(format!("{{install {token}}}")));
        r.report(&token, IP, Stage::Installing, None).await.expect("report");
        assert_eq!(fetch(&r, &token, IP, Config::Final).await, Ok(format!("{{final {token}}}")));
        for s in [Stage::Installed, Stage::Booted, Stage::K3sReady] {
            r.report(&token, IP, s, None).await.expect("report");
        }
        use Stage::*;
        assert_eq!(stages(&r), [Dhcp, Ipxe, Kernel, Initrd, Ignition, Installing, Installed, Booted, K3sReady]);
        assert_eq!(r.machines()[0].firmware.as_deref(), Some("bios"));
        let saved = booter.saved.lock().expect("lock");
        let saved_stages: Vec<Stage> = saved.iter().map(|s| s.stage).collect();
        assert!(saved_stages.windows(2).all(|w| w[0] <= w[1]), "{saved_stages:?}");
        assert_eq!(saved[1].ip, Some(IP), "the address binding is saved with the ipxe stage");
        assert_eq!(saved[1].attempt.as_ref().map(|a| a.token.as_str()), Some(token.as_str()), "and the attempt");
        let last = saved.last().expect("saved");
        assert_eq!(last.history.len(), 9);
        let attempt = last.attempt.as_ref().expect("attempt");
        assert!(attempt.install_served.is_some() && attempt.final_served.is_some(), "{attempt:?}");
    }

    #[tokio::test]
    async fn installed_machines_boot_from_disk_and_their_token_expires() {
        let (r, _) = registry(vec![spec(1, Stage::Armed)]);
        let token = boot(&r, MAC1, IP).await;
        r.report(&token, IP, Stage::Installed, None).await.expect("report");
        assert_eq!(r.script(MAC1, IP, 0, BASE).await.as_deref(), Ok("disk"));
        assert_eq!(fetch(&r, &token, IP, Config::Install).await, Err(Refusal::InstallEnded));
        // A PXE boot of the installed machine does not move it back.
        r.saw_dhcp(MAC1, None, None, None).await;
        assert_eq!(r.machines()[0].stage, Some(Stage::Installed));
        // Re-arming with a new token starts over; the old attempt's token is dead.
        let mut again = spec(1, Stage::Armed);
        again.token = "newtokenbbbbbbbbbbbbbbbbbbbbbbbb".into();
        again.ipxe_script = again.ipxe_script.replace(TOKEN1, &again.token);
        r.arm(again).await;
        assert_eq!(r.report(&token, IP, Stage::Booted, None).await, Err(Refusal::UnknownToken));
        let second = boot(&r, MAC1, IP).await;
        assert_eq!(fetch(&r, &token, IP, Config::Install).await, Err(Refusal::UnknownToken));
        assert!(fetch(&r, &second, IP, Config::Install).await.is_ok());
    }

    #[tokio::test]
    async fn ignition_goes_only_to_the_machine_that_booted_with_the_token() {
        let (r, _) = registry(vec![spec(1, Stage::Armed), spec(2, Stage::Armed)]);
        assert_eq!(fetch(&r, TOKEN1, IP, Config::Install).await, Err(Refusal::UnknownToken), "no boot attempt yet");
        let token = boot(&r, MAC1, IP).await;
        assert_eq!(fetch(&r, TOKEN1, IP, Config::Install).await, Err(Refusal::UnknownToken), "the machine's own token");
        assert_eq!(fetch(&r, &token, Ipv4Addr::new(10, 0, 0, 66), Config::Install).await, Err(Refusal::OtherMachine));
        assert_eq!(fetch(&r, &token[..31], IP, Config::Install).await, Err(Refusal::UnknownToken), "a prefix");
        assert_eq!(fetch(&r, "", IP, Config::Install).await, Err(Refusal::UnknownToken));
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok());
        let (alert, message) = alerts(&r).pop().expect("an alert");
        assert_eq!(alert, Alert::SecondAddress);
        assert!(message.starts_with("10.0.0.66 asked for n1's install config"), "{message}");
    }

    #[tokio::test]
    async fn each_config_goes_out_once_per_boot_attempt_and_a_reboot_is_a_new_attempt() {
        let (r, booter) = registry(vec![spec(1, Stage::Armed)]);
        let token = boot(&r, MAC1, IP).await;
        // A response dropped before its end (the client went away) does not count.
        let (_, guard) = r.ignition(&token, IP, Config::Install).await.expect("served");
        assert_eq!(fetch(&r, &token, IP, Config::Install).await, Err(Refusal::AlreadyServed), "while in flight");
        drop(guard);
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok());
        // A transfer cut after hyper took the body: the machine, at the address it went to,
        // fetches it again until it reports its next stage; then it is refused.
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok(), "a retry");
        r.report(&token, IP, Stage::Installing, None).await.expect("report");
        assert_eq!(fetch(&r, &token, IP, Config::Install).await, Err(Refusal::AlreadyServed), "it moved on");
        assert!(fetch(&r, &token, IP, Config::Final).await.is_ok(), "the final config is its own");
        assert!(fetch(&r, &token, IP, Config::Final).await.is_ok(), "retried while installing");
        let found = alerts(&r);
        assert_eq!(found.iter().map(|(a, _)| *a).collect::<Vec<_>>(), [Alert::RepeatedFetch; 2]);
        assert!(found[1].1.contains("it went out in full to 10.0.0.50"), "{found:?}");
        assert!(found[1].1.contains("only until it reports its next stage"), "{found:?}");
        // The same alert again within a minute is refused but not recorded again.
        assert_eq!(fetch(&r, &token, IP, Config::Install).await, Err(Refusal::AlreadyServed));
        assert_eq!(alerts(&r).len(), 2);
        // The install failed; the machine reboots: a new attempt, served again.
        r.report(&token, IP, Stage::Failed, Some("disk".into())).await.expect("report");
        let retry = boot(&r, MAC1, IP).await;
        assert_ne!(retry, token);
        assert_eq!(fetch(&r, &token, IP, Config::Install).await, Err(Refusal::UnknownToken), "the old attempt ended");
        assert!(fetch(&r, &retry, IP, Config::Install).await.is_ok());
        // Served-once (and at which stage) is saved, so a restart keeps it.
        tokio::task::yield_now().await;
        let saved = booter.saved.lock().expect("lock").last().cloned().expect("saved");
        let mut again = spec(1, saved.stage);
        again.attempt = saved.attempt.clone();
        again.ip = saved.ip;
        let (restarted, _) = registry(vec![again]);
        assert!(fetch(&restarted, &retry, IP, Config::Install).await.is_ok(), "still a retry");
        restarted.report(&retry, IP, Stage::Installing, None).await.expect("report");
        assert_eq!(fetch(&restarted, &retry, IP, Config::Install).await, Err(Refusal::AlreadyServed));
        assert!(fetch(&restarted, &retry, IP, Config::Final).await.is_ok());
        // A config saved as served by an earlier version (no stage): no retry.
        let mut old = spec(1, Stage::Ignition);
        old.ip = Some(IP);
        old.attempt = Some(Attempt {
            token: "attemptbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            at: 5,
            ip: Some(IP),
            install_served: Some(Served { to: IP, at: 6, stage: None }),
            final_served: None,
        });
        let (r, _) = registry(vec![old]);
        assert_eq!(
            fetch(&r, "attemptbbbbbbbbbbbbbbbbbbbbbbbbb", IP, Config::Install).await,
            Err(Refusal::AlreadyServed)
        );
    }

    #[tokio::test]
    async fn a_config_is_retried_only_from_the_address_it_went_to() {
        let (r, _, lan) = registry_on_lan(vec![spec(1, Stage::Armed)]);
        lan.put(IP, MAC1);
        let token = boot(&r, MAC1, IP).await;
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok());
        // The LAN puts a second address at the same MAC (a second lease): the machine, but not
        // where the config went: refused, with an alert.
        let second = Ipv4Addr::new(10, 0, 0, 51);
        lan.put(second, MAC1);
        assert_eq!(fetch(&r, &token, second, Config::Install).await, Err(Refusal::AlreadyServed));
        // Another MAC at another address: not the machine at all.
        let other = Ipv4Addr::new(10, 0, 0, 66);
        lan.put(other, Mac([0xde, 0xad, 0, 0, 0, 1]));
        assert_eq!(fetch(&r, &token, other, Config::Install).await, Err(Refusal::OtherMachine));
        assert_eq!(
            alerts(&r).iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            [Alert::RepeatedFetch, Alert::SecondAddress]
        );
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok(), "its own retry still works");
    }

    #[tokio::test]
    async fn a_script_goes_only_to_the_mac_the_lan_puts_at_the_asking_address() {
        let (r, _, lan) = registry_on_lan(vec![spec(1, Stage::Armed)]);
        let (spoofer, unresolved) = (Ipv4Addr::new(10, 0, 0, 66), Ipv4Addr::new(10, 0, 0, 67));
        lan.put(spoofer, Mac([0xde, 0xad, 0, 0, 0, 1]));
        lan.1.lock().expect("lock").push(unresolved);
        let refused = r.script(MAC1, spoofer, 0, BASE).await.expect_err("refused");
        assert_eq!(refused.alert, Alert::ForeignMac);
        assert!(refused.message.contains("the LAN puts 10.0.0.66 at de:ad:00:00:00:01"), "{}", refused.message);
        assert_eq!(r.script(MAC1, unresolved, 0, BASE).await.map_err(|e| e.alert), Err(Alert::ForeignMac));
        assert_eq!(r.machines()[0].stage, Some(Stage::Armed), "nothing went out");
        assert_eq!(alerts(&r).len(), 2);
        // The machine itself, on the link.
        lan.put(IP, MAC1);
        let token = boot(&r, MAC1, IP).await;
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok());
        assert!(
            !r.machines()[0]
                .history
                .iter()
                .any(|h| matches!(h, HistoryEntry::Stage { detail: Some(_), stage: Stage::Ipxe, .. }))
        );
    }

    #[tokio::test]
    async fn from_beyond_a_router_the_mac_is_not_checked_but_a_second_address_mid_install_is_refused() {
        let (r, _) = registry(vec![spec(1, Stage::Armed)]);
        let token = boot(&r, MAC1, IP).await;
        let ipxe = r.machines()[0].history.iter().find_map(|h| match h {
            HistoryEntry::Stage { stage: Stage::Ipxe, detail, .. } => detail.clone(),
            _ => None,
        });
        assert_eq!(ipxe.as_deref(), Some("from 10.0.0.50, beyond a router: its MAC could not be checked"));
        let other = Ipv4Addr::new(10, 0, 1, 9);
        let refused = r.script(MAC1, other, 0, BASE).await.expect_err("refused");
        assert_eq!(refused.alert, Alert::SecondAddress);
        assert!(refused.message.contains("while its install runs from 10.0.0.50"), "{}", refused.message);
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok(), "the attempt under way goes on");
        // The same address rebooting is a new attempt.
        assert_ne!(boot(&r, MAC1, IP).await, token);
    }

    #[tokio::test]
    async fn an_address_guessing_tokens_is_refused_for_a_while_with_one_alert() {
        let (clock, now) = moving_clock();
        let r = Registry::new(vec![spec(1, Stage::Armed)], clock, Arc::new(TestBooter::default()))
            .with_neighbors(Arc::new(Lan::default()));
        let token = boot(&r, MAC1, IP).await;
        let guesser = Ipv4Addr::new(10, 0, 0, 66);
        let mut events = r.subscribe();
        for i in 0..=MAX_WRONG_TOKENS {
            let guess = format!("guess{i:027}");
            assert_eq!(fetch(&r, &guess, guesser, Config::Install).await, Err(Refusal::UnknownToken));
        }
        assert_eq!(fetch(&r, &token, guesser, Config::Install).await, Err(Refusal::Blocked), "even a right token");
        assert_eq!(r.report(&token, guesser, Stage::Booted, None).await, Err(Refusal::Blocked));
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok(), "other addresses are not refused");
        let alerts = r.server_alerts();
        assert_eq!(alerts.len(), 1);
        assert!(
            matches!(&alerts[0].kind, EventKind::Alert { alert: Alert::WrongTokens, from: Some(f), .. } if f == "10.0.0.66")
        );
        assert!(
            std::iter::from_fn(|| events.try_recv().ok())
                .any(|e| matches!(e.kind, EventKind::Alert { alert: Alert::WrongTokens, .. }))
        );
        now.fetch_add(WRONG_TOKEN_BLOCK_MS + 1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            fetch(&r, "guessagain00000000000000000000000", guesser, Config::Install).await,
            Err(Refusal::UnknownToken)
        );
        assert_eq!(r.server_alerts().len(), 1);
    }

    #[tokio::test]
    async fn an_install_follows_its_machine_to_a_new_address_the_lan_puts_at_its_mac() {
        let (r, booter, lan) = registry_on_lan(vec![spec(1, Stage::Armed), spec(2, Stage::Armed)]);
        let (new_ip, other_ip) = (Ipv4Addr::new(10, 0, 0, 101), Ipv4Addr::new(10, 0, 0, 102));
        // Not before its install is bound: the first binding is iPXE's.
        lan.put(new_ip, MAC1);
        assert_eq!(fetch(&r, TOKEN1, new_ip, Config::Install).await, Err(Refusal::UnknownToken));
        let token = boot(&r, MAC1, IP).await;
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok());
        // The live system's own DHCP client got another lease: the LAN says it is MAC1's.
        assert_eq!(fetch(&r, &token, new_ip, Config::Final).await, Ok(format!("{{final {token}}}")));
        assert_eq!(r.machines()[0].ip.as_deref(), Some("10.0.0.101"));
        assert_eq!(booter.saved.lock().expect("lock").last().and_then(|s| s.ip), Some(new_ip), "saved");
        // Another machine at an address, or none: refused.
        lan.put(other_ip, Mac([0x52, 0x54, 0, 0, 0, 2]));
        assert_eq!(fetch(&r, &token, other_ip, Config::Final).await, Err(Refusal::OtherMachine));
        assert_eq!(fetch(&r, &token, Ipv4Addr::new(10, 0, 0, 103), Config::Final).await, Err(Refusal::OtherMachine));
        // The old address is no longer this install's.
        assert_eq!(fetch(&r, &token, IP, Config::Final).await, Err(Refusal::OtherMachine));
        // Downloads from the new address count for the machine.
        r.report(&token, new_ip, Stage::Installing, None).await.expect("report");
        let mut events = r.subscribe();
        r.progress(new_ip, "flatcar_production_image.bin.bz2", 10, 100);
        assert!(matches!(events.try_recv().map(|e| e.kind), Ok(EventKind::Progress { .. })));
    }

    #[tokio::test]
    async fn a_bound_address_and_its_attempt_survive_a_restart() {
        let mut s = spec(1, Stage::Ipxe);
        s.ip = Some(IP);
        s.attempt = Some(Attempt {
            token: "attemptaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            at: 5,
            ip: Some(IP),
            install_served: None,
            final_served: None,
        });
        let (r, _) = registry(vec![s]);
        assert_eq!(
            fetch(&r, "attemptaaaaaaaaaaaaaaaaaaaaaaaaa", IP, Config::Install).await,
            Ok("{install attemptaaaaaaaaaaaaaaaaaaaaaaaaa}".into()),
            "bound before the restart"
        );
        r.saw_download(IP, "flatcar_production_pxe_image.cpio.gz").await;
        assert_eq!(r.machines()[0].stage, Some(Stage::Ignition), "ignition was already reached");
        // A machine mid-install under an earlier version (no attempt): its own token is its attempt.
        let mut old = spec(1, Stage::Kernel);
        old.ip = Some(IP);
        let (r, _) = registry(vec![old]);
        assert_eq!(fetch(&r, TOKEN1, IP, Config::Install).await, Ok(format!("{{install {TOKEN1}}}")));
        r.report(TOKEN1, IP, Stage::Installing, None).await.expect("report");
        assert_eq!(fetch(&r, TOKEN1, IP, Config::Install).await, Err(Refusal::AlreadyServed));
    }

    #[tokio::test]
    async fn unknown_machines_are_discovered_once() {
        let (r, _) = registry(vec![]);
        let mut events = r.subscribe();
        let mac = Mac([0xaa, 0, 0, 0, 0, 1]);
        r.saw_dhcp(mac, Some("uefi-x64"), Some("PXEClient:Arch:00007"), None).await;
        r.saw_dhcp(mac, Some("uefi-x64"), Some("PXEClient:Arch:00007"), None).await;
        assert_eq!(r.script(mac, IP, 0, BASE).await.as_deref(), Ok("stranger"));
        let e = events.try_recv().expect("one event");
        assert!(matches!(e.kind, EventKind::Discovered { .. }));
        assert!(events.try_recv().is_err(), "only once");
        let m = &r.machines()[0];
        assert_eq!((m.node.as_deref(), m.firmware.as_deref()), (None, Some("uefi-x64")));
    }

    #[tokio::test]
    async fn a_flood_of_strangers_keeps_the_table_and_the_saves_bounded_and_the_inspected_one() {
        let (clock, now) = moving_clock();
        let booter = Arc::new(TestBooter::default());
        let r =
            Registry::new(vec![spec(1, Stage::Armed)], clock, booter.clone()).with_neighbors(Arc::new(Lan::default()));
        let inspected = Mac([0x52, 0x54, 0, 0, 0, 9]);
        r.inspect(inspection(inspected, None));
        r.saw_dhcp(inspected, Some("bios"), None, None).await;
        let mut events = r.subscribe();
        for i in 0..(MAX_STRANGERS as u32 + 500) {
            let b = i.to_be_bytes();
            r.saw_dhcp(Mac([0x02, 0xff, b[0], b[1], b[2], b[3]]), Some("bios"), None, None).await;
            now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let listed = r.machines();
        assert_eq!(listed.iter().filter(|m| m.node.is_none()).count(), MAX_STRANGERS);
        assert!(listed.iter().any(|m| m.mac == inspected.to_string() && m.inspecting), "never the inspected one");
        // 1.5 s of flood: the burst and ten a second.
        tokio::task::yield_now().await;
        let saves = booter.strangers_saved.load(std::sync::atomic::Ordering::SeqCst);
        assert!((20..=40).contains(&saves), "{saves} saves");
        let discovered = std::iter::from_fn(|| events.try_recv().ok())
            .filter(|e| matches!(e.kind, EventKind::Discovered { .. }))
            .count();
        assert!(discovered <= saves, "{discovered} events");
        // The planned machine is unaffected.
        let token = boot(&r, MAC1, IP).await;
        assert!(fetch(&r, &token, IP, Config::Install).await.is_ok());
    }

    #[tokio::test]
    async fn failures_are_kept_with_their_reason_and_a_retry_moves_on() {
        let (r, _) = registry(vec![spec(1, Stage::Armed)]);
        let token = boot(&r, MAC1, IP).await;
        r.report(&token, IP, Stage::Failed, Some("disk /dev/sda not found".into())).await.expect("r");
        let m = &r.machines()[0];
        assert_eq!(m.stage, Some(Stage::Failed));
        let last = m.history.last().expect("an entry");
        assert!(matches!(last, HistoryEntry::Stage { detail: Some(d), .. } if d == "disk /dev/sda not found"));
        r.saw_dhcp(MAC1, None, None, None).await;
        assert_eq!(r.machines()[0].stage, Some(Stage::Dhcp));
    }

    #[tokio::test]
    async fn a_failure_reported_after_the_install_does_not_undo_it() {
        let (r, _) = registry(vec![spec(1, Stage::Armed)]);
        let token = boot(&r, MAC1, IP).await;
        r.report(&token, IP, Stage::Installed, None).await.expect("r");
        r.report(&token, IP, Stage::Failed, Some("late".into())).await.expect("r");
        assert_eq!(r.machines()[0].stage, Some(Stage::Installed));
        assert_eq!(r.script(MAC1, IP, 0, BASE).await.as_deref(), Ok("disk"));
    }

    fn inspection(mac: Mac, node: Option<&str>) -> InspectSpec {
        InspectSpec {
            mac,
            node: node.map(str::to_owned),
            token: "inspecttokenaaaaaaaaaaaaaaaaaaaa".into(),
            ipxe_script: "#!ipxe\ninspect\n".into(),
            ignition: "{inspect}".into(),
        }
    }

    #[tokio::test]
    async fn an_inspected_machine_reports_waits_and_installs_from_its_live_system_once_armed() {
        let (r, _booter, lan) = registry_on_lan(vec![spec(1, Stage::Armed)]);
        let token = "inspecttokenaaaaaaaaaaaaaaaaaaaa";
        r.inspect(inspection(MAC1, Some("n1")));
        assert!(r.machines()[0].inspecting);
        // The inspection comes before the install, and binds the machine's address.
        assert_eq!(r.script(MAC1, IP, 0, BASE).await.as_deref(), Ok("#!ipxe\ninspect\n"));
        assert_eq!(r.machines()[0].stage, Some(Stage::Armed), "nothing is installed yet");
        let other = Ipv4Addr::new(10, 0, 0, 66);
        assert_eq!(r.inspect_ignition(token, other), Err(Refusal::OtherMachine));
        assert_eq!(r.inspect_ignition(token, IP).as_deref(), Ok("{inspect}"));
        // Its live system takes another lease: the neighbour table says it is the machine.
        let moved = Ipv4Addr::new(10, 0, 0, 51);
        lan.put(moved, MAC1);
        assert!(r.inventory(token, moved, b"{}".to_vec()).await.expect("its own").is_ok());
        assert_eq!(r.inspect_next(token, moved).await, Ok(None), "it waits until armed");
        assert_eq!(r.inspect_next("wrongtokenaaaaaaaaaaaaaaaaaaaaaa", moved).await, Err(Refusal::UnknownToken));

        // Armed: the next ask gets the install script, with a boot attempt of its own; the
        // install is bound to where it asks.
        r.arm(spec(1, Stage::Armed)).await;
        assert!(!r.machines()[0].inspecting);
        let script = r.inspect_next(token, moved).await.expect("its own").expect("a script");
        assert!(script.starts_with("#!/bin/bash\necho install n1 ") && !script.contains(TOKEN1), "{script}");
        let attempt = script.split_whitespace().last().expect("token").to_owned();
        assert_eq!(r.machines()[0].stage, Some(Stage::Ignition));
        assert_eq!(r.machines()[0].ip.as_deref(), Some("10.0.0.51"));
        assert!(fetch(&r, &attempt, moved, Config::Final).await.is_ok(), "its final config, from where it installs");
        assert_eq!(r.inspect_next(token, moved).await, Err(Refusal::UnknownToken), "handed out once");
    }

    #[tokio::test]
    async fn a_machine_the_plan_lacks_can_be_inspected_and_is_listed_meanwhile() {
        let (r, _booter) = registry(vec![]);
        let mac = Mac([0x52, 0x54, 0, 0, 0, 9]);
        r.inspect(inspection(mac, None));
        let listed = r.machines();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].inspecting && listed[0].node.is_none());
        assert_eq!(r.script(mac, IP, 3, BASE).await.as_deref(), Ok("#!ipxe\ninspect\n"));
        assert!(r.inventory("inspecttokenaaaaaaaaaaaaaaaaaaaa", IP, b"{}".to_vec()).await.expect("its own").is_ok());
        assert_eq!(r.inspect_next("inspecttokenaaaaaaaaaaaaaaaaaaaa", IP).await, Ok(None), "not planned: it waits");
        assert_eq!(r.machines().len(), 1, "one row, not two");
    }

    /// A clock the test moves.
    fn moving_clock() -> (Clock, Arc<std::sync::atomic::AtomicI64>) {
        let now = Arc::new(std::sync::atomic::AtomicI64::new(1_000));
        let read = now.clone();
        (Arc::new(move || read.load(std::sync::atomic::Ordering::SeqCst)), now)
    }

    fn diagnoses(r: &Registry) -> Vec<Diagnosis> {
        r.machines()[0]
            .history
            .iter()
            .filter_map(|h| match h {
                HistoryEntry::Diagnosis { diagnosis, .. } => Some(*diagnosis),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_uefi_machine_that_never_comes_back_as_ipxe_is_diagnosed_with_secure_boot_once() {
        let (clock, now) = moving_clock();
        let lan = Arc::new(Lan::default());
        let r = Registry::new(vec![spec(1, Stage::Armed)], clock, Arc::new(TestBooter::default()))
            .with_neighbors(lan.clone());
        lan.put(IP, MAC1);
        r.saw_dhcp(MAC1, Some("uefi-x64"), None, None).await;
        r.tftp_sent(IP, "snponly.efi");
        now.fetch_add(59_000, std::sync::atomic::Ordering::SeqCst);
        r.diagnose(std::time::Duration::from_secs(300)).await;
        assert!(diagnoses(&r).is_empty(), "not before a minute");
        now.fetch_add(2_000, std::sync::atomic::Ordering::SeqCst);
        r.diagnose(std::time::Duration::from_secs(300)).await;
        r.diagnose(std::time::Duration::from_secs(300)).await;
        assert_eq!(diagnoses(&r), [Diagnosis::SecureBoot], "once");
        let HistoryEntry::Diagnosis { message, .. } = r.machines()[0].history.last().cloned().expect("entry") else {
            panic!()
        };
        assert!(message.contains("Secure Boot") && message.contains("snponly.efi"), "{message}");
        // Both ways on, and what Flatlab cannot do yet.
        assert!(
            message.contains("turn Secure Boot off") && message.contains("enrol Flatcar's Secure Boot CA"),
            "{message}"
        );
        assert!(message.contains("no Microsoft-signed iPXE shim"), "{message}");

        // One that comes back as iPXE is not.
        let (clock, now) = moving_clock();
        let r = Registry::new(vec![spec(1, Stage::Armed)], clock, Arc::new(TestBooter::default())).with_neighbors(lan);
        r.tftp_sent(IP, "snponly.efi");
        r.tftp_sent(IP, "undionly.kpxe");
        boot(&r, MAC1, IP).await;
        now.fetch_add(120_000, std::sync::atomic::Ordering::SeqCst);
        r.diagnose(std::time::Duration::from_secs(300)).await;
        assert!(diagnoses(&r).is_empty());
    }

    #[tokio::test]
    async fn an_armed_machine_that_never_network_boots_is_told_how_once() {
        let (clock, now) = moving_clock();
        let r = Registry::new(vec![spec(1, Stage::Armed)], clock, Arc::new(TestBooter::default()));
        now.fetch_add(299_000, std::sync::atomic::Ordering::SeqCst);
        r.diagnose(std::time::Duration::from_secs(300)).await;
        assert!(diagnoses(&r).is_empty());
        now.fetch_add(2_000, std::sync::atomic::Ordering::SeqCst);
        r.diagnose(std::time::Duration::from_secs(300)).await;
        r.diagnose(std::time::Duration::from_secs(300)).await;
        assert_eq!(diagnoses(&r), [Diagnosis::NoNetworkBoot]);
        let HistoryEntry::Diagnosis { message, .. } = r.machines()[0].history.last().cloned().expect("entry") else {
            panic!()
        };
        assert!(message.contains("boot menu") && message.contains("F12"), "{message}");
        assert!(message.contains("in the 5 minutes since it was armed"), "{message}");
        // Armed again: the wait starts over, and a machine that network-boots is not told.
        r.arm(spec(1, Stage::Armed)).await;
        r.saw_dhcp(MAC1, Some("bios"), None, None).await;
        now.fetch_add(600_000, std::sync::atomic::Ordering::SeqCst);
        r.diagnose(std::time::Duration::from_secs(300)).await;
        assert_eq!(diagnoses(&r), [Diagnosis::NoNetworkBoot]);
    }
}
