//! The plan as the user writes it: plan file format version 1.
//!
//! Fields hold what was written, mostly as text, so that a half-finished plan (a node dragged onto
//! the canvas without a MAC yet) can still be stored, shown and validated field by field.
//! [`crate::validate`] turns a plan into a [`crate::ValidatedPlan`] with parsed, typed values.
//!
//! The field names are a public contract (`docs/plan-format.md`): add optional fields, never rename.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The plan file format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A cluster plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Plan {
    /// Plan file format version; always [`FORMAT_VERSION`] when written by this build.
    #[serde(default)]
    pub version: u32,
    /// The plan's name, an RFC 1123 label such as `edge-lab`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub os: Os,
    #[serde(default)]
    pub kubernetes: Kubernetes,
    #[serde(default, skip_serializing_if = "Network::is_empty")]
    pub network: Network,
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switches: Vec<Switch>,
    #[serde(default)]
    pub nodes: Vec<Node>,
}

/// Which Flatcar Container Linux the nodes run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Os {
    #[serde(default)]
    pub channel: Channel,
    /// A release such as `4593.2.5`, or `current`.
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub arch: Arch,
    /// The Ignition spec version of the rendered configs: `3.3.0` (default, read by every
    /// supported Flatcar) or `3.4.0` (Flatcar releases from 2024 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub ignition_version: Option<String>,
    /// When nodes may reboot into a downloaded Flatcar update (kured's schedule); any time
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reboot_window: Option<RebootWindow>,
}

impl Default for Os {
    fn default() -> Self {
        Self {
            channel: Channel::Stable,
            version: String::new(),
            arch: Arch::Amd64,
            ignition_version: None,
            reboot_window: None,
        }
    }
}

/// When nodes may reboot for updates, in kured's own terms (`--reboot-days`, `--start-time`,
/// `--end-time`, `--time-zone`): one node at a time, on these days, between these times.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RebootWindow {
    /// Days such as `mon`, `tue` (or `monday`); every day when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Start time of day, such as `02:00`.
    #[serde(default)]
    pub start: String,
    /// End time of day, such as `05:00` (may be past midnight: `22:00` to `04:00`).
    #[serde(default)]
    pub end: String,
    /// The time zone of `start` and `end`, such as `Europe/Berlin`; default `UTC`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_zone: String,
}

/// A Flatcar release channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Channel {
    #[default]
    Stable,
    Beta,
    Alpha,
    Lts,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Beta => "beta",
            Channel::Alpha => "alpha",
            Channel::Lts => "lts",
        }
    }
}

/// A CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Arch {
    #[default]
    Amd64,
    Arm64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Flatcar's name for the board, as in release URLs (`amd64-usr`).
    pub fn board(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64-usr",
            Arch::Arm64 => "arm64-usr",
        }
    }
}

/// The K3s cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Kubernetes {
    /// A K3s release such as `v1.32.2+k3s1`.
    #[serde(default)]
    pub k3s_version: String,
    /// Where nodes reach the Kubernetes API: a virtual IP or DNS name. Default: the first server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub api_endpoint: Option<String>,
    /// Packaged K3s components to leave out, such as `traefik`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<String>,
    /// The SHA-256 of the K3s binary for the plan's architecture (from the release's
    /// `sha256sum-<arch>.txt`). Pins the download; without it, nodes check the binary against the
    /// checksum file published next to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub k3s_sha256: Option<String>,
    /// The etcd snapshots every server takes on a schedule. On when not given: every 6 hours,
    /// the newest 10 kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub snapshots: Option<Snapshots>,
}

impl Kubernetes {
    /// The snapshot settings in effect, with the defaults filled in.
    pub fn snapshot_settings(&self) -> SnapshotSettings {
        let s = self.snapshots.clone().unwrap_or_default();
        SnapshotSettings {
            enabled: s.enabled.unwrap_or(true),
            schedule: s.schedule.map(|c| c.trim().to_owned()).unwrap_or_else(|| DEFAULT_SNAPSHOT_SCHEDULE.to_owned()),
            retention: s.retention.unwrap_or(DEFAULT_SNAPSHOT_RETENTION),
        }
    }
}

