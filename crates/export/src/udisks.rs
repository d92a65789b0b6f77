//! A small UDisks2 client over the system bus: the drives, mounting one, ejecting one safely.
//!
//! Everything is read with one `GetManagedObjects` call on `/org/freedesktop/UDisks2` and decoded
//! value by value, so a property of an unexpected type is skipped instead of failing the list.
//! Every call has a timeout: a hung bus costs [`BUS_TIMEOUT`], never the whole program.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zbus::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::drives::{Drive, DriveSource, EjectAction, Ejection};
use crate::{Error, Result};

/// How long connecting and listing may take before UDisks2 counts as absent.
pub const BUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a mount, unmount or power-off may take once UDisks2 has answered: unmounting waits
/// for the kernel to write back what it still holds, and a desktop may ask for a password.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

const SERVICE: &str = "org.freedesktop.UDisks2";
const ROOT: &str = "/org/freedesktop/UDisks2";
const BLOCK: &str = "org.freedesktop.UDisks2.Block";
const FILESYSTEM: &str = "org.freedesktop.UDisks2.Filesystem";
const DRIVE: &str = "org.freedesktop.UDisks2.Drive";
const LOOP: &str = "org.freedesktop.UDisks2.Loop";

/// Filesystems no bundle can be written to, left out of the list.
const READ_ONLY_FILESYSTEMS: &[&str] = &["iso9660", "udf", "squashfs", "erofs", "crypto_LUKS", "swap"];

type Props = HashMap<String, OwnedValue>;
type Objects = HashMap<OwnedObjectPath, HashMap<String, Props>>;

/// A connection to the UDisks2 daemon.
#[derive(Debug, Clone)]
pub struct Udisks2 {
    conn: Connection,
}

