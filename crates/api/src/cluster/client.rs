//! A Kubernetes client for a plan's cluster, with a freshly minted admin certificate, and what
//! its failures mean to the user: the API is not there, it refused the certificate, another
//! cluster (another CA) answers at the address, or the cluster's certificate does not fit the
//! address or the clock.

use std::time::Duration;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use rand::Rng;
use serde::Serialize;
use ts_rs::TS;

use crate::{ApiError, Flatlab};

/// How a client reaches the API.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `https://host:port` instead of the plan's API address (a port forwarded by the router, a
    /// VPN address). Its certificate must still be one of the cluster's.
    pub server: Option<String>,
}

/// Whether Flatlab reaches the cluster's API, and if not why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum Reach {
    /// The API answered, as this Kubernetes version.
    Reachable { version: String },
    /// Nothing answered (no route, refused, timed out): the cluster is down or not installed.
    Unreachable { reason: String },
    /// The API did not accept Flatlab's admin certificate.
    CertificateRefused { reason: String },
    /// The API's certificate is not from this plan's server CA: another cluster answers there.
    WrongCluster { reason: String },
    /// The API's certificate is the cluster's but does not fit: another address, or a clock off.
    BadServerCertificate { reason: String },
    /// Flatlab has no keys for this cluster's CAs (installed before Flatlab made them).
    ForeignCa,
}

impl Reach {
    pub fn is_reachable(&self) -> bool {
        matches!(self, Reach::Reachable { .. })
    }
}

/// A connected client and where it points.
pub(crate) struct ClusterClient {
    pub client: kube::Client,
    pub server: String,
}

impl Flatlab {
    /// A client for the plan's cluster, with a new admin certificate.
    pub(crate) async fn cluster_client(
        &self,
        name: &str,
        access: &Access,
        rng: &mut impl Rng,
    ) -> anyhow::Result<ClusterClient> {
        // kube's TLS builder takes the process's default provider; Flatlab builds with ring only.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kc = self.kubeconfig(name, rng).await?;
        let mut config = Kubeconfig::from_yaml(&kc.yaml).context("reading the kubeconfig Flatlab made")?;
        let mut server = kc.server.clone();
        if let Some(s) = &access.server {
            server = normalize_server(s)?;
            for c in &mut config.clusters {
                if let Some(cluster) = c.cluster.as_mut() {
                    cluster.server = Some(server.clone());
                }
            }
        }
        let mut config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .context("reading the kubeconfig Flatlab made")?;
        config.connect_timeout = Some(Duration::from_secs(4));
        config.read_timeout = Some(Duration::from_secs(15));
        config.write_timeout = Some(Duration::from_secs(15));
        // kube retries 429 and 503 answers with backoff for minutes: an eviction a disruption
        // budget refuses (429) would hang a node removal. Flatlab says what was refused instead.
        config.default_retry = false;
        let client = kube::Client::try_from(config).context("making a Kubernetes client")?;
        Ok(ClusterClient { client, server })
    }
}

/// Where a client for `plan` goes with `access`.
pub(crate) fn server_url(plan: &flatlab_model::ValidatedPlan, access: &Access) -> String {
    match access.server.as_deref() {
        Some(s) => normalize_server(s).unwrap_or_else(|_| s.trim().to_owned()),
        None => crate::kubeconfig::api_url(plan),
    }
}

/// `host`, `host:port` or `https://host[:port]` as an API URL.
fn normalize_server(s: &str) -> anyhow::Result<String> {
    let s = s.trim().trim_end_matches('/');
    if s.starts_with("http://") {
        return Err(ApiError::BadRequest(format!("{s}: the Kubernetes API is reached over https only")).into());
    }
    let rest = s.strip_prefix("https://").unwrap_or(s);
    if rest.is_empty() || rest.contains('/') {
        return Err(ApiError::BadRequest(format!("{s} is not an address such as https://10.0.0.11:6443")).into());
    }
    let has_port = match rest.rsplit_once(':') {
        Some((host, port)) => {
            !host.ends_with(':') && port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    Ok(if has_port { format!("https://{rest}") } else { format!("https://{rest}:6443") })
}

/// What a failed API call means, from the errors in its chain.
pub(crate) fn reach_of(err: &anyhow::Error) -> Reach {
    if crate::error_code(err) == crate::ErrorCode::ForeignCa {
        return Reach::ForeignCa;
    }
    for cause in err.chain() {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>()
            && (status.code == 401 || status.code == 403)
        {
            return Reach::CertificateRefused {
                reason: format!("the API answered {}: {}", status.code, status.message),
            };
        }
        if let Some(tls) = tls_error(cause) {
            return match tls {
                rustls::Error::InvalidCertificate(why) => server_certificate(why),
                rustls::Error::AlertReceived(alert) => {
                    Reach::CertificateRefused { reason: format!("the API ended the TLS handshake ({alert:?})") }
                }
                other => Reach::Unreachable { reason: format!("TLS failed: {other}") },
            };
        }
    }
    Reach::Unreachable { reason: short_reason(err) }
}

/// What a server certificate rustls refused means.
fn server_certificate(why: &rustls::CertificateError) -> Reach {
    use rustls::CertificateError as C;
    match why {
        C::UnknownIssuer | C::BadSignature => Reach::WrongCluster {
            reason: format!("its certificate is not signed by this plan's server CA ({why:?})"),
        },
        C::NotValidForName | C::NotValidForNameContext { .. } => Reach::BadServerCertificate {
            reason: "its certificate is not made out for this address: reach it at a node's address or at kubernetes.api_endpoint (K3s's certificate holds those)".into(),
        },
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => Reach::BadServerCertificate {
            reason: "its certificate is expired or not yet valid: check this computer's clock and the node's".into(),
        },
        other => Reach::BadServerCertificate { reason: format!("its certificate was refused ({other:?})") },
    }
}

/// The rustls error in `cause`, also when an `io::Error` carries it.
fn tls_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(e) = cause.downcast_ref::<rustls::Error>() {
        return Some(e);
    }
    // hyper-rustls wraps tokio-rustls's `io::Error` (which carries the rustls error) in another
    // one, and an `io::Error`'s `source()` skips what it carries: look inside each.
    let inner: &(dyn std::error::Error + 'static) = cause.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_error(inner).or_else(|| inner.source().and_then(tls_error))
}

/// The deepest message of the chain, which says what happened (`Connection refused`,
/// `deadline has elapsed`), with the error's first line for context.
fn short_reason(err: &anyhow::Error) -> String {
    let root = err.chain().last().map(|c| c.to_string()).unwrap_or_default();
    let mut io_kind = None;
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
    }
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "nothing listens at the API's port (connection refused)".into(),
        Some(std::io::ErrorKind::TimedOut) => "no answer (timed out)".into(),
        _ if root.contains("elapsed") || root.contains("timed out") => "no answer (timed out)".into(),
        _ => root,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_get_a_scheme_and_the_api_port() {
        assert_eq!(normalize_server("10.0.0.11").expect("ok"), "https://10.0.0.11:6443");
        assert_eq!(normalize_server("https://lab.example:16443/").expect("ok"), "https://lab.example:16443");
        assert_eq!(normalize_server("[fd00::1]:7443").expect("ok"), "https://[fd00::1]:7443");
        assert_eq!(normalize_server("[fd00::1]").expect("ok"), "https://[fd00::1]:6443");
        assert!(normalize_server("http://10.0.0.11").is_err());
        assert!(normalize_server("https://10.0.0.11/api").is_err());
    }
}
