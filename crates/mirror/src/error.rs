use std::path::PathBuf;

/// What can go wrong while mirroring. Messages name the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the signing key cannot be used: {0}")]
    Key(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("{file}: refused, {reason}; nothing of it was kept")]
    Refused { file: String, reason: String },
    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("{url} is not there (HTTP 404){hint}")]
    NotFound { url: String, hint: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cancelled; what was downloaded so far is kept, and the next fetch resumes from it")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
