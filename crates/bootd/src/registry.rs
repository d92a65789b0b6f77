//! What the boot server knows of every machine: planned machines with their install state,
//! token and bound address, and machines that network-booted without a plan. Every change of a
//! planned machine is saved through the [`Booter`] before the answer that depends on it goes
//! out, and is told to subscribers as an [`Event`].

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};

use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

use crate::mac::Mac;
use crate::neighbors::{KernelNeighbors, Neighbors};
use crate::policy::{Booter, Script, ScriptRequest};
use crate::stage::{
    Clock, Event, EventKind, HistoryEntry, MachineRecord, MachineSpec, MachineStatus, Millis, Stage, StrangerRecord,
};

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
    booter: Arc<dyn Booter>,
    /// Saves one at a time, each of the newest state, so the store never goes back in time.
    saving: Arc<tokio::sync::Mutex<()>>,
    /// Who the LAN says has an address the registry does not know (see `neighbors`).
    neighbors: Arc<dyn Neighbors>,
}

/// Why a config or report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownToken,
    InstallEnded,
    OtherMachine,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownToken => "unknown token",
            Refusal::InstallEnded => "this install has ended; arm the machine again to reinstall",
            Refusal::OtherMachine => "this token belongs to another machine",
        }
    }
}

impl Registry {
    pub fn new(machines: Vec<MachineSpec>, clock: Clock, booter: Arc<dyn Booter>) -> Self {
        let (events, _) = broadcast::channel(1024);
        let mut inner = Inner::default();
        for spec in machines {
            if let Some(ip) = spec.ip {
                inner.by_ip.insert(ip, spec.mac);
            }
            inner.machines.insert(
                spec.mac,
                Machine {
                    stage: spec.stage,
                    history: spec.history.clone(),
                    ip: spec.ip,
                    spec,
                    firmware: None,
                    vendor_class: None,
                },
            );
        }
        Self {
            inner: Arc::new(Mutex::new(inner)),
            events,
            clock,
            booter,
            saving: Arc::default(),
            neighbors: Arc::new(KernelNeighbors),
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
            inner.machines.insert(
                mac,
                Machine { stage: Stage::Armed, history, spec, ip: None, firmware: None, vendor_class: None },
            );
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
                let new = !inner.unknown.contains_key(&mac);
                let s = inner.unknown.entry(mac).or_default();
                s.firmware = firmware.map(str::to_owned).or(s.firmware.take());
                s.vendor_class = vendor_class.map(str::to_owned).or(s.vendor_class.take());
                s.ip = ip.or(s.ip);
                Some((new, s.firmware.clone(), s.vendor_class.clone()))
            }
        };
        match stranger {
            Some((new, firmware, vendor_class)) => {
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

    /// iPXE asked for `mac`'s script from `ip`. The booter decides what it gets; an install binds
    /// the machine's address and is saved before the script goes out.
    pub(crate) async fn script(&self, mac: Mac, ip: Ipv4Addr) -> String {
        let known = {
            let inner = self.lock();
            inner.machines.get(&mac).map(|m| (m.spec.node.clone(), m.stage, m.spec.ipxe_script.clone()))
        };
        let request = ScriptRequest {
            mac,
            node: known.as_ref().map(|(node, _, _)| node.as_str()),
            stage: known.as_ref().map(|(_, stage, _)| *stage),
            install_script: known.as_ref().map(|(_, _, script)| script.as_str()),
        };
        let answer = self.booter.script(&request);
        {
            let mut inner = self.lock();
            let inner = &mut *inner;
            match (&answer, inner.machines.get_mut(&mac)) {
                (Script::Install(_), Some(m)) => {
                    if let Some(old) = m.ip.replace(ip) {
                        inner.by_ip.remove(&old);
                    }
                    inner.by_ip.insert(ip, mac);
                }
                (_, Some(_)) => {}
                (_, None) => {
                    let s = inner.unknown.entry(mac).or_default();
                    s.ip = Some(ip);
                    s.firmware = s.firmware.take().or(Some("ipxe".into()));
                }
            }
        }
        match answer {
            Script::Install(text) => {
                self.advance(mac, Stage::Ipxe, None).await;
                text
            }
            Script::Other(text) => text,
        }
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

    /// The install or final Ignition config for `token`, if the token is live and `ip` is the
    /// machine it belongs to. Fetching the install config moves the machine to `ignition`.
    pub(crate) async fn ignition(&self, token: &str, ip: Ipv4Addr, final_config: bool) -> Result<String, Refusal> {
        let (mac, config, bound) = {
            let inner = self.lock();
            let Some((mac, m)) = find_token(&inner, token) else { return Err(Refusal::UnknownToken) };
            if m.stage.is_installed() {
                return Err(Refusal::InstallEnded);
            }
            let config = if final_config { m.spec.final_ignition.clone() } else { m.spec.install_ignition.clone() };
            (mac, config, m.ip == Some(ip))
        };
        if !bound && self.machine_at(ip).await != Some(mac) {
            return Err(Refusal::OtherMachine);
        }
        if !final_config {
            self.advance(mac, Stage::Ignition, None).await;
        }
        Ok(config)
    }

    /// A node's report of its own progress.
    pub(crate) async fn report(&self, token: &str, stage: Stage, reason: Option<String>) -> Result<(), Refusal> {
        let mac = {
            let inner = self.lock();
            let Some((mac, _)) = find_token(&inner, token) else { return Err(Refusal::UnknownToken) };
            mac
        };
        self.advance(mac, stage, reason).await;
        Ok(())
    }

    /// A node's hardware inventory, posted by its live system with its install token while the
    /// install runs (or before it ends). Saved through the booter before the answer.
    pub(crate) async fn inventory(&self, token: &str, body: Vec<u8>) -> Result<Result<(), String>, Refusal> {
        let (mac, node) = {
            let inner = self.lock();
            let Some((mac, m)) = find_token(&inner, token) else { return Err(Refusal::UnknownToken) };
            if m.stage.is_installed() {
                return Err(Refusal::InstallEnded);
            }
            (mac, m.spec.node.clone())
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
    use crate::policy::{BootClient, BootFile, SaveFuture};

    /// Installs planned machines that are not installed, sends installed ones to disk; keeps
    /// every saved record.
    #[derive(Default)]
    struct TestBooter {
        saved: Mutex<Vec<MachineRecord>>,
    }

    impl Booter for TestBooter {
        fn boot_file(&self, _: &BootClient, _: &str) -> Option<BootFile> {
            None
        }
        fn first_stage(&self, _: &str) -> String {
            "#!ipxe\n".into()
        }
        fn script(&self, r: &ScriptRequest<'_>) -> Script {
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
            Box::pin(async { Ok(()) })
        }
        fn save_inventory(&self, _: Mac, _: &str, _: Vec<u8>) -> SaveFuture {
            Box::pin(async { Ok(()) })
        }
    }

    fn spec(mac: u8, stage: Stage) -> MachineSpec {
        MachineSpec {
            mac: Mac([0x52, 0x54, 0, 0, 0, mac]),
            node: format!("n{mac}"),
            token: format!("token{mac}aaaaaaaaaaaaaaaaaaaaaaaaaa"),
            stage,
            history: vec![],
            ip: None,
            ipxe_script: "#!ipxe\ninstall\n".into(),
            install_ignition: "{install}".into(),
            final_ignition: "{final}".into(),
        }
    }

    /// A LAN whose neighbour table the test writes.
    #[derive(Default)]
    struct Lan(Mutex<HashMap<Ipv4Addr, Mac>>);

    impl Neighbors for Lan {
        fn mac_of(&self, ip: Ipv4Addr) -> Option<Mac> {
            self.0.lock().expect("lock").get(&ip).copied()
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
    const TOKEN1: &str = "token1aaaaaaaaaaaaaaaaaaaaaaaaaa";
    const MAC1: Mac = Mac([0x52, 0x54, 0, 0, 0, 1]);

    fn stages(r: &Registry) -> Vec<Stage> {
        r.machines()[0].history.iter().filter_map(HistoryEntry::reached).collect()
    }

    #[tokio::test]
    async fn a_machine_walks_through_every_stage_once_and_each_step_is_saved() {
        let (r, booter) = registry(vec![spec(1, Stage::Armed)]);
        r.saw_dhcp(MAC1, Some("bios"), Some("PXEClient"), None).await;
        assert_eq!(r.script(MAC1, IP).await, "#!ipxe\ninstall\n");
        r.saw_download(IP, "flatcar_production_pxe.vmlinuz").await;
        r.saw_download(IP, "flatcar_production_pxe_image.cpio.gz").await;
        assert_eq!(r.ignition(TOKEN1, IP, false).await.as_deref(), Ok("{install}"));
        r.report(TOKEN1, Stage::Installing, None).await.expect("report");
        assert_eq!(r.ignition(TOKEN1, IP, true).await.as_deref(), Ok("{final}"));
        for s in [Stage::Installed, Stage::Booted, Stage::K3sReady] {
            r.report(TOKEN1, s, None).await.expect("report");
        }
        use Stage::*;
        assert_eq!(stages(&r), [Dhcp, Ipxe, Kernel, Initrd, Ignition, Installing, Installed, Booted, K3sReady]);
        assert_eq!(r.machines()[0].firmware.as_deref(), Some("bios"));
        let saved = booter.saved.lock().expect("lock");
        let saved_stages: Vec<Stage> = saved.iter().map(|s| s.stage).collect();
        assert_eq!(saved_stages, [Dhcp, Ipxe, Kernel, Initrd, Ignition, Installing, Installed, Booted, K3sReady]);
        assert_eq!(saved[1].ip, Some(IP), "the address binding is saved with the ipxe stage");
        assert_eq!(saved.last().map(|s| s.history.len()), Some(9));
    }

    #[tokio::test]
    async fn installed_machines_boot_from_disk_and_their_token_expires() {
        let (r, _) = registry(vec![spec(1, Stage::Armed)]);
        assert_eq!(r.script(MAC1, IP).await, "#!ipxe\ninstall\n");
        r.report(TOKEN1, Stage::Installed, None).await.expect("report");
        assert_eq!(r.script(MAC1, IP).await, "disk");
        assert_eq!(r.ignition(TOKEN1, IP, false).await, Err(Refusal::InstallEnded));
        // A PXE boot of the installed machine does not move it back.
        r.saw_dhcp(MAC1, None, None, None).await;
        assert_eq!(r.machines()[0].stage, Some(Stage::Installed));
        // Re-arming with a new token starts over; the old token is dead.
        let mut again = spec(1, Stage::Armed);
        again.token = "newtokenbbbbbbbbbbbbbbbbbbbbbbbb".into();
        r.arm(again).await;
        assert_eq!(r.script(MAC1, IP).await, "#!ipxe\ninstall\n");
        assert_eq!(r.ignition(TOKEN1, IP, false).await, Err(Refusal::UnknownToken));
        assert!(r.ignition("newtokenbbbbbbbbbbbbbbbbbbbbbbbb", IP, false).await.is_ok());
    }

    #[tokio::test]
    async fn ignition_goes_only_to_the_machine_that_booted_with_the_token() {
        let (r, _) = registry(vec![spec(1, Stage::Armed), spec(2, Stage::Armed)]);
        assert_eq!(r.ignition(TOKEN1, IP, false).await, Err(Refusal::OtherMachine), "no boot seen yet");
        r.script(MAC1, IP).await;
        assert_eq!(r.ignition(TOKEN1, Ipv4Addr::new(10, 0, 0, 66), false).await, Err(Refusal::OtherMachine));
        assert_eq!(r.ignition("token2aaaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).await, Err(Refusal::OtherMachine));
        assert_eq!(
            r.ignition("token1aaaaaaaaaaaaaaaaaaaaaaaaa", IP, false).await,
            Err(Refusal::UnknownToken),
            "a prefix"
        );
        assert_eq!(r.ignition("", IP, false).await, Err(Refusal::UnknownToken));
        assert!(r.ignition(TOKEN1, IP, false).await.is_ok());
    }

    #[tokio::test]
    async fn an_install_follows_its_machine_to_a_new_address_the_lan_puts_at_its_mac() {
        let (r, booter, lan) = registry_on_lan(vec![spec(1, Stage::Armed), spec(2, Stage::Armed)]);
        let (new_ip, other_ip) = (Ipv4Addr::new(10, 0, 0, 101), Ipv4Addr::new(10, 0, 0, 102));
        // Not before its install is bound: the first binding is iPXE's.
        lan.0.lock().expect("lock").insert(new_ip, MAC1);
        assert_eq!(r.ignition(TOKEN1, new_ip, false).await, Err(Refusal::OtherMachine));
        r.script(MAC1, IP).await;
        assert!(r.ignition(TOKEN1, IP, false).await.is_ok());
        // The live system's own DHCP client got another lease: the LAN says it is MAC1's.
        assert_eq!(r.ignition(TOKEN1, new_ip, true).await.as_deref(), Ok("{final}"));
        assert_eq!(r.machines()[0].ip.as_deref(), Some("10.0.0.101"));
        assert_eq!(booter.saved.lock().expect("lock").last().and_then(|s| s.ip), Some(new_ip), "saved");
        // Another machine at an address, or none: refused.
        lan.0.lock().expect("lock").insert(other_ip, Mac([0x52, 0x54, 0, 0, 0, 2]));
        assert_eq!(r.ignition(TOKEN1, other_ip, true).await, Err(Refusal::OtherMachine));
        assert_eq!(r.ignition(TOKEN1, Ipv4Addr::new(10, 0, 0, 103), true).await, Err(Refusal::OtherMachine));
        // The old address is no longer this install's.
        assert_eq!(r.ignition(TOKEN1, IP, true).await, Err(Refusal::OtherMachine));
        // Downloads from the new address count for the machine.
        r.report(TOKEN1, Stage::Installing, None).await.expect("report");
        let mut events = r.subscribe();
        r.progress(new_ip, "flatcar_production_image.bin.bz2", 10, 100);
        assert!(matches!(events.try_recv().map(|e| e.kind), Ok(EventKind::Progress { .. })));
    }

    #[tokio::test]
    async fn a_bound_address_survives_a_restart() {
        let mut s = spec(1, Stage::Ipxe);
        s.ip = Some(IP);
        let (r, _) = registry(vec![s]);
        assert!(r.ignition(TOKEN1, IP, false).await.is_ok(), "bound before the restart");
        r.saw_download(IP, "flatcar_production_pxe_image.cpio.gz").await;
        assert_eq!(r.machines()[0].stage, Some(Stage::Ignition), "ignition was already reached");
    }

    #[tokio::test]
    async fn unknown_machines_are_discovered_once() {
        let (r, _) = registry(vec![]);
        let mut events = r.subscribe();
        let mac = Mac([0xaa, 0, 0, 0, 0, 1]);
        r.saw_dhcp(mac, Some("uefi-x64"), Some("PXEClient:Arch:00007"), None).await;
        r.saw_dhcp(mac, Some("uefi-x64"), Some("PXEClient:Arch:00007"), None).await;
        assert_eq!(r.script(mac, IP).await, "stranger");
        let e = events.try_recv().expect("one event");
        assert!(matches!(e.kind, EventKind::Discovered { .. }));
        assert!(events.try_recv().is_err(), "only once");
        let m = &r.machines()[0];
        assert_eq!((m.node.as_deref(), m.firmware.as_deref()), (None, Some("uefi-x64")));
    }

    #[tokio::test]
    async fn failures_are_kept_with_their_reason_and_a_retry_moves_on() {
        let (r, _) = registry(vec![spec(1, Stage::Armed)]);
        r.script(MAC1, IP).await;
        r.report(TOKEN1, Stage::Failed, Some("disk /dev/sda not found".into())).await.expect("r");
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
        r.script(MAC1, IP).await;
        r.report(TOKEN1, Stage::Installed, None).await.expect("r");
        r.report(TOKEN1, Stage::Failed, Some("late".into())).await.expect("r");
        assert_eq!(r.machines()[0].stage, Some(Stage::Installed));
        assert_eq!(r.script(MAC1, IP).await, "disk");
    }
}