impl Udisks2 {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket) and checks
    /// that UDisks2 answers there. [`Error::Udisks2Unavailable`] when it does not.
    pub async fn system() -> Result<Udisks2> {
        Self::connect(zbus::connection::Builder::system()).await
    }

    /// Like [`Udisks2::system`], on the bus at a D-Bus address such as `unix:path=/run/x/bus`.
    pub async fn at(address: &str) -> Result<Udisks2> {
        Self::connect(zbus::connection::Builder::address(address)).await
    }

    async fn connect(builder: zbus::Result<zbus::connection::Builder<'_>>) -> Result<Udisks2> {
        let unavailable = |e: zbus::Error| Error::Udisks2Unavailable { reason: e.to_string() };
        let conn = within(BUS_TIMEOUT, async { builder?.build().await })
            .await
            .map_err(|_| Error::Udisks2Unavailable { reason: "the system bus did not answer".into() })?
            .map_err(unavailable)?;
        let udisks = Udisks2 { conn };
        // One listing up front, so that "connected" means "UDisks2 is there", not just the bus.
        udisks.objects().await?;
        Ok(udisks)
    }

    async fn objects(&self) -> Result<Objects> {
        let call = self.conn.call_method(
            Some(SERVICE),
            ROOT,
            Some("org.freedesktop.DBus.ObjectManager"),
            "GetManagedObjects",
            &(),
        );
        let reply = within(BUS_TIMEOUT, call)
            .await
            .map_err(|_| Error::Udisks2Unavailable { reason: "UDisks2 did not answer".into() })?
            .map_err(|e| Error::Udisks2Unavailable { reason: e.to_string() })?;
        reply.body().deserialize::<Objects>().map_err(|e| Error::Udisks2Unavailable {
            reason: format!("GetManagedObjects answered with unexpected data: {e}"),
        })
    }

    /// Filesystems on removable drives (removable, removable media, or on USB), and on loop devices
    /// (disk images), leaving out those UDisks2 hides and read-only kinds (ISO 9660, squashfs).
    pub async fn drives(&self) -> Result<Vec<Drive>> {
        let objects = self.objects().await?;
        let mut out: Vec<Drive> = objects
            .iter()
            .filter_map(|(path, ifaces)| Block::parse(path, ifaces))
            .filter_map(|b| {
                let drive = b.drive.as_deref().and_then(|d| DriveInfo::find(&objects, d));
                (b.is_removable(drive.as_ref())
                    && b.filesystem
                    && !b.hint_ignore
                    && !READ_ONLY_FILESYSTEMS.contains(&b.fs_type.as_str()))
                .then(|| b.to_drive(drive.as_ref()))
            })
            .collect();
        out.sort_by(|a, b| a.device.cmp(&b.device));
        Ok(out)
    }

    /// The mount point of `device` (a device such as `/dev/sdb1` or one of its `/dev/disk/...`
    /// links), mounting it first when it is not mounted. Mounted where UDisks2 mounts drives
    /// for the calling user (`/media/<user>/<label>`).
    pub async fn mount(&self, device: &Path) -> Result<PathBuf> {
        let objects = self.objects().await?;
        let block = find(&objects, device).ok_or_else(|| Error::UnknownDevice { path: device.to_owned() })?;
        if !block.filesystem {
            return Err(Error::NoFilesystem { path: device.to_owned() });
        }
        if let Some(mp) = block.mountpoints.first() {
            return Ok(PathBuf::from(mp));
        }
        let action = format!("mounting {}", block.device);
        let reply = self.act(&action, &block.path, FILESYSTEM, "Mount").await?;
        let mountpoint: String = reply
            .body()
            .deserialize()
            .map_err(|e| Error::Udisks2 { action: action.clone(), message: format!("unexpected answer: {e}") })?;
        tracing::debug!(device = %block.device, mountpoint = %mountpoint, "mounted through UDisks2");
        Ok(PathBuf::from(mountpoint))
    }

    /// Unmounts the filesystem at `target` (a device or a mount point) and every other mounted
    /// filesystem of the same drive, then powers the drive off if it can be, else ejects its
    /// media if it can be; a loop device is detached from its image file instead.
    pub async fn eject(&self, target: &Path) -> Result<Ejection> {
        let objects = self.objects().await?;
        let block = find(&objects, target).ok_or_else(|| Error::UnknownDevice { path: target.to_owned() })?;
        let drive = block.drive.as_deref().and_then(|d| DriveInfo::find(&objects, d));
        // Never the internal disk: its siblings would be unmounted and the disk powered off.
        if !block.is_removable(drive.as_ref()) {
            return Err(Error::NotRemovable { path: target.to_owned() });
        }
        // The target first, then its siblings on the same drive: powering off cuts them all.
        let mut to_unmount = vec![block.clone()];
        if let Some(drive) = &block.drive {
            let mut siblings: Vec<Block> = objects
                .iter()
                .filter_map(|(p, i)| Block::parse(p, i))
                .filter(|b| b.drive.as_ref() == Some(drive) && b.path != block.path)
                .collect();
            siblings.sort_by(|a, b| a.device.cmp(&b.device));
            to_unmount.extend(siblings);
        }
        let mut unmounted = Vec::new();
        for b in to_unmount.iter().filter(|b| b.filesystem && !b.mountpoints.is_empty()) {
            self.act(&format!("unmounting {}", b.device), &b.path, FILESYSTEM, "Unmount").await?;
            unmounted.extend(b.mountpoints.iter().cloned());
        }
        let mut note = None;
        let action = match (&drive, &block.backing_file) {
            (Some(d), _) if d.can_power_off || d.ejectable => {
                let (method, done) = if d.can_power_off {
                    ("PowerOff", EjectAction::PoweredOff)
                } else {
                    ("Eject", EjectAction::MediaEjected)
                };
                let what = format!("{} {}", if d.can_power_off { "powering off" } else { "ejecting" }, d.name());
                match self.act(&what, &d.path, DRIVE, method).await {
                    Ok(_) => done,
                    Err(e) => {
                        // The filesystems are unmounted and flushed: removing the drive is safe.
                        note = Some(format!("{e}; the drive is unmounted, so removing it is safe anyway"));
                        EjectAction::UnmountedOnly
                    }
                }
            }
            (None, Some(_)) => {
                self.act(&format!("detaching {}", block.device), &block.path, LOOP, "Delete").await?;
                EjectAction::LoopDetached
            }
            _ => EjectAction::UnmountedOnly,
        };
        Ok(Ejection { device: block.device, unmounted, action, source: DriveSource::Udisks2, note })
    }

    /// Calls a UDisks2 method that takes only an options dictionary (`a{sv}`), with none.
    async fn act(&self, action: &str, path: &str, iface: &str, method: &str) -> Result<zbus::Message> {
        let options: (HashMap<&str, Value<'_>>,) = (HashMap::new(),);
        let call = self.conn.call_method(Some(SERVICE), path, Some(iface), method, &options);
        match within(ACTION_TIMEOUT, call).await {
            Err(_) => Err(Error::Udisks2 {
                action: action.to_owned(),
                message: format!("no answer in {} s", ACTION_TIMEOUT.as_secs()),
            }),
            Ok(Err(e)) => Err(Error::Udisks2 { action: action.to_owned(), message: method_error(&e) }),
            Ok(Ok(reply)) => Ok(reply),
        }
    }
}

