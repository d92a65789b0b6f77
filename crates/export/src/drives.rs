//! Which drives could take a bundle, mounting one, and ejecting one safely: through UDisks2 when
//! the system bus has it (what desktops use: no root needed, drives mounted where the file
//! manager mounts them), else from `/proc/mounts` and `/sys` with `umount`. The fallback is
//! quiet: why UDisks2 was not used is logged at debug level only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use ts_rs::TS;

use crate::udisks::Udisks2;
use crate::{Error, Result, io};

/// A drive that could take a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Drive {
    /// Such as `/dev/sdb1`.
    pub device: String,
    /// Where it is mounted; empty when it is not (see `mounted`).
    pub mountpoint: String,
    pub filesystem: String,
    /// The drive is marked removable (by UDisks2, or the kernel's `/sys/block/<disk>/removable`).
    pub removable: bool,
    #[ts(type = "number")]
    pub size_bytes: u64,
    /// The filesystem's label, such as `USBSTICK`.
    pub label: Option<String>,
    /// What the drive is, for people: vendor and model (`SanDisk Ultra`), or the image file
    /// behind a loop device.
    pub model: Option<String>,
    pub mounted: bool,
    /// Where this came from: UDisks2 lists unmounted drives too; sysfs only mounted ones.
    pub source: DriveSource,
}

/// Who was asked about drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum DriveSource {
    /// The UDisks2 daemon on the system bus.
    Udisks2,
    /// `/proc/mounts` and `/sys/block`, when UDisks2 is not there.
    Sysfs,
}

/// What [`eject_drive`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Ejection {
    /// The device, such as `/dev/sdb1` (the mount's source when UDisks2 was not used).
    pub device: String,
    /// The mount points that were unmounted: the drive's, and those of its other partitions.
    pub unmounted: Vec<String>,
    pub action: EjectAction,
    pub source: DriveSource,
    /// Something the user should know, such as why the drive was not powered off.
    pub note: Option<String>,
}

/// What happened to the drive once its filesystems were unmounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EjectAction {
    /// Powered off (USB drives): its light goes out, it can be pulled.
    PoweredOff,
    /// Its media was ejected (card readers, optical drives).
    MediaEjected,
    /// A loop device was detached from its disk image, which is now complete.
    LoopDetached,
    /// Only unmounted: safe to remove, but the drive stays powered.
    UnmountedOnly,
}

impl fmt::Display for Ejection {
    /// One line for people: `unmounted /media/me/STICK and powered off /dev/sdb1: safe to remove`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unmounted = if self.unmounted.is_empty() {
            format!("{} was not mounted", self.device)
        } else {
            format!("unmounted {}", self.unmounted.join(", "))
        };
        let then = match self.action {
            EjectAction::PoweredOff => format!(" and powered off the drive of {}", self.device),
            EjectAction::MediaEjected => format!(" and ejected the media of {}", self.device),
            EjectAction::LoopDetached => format!(" and detached {} from its image", self.device),
            EjectAction::UnmountedOnly => String::new(),
        };
        write!(f, "{unmounted}{then}: safe to remove")?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// Drives that could take a bundle: UDisks2's removable drives and disk images, mounted or not,
/// plus mounted FAT filesystems it does not know (FUSE mounts of an image, as with `fusefat`).
/// Without UDisks2: mounted filesystems on removable disks and FAT filesystems, from
/// `/proc/mounts` and `/sys`.
pub async fn list_drives() -> Vec<Drive> {
    let mut drives = match Udisks2::system().await {
        Ok(u) => u.drives().await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "listing drives through UDisks2 failed; using /proc/mounts and /sys");
            Vec::new()
        }),
        Err(e) => {
            tracing::debug!(reason = %e, "UDisks2 is not available; listing drives from /proc/mounts and /sys");
            Vec::new()
        }
    };
    // Only what UDisks2 did not list: several FUSE mounts share the device name `fusefat`.
    let others: Vec<Drive> = sysfs_drives()
        .into_iter()
        .filter(|d| !drives.iter().any(|u| u.device == d.device || (u.mounted && u.mountpoint == d.mountpoint)))
        .collect();
    drives.extend(others);
    drives
}

