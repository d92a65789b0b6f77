//! The vocabulary of install state: stages, history entries, events, and a machine's state as
//! it is shown and as it is saved. The one definition of each; `api` converts store rows and
//! the UI gets TypeScript generated from these.

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::mac::Mac;

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
    /// Something went wrong; the history entry says what.
    Failed,
}

impl Stage {
    /// Every stage, in the order a machine goes through them (`failed` last).
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

    /// The stage's name, as serialized: `k3s-ready`.
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

    /// A stage by its name, as [`Stage::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The stages a node reports itself (`POST /v1/report/<token>?stage=`); the others the boot
    /// server sees for itself.
    pub fn is_reported(self) -> bool {
        matches!(self, Stage::Installing | Stage::Installed | Stage::Booted | Stage::K3sReady | Stage::Failed)
    }

    /// Once on disk, the machine boots from disk until it is armed again.
    pub fn is_installed(self) -> bool {
        matches!(self, Stage::Installed | Stage::Booted | Stage::K3sReady)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the boot server refused because it should not have happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum Alert {
    /// A config that is served once was asked for again (from another address, or after the
    /// machine reported its next stage).
    RepeatedFetch,
    /// Another address asked for the machine's configs during its install.
    SecondAddress,
    /// The requester's link-layer MAC is not the machine's.
    ForeignMac,
    /// An address kept trying wrong tokens and is refused for a while.
    WrongTokens,
}

/// Why a machine does not get on, as far as the boot server can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum Diagnosis {
    /// A UEFI machine loaded iPXE and never came back as iPXE.
    SecureBoot,
    /// Another DHCP server offers boot options and may answer first.
    OtherDhcpServer,
    /// A firewall on this machine blocks the boot server's ports.
    Firewall,
    /// A planned machine never network-booted.
    NoNetworkBoot,
}

/// One entry of a machine's history: a stage reached, an alert, or a diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[ts(export)]
pub enum HistoryEntry {
    /// The machine reached a stage.
    Stage {
        #[ts(type = "number")]
        at: Millis,
        stage: Stage,
        /// What was seen: a file name, a failure's reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        detail: Option<String>,
    },
    /// Something was refused that should not have happened.
    Alert {
        #[ts(type = "number")]
        at: Millis,
        alert: Alert,
        /// What happened, in words.
        message: String,
        /// The address that asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        from: Option<String>,
    },
    /// Why the machine seems stuck, and what to do.
    Diagnosis {
        #[ts(type = "number")]
        at: Millis,
        diagnosis: Diagnosis,
        message: String,
    },
}

impl HistoryEntry {
    pub fn stage(at: Millis, stage: Stage, detail: Option<String>) -> Self {
        HistoryEntry::Stage { at, stage, detail }
    }

    pub fn at(&self) -> Millis {
        match self {
            HistoryEntry::Stage { at, .. } | HistoryEntry::Alert { at, .. } | HistoryEntry::Diagnosis { at, .. } => *at,
        }
    }

    /// The stage this entry records, if it records one.
    pub fn reached(&self) -> Option<Stage> {
        match self {
            HistoryEntry::Stage { stage, .. } => Some(*stage),
            _ => None,
        }
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
    /// The address its install is bound to (from the store, after a restart).
    pub ip: Option<Ipv4Addr>,
    /// The node's iPXE script (`boot.ipxe`).
    pub ipxe_script: String,
    /// The install config (`install.ign`).
    pub install_ignition: String,
    /// The final config (`config.ign`).
    pub final_ignition: String,
    /// The install script the install config runs: what a machine's inspection live system
    /// runs when the machine is armed while it waits (an install from where it is).
    pub install_script: String,
    /// The boot attempt under way (from the store, after a restart).
    pub attempt: Option<Attempt>,
    /// Files only this machine may fetch, with its boot attempt's token, while its install
    /// runs and until it reports K3s ready (`/v1/file/<token>/<name>`): a cluster snapshot its
    /// first boot restores.
    pub files: Vec<PrivateFile>,
}

/// A file one machine fetches during its install, by name, from a path on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateFile {
    pub name: String,
    pub path: std::path::PathBuf,
}

/// One boot of an armed machine: made when its install script goes out (the iPXE script, or
/// the install script an inspected machine runs from its live system), with its own token in
/// place of the machine's in every URL of that boot. Its install config and its final config
/// are each served once. A reboot is a new attempt with a new token; the old one stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub token: String,
    /// When it began.
    pub at: Millis,
    /// The address its script went to.
    pub ip: Option<Ipv4Addr>,
    /// The install config went out in full (to `ip`, at that time).
    #[serde(default)]
    pub install_served: Option<Served>,
    /// The final config went out in full.
    #[serde(default)]
    pub final_served: Option<Served>,
}

