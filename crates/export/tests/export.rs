//! Export to a real Git repository (with a bare remote on disk) and to a real FAT filesystem.

#[path = "support/required.rs"]
mod required;

use std::path::Path;
use std::process::Command;

use flatlab_export::{
    DriveSource, EjectAction, Error, File, GitExport, SecretPolicy, eject_drive, export_git, export_usb, list_drives,
};

const TOKEN: &str = "SuperSecretK3sToken0123456789abcdefghijklmn";

fn bundle(disk: &str) -> Vec<File> {
    vec![
        File {
            path: "plan.yaml".into(),
            contents: format!("version: 1\nname: lab\n# {disk}\n").into_bytes(),
            secret: false,
        },
        File { path: "README.md".into(), contents: b"# Flatlab bundle: lab\n".to_vec(), secret: false },
        File {
            path: "nodes/cp1/config.ign".into(),
            contents: format!("{{\"token\":\"{TOKEN}\"}}").into_bytes(),
            secret: true,
        },
        File { path: "nodes/cp1/install.ign".into(), contents: b"{\"install\":true}".to_vec(), secret: false },
        File { path: "nodes/cp1/boot.ipxe".into(), contents: b"#!ipxe\n".to_vec(), secret: false },
    ]
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn export(repo: &Path, secrets: SecretPolicy, push: Option<String>) -> GitExport {
    GitExport {
        repo: repo.to_owned(),
        folder: "lab".into(),
        branch: None,
        push,
        secrets,
        summary: "flatlab: plan lab, revision 1".into(),
        how_to_render: "flatlab render lab -o DIR".into(),
    }
}

#[test]
fn git_export_commits_once_pushes_and_keeps_secrets_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let remote = dir.path().join("remote.git");
    Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&remote).status().expect("bare");
    let repo = dir.path().join("lab-repo");
    let first = export_git(&bundle("/dev/sda"), &export(&repo, SecretPolicy::Omit, None)).expect("exports");
    assert!(first.commit.is_some());
    assert!(first.changed.iter().any(|c| c.ends_with("lab/plan.yaml")), "{:?}", first.changed);
    assert!(!repo.join("lab/nodes/cp1/config.ign").exists());
    let secrets = std::fs::read_to_string(repo.join("lab/SECRETS.md")).expect("SECRETS.md");
    assert!(secrets.contains("nodes/cp1/config.ign") && secrets.contains("flatlab render lab -o DIR"));
    assert!(!git(&repo, &["log", "-p", "--all"]).contains(TOKEN), "the token is in no commit");

    // Unchanged: no new commit.
    let again = export_git(&bundle("/dev/sda"), &export(&repo, SecretPolicy::Omit, None)).expect("exports");
    assert_eq!(again.commit, None);
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), "1");

    // Changed and pushed: one more commit, listing what changed, on the remote too.
    git(&repo, &["remote", "add", "origin", remote.to_str().expect("utf8")]);
    let changed = export_git(&bundle("/dev/nvme0n1"), &export(&repo, SecretPolicy::Omit, Some("origin".into())))
        .expect("exports");
    assert!(changed.pushed);
    let head = changed.commit.expect("a commit");
    assert_eq!(git(&remote, &["rev-parse", "main"]), head);
    let message = git(&repo, &["log", "-1", "--format=%B"]);
    assert!(message.starts_with("flatlab: plan lab, revision 1") && message.contains("M\tlab/plan.yaml"), "{message}");
}

#[test]
fn git_export_can_encrypt_secrets_to_age_recipients() {
    let dir = tempfile::tempdir().expect("tmp");
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let repo = dir.path().join("repo");
    export_git(&bundle("/dev/sda"), &export(&repo, SecretPolicy::Encrypt(vec![recipient]), None)).expect("exports");
    let sealed = std::fs::read(repo.join("lab/nodes/cp1/config.ign.age")).expect("encrypted file");
    assert!(sealed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!git(&repo, &["log", "-p"]).contains(TOKEN));
    let opened = age::decrypt(&identity, &sealed).expect("decrypts with the key");
    assert_eq!(String::from_utf8(opened).expect("utf8"), format!("{{\"token\":\"{TOKEN}\"}}"));

    let e = export_git(&bundle("/dev/sda"), &export(&repo, SecretPolicy::Encrypt(vec!["age1nope".into()]), None))
        .expect_err("bad");
    assert!(matches!(e, Error::BadRecipient(_)), "{e}");
}

#[test]
fn usb_export_writes_a_whole_bundle_and_replaces_the_old_one() {
    let mnt = tempfile::tempdir().expect("tmp");
    let target = export_usb(&bundle("/dev/sda"), mnt.path(), "lab").expect("exports");
    assert_eq!(target, mnt.path().join("flatlab/lab"));
    assert!(target.join("nodes/cp1/config.ign").is_file(), "a USB stick carries the whole bundle");
    export_usb(&bundle("/dev/vdb"), mnt.path(), "lab").expect("exports again");
    assert!(std::fs::read_to_string(target.join("plan.yaml")).expect("plan").contains("/dev/vdb"));
    let leftovers: Vec<String> = std::fs::read_dir(mnt.path().join("flatlab"))
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(leftovers, ["lab"]);
    // A node that left the plan leaves the drive too; no temporary files stay.
    let fewer: Vec<File> = bundle("/dev/vdb").into_iter().filter(|f| !f.path.ends_with("boot.ipxe")).collect();
    export_usb(&fewer, mnt.path(), "lab").expect("exports again");
    assert!(!target.join("nodes/cp1/boot.ipxe").exists());
    assert!(!target.join("nodes/cp1/config.ign.flatlab-new").exists());
}