/// The mount point of `device` (such as `/dev/sdb1`, or a `/dev/disk/by-label/...` link), mounted
/// through UDisks2 first when it is not mounted. Without UDisks2 the device must be mounted
/// already ([`Error::NotMounted`] says so).
pub async fn mount_drive(device: &Path) -> Result<PathBuf> {
    match Udisks2::system().await {
        Ok(u) => match u.mount(device).await {
            Err(Error::UnknownDevice { .. } | Error::Udisks2Unavailable { .. }) => {
                tracing::debug!(device = %device.display(), "UDisks2 does not know the device; looking in /proc/mounts");
            }
            other => return other,
        },
        Err(e) => tracing::debug!(reason = %e, "UDisks2 is not available; looking in /proc/mounts"),
    }
    mountpoint_of(device)
}

/// Ejects a drive safely, named by its device or a mount point: unmounts it (and the drive's
/// other mounted partitions), then powers the drive off or ejects its media when it can.
/// Without UDisks2 it is unmounted with `umount` (root, or an `fstab` entry allowing users).
pub async fn eject_drive(target: &Path) -> Result<Ejection> {
    let unavailable = match Udisks2::system().await {
        Ok(u) => match u.eject(target).await {
            Err(Error::UnknownDevice { .. }) => None,
            Err(Error::Udisks2Unavailable { reason }) => Some(reason),
            other => return other,
        },
        Err(Error::Udisks2Unavailable { reason }) => Some(reason),
        Err(e) => return Err(e),
    };
    if let Some(reason) = &unavailable {
        tracing::debug!(%reason, "UDisks2 is not available; unmounting with umount");
    }
    let mut ejection = unmount_fallback(target)?;
    if unavailable.is_some() {
        ejection.note = Some("UDisks2 is not running, so the drive was only unmounted, not powered off".into());
    }
    Ok(ejection)
}

/// Unmounts every mount of `target` (a device or a mount point) found in `/proc/mounts`.
fn unmount_fallback(target: &Path) -> Result<Ejection> {
    let canonical = target.canonicalize().unwrap_or_else(|_| target.to_owned());
    let mounts = read_mounts()?;
    let hits: Vec<&Mount> = mounts
        .iter()
        .filter(|m| {
            let source = Path::new(&m.source);
            let source_canonical = source.canonicalize().unwrap_or_else(|_| source.to_owned());
            [Path::new(&m.mountpoint), source, &source_canonical].iter().any(|p| *p == target || *p == canonical)
        })
        .collect();
    if hits.is_empty() {
        return Err(Error::NotMounted { path: target.to_owned() });
    }
    // Only what the list shows: never `/home` on the internal disk.
    let candidates = sysfs_drives();
    if !hits.iter().all(|m| candidates.iter().any(|d| d.mountpoint == m.mountpoint)) {
        return Err(Error::NotRemovable { path: target.to_owned() });
    }
    let first = hits[0];
    let device = first.source.clone();
    let mut unmounted = Vec::new();
    // Innermost first, should anything be mounted inside the drive.
    for m in hits.iter().rev() {
        unmount(&m.mountpoint, m.fs.starts_with("fuse"))?;
        unmounted.push(m.mountpoint.clone());
    }
    unmounted.reverse();
    Ok(Ejection { device, unmounted, action: EjectAction::UnmountedOnly, source: DriveSource::Sysfs, note: None })
}

fn unmount(mountpoint: &str, fuse: bool) -> Result<()> {
    let run = |program: &str, args: &[&str]| Command::new(program).args(args).arg(mountpoint).output();
    let first = run("umount", &[]);
    let out = match first {
        Ok(o) if !o.status.success() && fuse => run("fusermount", &["-u"]).unwrap_or(o),
        Err(_) if fuse => run("fusermount", &["-u"]).map_err(io(mountpoint))?,
        other => other.map_err(io(mountpoint))?,
    };
    if out.status.success() {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("umount failed").trim().to_owned();
    Err(Error::Unmount { path: PathBuf::from(mountpoint), message })
}

/// One line of `/proc/mounts`.
struct Mount {
    source: String,
    mountpoint: String,
    fs: String,
}

fn read_mounts() -> Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/mounts").map_err(io("/proc/mounts"))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (source, mountpoint, fs) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Mount { source: unescape(source), mountpoint: unescape(mountpoint), fs: fs.to_owned() })
        })
        .collect())
}

