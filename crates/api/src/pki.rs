//! Flatlab's own certificate authorities for a plan's K3s cluster, and what is made from them:
//! the files K3s reads on the first server, the join tokens that pin the server CA, and admin
//! client certificates for kubeconfigs.
//!
//! K3s uses CAs it finds in `/var/lib/rancher/k3s/server/tls/` at its first start (all of them:
//! a missing one it makes itself, and the cluster then has a mixed PKI). Flatlab makes them as
//! K3s would (`pkg/daemons/control/deps/deps.go`, rancher/dynamiclistener `cert.go`): five
//! self-signed ECDSA P-256 CAs, valid ten years, and an RSA 2048 service-account key. Every
//! `notBefore` is a day in the past, so that a node whose clock is behind still accepts them.
//!
//! Keys come from the operating system's random source (through `ring` and `rsa`), not from the
//! generator the use cases are handed: key generation is the one place randomness is not passed
//! in. Times are.

use std::collections::BTreeMap;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Millis;

/// The store's name for a plan's cluster PKI.
pub const PKI: &str = "cluster-pki";
/// The store's name for the secret agents join with (the servers' is [`crate::K3S_TOKEN`]).
pub const AGENT_TOKEN: &str = "k3s-agent-token";

/// The CAs, by their file's stem under `server/tls/`, with the common name K3s gives its own.
const CAS: [(&str, &str); 5] = [
    ("server-ca", "k3s-server-ca"),
    ("client-ca", "k3s-client-ca"),
    ("request-header-ca", "k3s-request-header-ca"),
    ("etcd/peer-ca", "etcd-peer-ca"),
    ("etcd/server-ca", "etcd-server-ca"),
];

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// CAs are valid ten years; client certificates one.
const CA_DAYS: i64 = 3650;
const CLIENT_DAYS: i64 = 365;

/// A plan's cluster PKI as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ClusterPki {
    /// Flatlab's CAs: each file by its path under `/var/lib/rancher/k3s/server/tls/`.
    Flatlab { files: BTreeMap<String, String> },
    /// The cluster was installed before Flatlab made CAs: K3s made its own, which Flatlab does
    /// not have. Nodes join it with the plain token, and no kubeconfig can be made.
    K3sMade,
}

impl ClusterPki {
    /// The file at `path` under `server/tls/`.
    pub fn file(&self, path: &str) -> Option<&str> {
        match self {
            ClusterPki::Flatlab { files } => files.get(path).map(String::as_str),
            ClusterPki::K3sMade => None,
        }
    }

    /// The CA files in the order K3s lists them, for the first server's config.
    pub fn ca_files(&self) -> Vec<(String, String)> {
        match self {
            ClusterPki::Flatlab { files } => files.iter().map(|(p, c)| (p.clone(), c.clone())).collect(),
            ClusterPki::K3sMade => Vec::new(),
        }
    }

    /// The SHA-256 (hex) of `server-ca.crt` exactly as written: what a K10 token pins.
    pub fn server_ca_hash(&self) -> Option<String> {
        self.file("server-ca.crt").map(|pem| hex(&Sha256::digest(pem.as_bytes())))
    }

    /// The full join token of `user` (`server` or `node`) with `secret`:
    /// `K10<server CA hash>::<user>:<secret>`, or the secret alone when K3s made the CA.
    pub fn token(&self, user: &str, secret: &str) -> String {
        match self.server_ca_hash() {
            Some(hash) => format!("K10{hash}::{user}:{secret}"),
            None => secret.to_owned(),
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a PKI always serializes")
    }

    pub(crate) fn from_json(text: &str) -> anyhow::Result<ClusterPki> {
        serde_json::from_str(text).context("the stored cluster PKI cannot be read")
    }
}

/// Lower-case hex, as `sha256sum` and K3s print digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn time(ms: Millis) -> anyhow::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).context("a time out of range")
}

