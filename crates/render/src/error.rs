/// Why a plan could not be rendered with the given inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no boot token for node `{node}`")]
    MissingNodeToken { node: String },
    #[error("`{url}` is not a usable boot server URL; give one such as http://10.0.0.2:8080, without a trailing slash")]
    BadBaseUrl { url: String },
    #[error(
        "the K3s tokens must be at least 16 letters and digits, or K10<hash>::server:<secret> (::node: for agents)"
    )]
    BadToken,
    #[error(
        "the cluster's certificate authorities are incomplete: K3s needs all of their files, or it makes a mixed PKI"
    )]
    IncompleteCa,
    #[error("the boot token of node `{node}` must be at least 16 letters and digits")]
    BadNodeToken { node: String },
    #[error("`{sha}` is not a SHA-256 checksum (64 hexadecimal digits)")]
    BadSha256 { sha: String },
    #[error(
        "os.version is `current`; installs need a pinned release: set os.version to a release such as 4593.2.5 (`flatlab mirror fetch` resolves and prints the current one)"
    )]
    UnpinnedVersion,
    #[error("Ignition spec `{found}` is not supported; use 3.3.0 (default) or 3.4.0")]
    UnsupportedSpec { found: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