/// `/proc/mounts` writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounted filesystems on removable block devices (from `/proc/mounts` and `/sys/block`), plus
/// FUSE-mounted FAT filesystems, which are how USB sticks are often mounted without privileges.
fn sysfs_drives() -> Vec<Drive> {
    let mut out = Vec::new();
    for m in read_mounts().unwrap_or_default() {
        let (removable, size_bytes, model) = match m.source.strip_prefix("/dev/") {
            Some(name) => block_info(name),
            None => (false, 0, None),
        };
        let fat = matches!(m.fs.as_str(), "vfat" | "exfat" | "fuseblk" | "fuse.fusefat" | "msdos");
        if removable || (fat && !m.mountpoint.starts_with("/boot")) {
            out.push(Drive {
                label: label_of(&m.source),
                device: m.source,
                mountpoint: m.mountpoint,
                filesystem: m.fs,
                removable,
                size_bytes,
                model,
                mounted: true,
                source: DriveSource::Sysfs,
            });
        }
    }
    out
}

/// (removable, size, vendor and model) of a partition or disk, from sysfs.
fn block_info(name: &str) -> (bool, u64, Option<String>) {
    let disk: String = {
        // sdb1 -> sdb, mmcblk0p1 -> mmcblk0, nvme0n1p1 -> nvme0n1
        let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
        if (name.starts_with("mmcblk") || name.starts_with("nvme")) && trimmed.ends_with('p') {
            trimmed.trim_end_matches('p').to_owned()
        } else if name.starts_with("sd") || name.starts_with("vd") {
            trimmed.to_owned()
        } else {
            name.to_owned()
        }
    };
    let read = |path: String| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    let removable = read(format!("/sys/block/{disk}/removable")) == "1";
    let sectors: u64 = read(format!("/sys/class/block/{name}/size")).parse().unwrap_or(0);
    let model = format!(
        "{} {}",
        read(format!("/sys/block/{disk}/device/vendor")),
        read(format!("/sys/block/{disk}/device/model"))
    );
    (removable, sectors * 512, Some(model.trim().to_owned()).filter(|m| !m.is_empty()))
}

/// The filesystem label of a device, from udev's `/dev/disk/by-label` links (when udev runs).
fn label_of(device: &str) -> Option<String> {
    let wanted = Path::new(device).canonicalize().ok()?;
    std::fs::read_dir("/dev/disk/by-label").ok()?.flatten().find_map(|entry| {
        (entry.path().canonicalize().ok()? == wanted).then(|| udev_unescape(&entry.file_name().to_string_lossy()))
    })
}

/// udev writes unsafe characters of a label as `\x20`.
fn udev_unescape(name: &str) -> String {
    let mut out = Vec::new();
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], bytes.get(i + 1), hex) {
            (b'\\', Some(b'x'), Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mountpoint of a device, from `/proc/mounts`.
pub fn mountpoint_of(device: &Path) -> Result<PathBuf> {
    let wanted = device.canonicalize().unwrap_or_else(|_| device.to_owned());
    for m in read_mounts()? {
        let source = Path::new(&m.source).canonicalize().unwrap_or_else(|_| PathBuf::from(&m.source));
        if source == wanted {
            return Ok(PathBuf::from(m.mountpoint));
        }
    }
    Err(Error::NotMounted { path: device.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_mounts_and_udev_escapes_are_undone() {
        assert_eq!(unescape(r"/media/me/MY\040STICK"), "/media/me/MY STICK");
        assert_eq!(unescape(r"a\134b\011c"), "a\\b\tc");
        assert_eq!(unescape(r"trailing\04"), r"trailing\04");
        assert_eq!(udev_unescape(r"MY\x20STICK"), "MY STICK");
        assert_eq!(udev_unescape(r"odd\x2"), r"odd\x2");
    }

    #[test]
    fn an_ejection_reads_as_one_line() {
        let e = Ejection {
            device: "/dev/sdb1".into(),
            unmounted: vec!["/media/me/STICK".into()],
            action: EjectAction::PoweredOff,
            source: DriveSource::Udisks2,
            note: None,
        };
        assert_eq!(e.to_string(), "unmounted /media/me/STICK and powered off the drive of /dev/sdb1: safe to remove");
    }
}
