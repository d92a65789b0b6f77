//! Writing a bundle into a folder of its own (`flatlab render -o DIR`): swapped in whole, durable,
//! and fast on plans of a thousand nodes.
//!
//! The new bundle is written into a staging folder beside `dir` without a sync per file, made
//! durable with one `syncfs(2)` of the filesystem, and then swapped in with renames, whose
//! parent folder is synced last. So `dir` holds the old bundle or the new one, whole, at every
//! moment, and a crash after the call returns loses nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, File, Result, io};

/// Where the bundle layout keeps per-node files: owner-only, since `config.ign` holds the K3s
/// token and the boot token in `install.ign` and `boot.ipxe` fetches it from the boot server.
const NODES: &str = "nodes/";

/// Writes the bundle's files into `dir`, replacing a bundle already there; returns the paths
/// written. Refuses, writing nothing, a `dir` that is neither empty nor a Flatlab bundle.
pub fn write_bundle(files: &[File], dir: &Path) -> Result<Vec<PathBuf>> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    if dir.exists() && !is_replaceable(dir)? {
        return Err(Error::NotABundle { path: dir.to_owned() });
    }
    let staging = tempfile::Builder::new().prefix(".flatlab-bundle-").tempdir_in(&parent).map_err(io(&parent))?;
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let target = staging.path().join(&f.path);
        if let Some(d) = target.parent() {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let private = f.secret || f.path.starts_with(NODES);
        write_file(&target, &f.contents, private).map_err(io(&target))?;
        written.push(dir.join(&f.path));
    }
    // One sync for every file and folder written above, instead of one per file.
    let root = std::fs::File::open(staging.path()).map_err(io(staging.path()))?;
    rustix::fs::syncfs(&root).map_err(|e| io(staging.path())(e.into()))?;
    let staged = staging.keep();
    if dir.exists() {
        let old = parent.join(format!(".flatlab-old-{}", std::process::id()));
        std::fs::rename(dir, &old).map_err(io(dir))?;
        std::fs::rename(&staged, dir).map_err(io(dir))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    } else {
        std::fs::rename(&staged, dir).map_err(io(dir))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io(dir))?;
    }
    // The renames themselves.
    std::fs::File::open(&parent).and_then(|d| d.sync_all()).map_err(io(&parent))?;
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if private { 0o600 } else { 0o644 });
    options.open(path)?.write_all(bytes)
}

/// An empty folder, or one holding a bundle Flatlab wrote before and nothing else (a `.git`
/// or a file of the user's in it means it is not ours to replace).
fn is_replaceable(dir: &Path) -> Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        names.push(entry.map_err(io(dir))?.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(true);
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
    Ok(readme.starts_with("# Flatlab bundle")
        && names.iter().all(|n| matches!(n.as_str(), "README.md" | "plan.yaml" | "nodes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn bundle(nodes: &[&str], token: &str) -> Vec<File> {
        let mut files = vec![
            File { path: "README.md".into(), contents: b"# Flatlab bundle\n".to_vec(), secret: false },
            File { path: "plan.yaml".into(), contents: b"version: 1\n".to_vec(), secret: false },
        ];
        for n in nodes {
            files.push(File {
                path: format!("nodes/{n}/config.ign"),
                contents: token.as_bytes().to_vec(),
                secret: true,
            });
            files.push(File { path: format!("nodes/{n}/boot.ipxe"), contents: b"#!ipxe\n".to_vec(), secret: false });
        }
        files
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn a_bundle_is_written_then_replaced_whole_with_node_files_owner_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out");
        let written = write_bundle(&bundle(&["cp1", "cp2"], "one"), &dir).expect("writes");
        assert_eq!(written.len(), 6);
        assert_eq!(mode(&dir.join("nodes/cp1/config.ign")), 0o600);
        assert_eq!(mode(&dir.join("nodes/cp1/boot.ipxe")), 0o600);
        assert_eq!(mode(&dir.join("plan.yaml")), 0o644);
        // A node that left the plan goes with the old bundle.
        write_bundle(&bundle(&["cp1"], "two"), &dir).expect("replaces");
        assert_eq!(std::fs::read_to_string(dir.join("nodes/cp1/config.ign")).expect("read"), "two");
        assert!(!dir.join("nodes/cp2").exists());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("out")], "no staging or old folder is left behind");
    }

    #[test]
    fn a_folder_that_is_not_a_bundle_is_refused_untouched() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("home");
        std::fs::create_dir_all(dir.join(".git")).expect("mkdir");
        std::fs::write(dir.join("notes.txt"), "mine").expect("write");
        let e = write_bundle(&bundle(&["cp1"], "t"), &dir).expect_err("refused");
        assert!(e.to_string().contains("is not a Flatlab bundle"), "{e}");
        assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).expect("read"), "mine");
        assert!(!dir.join("nodes").exists());
    }
}
