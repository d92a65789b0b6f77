//! Errors the front ends branch on. Everything else travels as `anyhow::Error` with context.

use std::path::PathBuf;

use flatlab_model::{Finding, ParseError};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Conditions of the use cases themselves (the store's are `flatlab_store::Error`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}; {hint}", summary(findings))]
    InvalidPlan { findings: Vec<Finding>, hint: &'static str },
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("cannot read {}: {io}", path.display())]
    ReadFile { path: PathBuf, io: std::io::Error },
    #[error("{} is not a text file; a plan file is YAML text", path.display())]
    NotText { path: PathBuf },
    #[error("the boot server already runs for plan {plan}; stop it first")]
    AlreadyRunning { plan: String },
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "cannot find the `flatlab` program that runs the boot server: install the Flatlab package, or build it with `cargo build -p flatlab-cli`"
    )]
    NoSidecar,
    #[error(
        "this cluster was installed before Flatlab made its own certificate authorities: K3s made them, and Flatlab does not have their keys, so it cannot make a kubeconfig or reach the cluster; reinstall the cluster to give it Flatlab's, or use the kubeconfig K3s writes on the first server"
    )]
    ForeignCa,
    #[error("{0}")]
    NoSecrets(String),
    #[error("cannot reach the cluster's API at {server}: {}", reach_text(reach))]
    ClusterUnreachable { server: String, reach: crate::cluster::Reach },
    #[error("{0}")]
    UpgradeRefused(String),
    /// A restore would replace secrets the plan holds (another cluster's).
    #[error("{0}")]
    SecretsClash(String),
    /// A cluster with the plan's CAs but another identity answers.
    #[error("{0}")]
    AnotherCluster(String),
    /// The plan's cluster ran and no server answers: arming its first server would start a
    /// second cluster; the user chooses (wait, restore from a snapshot, or start a new one).
    #[error("{0}")]
    ClusterLost(String),
    /// A restore from a snapshot that cannot work (another cluster's or token's snapshot, a
    /// newer K3s, no secrets, no such snapshot).
    #[error("{0}")]
    RestoreRefused(String),
}

fn reach_text(reach: &crate::cluster::Reach) -> String {
    use crate::cluster::Reach;
    match reach {
        Reach::Reachable { .. } => "it answers".into(),
        Reach::Unreachable { reason } => reason.clone(),
        Reach::CertificateRefused { reason } => format!("it refused Flatlab's certificate ({reason})"),
        Reach::WrongCluster { reason } => format!("another cluster answers there: {reason}"),
        Reach::BadServerCertificate { reason } => reason.clone(),
        Reach::ForeignCa => "Flatlab has no keys for this cluster's CAs".into(),
    }
}

fn summary(findings: &[Finding]) -> String {
    match findings {
        [one] if one.path.is_empty() => one.message.clone(),
        [one] => format!("{}: {}", one.path, one.message),
        many => format!("the plan has {} problems", many.len()),
    }
}

/// A stable code for each kind of failure: the desktop UI branches on it, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    PlanNotFound,
    RevisionNotFound,
    NameTaken,
    InvalidPlan,
    ParseError,
    NotFlatlabDatabase,
    NewerDatabase,
    CorruptDatabase,
    /// The boot server may not bind ports 67/69 (or an interface): it needs `setcap` once.
    NeedsPrivilege,
    /// Another server holds a port the boot server needs.
    AddressInUse,
    /// The boot server runs already (stop it first).
    AlreadyRunning,
    /// A request the receiver does not understand (such as a bad sidecar request line).
    BadRequest,
    /// The drive an export writes to is full.
    DriveFull,
    /// The drive an export writes to is read-only.
    DriveReadOnly,
    /// The `git` program is not installed.
    GitMissing,
    /// A download's signature or checksum does not check out; nothing of it was kept.
    BadSignature,
    /// A server could not be reached, or the network is not there.
    Network,
    /// The cluster's certificate authorities are not Flatlab's (installed before Flatlab made them).
    ForeignCa,
    /// The cluster's API cannot be reached, refused Flatlab's certificate, is another cluster's,
    /// or its certificate does not fit the address or the clock.
    ClusterUnreachable,
    /// An upgrade K3s does not support (a downgrade, a skipped minor version), or one running.
    UpgradeRefused,
    /// Restoring a secrets backup would replace the plan's other secrets (ask, then replace).
    SecretsClash,
    /// A cluster with the plan's CAs but another identity (the UID of its `kube-system`
    /// namespace) answers: Flatlab will not treat it as the plan's.
    AnotherCluster,
    /// The plan's cluster ran, and no server of it answers: arming its first server is refused
    /// until the user chooses to wait, restore from a snapshot, or start a new cluster.
    ClusterLost,
    /// A restore from a snapshot that cannot work: another cluster's or token's snapshot, a newer
    /// K3s than the plan's, a plan without its secrets, no such snapshot here.
    RestoreRefused,
    /// The user cancelled it (a fetch keeps what it downloaded, and the next one resumes).
    Cancelled,
    Io,
    /// Also what a code this build does not know reads back as.
    #[serde(other)]
    Internal,
}

