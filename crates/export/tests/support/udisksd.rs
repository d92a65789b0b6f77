//! A real `udisksd` on a private system bus, with loop devices for drives. Needs root, Debian's
//! `udisks2` (which brings `udev`), `dbus-daemon`, `losetup`, `mkfs.vfat` and `mkfs.ext4`.
//! Without a running udev daemon UDisks2 sees no filesystems, so one is started when none answers.
//! Shared by the export crate's and the CLI's tests (`#[path]`-included).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Udisksd {
    pub dir: tempfile::TempDir,
    /// `unix:path=...`: hand it to [`flatlab_export::Udisks2::at`], or to a child process as
    /// `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
    children: Vec<Child>,
    loops: Vec<String>,
}

fn found(program: &str) -> Option<PathBuf> {
    if program.starts_with('/') {
        return Path::new(program).exists().then(|| PathBuf::from(program));
    }
    let out = Command::new("sh").args(["-c", &format!("command -v {program}")]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Udisksd {
    /// Starts the bus and the daemon; `None` (with a message) when this machine cannot.
    pub fn start() -> Option<Udisksd> {
        let is_root = crate::required::is_root();
        let udisksd = ["/usr/libexec/udisks2/udisksd", "/usr/lib/udisks2/udisksd"].into_iter().find_map(found);
        let udevd = ["/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd"].into_iter().find_map(found);
        let tools = ["dbus-daemon", "dbus-send", "losetup", "mkfs.vfat", "mkfs.ext4", "debugfs", "udevadm"]
            .iter()
            .all(|t| found(t).is_some());
        let (true, Some(udisksd), Some(udevd), true) = (is_root, udisksd, udevd, tools) else {
            return crate::required::cannot_run(
                "the udisksd test needs root and udisks2, dbus-daemon, util-linux, dosfstools, e2fsprogs",
            );
        };
        if std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|p| std::fs::read_to_string(p.path().join("comm")).is_ok_and(|c| c.trim() == "udisksd"))
        {
            return crate::required::cannot_run("a udisksd is already running (the test's would share /run/udisks2)");
        }
        let dir = tempfile::tempdir().expect("tmp");
        let socket = dir.path().join("system_bus");
        let address = format!("unix:path={}", socket.display());
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#
            ),
        )
        .expect("bus config");
        let mut env = Udisksd { dir, address, children: Vec::new(), loops: Vec::new() };
        let bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        env.children.push(bus);
        wait_for("the private bus", || socket.exists());
        let udev_running =
            Command::new("udevadm").args(["control", "--ping", "-t", "1"]).output().is_ok_and(|o| o.status.success());
        if !udev_running {
            let log = std::fs::File::create(env.dir.path().join("udevd.log")).expect("log");
            let child = Command::new(&udevd).stdout(Stdio::null()).stderr(log).spawn().expect("systemd-udevd");
            env.children.push(child);
            wait_for("systemd-udevd", || {
                Command::new("udevadm")
                    .args(["control", "--ping", "-t", "1"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        }
        let log = std::fs::File::create(env.dir.path().join("udisksd.log")).expect("log");
        let child = Command::new(&udisksd)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &env.address)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("udisksd");
        env.children.push(child);
        let address = env.address.clone();
        wait_for("udisksd on the private bus", || {
            Command::new("dbus-send")
                .args([&format!("--bus={address}"), "--print-reply", "--dest=org.freedesktop.UDisks2"])
                .args(["/org/freedesktop/UDisks2/Manager", "org.freedesktop.DBus.Peer.Ping"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        Some(env)
    }

    /// A new disk image with a filesystem (`vfat` or `ext4`), attached to a loop device, which
    /// udev has seen; returns the device, such as `/dev/loop3`.
    pub fn attach(&mut self, fs: &str, label: &str, mib: u32) -> String {
        let image = self.dir.path().join(format!("{label}.img"));
        let image_str = image.to_str().expect("utf8");
        match fs {
            "vfat" => run("mkfs.vfat", &["-C", "-n", label, image_str, &(mib * 1024).to_string()]),
            _ => {
                run("truncate", &["-s", &format!("{mib}M"), image_str]);
                run("mkfs.ext4", &["-q", "-F", "-L", label, image_str])
            }
        };
        let device = run("losetup", &["--find", "--show", image_str]);
        self.loops.push(device.clone());
        run("udevadm", &["trigger", "--action=change", "--settle", &device]);
        device
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("udisksd.log")).unwrap_or_default()
    }
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(15), "{what} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Udisksd {
    fn drop(&mut self) {
        // Anything a failed test left mounted from our loop devices, then the devices themselves.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        for line in mounts.lines() {
            let mut parts = line.split_whitespace();
            if let (Some(dev), Some(mp)) = (parts.next(), parts.next())
                && self.loops.iter().any(|l| l == dev)
            {
                let _ = Command::new("umount").arg(mp.replace("\\040", " ")).status();
            }
        }
        for device in &self.loops {
            let _ = Command::new("losetup").args(["-d", device]).stderr(Stdio::null()).status();
        }
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