/// A config that went out: to whom, when, and at which stage of the machine. Until the machine
/// reports a stage after that one, the same machine at the same address may fetch it again (a
/// transfer cut halfway is retried); anyone else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub to: Ipv4Addr,
    pub at: Millis,
    /// None: saved by an earlier version (no retry then).
    #[serde(default)]
    pub stage: Option<Stage>,
}

/// A machine to inspect before its install: at its next network boot it gets the live system
/// with an inventory-only config (which posts its hardware, then keeps asking), instead of its
/// install. Made by the caller, like [`MachineSpec`].
#[derive(Debug, Clone)]
pub struct InspectSpec {
    pub mac: Mac,
    /// Its node when it is planned; none for a machine the plan does not have.
    pub node: Option<String>,
    /// The inspection's token: in its Ignition, inventory and next-step URLs.
    pub token: String,
    /// The machine's iPXE script while it is inspected.
    pub ipxe_script: String,
    /// The live system's Ignition config.
    pub ignition: String,
}

/// A planned machine's state as it must survive a restart: saved through
/// [`Booter::save`](crate::Booter::save) before the answer that depends on it goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRecord {
    pub mac: Mac,
    pub node: String,
    pub token: String,
    pub stage: Stage,
    pub history: Vec<HistoryEntry>,
    pub ip: Option<Ipv4Addr>,
    pub attempt: Option<Attempt>,
    pub at: Millis,
}

/// A machine that network-booted without being in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrangerRecord {
    pub mac: Mac,
    pub firmware: Option<String>,
    pub vendor_class: Option<String>,
    pub at: Millis,
}

/// A machine as the admin API and the app show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
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
    /// The machine is to be inspected (or is being inspected) before its install.
    #[serde(default)]
    pub inspecting: bool,
}

/// What happened, for the app's live view and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Event {
    #[ts(type = "number")]
    pub at: Millis,
    pub mac: String,
    pub node: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[ts(export)]
pub enum EventKind {
    /// A planned machine reached a stage.
    Stage {
        stage: Stage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A request about a machine was refused; see [`Alert`].
    Alert { alert: Alert, message: String, from: Option<String> },
    /// Why a machine seems stuck; see [`Diagnosis`].
    Diagnosis { diagnosis: Diagnosis, message: String },
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

impl EventKind {
    /// The event a history entry makes.
    pub fn from_history(entry: &HistoryEntry) -> EventKind {
        match entry.clone() {
            HistoryEntry::Stage { stage, detail, .. } => EventKind::Stage { stage, detail },
            HistoryEntry::Alert { alert, message, from, .. } => EventKind::Alert { alert, message, from },
            HistoryEntry::Diagnosis { diagnosis, message, .. } => EventKind::Diagnosis { diagnosis, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_round_trip_and_match_serde() {
        for st in Stage::ALL {
            assert_eq!(Stage::parse(st.as_str()), Some(st));
            assert_eq!(serde_json::to_value(st).expect("json"), serde_json::Value::String(st.as_str().into()));
        }
        assert_eq!(Stage::parse("rebooting"), None);
        let reported: Vec<&str> = Stage::ALL.into_iter().filter(|s| s.is_reported()).map(Stage::as_str).collect();
        assert_eq!(reported, ["installing", "installed", "booted", "k3s-ready", "failed"]);
    }

    #[test]
    fn history_entries_are_tagged() {
        let entry = HistoryEntry::stage(5, Stage::Kernel, Some("flatcar_production_pxe.vmlinuz".into()));
        let json = serde_json::to_value(&entry).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"kind": "stage", "at": 5, "stage": "kernel", "detail": "flatcar_production_pxe.vmlinuz"})
        );
        let alert = HistoryEntry::Alert { at: 6, alert: Alert::SecondAddress, message: "m".into(), from: None };
        let back: HistoryEntry = serde_json::from_value(serde_json::to_value(&alert).expect("json")).expect("back");
        assert_eq!(back, alert);
        assert_eq!((back.at(), back.reached()), (6, None));
    }

    /// Writes the stage list the UI shows (`ui/src/lib/ipc/bindings/stages.ts`) next to the
    /// generated types, so that the UI never keeps a copy of its own. CI fails when it is stale.
    #[test]
    fn export_the_stage_list() {
        let Ok(dir) = std::env::var("TS_RS_EXPORT_DIR") else { return };
        // `.cargo/config.toml` makes it absolute; a relative one is the workspace's.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir);
        let list: Vec<String> = Stage::ALL.iter().map(|s| format!("  \"{}\",", s.as_str())).collect();
        let text = format!(
            "// Generated from flatlab_bootd::Stage::ALL by `cargo test` (crates/bootd/src/stage.rs). Do not edit.\nimport type {{ Stage }} from \"./Stage\";\n\n/** Every stage, in the order a machine goes through them (`failed` last). */\nexport const STAGES: readonly Stage[] = [\n{}\n];\n",
            list.join("\n")
        );
        std::fs::create_dir_all(&dir).expect("bindings folder");
        std::fs::write(dir.join("stages.ts"), text).expect("write stages.ts");
    }
}
