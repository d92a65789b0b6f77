//! UDisks2: a real `udisksd` on a private system bus with loop devices (root only); a
//! UDisks2-shaped service served by zbus on a private bus, for what loop devices cannot show
//! (removable USB drives, power-off, card readers, bad data); and buses that do not answer.

#[path = "support/required.rs"]
mod required;
#[path = "support/udisksd.rs"]
mod udisksd;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flatlab_export::{Drive, DriveSource, EjectAction, Error, File, Udisks2, export_usb, mountpoint_of};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

fn bundle() -> Vec<File> {
    vec![
        File { path: "plan.yaml".into(), contents: b"version: 1\nname: lab\n".to_vec(), secret: false },
        File { path: "nodes/cp1/config.ign".into(), contents: b"{\"ignition\":{}}".to_vec(), secret: true },
    ]
}

async fn wait_for_drives(udisks: &Udisks2, devices: &[&str]) -> Vec<Drive> {
    let start = Instant::now();
    loop {
        let drives = udisks.drives().await.expect("lists");
        if devices.iter().all(|d| drives.iter().any(|x| x.device == *d)) {
            return drives;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "udisksd did not list {devices:?}: {drives:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_real_udisksd_lists_mounts_exports_and_ejects() {
    let Some(mut env) = udisksd::Udisksd::start() else { return };
    let label = format!("FLT{}", std::process::id() % 100_000);
    let fat = env.attach("vfat", "FLTFAT", 16);
    let ext = env.attach("ext4", &label, 32);
    let udisks = Udisks2::at(&env.address).await.unwrap_or_else(|e| panic!("{e}\n{}", env.log()));

    let drives = wait_for_drives(&udisks, &[&fat, &ext]).await;
    let listed = drives.iter().find(|d| d.device == fat).expect("the FAT image");
    assert_eq!((listed.filesystem.as_str(), listed.label.as_deref()), ("vfat", Some("FLTFAT")));
    assert!(!listed.mounted && listed.mountpoint.is_empty() && !listed.removable, "{listed:?}");
    assert_eq!(listed.source, DriveSource::Udisks2);
    assert!(listed.model.as_deref().is_some_and(|m| m.starts_with("disk image /") && m.ends_with("FLTFAT.img")));
    assert_eq!(listed.size_bytes, 16 << 20);

    // This kernel has no vfat: UDisks2's refusal comes back as one line naming the device.
    match udisks.mount(Path::new(&fat)).await {
        Err(e) => {
            assert!(matches!(e, Error::Udisks2 { .. }), "{e:?}");
            assert!(e.to_string().starts_with(&format!("mounting {fat} through UDisks2 failed: ")), "{e}");
        }
        Ok(mountpoint) => {
            // A kernel with vfat: then it mounts like the ext4 image below.
            udisks.eject(&mountpoint).await.expect("ejects");
        }
    }

    let mountpoint = udisks.mount(Path::new(&ext)).await.unwrap_or_else(|e| panic!("{e}\n{}", env.log()));
    assert_eq!(mountpoint, Path::new("/media/root").join(&label));
    assert_eq!(mountpoint_of(Path::new(&ext)).expect("in /proc/mounts"), mountpoint);
    assert_eq!(udisks.mount(Path::new(&ext)).await.expect("already mounted"), mountpoint, "not mounted twice");
    let listed = udisks.drives().await.expect("lists");
    assert!(listed.iter().any(|d| d.device == ext && d.mounted && Path::new(&d.mountpoint) == mountpoint));

    let folder = export_usb(&bundle(), &mountpoint, "lab").expect("exports");
    assert_eq!(folder, mountpoint.join("flatlab/lab"));

    let ejection = udisks.eject(&mountpoint).await.unwrap_or_else(|e| panic!("{e}\n{}", env.log()));
    assert_eq!(ejection.device, ext);
    assert_eq!(ejection.unmounted, [mountpoint.to_string_lossy()]);
    assert_eq!(ejection.action, EjectAction::LoopDetached);
    assert_eq!(
        ejection.to_string(),
        format!("unmounted {} and detached {ext} from its image: safe to remove", mountpoint.display())
    );
    assert!(mountpoint_of(Path::new(&ext)).is_err(), "unmounted");
    let name = ext.trim_start_matches("/dev/");
    assert!(!Path::new(&format!("/sys/block/{name}/loop/backing_file")).exists(), "the loop device is detached");

    // The image, read without mounting it, holds the bundle.
    let image = env.dir.path().join(format!("{label}.img"));
    let out = Command::new("debugfs").args(["-R", "cat /flatlab/lab/plan.yaml"]).arg(&image).output().expect("debugfs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "version: 1\nname: lab\n");
}

// ---- A UDisks2-shaped service, for drives a loop device cannot stand for ----

type Calls = Arc<Mutex<Vec<String>>>;
type Options = HashMap<String, OwnedValue>;

fn path(p: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(p.to_owned()).expect("object path")
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

struct FakeBlock {
    device: &'static str,
    links: Vec<&'static str>,
    drive: &'static str,
    label: &'static str,
    fs: &'static str,
    size: u64,
}

#[zbus::interface(name = "org.freedesktop.UDisks2.Block")]
impl FakeBlock {
    #[zbus(property)]
    fn device(&self) -> Vec<u8> {
        nul_terminated(self.device)
    }
    #[zbus(property)]
    fn preferred_device(&self) -> Vec<u8> {
        nul_terminated(self.device)
    }
    #[zbus(property)]
    fn symlinks(&self) -> Vec<Vec<u8>> {
        self.links.iter().map(|l| nul_terminated(l)).collect()
    }
    #[zbus(property)]
    fn drive(&self) -> OwnedObjectPath {
        path(self.drive)
    }
    #[zbus(property)]
    fn id_label(&self) -> String {
        self.label.into()
    }
    #[zbus(property)]
    fn id_type(&self) -> String {
        self.fs.into()
    }
    #[zbus(property)]
    fn id_usage(&self) -> String {
        if self.fs.is_empty() { String::new() } else { "filesystem".into() }
    }
    #[zbus(property)]
    fn size(&self) -> u64 {
        self.size
    }
    #[zbus(property)]
    fn hint_ignore(&self) -> bool {
        false
    }
}

/// A block whose properties have the wrong types: its device is a string, not bytes.
struct BadBlock;

#[zbus::interface(name = "org.freedesktop.UDisks2.Block")]
impl BadBlock {
    #[zbus(property)]
    fn device(&self) -> String {
        "/dev/sdx1".into()
    }
    #[zbus(property)]
    fn id_type(&self) -> u32 {
        7
    }
}

/// A usable device with a few properties of the wrong type: they read as absent.
struct OddBlock;

#[zbus::interface(name = "org.freedesktop.UDisks2.Block")]
impl OddBlock {
    #[zbus(property)]
    fn device(&self) -> Vec<u8> {
        nul_terminated("/dev/sdd1")
    }
    #[zbus(property)]
    fn drive(&self) -> OwnedObjectPath {
        path("/org/freedesktop/UDisks2/drives/SanDisk_Ultra")
    }
    #[zbus(property)]
    fn id_type(&self) -> String {
        "exfat".into()
    }
    #[zbus(property)]
    fn size(&self) -> String {
        "big".into()
    }
    #[zbus(property)]
    fn id_label(&self) -> Vec<u8> {
        vec![1, 2]
    }
}

struct FakeFs {
    name: &'static str,
    mounted_at: Option<&'static str>,
    mount_error: Option<&'static str>,
    calls: Calls,
}

#[zbus::interface(name = "org.freedesktop.UDisks2.Filesystem")]
impl FakeFs {
    #[zbus(property)]
    fn mount_points(&self) -> Vec<Vec<u8>> {
        self.mounted_at.iter().map(|m| nul_terminated(m)).collect()
    }
    async fn mount(&self, _options: Options) -> zbus::fdo::Result<String> {
        self.calls.lock().expect("lock").push(format!("Mount {}", self.name));
        match self.mount_error {
            Some(e) => Err(zbus::fdo::Error::Failed(e.into())),
            None => Ok(format!("/media/me/{}", self.name.to_uppercase())),
        }
    }
    async fn unmount(&self, _options: Options) -> zbus::fdo::Result<()> {
        self.calls.lock().expect("lock").push(format!("Unmount {}", self.name));
        Ok(())
    }
}

#[derive(Default)]
struct FakeDrive {
    name: &'static str,
    vendor: &'static str,
    model: &'static str,
    removable: bool,
    media_removable: bool,
    bus: &'static str,
    can_power_off: bool,
    ejectable: bool,
    power_off_error: Option<&'static str>,
    calls: Calls,
}

#[zbus::interface(name = "org.freedesktop.UDisks2.Drive")]
impl FakeDrive {
    #[zbus(property)]
    fn vendor(&self) -> String {
        self.vendor.into()
    }
    #[zbus(property)]
    fn model(&self) -> String {
        self.model.into()
    }
    #[zbus(property)]
    fn removable(&self) -> bool {
        self.removable
    }
    #[zbus(property)]
    fn media_removable(&self) -> bool {
        self.media_removable
    }
    #[zbus(property)]
    fn connection_bus(&self) -> String {
        self.bus.into()
    }
    #[zbus(property)]
    fn can_power_off(&self) -> bool {
        self.can_power_off
    }
    #[zbus(property)]
    fn ejectable(&self) -> bool {
        self.ejectable
    }
    async fn power_off(&self, _options: Options) -> zbus::fdo::Result<()> {
        self.calls.lock().expect("lock").push(format!("PowerOff {}", self.name));
        match self.power_off_error {
            Some(e) => Err(zbus::fdo::Error::Failed(e.into())),
            None => Ok(()),
        }
    }
    async fn eject(&self, _options: Options) -> zbus::fdo::Result<()> {
        self.calls.lock().expect("lock").push(format!("Eject {}", self.name));
        Ok(())
    }
}

/// A private bus (`dbus-daemon --session` on a socket in a temporary folder).
struct Bus {
    _dir: tempfile::TempDir,
    address: String,
    daemon: Child,
}

impl Bus {
    fn start() -> Option<Bus> {
        let dir = tempfile::tempdir().expect("tmp");
        let socket = dir.path().join("bus");
        let address = format!("unix:path={}", socket.display());
        let Ok(daemon) = Command::new("dbus-daemon")
            .args(["--session", "--nofork", &format!("--address={address}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return required::cannot_run("the D-Bus protocol test needs dbus-daemon (apt-get install dbus-daemon)");
        };
        let start = Instant::now();
        while !socket.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "dbus-daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Bus { _dir: dir, address, daemon })
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

const BLOCKS: &str = "/org/freedesktop/UDisks2/block_devices";
const DRIVES: &str = "/org/freedesktop/UDisks2/drives";

/// Serves a USB stick with two partitions, an internal SSD, a card reader, a USB stick whose
/// power-off fails, a DVD, and two blocks with badly typed properties.
async fn serve_fake(address: &str, calls: &Calls) -> zbus::Connection {
    let c = || calls.clone();
    let fs = |name, mounted_at, mount_error| FakeFs { name, mounted_at, mount_error, calls: c() };
    let block =
        |device, links: Vec<&'static str>, drive, label, fs, size| FakeBlock { device, links, drive, label, fs, size };
    let d = |name: &str| format!("{DRIVES}/{name}");
    let b = |name: &str| format!("{BLOCKS}/{name}");
    let sandisk = "/org/freedesktop/UDisks2/drives/SanDisk_Ultra";
    zbus::connection::Builder::address(address)
        .expect("address")
        .name("org.freedesktop.UDisks2")
        .expect("name")
        .serve_at("/org/freedesktop/UDisks2", zbus::fdo::ObjectManager)
        .expect("serve")
        .serve_at(
            d("SanDisk_Ultra"),
            FakeDrive {
                name: "SanDisk_Ultra",
                vendor: "SanDisk",
                model: "Ultra",
                removable: true,
                bus: "usb",
                can_power_off: true,
                calls: c(),
                ..FakeDrive::default()
            },
        )
        .expect("serve")
        .serve_at(b("sdb"), block("/dev/sdb", vec![], sandisk, "", "", 16 << 30))
        .expect("serve")
        .serve_at(b("sdb1"), block("/dev/sdb1", vec!["/dev/disk/by-label/STICK"], sandisk, "STICK", "vfat", 8 << 30))
        .expect("serve")
        .serve_at(b("sdb1"), fs("sdb1", Some("/media/me/STICK"), None))
        .expect("serve")
        .serve_at(b("sdb2"), block("/dev/sdb2", vec!["/dev/disk/by-label/DATA"], sandisk, "DATA", "ext4", 8 << 30))
        .expect("serve")
        .serve_at(b("sdb2"), fs("sdb2", None, None))
        .expect("serve")
        .serve_at(
            d("Samsung_SSD"),
            FakeDrive { name: "Samsung_SSD", model: "Samsung SSD", calls: c(), ..FakeDrive::default() },
        )
        .expect("serve")
        .serve_at(
            b("nvme0n1p2"),
            block("/dev/nvme0n1p2", vec![], "/org/freedesktop/UDisks2/drives/Samsung_SSD", "", "ext4", 1 << 40),
        )
        .expect("serve")
        .serve_at(b("nvme0n1p2"), fs("nvme0n1p2", Some("/"), None))
        .expect("serve")
        .serve_at(
            d("Card_Reader"),
            FakeDrive {
                name: "Card_Reader",
                model: "Card Reader",
                media_removable: true,
                ejectable: true,
                calls: c(),
                ..FakeDrive::default()
            },
        )
        .expect("serve")
        .serve_at(
            b("mmcblk0p1"),
            block("/dev/mmcblk0p1", vec![], "/org/freedesktop/UDisks2/drives/Card_Reader", "CARD", "vfat", 1 << 30),
        )
        .expect("serve")
        .serve_at(b("mmcblk0p1"), fs("mmcblk0p1", Some("/media/me/CARD"), None))
        .expect("serve")
        .serve_at(
            b("mmcblk0p2"),
            block("/dev/mmcblk0p2", vec![], "/org/freedesktop/UDisks2/drives/Card_Reader", "", "vfat", 1 << 30),
        )
        .expect("serve")
        .serve_at(
            b("mmcblk0p2"),
            fs(
                "mmcblk0p2",
                None,
                Some("Error mounting /dev/mmcblk0p2: Filesystem type vfat not configured in kernel."),
            ),
        )
        .expect("serve")
        .serve_at(
            d("Flaky"),
            FakeDrive {
                name: "Flaky",
                removable: true,
                bus: "usb",
                can_power_off: true,
                power_off_error: Some("Error powering off drive: device is busy"),
                calls: c(),
                ..FakeDrive::default()
            },
        )
        .expect("serve")
        .serve_at(b("sde1"), block("/dev/sde1", vec![], "/org/freedesktop/UDisks2/drives/Flaky", "", "vfat", 1 << 30))
        .expect("serve")
        .serve_at(b("sde1"), fs("sde1", Some("/media/me/FLAKY"), None))
        .expect("serve")
        .serve_at(
            d("DVD"),
            FakeDrive {
                name: "DVD",
                removable: true,
                media_removable: true,
                ejectable: true,
                calls: c(),
                ..FakeDrive::default()
            },
        )
        .expect("serve")
        .serve_at(
            b("sr0"),
            block("/dev/sr0", vec![], "/org/freedesktop/UDisks2/drives/DVD", "DEBIAN", "iso9660", 1 << 30),
        )
        .expect("serve")
        .serve_at(b("sr0"), fs("sr0", Some("/media/me/DEBIAN"), None))
        .expect("serve")
        .serve_at(b("sdx1"), BadBlock)
        .expect("serve")
        .serve_at(b("sdx1"), fs("sdx1", None, None))
        .expect("serve")
        .serve_at(b("sdd1"), OddBlock)
        .expect("serve")
        .serve_at(b("sdd1"), fs("sdd1", None, None))
        .expect("serve")
        .build()
        .await
        .expect("the fake UDisks2 is on the bus")
}

fn taken(calls: &Calls) -> Vec<String> {
    std::mem::take(&mut *calls.lock().expect("lock"))
}

#[tokio::test]
async fn the_udisks2_protocol_against_a_udisks2_shaped_service() {
    let Some(bus) = Bus::start() else { return };
    let calls = Calls::default();
    let _service = serve_fake(&bus.address, &calls).await;
    let udisks = Udisks2::at(&bus.address).await.expect("connects");

    // Removable, removable-media and USB drives; not the SSD, not the DVD (read-only), not the
    // block whose device is not bytes; the one with odd properties, with those left empty.
    let drives = udisks.drives().await.expect("lists");
    let devices: Vec<&str> = drives.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(devices, ["/dev/mmcblk0p1", "/dev/mmcblk0p2", "/dev/sdb1", "/dev/sdb2", "/dev/sdd1", "/dev/sde1"]);
    let stick = Drive {
        device: "/dev/sdb1".into(),
        mountpoint: "/media/me/STICK".into(),
        filesystem: "vfat".into(),
        removable: true,
        size_bytes: 8 << 30,
        label: Some("STICK".into()),
        model: Some("SanDisk Ultra".into()),
        mounted: true,
        source: DriveSource::Udisks2,
    };
    assert_eq!(drives[2], stick);
    assert!(!drives[3].mounted && drives[3].mountpoint.is_empty());
    assert_eq!((drives[4].size_bytes, drives[4].label.as_deref(), drives[4].filesystem.as_str()), (0, None, "exfat"));
    assert!(drives[0].removable && drives[0].model.as_deref() == Some("Card Reader"));

    // Mounting: a mounted one is not mounted again; an unmounted one is, found by a link too.
    assert_eq!(udisks.mount(Path::new("/dev/sdb1")).await.expect("mounted"), Path::new("/media/me/STICK"));
    assert_eq!(taken(&calls), Vec::<String>::new());
    let mountpoint = udisks.mount(Path::new("/dev/disk/by-label/DATA")).await.expect("mounts");
    assert_eq!(mountpoint, Path::new("/media/me/SDB2"));
    assert_eq!(taken(&calls), ["Mount sdb2"]);
    let e = udisks.mount(Path::new("/dev/mmcblk0p2")).await.expect_err("refused");
    assert_eq!(
        e.to_string(),
        "mounting /dev/mmcblk0p2 through UDisks2 failed: Error mounting /dev/mmcblk0p2: Filesystem type vfat not configured in kernel"
    );
    assert_eq!(taken(&calls), ["Mount mmcblk0p2"]);
    let e = udisks.mount(Path::new("/dev/sdz9")).await.expect_err("unknown");
    assert!(matches!(e, Error::UnknownDevice { .. }), "{e:?}");
    let e = udisks.mount(Path::new("/dev/sdb")).await.expect_err("no filesystem");
    assert!(matches!(e, Error::NoFilesystem { .. }), "{e:?}");

    // Ejecting a USB stick by its mount point: unmount, then power off.
    let ejection = udisks.eject(Path::new("/media/me/STICK")).await.expect("ejects");
    assert_eq!(taken(&calls), ["Unmount sdb1", "PowerOff SanDisk_Ultra"]);
    assert_eq!((ejection.device.as_str(), ejection.action), ("/dev/sdb1", EjectAction::PoweredOff));
    assert_eq!(ejection.unmounted, ["/media/me/STICK"]);
    assert_eq!(ejection.note, None);

    // Never the internal disk, and nothing is touched trying.
    let e = udisks.eject(Path::new("/")).await.expect_err("not removable");
    assert!(matches!(e, Error::NotRemovable { .. }), "{e:?}");
    assert_eq!(taken(&calls), Vec::<String>::new());

    // A card reader cannot be powered off: its media is ejected.
    let ejection = udisks.eject(Path::new("/dev/mmcblk0p1")).await.expect("ejects");
    assert_eq!(taken(&calls), ["Unmount mmcblk0p1", "Eject Card_Reader"]);
    assert_eq!(ejection.action, EjectAction::MediaEjected);

    // A failed power-off after a good unmount is still a safe removal, with a note.
    let ejection = udisks.eject(Path::new("/dev/sde1")).await.expect("unmounted at least");
    assert_eq!(taken(&calls), ["Unmount sde1", "PowerOff Flaky"]);
    assert_eq!(ejection.action, EjectAction::UnmountedOnly);
    let note = ejection.note.expect("a note");
    assert!(note.contains("device is busy") && note.contains("removing it is safe"), "{note}");
}

#[tokio::test]
async fn a_bus_without_udisks2_or_one_that_never_answers_reads_as_unavailable() {
    // No socket at all.
    let e = Udisks2::at("unix:path=/nonexistent/flatlab/bus").await.expect_err("no bus");
    assert!(matches!(e, Error::Udisks2Unavailable { .. }), "{e:?}");

    // A socket that accepts connections and never says a word: the timeout, not a hang.
    let dir = tempfile::tempdir().expect("tmp");
    let socket = dir.path().join("hung");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let start = Instant::now();
    let e = Udisks2::at(&format!("unix:path={}", socket.display())).await.expect_err("hung");
    assert!(matches!(e, Error::Udisks2Unavailable { .. }), "{e:?}");
    assert!(start.elapsed() < flatlab_export::BUS_TIMEOUT + Duration::from_secs(2), "{:?}", start.elapsed());
    assert!(e.to_string().starts_with("UDisks2 is not available (the system bus did not answer)"), "{e}");

    // A bus on which nobody owns org.freedesktop.UDisks2.
    let Some(bus) = Bus::start() else { return };
    let e = Udisks2::at(&bus.address).await.expect_err("no service");
    assert!(matches!(e, Error::Udisks2Unavailable { .. }), "{e:?}");
}
