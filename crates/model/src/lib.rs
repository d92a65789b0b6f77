//! The Flatlab plan: its types, the plan file format (YAML, version 1) and validation.
//!
//! This crate owns what a cluster plan *is* and when it is acceptable. It does no IO and knows
//! nothing of storage, rendering or networking: callers hand it text or values and get back plans,
//! findings and, for a plan without errors, a [`ValidatedPlan`], the only input the renderer takes.

mod finding;
mod inventory;
mod mac;
mod parse;
mod plan;
mod validate;
mod version;

pub use finding::{Finding, Severity, Target, count};
pub use inventory::{
    Disk, FirmwareKind, Inventory, InventoryError, MAX_INVENTORY_BYTES, MIN_DISK_BYTES, MIN_MEMORY_BYTES, Nic,
    Partition, human_bytes,
};
pub use mac::{MacAddr, ParseMacError};
pub use parse::{ParseError, ParsedPlan, parse_plan, to_yaml};
pub use plan::{
    Arch, Channel, DEFAULT_SNAPSHOT_RETENTION, DEFAULT_SNAPSHOT_SCHEDULE, FORMAT_VERSION, Kubernetes, Network, Node,
    Os, Plan, Position, RebootWindow, Role, SnapshotSettings, Snapshots, Switch,
};
pub use validate::{
    DISABLABLE_COMPONENTS, IGNITION_VERSIONS, Report, ValidatedNode, ValidatedPlan, ValidatedRebootWindow, validate,
    validate_parsed,
};
pub use version::K3sVersion;

/// The demo plan a new user sees on first start.
pub const DEMO_PLAN: &str = include_str!("../../../assets/demo-plan.yaml");