/// A real FAT filesystem through fusefat (this kernel has no vfat), when root and the tools exist.
struct Fat {
    dir: tempfile::TempDir,
}

impl Fat {
    fn new(kib: u32) -> Option<Fat> {
        let tools = ["mkfs.vfat", "fusefat", "fusermount"].iter().all(|t| {
            Command::new("sh").args(["-c", &format!("command -v {t}")]).output().is_ok_and(|o| o.status.success())
        });
        if !required::is_root() || !tools {
            return required::cannot_run("the FAT filesystem test needs root and fusefat, dosfstools, fuse3");
        }
        let dir = tempfile::tempdir().expect("tmp");
        let img = dir.path().join("stick.img");
        let ok = Command::new("mkfs.vfat")
            .args(["-C", "-n", "USBSTICK"])
            .arg(&img)
            .arg(kib.to_string())
            .output()
            .expect("mkfs");
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
        std::fs::create_dir_all(dir.path().join("mnt")).expect("mkdir");
        Some(Fat { dir })
    }

    fn mount(&self, mode: &str) -> std::path::PathBuf {
        let mnt = self.dir.path().join("mnt");
        let ok = Command::new("fusefat")
            .args(["-o", mode])
            .arg(self.dir.path().join("stick.img"))
            .arg(&mnt)
            .status()
            .expect("fusefat");
        assert!(ok.success());
        // fusefat returns before the mount is in place; wait for it.
        let wanted = mnt.canonicalize().expect("mountpoint");
        for _ in 0..100 {
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
            if mounts.lines().any(|l| l.split_whitespace().nth(1) == wanted.to_str()) {
                return mnt;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("fusefat did not mount {}", mnt.display());
    }

    fn unmount(&self) {
        let mnt = self.dir.path().join("mnt");
        let _ = Command::new("fusermount").arg("-u").arg(&mnt).status();
        // Wait until the mount is gone, so that a remount starts clean.
        for _ in 0..100 {
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
            if !mounts.lines().any(|l| l.split_whitespace().nth(1) == mnt.to_str()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Fat {
    fn drop(&mut self) {
        self.unmount();
    }
}

#[test]
fn usb_export_to_a_real_fat_filesystem_survives_remounting() {
    let Some(fat) = Fat::new(8192) else { return };
    let mnt = fat.mount("rw+");
    export_usb(&bundle("/dev/sda"), &mnt, "lab").expect("exports");
    fat.unmount();
    let mnt = fat.mount("ro");
    let back = std::fs::read(mnt.join("flatlab/lab/nodes/cp1/config.ign")).expect("read back after remount");
    assert_eq!(back, format!("{{\"token\":\"{TOKEN}\"}}").into_bytes());
}

#[test]
fn a_full_or_read_only_drive_gives_a_clear_error_and_no_half_bundle() {
    let Some(fat) = Fat::new(1024) else { return };
    let mnt = fat.mount("rw+");
    let mut big = bundle("/dev/sda");
    big.push(File { path: "nodes/cp1/huge.bin".into(), contents: vec![7u8; 3 << 20], secret: false });
    let e = export_usb(&big, &mnt, "lab").expect_err("full");
    assert!(matches!(e, Error::Full { .. }), "{e:?}");
    assert!(e.to_string().contains("the drive is full"), "{e}");
    assert!(!mnt.join("flatlab").exists(), "nothing was written");
    fat.unmount();

    let mnt = fat.mount("ro");
    let e = export_usb(&bundle("/dev/sda"), &mnt, "lab").expect_err("read-only");
    assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
}

#[tokio::test]
async fn a_fuse_mounted_fat_drive_is_listed_and_ejected_by_unmounting_it() {
    let Some(fat) = Fat::new(2048) else { return };
    let mnt = fat.mount("rw+");
    // UDisks2 does not know FUSE mounts (and is absent here): /proc/mounts has it.
    let drives = list_drives().await;
    let listed = drives.iter().find(|d| Path::new(&d.mountpoint) == mnt).expect("listed");
    assert_eq!((listed.filesystem.as_str(), listed.mounted, listed.source), ("fuse.fusefat", true, DriveSource::Sysfs));

    let ejection = eject_drive(&mnt).await.expect("ejects");
    assert_eq!(ejection.unmounted, [mnt.to_string_lossy()]);
    assert_eq!((ejection.action, ejection.source), (EjectAction::UnmountedOnly, DriveSource::Sysfs));
    let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
    assert!(!mounts.lines().any(|l| l.split_whitespace().nth(1) == mnt.to_str()), "unmounted");

    let e = eject_drive(&mnt).await.expect_err("nothing left to eject");
    assert!(matches!(e, Error::NotMounted { .. }), "{e:?}");
    let e = eject_drive(Path::new("/")).await.expect_err("the system disk is no USB stick");
    assert!(matches!(e, Error::NotRemovable { .. }), "{e:?}");
}