/// Every 6 hours, on the hour.
pub const DEFAULT_SNAPSHOT_SCHEDULE: &str = "0 */6 * * *";
/// Scheduled snapshots each server keeps.
pub const DEFAULT_SNAPSHOT_RETENTION: u32 = 10;

/// `kubernetes.snapshots`: K3s's scheduled etcd snapshots on every server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Snapshots {
    /// When: a cron expression of five fields (minute hour day month weekday), K3s's
    /// `etcd-snapshot-schedule-cron`. Default: every 6 hours, on the hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub schedule: Option<String>,
    /// How many scheduled snapshots each server keeps, K3s's `etcd-snapshot-retention`.
    /// Default 10. On-demand snapshots (Flatlab's, before an upgrade) are not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub retention: Option<u32>,
    /// `false` turns scheduled snapshots off (K3s's `etcd-disable-snapshots`). Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub enabled: Option<bool>,
}

/// The snapshot settings in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSettings {
    pub enabled: bool,
    pub schedule: String,
    pub retention: u32,
}

/// The LAN the nodes live on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Network {
    /// The IPv4 subnet, such as `10.0.0.0/24`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// The router's address in the subnet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// DNS servers for nodes with a static address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// Time servers for the nodes (host names or addresses), for sites whose nodes cannot reach
    /// the public NTP pool; Flatcar's defaults when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ntp: Vec<String>,
}

impl Network {
    pub fn is_empty(&self) -> bool {
        self.subnet.is_empty() && self.gateway.is_empty() && self.dns.is_empty() && self.ntp.is_empty()
    }
}

/// A network switch, drawn on the canvas for the user's own overview.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Switch {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub position: Option<Position>,
}

/// A machine in the cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Node {
    /// Becomes the hostname and the Kubernetes node name.
    #[serde(default)]
    pub name: String,
    /// The MAC address of the NIC the machine network-boots from, such as `52:54:00:00:00:01`.
    #[serde(default)]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub role: Option<Role>,
    /// The whole disk Flatcar is installed to, such as `/dev/sda`.
    #[serde(default)]
    pub install_disk: String,
    /// A static address with prefix length, such as `10.0.0.11/24`; none means DHCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub address: Option<String>,
    /// The switch the node hangs off, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub switch: Option<String>,
    /// Where the node sits on the canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub position: Option<Position>,
}

/// A node's K3s role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Role {
    /// Runs the control plane and embedded etcd.
    Server,
    /// Runs workloads only.
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }
}

/// A point on the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

impl Plan {
    /// The stable path segment of node `index`, as used in finding paths: `nodes[cp1]`.
    ///
    /// Nodes are addressed by name so that paths survive reordering; a node without a name yet
    /// is addressed by its position, `nodes[2]`.
    pub fn node_path(&self, index: usize) -> String {
        node_path(self.nodes.get(index).map(|n| n.name.as_str()), index)
    }

    /// The stable path segment of switch `index`: `switches[rack-switch]`.
    pub fn switch_path(&self, index: usize) -> String {
        switch_path(self.switches.get(index).map(|s| s.name.as_str()), index)
    }
}

pub(crate) fn node_path(name: Option<&str>, index: usize) -> String {
    keyed_path("nodes", name, index)
}

pub(crate) fn switch_path(name: Option<&str>, index: usize) -> String {
    keyed_path("switches", name, index)
}

fn keyed_path(list: &str, name: Option<&str>, index: usize) -> String {
    match name {
        Some(n) if !n.trim().is_empty() => format!("{list}[{n}]"),
        _ => format!("{list}[{index}]"),
    }
}
