//! The `flatlab export usb` contract for drives: listing without D-Bus, and with a real
//! `udisksd` on a private system bus (root only) mounting, exporting and ejecting loop devices.

#[path = "../../export/tests/support/required.rs"]
mod required;
#[path = "../../export/tests/support/udisksd.rs"]
mod udisksd;

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

const DEMO: &str = include_str!("../../../assets/demo-plan.yaml");

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A database holding the demo plan (`demo-lab`).
    fn with_demo_plan() -> Env {
        let env = Env { dir: tempfile::tempdir().expect("tempdir") };
        let plan = env.dir.path().join("lab.yaml");
        std::fs::write(&plan, DEMO).expect("write");
        env.flatlab("unix:path=/nonexistent").args(["plan", "import"]).arg(&plan).assert().success();
        env
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("data/flatlab.db")
    }

    /// `flatlab` with its system bus at `bus`.
    fn flatlab(&self, bus: &str) -> Command {
        let mut cmd = Command::cargo_bin("flatlab").expect("binary built");
        cmd.arg("--db").arg(self.db()).env_remove("FLATLAB_DB").env("DBUS_SYSTEM_BUS_ADDRESS", bus);
        cmd
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn listing_drives_works_without_a_system_bus_and_needs_no_plan() {
    let env = Env::with_demo_plan();
    let start = std::time::Instant::now();
    let out = env.flatlab("unix:path=/nonexistent/bus").args(["export", "usb", "--list"]).output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert!(!stderr(&out).contains("UDisks2"), "no noise about D-Bus: {}", stderr(&out));
    if out.stdout.is_empty() {
        assert!(stderr(&out).contains("no removable drive found"), "{}", stderr(&out));
    }
    // --eject alone needs a drive; --list and --eject do not mix.
    env.flatlab("unix:path=/nonexistent/bus")
        .args(["export", "usb", "--eject"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("give the drive to eject with --to MOUNTPOINT or --device DEV"));
    env.flatlab("unix:path=/nonexistent/bus").args(["export", "usb", "--list", "--eject"]).assert().code(2);
}

#[test]
fn export_usb_mounts_exports_and_ejects_through_a_real_udisksd() {
    let Some(mut udisks) = udisksd::Udisksd::start() else { return };
    let label = format!("FLC{}", std::process::id() % 100_000);
    let fat = udisks.attach("vfat", "FLCFAT", 16);
    let ext = udisks.attach("ext4", &label, 32);
    let env = Env::with_demo_plan();
    let bus = udisks.address.clone();

    // Listed unmounted, with their labels, until udisksd has seen both.
    let start = std::time::Instant::now();
    let listing = loop {
        let out = env.flatlab(&bus).args(["export", "usb", "--list"]).output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&fat) && text.contains(&ext) {
            break text;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(15), "{text}\n{}", udisks.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let line = listing.lines().find(|l| l.starts_with(&format!("{ext} "))).expect("a line");
    assert!(line.starts_with(&format!("{ext}  (not mounted)  ext4  32 MiB  \"{label}\"  disk image /")), "{line}");

    // --device mounts it, then says how to eject.
    let out = env.flatlab(&bus).args(["export", "usb", "demo-lab", "--device", &ext]).output().expect("runs");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}\n{}", udisks.log());
    let mountpoint = format!("/media/root/{label}");
    assert!(err.contains(&format!("mounted {ext} at {mountpoint}")), "{err}");
    assert!(err.contains(&format!("wrote and verified plan demo-lab in {mountpoint}/flatlab/demo-lab")), "{err}");
    assert!(err.contains(&format!("to remove the drive safely: flatlab export usb --eject --device {ext}")), "{err}");

    // Again, mounted already, with --eject: written, verified, unmounted, detached.
    let out =
        env.flatlab(&bus).args(["export", "usb", "demo-lab", "--device", &ext, "--eject"]).output().expect("runs");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}\n{}", udisks.log());
    assert!(!err.contains("mounted /dev"), "{err}");
    assert!(
        err.contains(&format!("unmounted {mountpoint} and detached {ext} from its image: safe to remove")),
        "{err}"
    );
    let image = udisks.dir.path().join(format!("{label}.img"));
    let out = std::process::Command::new("debugfs")
        .args(["-R", "ls -p /flatlab/demo-lab/nodes"])
        .arg(&image)
        .output()
        .expect("debugfs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("/cp1/"), "{}", String::from_utf8_lossy(&out.stdout));

    // A drive the kernel cannot mount: one line, exit 1, and --eject alone ejects it.
    env.flatlab(&bus)
        .args(["export", "usb", "demo-lab", "--device", &fat])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(format!("error: mounting {fat} through UDisks2 failed: ")))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    env.flatlab(&bus)
        .args(["export", "usb", "--eject", "--device", &fat])
        .assert()
        .success()
        .stderr(format!("{fat} was not mounted and detached {fat} from its image: safe to remove\n"));
}