/// The code of the most specific known error in `err`'s chain.
pub fn error_code(err: &anyhow::Error) -> ErrorCode {
    use flatlab_store::Error as S;
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ApiError>() {
            return match e {
                ApiError::InvalidPlan { .. } => ErrorCode::InvalidPlan,
                ApiError::Parse(_) | ApiError::NotText { .. } => ErrorCode::ParseError,
                ApiError::ReadFile { .. } | ApiError::NoSidecar => ErrorCode::Io,
                ApiError::AlreadyRunning { .. } => ErrorCode::AlreadyRunning,
                ApiError::BadRequest(_) | ApiError::NoSecrets(_) => ErrorCode::BadRequest,
                ApiError::ForeignCa => ErrorCode::ForeignCa,
                ApiError::ClusterUnreachable { .. } => ErrorCode::ClusterUnreachable,
                ApiError::UpgradeRefused(_) => ErrorCode::UpgradeRefused,
                ApiError::SecretsClash(_) => ErrorCode::SecretsClash,
                ApiError::AnotherCluster(_) => ErrorCode::AnotherCluster,
                ApiError::ClusterLost(_) => ErrorCode::ClusterLost,
                ApiError::RestoreRefused(_) => ErrorCode::RestoreRefused,
            };
        }
        if let Some(e) = cause.downcast_ref::<S>() {
            return match e {
                S::PlanNotFound { .. } => ErrorCode::PlanNotFound,
                S::RevisionNotFound { .. } => ErrorCode::RevisionNotFound,
                S::NameTaken { .. } => ErrorCode::NameTaken,
                S::NotFlatlab { .. } => ErrorCode::NotFlatlabDatabase,
                S::NewerSchema { .. } => ErrorCode::NewerDatabase,
                S::Corrupt { .. } | S::BadRevision { .. } => ErrorCode::CorruptDatabase,
                S::CreateDir { .. } | S::Read { .. } => ErrorCode::Io,
                S::Migrate(_) | S::Sqlx(_) => ErrorCode::Internal,
            };
        }
        if let Some(e) = cause.downcast_ref::<flatlab_bootd::Error>() {
            use flatlab_bootd::Error as B;
            use std::io::ErrorKind;
            match e {
                B::Bind { source, .. } | B::Device { source, .. } if source.kind() == ErrorKind::PermissionDenied => {
                    return ErrorCode::NeedsPrivilege;
                }
                B::Bind { source, .. } if source.kind() == ErrorKind::AddrInUse => return ErrorCode::AddressInUse,
                _ => return ErrorCode::Io,
            }
        }
        if let Some(e) = cause.downcast_ref::<flatlab_export::Error>() {
            use flatlab_export::Error as X;
            return match e {
                X::Full { .. } => ErrorCode::DriveFull,
                X::ReadOnly { .. } => ErrorCode::DriveReadOnly,
                X::NoGit => ErrorCode::GitMissing,
                X::BadRecipient(_) => ErrorCode::BadRequest,
                _ => ErrorCode::Io,
            };
        }
        if let Some(e) = cause.downcast_ref::<flatlab_mirror::Error>() {
            use flatlab_mirror::Error as M;
            return match e {
                M::BadSignature(_) | M::Refused { .. } => ErrorCode::BadSignature,
                M::Download { .. } | M::NotFound { .. } => ErrorCode::Network,
                M::Cancelled => ErrorCode::Cancelled,
                M::Key(_) | M::Other(_) => ErrorCode::Internal,
                M::Io { .. } => ErrorCode::Io,
            };
        }
        if cause.downcast_ref::<flatlab_discovery::Error>().is_some() {
            return ErrorCode::Network;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return ErrorCode::Io;
        }
    }
    ErrorCode::Internal
}

/// An error as the desktop UI receives it: a stable code to branch on and a message to show.
/// Read back from the boot-server sidecar's `error` lines, too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// The whole chain of context, one line: `saving plan lab: database error: ...`.
    pub message: String,
}

impl From<&anyhow::Error> for ErrorBody {
    fn from(err: &anyhow::Error) -> Self {
        ErrorBody { code: error_code(err), message: format!("{err:#}") }
    }
}

impl From<anyhow::Error> for ErrorBody {
    fn from(err: anyhow::Error) -> Self {
        ErrorBody::from(&err)
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;

    #[test]
    fn an_error_body_reads_back_as_written_and_an_unknown_code_as_internal() {
        let body = ErrorBody { code: ErrorCode::NeedsPrivilege, message: "TFTP needs port 69".into() };
        let json = serde_json::to_value(&body).expect("encodes");
        assert_eq!(json["code"], "needs_privilege");
        assert_eq!(serde_json::from_value::<ErrorBody>(json).expect("decodes"), body);
        let newer: ErrorBody = serde_json::from_str(r#"{"code":"from_a_newer_build","message":"m"}"#).expect("decodes");
        assert_eq!(newer.code, ErrorCode::Internal);
    }
}