async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> std::result::Result<T, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, f).await
}

/// The text of a D-Bus error reply, without the error's name (UDisks2 messages are sentences).
fn method_error(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, Some(text), _) if !text.is_empty() => {
            if name.as_str().contains("NotAuthorized") {
                format!("not authorized ({text})")
            } else {
                text.trim_end_matches('.').to_owned()
            }
        }
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        other => other.to_string(),
    }
}

/// What one block object says about itself.
#[derive(Debug, Clone)]
struct Block {
    path: String,
    device: String,
    preferred: String,
    symlinks: Vec<String>,
    label: String,
    fs_type: String,
    size: u64,
    hint_ignore: bool,
    /// The drive object, `None` for `/` (loop devices, RAID, ...).
    drive: Option<String>,
    filesystem: bool,
    mountpoints: Vec<String>,
    backing_file: Option<String>,
}

impl Block {
    fn parse(path: &OwnedObjectPath, ifaces: &HashMap<String, Props>) -> Option<Block> {
        let block = ifaces.get(BLOCK)?;
        let device = block.get("Device").and_then(bytestring).filter(|d| !d.is_empty())?;
        let fs = ifaces.get(FILESYSTEM);
        Some(Block {
            path: path.as_str().to_owned(),
            preferred: block.get("PreferredDevice").and_then(bytestring).unwrap_or_default(),
            symlinks: block.get("Symlinks").map(bytestrings).unwrap_or_default(),
            label: block.get("IdLabel").and_then(string).unwrap_or_default(),
            fs_type: block.get("IdType").and_then(string).unwrap_or_default(),
            size: block.get("Size").and_then(number).unwrap_or(0),
            hint_ignore: block.get("HintIgnore").and_then(boolean).unwrap_or(false),
            drive: block.get("Drive").and_then(string).filter(|d| d != "/"),
            filesystem: fs.is_some() && block.get("IdUsage").and_then(string).is_none_or(|usage| usage == "filesystem"),
            mountpoints: fs.and_then(|f| f.get("MountPoints")).map(bytestrings).unwrap_or_default(),
            backing_file: ifaces.get(LOOP).map(|l| l.get("BackingFile").and_then(bytestring).unwrap_or_default()),
            device,
        })
    }

    fn to_drive(&self, drive: Option<&DriveInfo>) -> Drive {
        let model = match (drive, &self.backing_file) {
            (Some(d), _) => Some(d.name()).filter(|n| !n.is_empty()),
            (None, Some(file)) if !file.is_empty() => Some(format!("disk image {file}")),
            _ => None,
        };
        Drive {
            device: self.device.clone(),
            mountpoint: self.mountpoints.first().cloned().unwrap_or_default(),
            filesystem: self.fs_type.clone(),
            removable: drive.is_some_and(|d| d.removable || d.media_removable),
            size_bytes: self.size,
            label: Some(self.label.clone()).filter(|l| !l.is_empty()),
            model,
            mounted: !self.mountpoints.is_empty(),
            source: DriveSource::Udisks2,
        }
    }

