//! Writes a rendered bundle somewhere the user keeps it: a folder of its own, a Git repository (committed, and pushed
//! through the system `git` so the user's SSH agent and credential helpers work) or a USB drive
//! (atomically, verified by reading back), and the drives themselves: listing, mounting and
//! safely ejecting them through UDisks2 on the system bus, or from `/proc/mounts` and `/sys`
//! when UDisks2 is not there.
//!
//! Files that carry secrets are never written in clear text to Git unless encrypted to the user's
//! `age` recipients; by default they are left out. Knows nothing of plans: it is handed files.

mod bundle;
mod drives;
mod git;
pub mod seal;
mod udisks;
mod usb;

use std::path::PathBuf;

pub use bundle::write_bundle;
pub use drives::{Drive, DriveSource, EjectAction, Ejection, eject_drive, list_drives, mount_drive, mountpoint_of};
pub use git::{GitExport, GitOutcome, SecretPolicy, export_git};
pub use udisks::{ACTION_TIMEOUT, BUS_TIMEOUT, Udisks2};
pub use usb::export_usb;

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the bundle: `plan.yaml`, `nodes/cp1/config.ign`.
    pub path: String,
    pub contents: Vec<u8>,
    /// Carries a secret (the K3s token): never in clear text in Git.
    pub secret: bool,
}

/// What can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    #[error("`git` is not installed; install it (apt-get install git) to export to a repository")]
    NoGit,
    #[error("{0} is not a valid age recipient (an `age1...` public key)")]
    BadRecipient(String),
    #[error("encrypting {path}: {message}")]
    Encrypt { path: String, message: String },
    #[error("decrypting with {}: {message}", path.display())]
    Decrypt { path: PathBuf, message: String },
    #[error("{path}: the drive is full; free {needed} more bytes or use a larger drive (nothing was left behind)")]
    Full { path: PathBuf, needed: u64 },
    #[error(
        "{path}: the drive is read-only; check its write-protect switch or mount it read-write (nothing was written)"
    )]
    ReadOnly { path: PathBuf },
    #[error(
        "{path}: reading back gave other bytes than were written; the drive may be failing (the bundle was removed)"
    )]
    Verify { path: PathBuf },
    #[error("{path} is not mounted; mount the drive (or open it in your file manager) first")]
    NotMounted { path: PathBuf },
    #[error("UDisks2 is not available ({reason}); mount the drive yourself, or start udisks2")]
    Udisks2Unavailable { reason: String },
    #[error("{action} through UDisks2 failed: {message}")]
    Udisks2 { action: String, message: String },
    #[error("{path} is not a drive UDisks2 knows; name a device such as /dev/sdb1 or a mount point (list the drives)")]
    UnknownDevice { path: PathBuf },
    #[error("{path} holds no filesystem; name a partition such as /dev/sdb1, or format the drive (FAT or exFAT) first")]
    NoFilesystem { path: PathBuf },
    #[error("{path} is not on a removable drive; only removable drives and disk images are ejected")]
    NotRemovable { path: PathBuf },
    #[error("could not unmount {path}: {message}; close programs using the drive, or unmount it as root")]
    Unmount { path: PathBuf, message: String },
    #[error("{} exists and is not a Flatlab bundle; choose an empty or new folder (nothing was written)", path.display())]
    NotABundle { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| match source.kind() {
        std::io::ErrorKind::StorageFull => Error::Full { path, needed: 0 },
        std::io::ErrorKind::ReadOnlyFilesystem => Error::ReadOnly { path },
        _ => Error::Io { path, source },
    }
}
