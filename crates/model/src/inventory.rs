//! A machine's hardware as its live system reports it (`POST /v1/inventory/<token>`), and the
//! rules that read it: which disk to install to, and what to warn about before an install.

use serde::{Deserialize, Serialize};

/// Memory below this cannot hold the Flatcar live system (it runs from RAM) and the image.
pub const MIN_MEMORY_BYTES: u64 = 3 * 1000 * 1000 * 1000;
/// A disk smaller than this cannot hold Flatcar's partitions with room for K3s.
pub const MIN_DISK_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// At most this many bytes of inventory are accepted from a machine.
pub const MAX_INVENTORY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "lowercase")]
pub enum FirmwareKind {
    Bios,
    Uefi,
}

/// What the live system found. Every field a machine may lack is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Inventory {
    pub firmware: FirmwareKind,
    /// DMI system vendor and product name, such as `Intel(R) Client Systems` / `NUC8i5BEH`.
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// Logical CPUs.
    pub cpus: u32,
    /// Installed memory (the memory blocks the kernel found), in bytes.
    #[ts(type = "number")]
    pub memory_bytes: u64,
    #[serde(default)]
    pub nics: Vec<Nic>,
    #[serde(default)]
    pub disks: Vec<Disk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Nic {
    pub name: String,
    pub mac: String,
    #[serde(default)]
    pub driver: Option<String>,
    /// Link speed in Mbit/s, when the link is up.
    #[serde(default)]
    pub speed_mbps: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Disk {
    /// The kernel's name, such as `nvme0n1`.
    pub name: String,
    /// Every `/dev/disk/by-id/` link to the whole disk.
    #[serde(default)]
    pub by_id: Vec<String>,
    #[ts(type = "number")]
    pub size_bytes: u64,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub rotational: bool,
    #[serde(default)]
    pub removable: bool,
    #[serde(default)]
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Partition {
    pub name: String,
    #[ts(type = "number")]
    pub size_bytes: u64,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

/// Why an inventory was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InventoryError {
    #[error("the inventory is larger than {MAX_INVENTORY_BYTES} bytes")]
    TooLarge,
    #[error("the inventory is not valid: {0}")]
    Invalid(String),
}

impl Inventory {
    /// Reads what a machine posted.
    pub fn parse(body: &[u8]) -> Result<Self, InventoryError> {
        if body.len() > MAX_INVENTORY_BYTES {
            return Err(InventoryError::TooLarge);
        }
        let inv: Inventory = serde_json::from_slice(body).map_err(|e| InventoryError::Invalid(e.to_string()))?;
        if inv.disks.len() > 64 || inv.nics.len() > 64 || inv.disks.iter().any(|d| d.partitions.len() > 128) {
            return Err(InventoryError::Invalid("more disks, NICs or partitions than a machine has".into()));
        }
        Ok(inv)
    }

    /// The disk to install to when the user has not chosen: the only non-removable disk.
    pub fn default_install_disk(&self) -> Option<&Disk> {
        let mut fixed = self.disks.iter().filter(|d| !d.removable);
        match (fixed.next(), fixed.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// The disk an `install_disk` path names: a `/dev/disk/by-id/` link or `/dev/<name>`.
    pub fn disk_for(&self, path: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.by_id.iter().any(|l| l == path) || path.strip_prefix("/dev/") == Some(&d.name))
    }

    /// What to tell the user before installing to `install_disk` (a path the plan holds).
    pub fn warnings(&self, install_disk: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        if self.memory_bytes < MIN_MEMORY_BYTES {
            out.push(format!(
                "{} of memory: the Flatcar live system runs from memory and needs about 3 GB",
                human_bytes(self.memory_bytes)
            ));
        }
        let disk = match install_disk {
            Some(path) => self.disk_for(path),
            None => self.default_install_disk(),
        };
        match (install_disk, disk) {
            (Some(path), None) => out.push(format!("this machine has no disk {path}")),
            (None, None) if self.disks.is_empty() => out.push("this machine reported no disk".into()),
            (None, None) => out.push("this machine has several disks: choose the install disk".into()),
            (_, Some(d)) => {
                if d.removable {
                    out.push(format!(
                        "{} is removable (a USB stick or card reader?): Flatcar belongs on a fixed disk",
                        d.describe()
                    ));
                }
                if d.size_bytes < MIN_DISK_BYTES {
                    out.push(format!(
                        "{} is {}: Flatcar needs at least 8 GiB",
                        d.describe(),
                        human_bytes(d.size_bytes)
                    ));
                }
                if !d.partitions.is_empty() {
                    out.push(format!("installing erases {}", d.describe_contents()));
                }
            }
        }
        out
    }
}

impl Disk {
    /// The path to store as the install disk: the model-and-serial link, else the `wwn-` one,
    /// else any other by-id link, else `/dev/<name>`. Stable across reboots and disk order.
    pub fn stable_path(&self) -> String {
        let links = || self.by_id.iter().filter(|l| !l.contains("-part"));
        let wwn =
            |l: &&String| l.rsplit('/').next().is_some_and(|n| n.starts_with("wwn-") || n.starts_with("nvme-eui."));
        links()
            .find(|l| !wwn(l))
            .or_else(|| links().find(wwn))
            .cloned()
            .unwrap_or_else(|| format!("/dev/{}", self.name))
    }

    /// `Samsung SSD 970 (nvme0n1, 500 GB)`.
    pub fn describe(&self) -> String {
        match &self.model {
            Some(m) => format!("{m} ({}, {})", self.name, human_bytes(self.size_bytes)),
            None => format!("{} ({})", self.name, human_bytes(self.size_bytes)),
        }
    }

    /// The disk and what is on it: `Samsung SSD 970 (nvme0n1, 500 GB) with 3 partitions: ...`.
    pub fn describe_contents(&self) -> String {
        let parts: Vec<String> = self
            .partitions
            .iter()
            .map(|p| {
                let what =
                    [p.label.as_deref(), p.fstype.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
                if what.is_empty() {
                    format!("{} {}", p.name, human_bytes(p.size_bytes))
                } else {
                    format!("{} {} {what}", p.name, human_bytes(p.size_bytes))
                }
            })
            .collect();
        match parts.len() {
            0 => self.describe(),
            1 => format!("{} with 1 partition: {}", self.describe(), parts[0]),
            n => format!("{} with {n} partitions: {}", self.describe(), parts.join(", ")),
        }
    }
}

/// Sizes as disk vendors print them (powers of 1000), with one decimal below 10.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, gib: u64, removable: bool) -> Disk {
        Disk {
            name: name.into(),
            by_id: vec![],
            size_bytes: gib * 1024 * 1024 * 1024,
            model: None,
            serial: None,
            rotational: false,
            removable,
            partitions: vec![],
        }
    }

    fn inventory(disks: Vec<Disk>) -> Inventory {
        Inventory {
            firmware: FirmwareKind::Uefi,
            vendor: None,
            product: None,
            cpu_model: None,
            cpus: 4,
            memory_bytes: 8 << 30,
            nics: vec![],
            disks,
        }
    }

    #[test]
    fn the_default_disk_is_the_only_fixed_one() {
        let usb = disk("sda", 32, true);
        let nvme = disk("nvme0n1", 500, false);
        assert_eq!(inventory(vec![usb.clone(), nvme.clone()]).default_install_disk(), Some(&nvme));
        assert_eq!(inventory(vec![usb.clone()]).default_install_disk(), None, "never a removable disk by default");
        let two = inventory(vec![nvme.clone(), disk("sdb", 1000, false)]);
        assert_eq!(two.default_install_disk(), None);
        assert_eq!(two.warnings(None), vec!["this machine has several disks: choose the install disk".to_owned()]);
    }

    #[test]
    fn the_stored_path_is_the_model_and_serial_link_else_wwn() {
        let mut d = disk("sda", 500, false);
        d.by_id = vec![
            "/dev/disk/by-id/wwn-0x5002538e40a1b2c3".into(),
            "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456A".into(),
            "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456A-part1".into(),
        ];
        assert_eq!(d.stable_path(), "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456A");
        d.by_id.retain(|l| l.contains("wwn-"));
        assert_eq!(d.stable_path(), "/dev/disk/by-id/wwn-0x5002538e40a1b2c3");
        d.by_id.clear();
        assert_eq!(d.stable_path(), "/dev/sda");
        let mut v = disk("vda", 2, false);
        v.by_id = vec!["/dev/disk/by-id/virtio-flatlab-cp1".into()];
        let inv = inventory(vec![v.clone()]);
        assert_eq!(inv.disk_for("/dev/disk/by-id/virtio-flatlab-cp1"), Some(&v));
        assert_eq!(inv.disk_for("/dev/vda"), Some(&v));
        assert_eq!(inv.disk_for("/dev/sda"), None);
    }

    #[test]
    fn warnings_name_memory_small_disks_and_what_an_install_erases() {
        let mut d = disk("nvme0n1", 4, false);
        d.model = Some("KINGSTON OM8PGP4".into());
        d.partitions = vec![
            Partition {
                name: "nvme0n1p1".into(),
                size_bytes: 100_000_000,
                fstype: Some("vfat".into()),
                label: Some("SYSTEM".into()),
            },
            Partition { name: "nvme0n1p2".into(), size_bytes: 3_900_000_000, fstype: Some("ntfs".into()), label: None },
        ];
        let mut inv = inventory(vec![d]);
        inv.memory_bytes = 2 << 30;
        let w = inv.warnings(None);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("2.1 GB of memory"), "{w:?}");
        assert!(w[1].contains("KINGSTON OM8PGP4 (nvme0n1, 4.3 GB) is 4.3 GB"), "{w:?}");
        assert_eq!(
            w[2],
            "installing erases KINGSTON OM8PGP4 (nvme0n1, 4.3 GB) with 2 partitions: nvme0n1p1 100 MB SYSTEM vfat, nvme0n1p2 3.9 GB ntfs"
        );
        inv.memory_bytes = 4 << 30;
        inv.disks[0].size_bytes = 256 << 30;
        inv.disks[0].partitions.clear();
        assert!(inv.warnings(None).is_empty());
        assert_eq!(inv.warnings(Some("/dev/sdb")), vec!["this machine has no disk /dev/sdb".to_owned()]);
        let mut stick = disk("sdb", 32, true);
        stick.model = Some("Ultra".into());
        inv.disks.push(stick);
        assert_eq!(
            inv.warnings(Some("/dev/sdb")),
            vec![
                "Ultra (sdb, 34 GB) is removable (a USB stick or card reader?): Flatcar belongs on a fixed disk"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn parsing_bounds_what_a_machine_may_send() {
        assert_eq!(Inventory::parse(&vec![b' '; MAX_INVENTORY_BYTES + 1]), Err(InventoryError::TooLarge));
        assert!(matches!(Inventory::parse(b"{}"), Err(InventoryError::Invalid(_))));
        let ok = br#"{"firmware":"bios","cpus":1,"memory_bytes":1073741824,"disks":[{"name":"vda","size_bytes":2147483648}]}"#;
        let inv = Inventory::parse(ok).expect("minimal inventory");
        assert_eq!(inv.disks[0].name, "vda");
        assert_eq!(human_bytes(1_073_741_824), "1.1 GB");
        assert_eq!(human_bytes(512), "512 B");
    }
}