    /// On a drive that is removable, has removable media or hangs on USB, or a loop device.
    fn is_removable(&self, drive: Option<&DriveInfo>) -> bool {
        match drive {
            Some(d) => d.removable || d.media_removable || d.connection_bus == "usb",
            None => self.backing_file.is_some(),
        }
    }

    /// Names `target`: the device, one of its links, or one of its mount points.
    fn is(&self, target: &Path, canonical: &Path) -> bool {
        let names = [&self.device, &self.preferred].into_iter().chain(&self.symlinks);
        names.into_iter().any(|n| !n.is_empty() && (Path::new(n) == target || Path::new(n) == canonical))
            || self.mountpoints.iter().any(|m| Path::new(m) == target || Path::new(m) == canonical)
    }
}

fn find(objects: &Objects, target: &Path) -> Option<Block> {
    let canonical = target.canonicalize().unwrap_or_else(|_| target.to_owned());
    let mut blocks: Vec<Block> = objects.iter().filter_map(|(p, i)| Block::parse(p, i)).collect();
    // Deterministic when two objects claim the same name (they should not).
    blocks.sort_by(|a, b| a.path.cmp(&b.path));
    blocks.into_iter().find(|b| b.is(target, &canonical))
}

/// What a drive object says about itself.
#[derive(Debug, Clone, Default)]
struct DriveInfo {
    path: String,
    vendor: String,
    model: String,
    removable: bool,
    media_removable: bool,
    connection_bus: String,
    can_power_off: bool,
    ejectable: bool,
}

impl DriveInfo {
    fn find(objects: &Objects, path: &str) -> Option<DriveInfo> {
        let (path, ifaces) = objects.iter().find(|(p, _)| p.as_str() == path)?;
        let d = ifaces.get(DRIVE)?;
        let flag = |name: &str| d.get(name).and_then(boolean).unwrap_or(false);
        let text = |name: &str| d.get(name).and_then(string).unwrap_or_default();
        Some(DriveInfo {
            path: path.as_str().to_owned(),
            vendor: text("Vendor"),
            model: text("Model"),
            removable: flag("Removable"),
            media_removable: flag("MediaRemovable"),
            connection_bus: text("ConnectionBus"),
            can_power_off: flag("CanPowerOff"),
            ejectable: flag("Ejectable"),
        })
    }

    /// `SanDisk Ultra`, or the object's last path element when the drive has no names.
    fn name(&self) -> String {
        let name = format!("{} {}", self.vendor.trim(), self.model.trim()).trim().to_owned();
        if name.is_empty() { self.path.rsplit('/').next().unwrap_or_default().to_owned() } else { name }
    }
}

// Tolerant decoding: a value of another type than UDisks2 documents reads as absent.

fn unwrap<'a>(v: &'a Value<'a>) -> &'a Value<'a> {
    match v {
        Value::Value(inner) => unwrap(inner),
        other => other,
    }
}

fn boolean(v: &OwnedValue) -> Option<bool> {
    match unwrap(v) {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn number(v: &OwnedValue) -> Option<u64> {
    match unwrap(v) {
        Value::U64(n) => Some(*n),
        Value::U32(n) => Some(u64::from(*n)),
        Value::I64(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

fn string(v: &OwnedValue) -> Option<String> {
    match unwrap(v) {
        Value::Str(s) => Some(s.to_string()),
        Value::ObjectPath(p) => Some(p.as_str().to_owned()),
        _ => None,
    }
}

/// An `ay` holding a NUL-terminated path, as UDisks2 sends device names and mount points.
fn bytes_of(v: &Value<'_>) -> Option<String> {
    let Value::Array(a) = unwrap(v) else { return None };
    let bytes: Vec<u8> =
        a.inner().iter().map(|b| if let Value::U8(b) = b { Some(*b) } else { None }).collect::<Option<_>>()?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

fn bytestring(v: &OwnedValue) -> Option<String> {
    bytes_of(v)
}

/// An `aay`: several such paths.
fn bytestrings(v: &OwnedValue) -> Vec<String> {
    match unwrap(v) {
        Value::Array(a) => a.inner().iter().filter_map(bytes_of).filter(|s| !s.is_empty()).collect(),
        _ => Vec::new(),
    }
}