/// A random serial of 16 bytes, positive.
fn serial(rng: &mut impl rand::Rng) -> SerialNumber {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Makes a new PKI at time `now`.
pub fn generate(now: Millis, rng: &mut impl rand::Rng) -> anyhow::Result<ClusterPki> {
    let mut files = BTreeMap::new();
    for (stem, name) in CAS {
        let key = KeyPair::generate().context("making a CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, format!("{name}@{}", now / 1000));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyCertSign];
        params.not_before = time(now - DAY_MS)?;
        params.not_after = time(now + CA_DAYS * DAY_MS)?;
        params.serial_number = Some(serial(rng));
        let cert = params.self_signed(&key).with_context(|| format!("making the {stem} certificate"))?;
        files.insert(format!("{stem}.crt"), cert.pem());
        files.insert(format!("{stem}.key"), key.serialize_pem());
    }
    files.insert("service.key".into(), service_key()?);
    Ok(ClusterPki::Flatlab { files })
}

/// The service-account signing key: RSA 2048, PKCS#1 PEM, as K3s writes its own.
fn service_key() -> anyhow::Result<String> {
    use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).context("making the service-account key")?;
    Ok(key.to_pkcs1_pem(LineEnding::LF).context("writing the service-account key")?.to_string())
}

/// A client certificate and its key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub cert: String,
    pub key: String,
}

/// An admin client certificate signed by the cluster's `client-ca`: `O=system:masters`,
/// `clientAuth`, ECDSA P-256, valid one year from a day before `now`.
pub fn admin_certificate(
    pki: &ClusterPki,
    common_name: &str,
    now: Millis,
    rng: &mut impl rand::Rng,
) -> anyhow::Result<ClientCertificate> {
    let (Some(ca_cert), Some(ca_key)) = (pki.file("client-ca.crt"), pki.file("client-ca.key")) else {
        anyhow::bail!(crate::ApiError::ForeignCa);
    };
    let ca_key = KeyPair::from_pem(ca_key).context("reading the client CA's key")?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert, ca_key).context("reading the client CA")?;
    let key = KeyPair::generate().context("making a client key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, "system:masters");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = time(now - DAY_MS)?;
    params.not_after = time(now + CLIENT_DAYS * DAY_MS)?;
    params.serial_number = Some(serial(rng));
    let cert = params.signed_by(&key, &issuer).context("signing the client certificate")?;
    Ok(ClientCertificate { cert: cert.pem(), key: key.serialize_pem() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_pki_has_every_file_k3s_reads_and_tokens_pin_its_server_ca() {
        let pki = generate(1_700_000_000_000, &mut rand::rngs::StdRng::seed_from_u64(1)).expect("generates");
        let names: Vec<String> = pki.ca_files().into_iter().map(|(p, _)| p).collect();
        let mut wanted: Vec<String> = flatlab_render::CA_FILES.iter().map(|s| s.to_string()).collect();
        wanted.sort();
        assert_eq!(names, wanted);
        assert!(pki.file("service.key").is_some_and(|k| k.starts_with("-----BEGIN RSA PRIVATE KEY-----")));
        assert!(pki.file("server-ca.key").is_some_and(|k| k.starts_with("-----BEGIN PRIVATE KEY-----")));
        let hash = pki.server_ca_hash().expect("hash");
        assert_eq!(hash, hex(&Sha256::digest(pki.file("server-ca.crt").expect("crt").as_bytes())));
        assert_eq!(pki.token("server", "s3cret"), format!("K10{hash}::server:s3cret"));
        assert_eq!(ClusterPki::K3sMade.token("node", "s3cret"), "s3cret");
        assert_eq!(ClusterPki::from_json(&pki.to_json()).expect("reads"), pki);
        let e = admin_certificate(&ClusterPki::K3sMade, "admin", 0, &mut rand::rngs::StdRng::seed_from_u64(1))
            .expect_err("no CA");
        assert_eq!(crate::error_code(&e), crate::ErrorCode::ForeignCa);
    }
}
