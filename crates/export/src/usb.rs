//! Export to a USB drive: `<mountpoint>/flatlab/<plan>/`, written beside the old copy, fsynced,
//! read back, then swapped in with renames, so the drive never holds half a bundle.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, File, Result, io};

/// Suffix of files being written; they take their real names only once all are written and
/// read back.
const NEW: &str = ".flatlab-new";

/// Writes the bundle to `<mountpoint>/flatlab/<folder>/`; returns that folder.
///
/// Every file is first written beside its final name (`<name>.flatlab-new`), fsynced, and read
/// back; only when all of them check out are they renamed into place and files of the old bundle
/// that are no longer part of it removed. A full or read-only drive, or a bad read-back, leaves
/// the previous bundle as it was. (Files are renamed one by one rather than the folder as a
/// whole: FAT drives mounted through FUSE lose a renamed folder's contents.)
pub fn export_usb(files: &[File], mountpoint: &Path, folder: &str) -> Result<PathBuf> {
    if !mountpoint.is_dir() {
        return Err(Error::NotMounted { path: mountpoint.to_owned() });
    }
    let base = mountpoint.join("flatlab");
    let target = base.join(folder);
    let needed: u64 = files.iter().map(|f| f.contents.len() as u64 + 4096).sum();
    if let Ok(stat) = rustix::fs::statvfs(mountpoint) {
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        if stat.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
            return Err(Error::ReadOnly { path: mountpoint.to_owned() });
        }
        if free < needed {
            return Err(Error::Full { path: mountpoint.to_owned(), needed: needed - free });
        }
    }
    make_dir(&base)?;
    make_dir(&target)?;
    if let Err(e) = write_and_verify(files, &target) {
        remove_new_files(files, &target);
        return Err(match e {
            Error::Full { path, .. } => Error::Full { path, needed },
            other => other,
        });
    }
    for f in files {
        let final_path = target.join(&f.path);
        let new_path = with_new_suffix(&final_path);
        std::fs::rename(&new_path, &final_path).map_err(io(&final_path))?;
    }
    remove_stale(&target, &target, files)?;
    sync_dir(&target)?;
    Ok(target)
}

fn with_new_suffix(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(NEW);
    PathBuf::from(s)
}

fn remove_new_files(files: &[File], target: &Path) {
    for f in files {
        let _ = std::fs::remove_file(with_new_suffix(&target.join(&f.path)));
    }
}

/// Removes files under `dir` that are not part of the new bundle (a node that left the plan).
fn remove_stale(root: &Path, dir: &Path, files: &[File]) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_stale(root, &path, files)?;
            if std::fs::read_dir(&path).map(|mut d| d.next().is_none()).unwrap_or(false) {
                let _ = std::fs::remove_dir(&path);
            }
            continue;
        }
        let rel = path.strip_prefix(root).map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default();
        if !files.iter().any(|f| f.path == rel) {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn write_and_verify(files: &[File], target: &Path) -> Result<()> {
    for f in files {
        let final_path = target.join(&f.path);
        let mut dir = target.to_path_buf();
        if let Some(parent) = Path::new(&f.path).parent() {
            for part in parent.components() {
                dir.push(part);
                make_dir(&dir)?;
            }
        }
        let new_path = with_new_suffix(&final_path);
        let mut out = std::fs::File::create(&new_path).map_err(io(&new_path))?;
        out.write_all(&f.contents).map_err(io(&new_path))?;
        out.sync_all().map_err(io(&new_path))?;
    }
    for f in files {
        let new_path = with_new_suffix(&target.join(&f.path));
        let back = std::fs::read(&new_path).map_err(io(&new_path))?;
        if back != f.contents {
            return Err(Error::Verify { path: new_path });
        }
    }
    Ok(())
}

/// mkdir that accepts an existing directory. (Not `create_dir_all`: over fusefat its probe of
/// the parent fails and it reports EEXIST for a directory it could have created.)
fn make_dir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(dir)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Some filesystems (FAT over FUSE) refuse to fsync a directory; the files themselves are.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
