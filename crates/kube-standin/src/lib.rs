//! A stand-in of a K3s cluster's Kubernetes API, for tests that have no K3s binary.
//!
//! It takes what a real first server has: the CA files in its `config.ign` (Flatlab puts them
//! at `/var/lib/rancher/k3s/server/tls/`) and its `config.yaml`. It serves TLS with a
//! certificate signed by that `server-ca` for exactly the names K3s gives its own (the
//! defaults, the `node-ip` and the `tls-san` of `config.yaml`: nothing a test chooses), and, as
//! kube-apiserver does, finishes the handshake with any client certificate and answers 401
//! `Unauthorized` to one not signed by `client-ca` (or to none). It answers the part of the API
//! that `kubectl get nodes`, Flatlab's cluster view, its upgrades and its node removal use:
//!
//! - discovery (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`, `/version`);
//! - the `kube-system` namespace, whose UID is the cluster's identity (new at every start, as a
//!   cluster made anew; or the one given, as a cluster restored from a snapshot);
//! - nodes: list (as a `Table` when the client asks, as kubectl does), get, merge-patch
//!   (cordon, annotations), delete;
//! - pods by node (`fieldSelector=spec.nodeName=`), evictions;
//! - kured's DaemonSet (its lock annotation), K3s's node-password secrets;
//! - system-upgrade-controller `Plan`s by server-side apply, which it records (and, like the
//!   controller with K3s, moves one node at a time to the Plan's version, servers first).
//!
//! K3s's etcd member controller is played too: a server whose Node gets
//! `etcd.k3s.cattle.io/remove=true` gets `etcd.k3s.cattle.io/removed-node-name`.

pub mod etcd;
pub mod release;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Where K3s reads its CA files.
pub const TLS_DIR: &str = "/var/lib/rancher/k3s/server/tls";

/// A fixture node, as a test describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureNode {
    pub name: String,
    /// `server` or `agent`.
    pub role: String,
    #[serde(default = "yes")]
    pub ready: bool,
    pub kubelet: String,
    pub os_image: String,
    pub ip: String,
    #[serde(default)]
    pub unschedulable: bool,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Names of pods running on it (in namespace `default`, owned by a ReplicaSet).
    #[serde(default)]
    pub pods: Vec<String>,
}

fn yes() -> bool {
    true
}

/// The cluster a test starts with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub nodes: Vec<FixtureNode>,
    /// The node holding kured's reboot lock, if any.
    #[serde(default)]
    pub kured_lock: Option<String>,
    /// Whether system-upgrade-controller runs (its `upgrade.cattle.io` API is there). Without
    /// it, that API group answers 404, as in a cluster installed by an older Flatlab.
    #[serde(default = "yes")]
    pub system_upgrade_controller: bool,
    /// The `upgrade.cattle.io` API is there but answers 503 (a controller's API that is not
    /// serving): the view cannot tell whether an upgrade runs.
    #[serde(default)]
    pub upgrade_api_unavailable: bool,
    /// PodDisruptionBudgets: an eviction that would leave fewer of a budget's pods running than
    /// its `min_available` is refused with 429, as the eviction API does.
    #[serde(default)]
    pub disruption_budgets: Vec<Budget>,
    /// How K3s's etcd member controller takes a server out of etcd once asked: after this many
    /// milliseconds (0: at once)...
    #[serde(default)]
    pub etcd_removal_after_ms: u64,
    /// ... or never (a member that cannot be removed: quorum lost, etcd unhealthy).
    #[serde(default)]
    pub etcd_removal_never: bool,
    /// Snapshots the servers hold already (as K3s's schedule takes them), made with the
    /// cluster's token unless `other_token` says otherwise.
    #[serde(default)]
    pub snapshots: Vec<FixtureSnapshot>,
}

/// A snapshot a fixture's server holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSnapshot {
    /// Its name before `-<node>-<unix>`, such as `etcd-snapshot`.
    #[serde(default = "scheduled")]
    pub name: String,
    pub node: String,
    pub taken_unix: i64,
    /// Made with another server token (a cluster installed with other secrets).
    #[serde(default)]
    pub other_token: bool,
}

fn scheduled() -> String {
    "etcd-snapshot".into()
}

/// A PodDisruptionBudget over some of the fixture's pods (namespace `default`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub name: String,
    pub pods: Vec<String>,
    pub min_available: usize,
}

impl Fixture {
    pub fn from_yaml(text: &str) -> anyhow::Result<Self> {
        serde_yaml_ng::from_str(text).context("reading the fixture")
    }
}

/// How to run the stand-in.
#[derive(Debug, Clone)]
pub struct Options {
    /// The first server's `config.ign`: the cluster's CA files.
    pub config: String,
    /// The `config.ign` of the server it answers as (its `node-ip` goes into the serving
    /// certificate); the first server when none is given.
    pub node_config: Option<String>,
    pub listen: SocketAddr,
    pub fixture: Fixture,
    /// The cluster's identity (the `kube-system` namespace's UID): a new one when none is given,
    /// as for a cluster that was just made.
    pub identity: Option<String>,
    /// Writes each Plan it receives here, as `<name>.json`, and each request line to
    /// `requests.log`.
    pub record: Option<PathBuf>,
    /// How long an upgrade takes per node.
    pub upgrade_step: Duration,
    /// Trust client certificates from this CA (PEM) instead of the config's `client-ca`: a
    /// cluster that does not know the workstation's certificate.
    pub client_ca_override: Option<String>,
}

/// The CA files a first server's config carries.
#[derive(Debug, Clone)]
pub struct CaFiles {
    pub server_ca_crt: String,
    pub server_ca_key: String,
    pub client_ca_crt: String,
    /// `/etc/rancher/k3s/config.yaml`, for the names of the serving certificate.
    pub k3s_config: String,
}

/// A file a rendered `config.ign` writes, as Ignition would write it.
pub fn file_of(config: &str, path: &str) -> anyhow::Result<String> {
    let doc: Value = serde_json::from_str(config).context("the config is not JSON")?;
    let files = doc["storage"]["files"].as_array().cloned().unwrap_or_default();
    let f = files
        .iter()
        .find(|f| f["path"] == path)
        .with_context(|| format!("the config has no {path}: is it the first server's?"))?;
    let source = f["contents"]["source"].as_str().unwrap_or_default();
    let compression = f["contents"]["compression"].as_str();
    flatlab_render::inline_contents(source, compression).with_context(|| format!("cannot read {path}"))
}

/// K3s's configuration file.
pub const K3S_CONFIG: &str = "/etc/rancher/k3s/config.yaml";

/// Reads the CA files out of a first server's `config.ign`, as Ignition would write them.
pub fn ca_files(config: &str) -> anyhow::Result<CaFiles> {
    let file_at = |path: &str| file_of(config, path);
    let file = |name: &str| file_at(&format!("{TLS_DIR}/{name}"));
    Ok(CaFiles {
        server_ca_crt: file("server-ca.crt")?,
        server_ca_key: file("server-ca.key")?,
        client_ca_crt: file("client-ca.crt")?,
        k3s_config: file_at(K3S_CONFIG)?,
    })
}

/// The names K3s puts in its serving certificate: its defaults (`kubernetes.default.svc` and
/// friends, loopback, the service address), the node's `node-ip` and every `tls-san` of its
/// `config.yaml`.
pub fn serving_names(k3s_config: &str) -> anyhow::Result<Vec<String>> {
    let config: BTreeMap<String, serde_yaml_ng::Value> =
        serde_yaml_ng::from_str(k3s_config).context("config.yaml is not YAML")?;
    let mut names: Vec<String> = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        "::1",
        "10.43.0.1",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some(ip) = config.get("node-ip").and_then(|v| v.as_str()) {
        names.push(ip.to_owned());
    }
    for san in config.get("tls-san").and_then(|v| v.as_sequence()).into_iter().flatten() {
        if let Some(s) = san.as_str()
            && !names.iter().any(|n| n == s)
        {
            names.push(s.to_owned());
        }
    }
    Ok(names)
}

/// What the stand-in saw and holds.
#[derive(Debug, Default)]
pub struct Inner {
    pub nodes: Vec<Value>,
    pub pods: Vec<Value>,
    pub plans: BTreeMap<String, Value>,
    pub requests: Vec<String>,
    /// Requests refused with 401 (a client certificate not from `client-ca`, or none).
    pub unauthorized: Vec<String>,
    pub evicted: Vec<String>,
    pub deleted_secrets: Vec<String>,
    pub identity: String,
    kured_lock: Option<String>,
    fixture: Option<Fixture>,
    /// When each server was asked to leave etcd.
    removal_asked: BTreeMap<String, std::time::Instant>,
    /// Every server's snapshots.
    pub snapshots: Vec<etcd::Snapshot>,
    /// Pods created through the API (Flatlab's download pods) that still exist.
    pub created_pods: Vec<Value>,
    /// Every pod ever asked for, as it was asked for.
    pub asked_pods: Vec<Value>,
    /// Snapshot files served through the pod proxy.
    pub served_snapshots: Vec<String>,
    /// The server this stand-in answers as (its `/etc/hostname`).
    pub answers_as: String,
    /// The server token's secret (from `config.yaml`).
    token_secret: String,
}

impl Inner {
    fn fixture(&self) -> &Fixture {
        self.fixture.as_ref().expect("the stand-in starts with its fixture")
    }
}

/// The stand-in's state, shared with the test.
#[derive(Debug, Default)]
pub struct State {
    inner: Mutex<Inner>,
    record: Option<PathBuf>,
}

impl State {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record_request(&self, line: String) {
        if let Some(dir) = &self.record {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("requests.log")) {
                let _ = writeln!(f, "{line}");
            }
        }
        self.lock().requests.push(line);
    }
}

/// A running stand-in; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops it and waits until its address is free again (a dropped one lets go a little later).
    pub async fn stop(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn node_json(n: &FixtureNode, created: &str) -> Value {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), n.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
    ]);
    let mut annotations = n.annotations.clone();
    annotations.insert("k3s.io/internal-ip".into(), n.ip.clone());
    if n.role == "server" {
        for role in ["control-plane", "etcd", "master"] {
            labels.insert(format!("node-role.kubernetes.io/{role}"), "true".into());
        }
        annotations.entry("etcd.k3s.cattle.io/node-name".into()).or_insert_with(|| format!("{}-0c7a5e1f", n.name));
    }
    let ready = if n.ready { "True" } else { "Unknown" };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "uid": format!("00000000-0000-4000-8000-{:012x}", n.name.len() * 7919 + n.name.bytes().map(u64::from).sum::<u64>() as usize),
            "resourceVersion": "1",
            "creationTimestamp": created,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": { "unschedulable": n.unschedulable, "podCIDR": "10.42.0.0/24" },
        "status": {
            "conditions": [{
                "type": "Ready", "status": ready,
                "reason": if n.ready { "KubeletReady" } else { "NodeStatusUnknown" },
                "message": if n.ready { "kubelet is posting ready status" } else { "Kubelet stopped posting node status." },
                "lastHeartbeatTime": created, "lastTransitionTime": created,
            }],
            "addresses": [
                { "type": "InternalIP", "address": n.ip },
                { "type": "Hostname", "address": n.name },
            ],
            "nodeInfo": {
                "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://2.0.2-k3s2",
                "kernelVersion": "6.6.95-flatcar", "kubeProxyVersion": n.kubelet, "kubeletVersion": n.kubelet,
                "machineID": "", "operatingSystem": "linux", "osImage": n.os_image, "systemUUID": "",
            },
        },
    })
}

fn pod_json(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "default", "uid": format!("pod-{name}"),
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-rs"), "uid": "rs", "controller": true }],
        },
        "spec": { "nodeName": node, "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] },
        "status": { "phase": "Running" },
    })
}

/// Starts the stand-in.
pub async fn start(options: Options) -> anyhow::Result<Running> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cas = ca_files(&options.config)?;
    if let Some(ca) = &options.client_ca_override {
        cas.client_ca_crt = ca.clone();
    }
    let listener =
        TcpListener::bind(options.listen).await.with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let sans = match &options.node_config {
        Some(node) => serving_names(&file_of(node, K3S_CONFIG)?)?,
        None => serving_names(&cas.k3s_config)?,
    };
    let (tls, client_check) = tls_config(&cas, &sans)?;
    if let Some(dir) = &options.record {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    }
    let created = "2026-11-20T10:00:00Z";
    let identity = options.identity.clone().unwrap_or_else(new_identity);
    let answers_as = file_of(options.node_config.as_deref().unwrap_or(&options.config), "/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "cp1".into());
    let k3s: BTreeMap<String, serde_yaml_ng::Value> =
        serde_yaml_ng::from_str(&cas.k3s_config).context("config.yaml is not YAML")?;
    let token_secret = etcd::token_secret(k3s.get("token").and_then(|t| t.as_str()).unwrap_or_default()).to_owned();
    let mut inner = Inner {
        kured_lock: options.fixture.kured_lock.clone(),
        fixture: Some(options.fixture.clone()),
        answers_as,
        ..Inner::default()
    };
    let names: Vec<String> = options.fixture.nodes.iter().map(|n| n.name.clone()).collect();
    for f in &options.fixture.snapshots {
        let secret = if f.other_token { "AnotherClustersToken0123456789" } else { token_secret.as_str() };
        inner.snapshots.push(etcd::Snapshot::new(
            &f.name,
            etcd::Header {
                format: etcd::FORMAT.into(),
                identity: identity.clone(),
                token_hash: etcd::token_hash(secret),
                node: f.node.clone(),
                taken_unix: f.taken_unix,
                nodes: names.clone(),
            },
        ));
    }
    inner.identity = identity;
    inner.token_secret = token_secret;
    for n in &options.fixture.nodes {
        inner.nodes.push(node_json(n, created));
        inner.pods.extend(n.pods.iter().map(|p| pod_json(p, &n.name)));
    }
    let state = Arc::new(State { inner: Mutex::new(inner), record: options.record.clone() });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let serve_state = state.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            let state = serve_state.clone();
            let client_check = client_check.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                // As kube-apiserver: the handshake takes any client certificate; one that is not
                // the cluster's (or none) is a request that is not authenticated, answered 401.
                let authenticated = client_check.accepts(tls.get_ref().1.peer_certificates());
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body =
                            http_body_util::BodyExt::collect(body).await.map(|b| b.to_bytes()).unwrap_or_default();
                        if parts.uri.path() == "/db/snapshot" {
                            return Ok(supervisor_snapshot(
                                &state,
                                authenticated,
                                &parts.method,
                                &parts.headers,
                                &body,
                            ));
                        }
                        if !authenticated {
                            state.lock().unauthorized.push(format!("{} {}", parts.method, parts.uri.path()));
                            return Ok::<_, std::convert::Infallible>(status(
                                StatusCode::UNAUTHORIZED,
                                "Unauthorized",
                                "Unauthorized",
                            ));
                        }
                        Ok::<_, std::convert::Infallible>(handle(&state, parts.method, parts.uri, parts.headers, body))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let step_state = state.clone();
    let step = options.upgrade_step;
    let upgrader = tokio::spawn(async move {
        loop {
            tokio::time::sleep(step).await;
            upgrade_one(&step_state);
        }
    });
    Ok(Running { addr, state, tasks: vec![server, upgrader] })
}

/// A new cluster's identity: a version 4 UUID from the system's random source.
fn new_identity() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Accepts any client certificate in the handshake, offering the cluster's client CA; whether
/// the certificate is the cluster's is asked afterwards ([`ClientCheck::accepts`]).
#[derive(Debug)]
struct AnyClientCertificate {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl rustls::server::danger::ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether a client certificate is signed by the cluster's client CA.
#[derive(Debug, Clone)]
struct ClientCheck(Arc<dyn rustls::server::danger::ClientCertVerifier>);

impl ClientCheck {
    fn accepts(&self, chain: Option<&[CertificateDer<'static>]>) -> bool {
        let Some([end_entity, intermediates @ ..]) = chain else { return false };
        self.0.verify_client_cert(end_entity, intermediates, rustls::pki_types::UnixTime::now()).is_ok()
    }
}

fn tls_config(cas: &CaFiles, sans: &[String]) -> anyhow::Result<(rustls::ServerConfig, ClientCheck)> {
    let issuer = Issuer::from_ca_cert_pem(&cas.server_ca_crt, KeyPair::from_pem(&cas.server_ca_key)?)
        .context("reading the server CA")?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    for san in sans {
        params.subject_alt_names.push(match san.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(san.as_str().try_into()?),
        });
    }
    params.distinguished_name.push(DnType::CommonName, "k3s");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(cas.client_ca_crt.as_bytes()).context("reading the client CA")?)?;
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build()?;
    let check = ClientCheck(verifier.clone());
    let chain = vec![cert.der().clone(), CertificateDer::from_pem_slice(cas.server_ca_crt.as_bytes())?];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(AnyClientCertificate { inner: verifier }))
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, check))
}

/// Moves one node to the version its Plan asks for: servers first, one at a time, as the
/// controller does with `concurrency: 1`; agents once every server is done.
fn upgrade_one(state: &State) {
    let mut inner = state.lock();
    let version_of = |inner: &Inner, plan: &str| {
        inner.plans.get(plan).and_then(|p| p["spec"]["version"].as_str().map(str::to_owned))
    };
    let server_version = version_of(&inner, "server-plan");
    let agent_version = version_of(&inner, "agent-plan");
    let is_server = |n: &Value| n["metadata"]["labels"].get("node-role.kubernetes.io/control-plane").is_some();
    let kubelet = |n: &Value| n["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default().to_owned();
    let servers_done =
        server_version.as_deref().is_some_and(|v| inner.nodes.iter().filter(|n| is_server(n)).all(|n| kubelet(n) == v));
    let target = inner.nodes.iter().position(|n| {
        let want =
            if is_server(n) { server_version.as_deref() } else { agent_version.as_deref().filter(|_| servers_done) };
        want.is_some_and(|v| kubelet(n) != v)
    });
    if let Some(i) = target {
        let want = if is_server(&inner.nodes[i]) { server_version } else { agent_version };
        if let Some(v) = want {
            inner.nodes[i]["status"]["nodeInfo"]["kubeletVersion"] = json!(v);
            inner.nodes[i]["status"]["nodeInfo"]["kubeProxyVersion"] = json!(v);
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    json_response(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16(),
        }),
    )
}

fn not_found(what: &str) -> Response {
    status(StatusCode::NOT_FOUND, "NotFound", &format!("{what} not found"))
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({ "apiVersion": "v1", "kind": kind, "metadata": { "resourceVersion": "1" }, "items": items })
}

fn resource(name: &str, kind: &str, namespaced: bool, verbs: &[&str]) -> Value {
    json!({ "name": name, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind, "verbs": verbs })
}

/// The discovery documents; `suc`: whether system-upgrade-controller's API group is there.
fn discovery(path: &str, suc: bool) -> Option<Value> {
    let all = ["create", "delete", "get", "list", "patch", "update", "watch"];
    let mut groups = vec![json!({ "name": "apps", "versions": [{ "groupVersion": "apps/v1", "version": "v1" }],
                  "preferredVersion": { "groupVersion": "apps/v1", "version": "v1" } })];
    groups
        .push(json!({ "name": "k3s.cattle.io", "versions": [{ "groupVersion": "k3s.cattle.io/v1", "version": "v1" }],
              "preferredVersion": { "groupVersion": "k3s.cattle.io/v1", "version": "v1" } }));
    if suc {
        groups.push(json!({ "name": "upgrade.cattle.io", "versions": [{ "groupVersion": "upgrade.cattle.io/v1", "version": "v1" }],
                  "preferredVersion": { "groupVersion": "upgrade.cattle.io/v1", "version": "v1" } }));
    }
    Some(match path {
        "/api" => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443" }],
        }),
        "/api/v1" => json!({
            "kind": "APIResourceList", "groupVersion": "v1",
            "resources": [
                resource("namespaces", "Namespace", false, &all),
                resource("nodes", "Node", false, &all),
                resource("pods", "Pod", true, &all),
                resource("pods/eviction", "Eviction", true, &["create"]),
                resource("secrets", "Secret", true, &all),
            ],
        }),
        "/apis" => json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }),
        "/apis/apps/v1" => json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
            "resources": [resource("daemonsets", "DaemonSet", true, &all)],
        }),
        "/apis/k3s.cattle.io/v1" => json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "k3s.cattle.io/v1",
            "resources": [resource("etcdsnapshotfiles", "ETCDSnapshotFile", false, &all)],
        }),
        "/apis/upgrade.cattle.io/v1" if suc => json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "upgrade.cattle.io/v1",
            "resources": [resource("plans", "Plan", true, &all)],
        }),
        "/version" => json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.2+k3s1", "gitCommit": "standin",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
            "compiler": "gc", "platform": "linux/amd64",
        }),
        _ => return None,
    })
}

fn node_roles(n: &Value) -> String {
    let labels = n["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    let roles: Vec<&str> = labels.keys().filter_map(|k| k.strip_prefix("node-role.kubernetes.io/")).collect();
    if roles.is_empty() { "<none>".into() } else { roles.join(",") }
}

fn nodes_table(nodes: &[Value]) -> Value {
    let rows: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let ready = n["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| c["status"] == "True")
                .unwrap_or(false);
            let mut status = if ready { "Ready".to_owned() } else { "NotReady".to_owned() };
            if n["spec"]["unschedulable"] == true {
                status.push_str(",SchedulingDisabled");
            }
            let ip = n["status"]["addresses"][0]["address"].clone();
            json!({
                "cells": [n["metadata"]["name"], status, node_roles(n), "11d", n["status"]["nodeInfo"]["kubeletVersion"],
                          ip, "<none>", n["status"]["nodeInfo"]["osImage"], n["status"]["nodeInfo"]["kernelVersion"],
                          n["status"]["nodeInfo"]["containerRuntimeVersion"]],
                "object": { "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": n["metadata"] },
            })
        })
        .collect();
    let col = |name: &str, format: &str, priority: u8| json!({ "name": name, "type": "string", "format": format, "description": "", "priority": priority });
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": { "resourceVersion": "1" },
        "columnDefinitions": [
            col("Name", "name", 0), col("Status", "", 0), col("Roles", "", 0), col("Age", "", 0), col("Version", "", 0),
            col("Internal-IP", "", 1), col("External-IP", "", 1), col("OS-Image", "", 1), col("Kernel-Version", "", 1),
            col("Container-Runtime", "", 1),
        ],
        "rows": rows,
    })
}

fn query_param(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// Applies a JSON merge patch (RFC 7386).
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// K3s's etcd member controller: a server asked to leave etcd has left it once the fixture's
/// delay has passed (or never, as the fixture says).
fn play_member_controller(inner: &mut Inner) {
    let (after, never) = (inner.fixture().etcd_removal_after_ms, inner.fixture().etcd_removal_never);
    let now = std::time::Instant::now();
    let asked = &mut inner.removal_asked;
    for node in &mut inner.nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let annotations = &mut node["metadata"]["annotations"];
        if annotations.get("etcd.k3s.cattle.io/remove").and_then(Value::as_str) != Some("true") {
            continue;
        }
        let since = *asked.entry(name).or_insert(now);
        if never || now.duration_since(since) < Duration::from_millis(after) {
            continue;
        }
        let member = annotations.get("etcd.k3s.cattle.io/node-name").cloned().unwrap_or(json!(""));
        annotations["etcd.k3s.cattle.io/removed-node-name"] = member;
    }
}

/// The eviction API's refusal when a disruption budget does not allow it, if one does not.
fn budget_refusal(inner: &Inner, ns: &str, pod: &str) -> Option<Response> {
    if ns != "default" {
        return None;
    }
    let budget = inner.fixture().disruption_budgets.iter().find(|b| b.pods.iter().any(|p| p == pod))?;
    let running = inner
        .pods
        .iter()
        .filter(|p| p["metadata"]["namespace"] == "default")
        .filter(|p| budget.pods.iter().any(|b| p["metadata"]["name"] == b.as_str()))
        .count();
    if running > budget.min_available {
        return None;
    }
    Some(json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests",
            "details": { "causes": [{
                "reason": "DisruptionBudget",
                "message": format!("The disruption budget {} needs {} healthy pods and has {running} currently", budget.name, budget.min_available),
            }] },
            "code": 429,
        }),
    ))
}

fn handle(state: &State, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    state.record_request(format!("{method} {}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")));
    let suc = state.lock().fixture().system_upgrade_controller;
    if method == Method::GET
        && let Some(doc) = discovery(&path, suc)
    {
        return json_response(StatusCode::OK, &doc);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut inner = state.lock();
    if !inner.fixture().system_upgrade_controller && path.starts_with("/apis/upgrade.cattle.io") {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
    }
    if inner.fixture().upgrade_api_unavailable && path.starts_with("/apis/upgrade.cattle.io/v1/") {
        return status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        );
    }
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["api", "v1", "namespaces", "kube-system"]) => json_response(
            StatusCode::OK,
            &json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": "kube-system", "uid": inner.identity, "resourceVersion": "4",
                    "creationTimestamp": "2026-11-20T10:00:00Z",
                    "labels": { "kubernetes.io/metadata.name": "kube-system" },
                },
                "spec": { "finalizers": ["kubernetes"] },
                "status": { "phase": "Active" },
            }),
        ),
        (Method::GET, ["apis", "k3s.cattle.io", "v1", "etcdsnapshotfiles"]) => {
            let mut l = list("ETCDSnapshotFileList", inner.snapshots.iter().map(etcd::Snapshot::resource).collect());
            l["apiVersion"] = json!("k3s.cattle.io/v1");
            json_response(StatusCode::OK, &l)
        }
        (Method::POST, ["api", "v1", "namespaces", "kube-system", "pods"]) => create_pod(&mut inner, &body),
        (Method::GET, ["api", "v1", "namespaces", "kube-system", "pods", name]) => {
            match inner.created_pods.iter().find(|p| p["metadata"]["name"] == *name) {
                Some(p) => json_response(StatusCode::OK, p),
                None => not_found(&format!("pods \"{name}\"")),
            }
        }
        (Method::DELETE, ["api", "v1", "namespaces", "kube-system", "pods", name]) => {
            match inner.created_pods.iter().position(|p| p["metadata"]["name"] == *name) {
                Some(i) => {
                    let mut pod = inner.created_pods.remove(i);
                    pod["metadata"]["deletionTimestamp"] = json!("2026-12-07T00:00:00Z");
                    json_response(StatusCode::OK, &pod)
                }
                None => not_found(&format!("pods \"{name}\"")),
            }
        }
        (Method::GET, ["api", "v1", "namespaces", "kube-system", "pods", target, "proxy", file]) => {
            proxy_to_pod(&mut inner, target, file)
        }
        (Method::GET, ["api", "v1", "nodes"]) => {
            if accept.contains("as=Table") {
                json_response(StatusCode::OK, &nodes_table(&inner.nodes))
            } else {
                json_response(StatusCode::OK, &list("NodeList", inner.nodes.clone()))
            }
        }
        (Method::GET, ["api", "v1", "nodes", name]) => {
            play_member_controller(&mut inner);
            match inner.nodes.iter().find(|n| n["metadata"]["name"] == *name) {
                Some(n) => json_response(StatusCode::OK, n),
                None => not_found(&format!("nodes \"{name}\"")),
            }
        }
        (Method::PATCH, ["api", "v1", "nodes", name]) => {
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "the patch is not JSON");
            };
            if !content_type.starts_with("application/merge-patch+json")
                && !content_type.starts_with("application/strategic-merge-patch+json")
            {
                return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", "merge patches only");
            }
            let Some(node) = inner.nodes.iter_mut().find(|n| n["metadata"]["name"] == *name) else {
                return not_found(&format!("nodes \"{name}\""));
            };
            merge_patch(node, &patch);
            play_member_controller(&mut inner);
            match inner.nodes.iter().find(|n| n["metadata"]["name"] == *name) {
                Some(n) => json_response(StatusCode::OK, n),
                None => not_found(&format!("nodes \"{name}\"")),
            }
        }
        (Method::DELETE, ["api", "v1", "nodes", name]) => {
            let Some(i) = inner.nodes.iter().position(|n| n["metadata"]["name"] == *name) else {
                return not_found(&format!("nodes \"{name}\""));
            };
            let node = inner.nodes.remove(i);
            json_response(StatusCode::OK, &node)
        }
        (Method::GET, ["api", "v1", "pods"]) => {
            let on =
                query_param(&uri, "fieldSelector").and_then(|s| s.strip_prefix("spec.nodeName=").map(str::to_owned));
            let pods = inner
                .pods
                .iter()
                .filter(|p| on.as_deref().is_none_or(|node| p["spec"]["nodeName"] == node))
                .cloned()
                .collect();
            json_response(StatusCode::OK, &list("PodList", pods))
        }
        (Method::POST, ["api", "v1", "namespaces", ns, "pods", name, "eviction"]) => {
            let Some(i) =
                inner.pods.iter().position(|p| p["metadata"]["name"] == *name && p["metadata"]["namespace"] == *ns)
            else {
                return not_found(&format!("pods \"{name}\""));
            };
            if let Some(refused) = budget_refusal(&inner, ns, name) {
                return refused;
            }
            inner.pods.remove(i);
            inner.evicted.push(format!("{ns}/{name}"));
            json_response(StatusCode::CREATED, &json!({ "kind": "Status", "apiVersion": "v1", "status": "Success" }))
        }
        (Method::DELETE, ["api", "v1", "namespaces", "kube-system", "secrets", name]) => {
            if !name.ends_with(".node-password.k3s") {
                return not_found(&format!("secrets \"{name}\""));
            }
            inner.deleted_secrets.push((*name).to_owned());
            json_response(StatusCode::OK, &json!({ "kind": "Status", "apiVersion": "v1", "status": "Success" }))
        }
        (Method::GET, ["apis", "apps", "v1", "namespaces", "kube-system", "daemonsets", "kured"]) => {
            let mut annotations = serde_json::Map::new();
            if let Some(node) = &inner.kured_lock {
                let lock = json!({ "nodeID": node, "metadata": { "unschedulable": false }, "created": "2026-11-30T03:00:00Z", "TTL": 0 });
                annotations.insert("weave.works/kured-node-lock".into(), json!(lock.to_string()));
            }
            let metadata = json!({ "name": "kured", "namespace": "kube-system", "annotations": annotations });
            if accept.contains("as=PartialObjectMetadata") {
                json_response(
                    StatusCode::OK,
                    &json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata }),
                )
            } else {
                status(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", "the stand-in serves kured's metadata only")
            }
        }
        (Method::GET, ["apis", "upgrade.cattle.io", "v1", "namespaces", "system-upgrade", "plans"]) => {
            let mut l = list("PlanList", inner.plans.values().cloned().collect());
            l["apiVersion"] = json!("upgrade.cattle.io/v1");
            json_response(StatusCode::OK, &l)
        }
        (Method::GET, ["apis", "upgrade.cattle.io", "v1", "namespaces", "system-upgrade", "plans", name]) => {
            match inner.plans.get(*name) {
                Some(p) => json_response(StatusCode::OK, p),
                None => not_found(&format!("plans.upgrade.cattle.io \"{name}\"")),
            }
        }
        (Method::PATCH, ["apis", "upgrade.cattle.io", "v1", "namespaces", "system-upgrade", "plans", name]) => {
            if !content_type.starts_with("application/apply-patch+yaml") {
                return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", "server-side apply only");
            }
            if query_param(&uri, "fieldManager").is_none() {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "fieldManager is required for apply patch");
            }
            let plan: Value = match serde_yaml_ng::from_slice(&body) {
                Ok(p) => p,
                Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
            };
            if plan["metadata"]["name"] != *name || plan["kind"] != "Plan" {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "the body is not this Plan");
            }
            if let Err(e) = record_plan(state, name, &plan) {
                return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e.to_string());
            }
            inner.plans.insert((*name).to_owned(), plan.clone());
            json_response(StatusCode::OK, &plan)
        }
        _ => {
            drop(inner);
            status(StatusCode::NOT_FOUND, "NotFound", &format!("the stand-in does not serve {method} {path}"))
        }
    }
}

fn record_plan(state: &State, name: &str, plan: &Value) -> anyhow::Result<()> {
    let Some(dir) = &state.record else { return Ok(()) };
    if name.contains('/') || name.contains("..") {
        bail!("bad name");
    }
    std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(plan)?)?;
    Ok(())
}

/// K3s's supervisor `/db/snapshot` (on the API's port, as K3s serves it): only K3s's `server`
/// user with the server token's secret (basic auth) may ask; the admin certificate gets 403.
fn supervisor_snapshot(state: &State, admin: bool, method: &Method, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut inner = state.lock();
    inner.requests.push(format!("{method} /db/snapshot"));
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    match basic.as_deref().and_then(|b| b.split_once(':')) {
        Some(("server", secret)) if !inner.token_secret.is_empty() && secret == inner.token_secret => {}
        Some(_) => return status(StatusCode::UNAUTHORIZED, "Unauthorized", "not authorized"),
        None if admin => return status(StatusCode::FORBIDDEN, "Forbidden", "forbidden"),
        None => return status(StatusCode::UNAUTHORIZED, "Unauthorized", "not authorized"),
    }
    if *method != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "POST only");
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "etcd-snapshot error ID 1");
    };
    if request["operation"] != "save" {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "the stand-in takes snapshots only (save)");
    }
    let name = request["name"][0].as_str().unwrap_or("etcd-snapshot").to_owned();
    let taken = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut taken = i64::try_from(taken).unwrap_or(0);
    // One per second per name and node, as K3s's names are.
    while inner.snapshots.iter().any(|s| s.file == format!("{name}-{}-{taken}", inner.answers_as)) {
        taken += 1;
    }
    let header = etcd::Header {
        format: etcd::FORMAT.into(),
        identity: inner.identity.clone(),
        token_hash: etcd::token_hash(&inner.token_secret),
        node: inner.answers_as.clone(),
        taken_unix: taken,
        nodes: inner.nodes.iter().filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned)).collect(),
    };
    let snapshot = etcd::Snapshot::new(&name, header);
    let file = snapshot.file.clone();
    inner.snapshots.push(snapshot);
    json_response(StatusCode::OK, &json!({ "created": [file] }))
}

/// A pod Flatlab asks for: it runs at once when it is pinned to a node the cluster has and
/// mounts a file that node holds; it waits for a file that is not there, as the kubelet does
/// with a `hostPath` of type `File`.
fn create_pod(inner: &mut Inner, body: &Bytes) -> Response {
    let Ok(mut pod) = serde_json::from_slice::<Value>(body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "the pod is not JSON");
    };
    inner.asked_pods.push(pod.clone());
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    if inner.created_pods.iter().any(|p| p["metadata"]["name"] == name.as_str()) {
        return status(StatusCode::CONFLICT, "AlreadyExists", &format!("pods \"{name}\" already exists"));
    }
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_owned();
    let files: Vec<String> = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["hostPath"]["path"].as_str().map(str::to_owned))
        .collect();
    let there = |f: &String| inner.snapshots.iter().any(|s| s.header.node == node && s.path() == *f);
    let ready = inner.nodes.iter().any(|n| n["metadata"]["name"] == node.as_str()) && files.iter().all(there);
    let state = if ready {
        json!({ "running": { "startedAt": "2026-12-07T00:00:00Z" } })
    } else {
        json!({ "waiting": { "reason": "ContainerCreating" } })
    };
    pod["metadata"]["namespace"] = json!("kube-system");
    pod["metadata"]["uid"] = json!(format!("pod-{name}"));
    pod["status"] = json!({
        "phase": if ready { "Running" } else { "Pending" },
        "podIP": "10.42.0.99",
        "containerStatuses": [{ "name": "serve", "ready": ready, "restartCount": 0, "image": pod["spec"]["containers"][0]["image"], "imageID": "", "state": state }],
    });
    inner.created_pods.push(pod.clone());
    json_response(StatusCode::CREATED, &pod)
}

/// The API server's proxy to a pod's port: a download pod's `/sha256` and `/snapshot`.
fn proxy_to_pod(inner: &mut Inner, target: &str, file: &str) -> Response {
    let Some((name, "8080")) = target.split_once(':') else {
        return status(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "no endpoints available");
    };
    let Some(pod) = inner.created_pods.iter().find(|p| p["metadata"]["name"] == name) else {
        return not_found(&format!("pods \"{name}\""));
    };
    if pod["status"]["phase"] != "Running" {
        return status(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "the pod is not running");
    }
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_owned();
    let path = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|v| v["hostPath"]["path"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let Some(snapshot) = inner.snapshots.iter().find(|s| s.header.node == node && s.path() == path).cloned() else {
        return status(StatusCode::BAD_GATEWAY, "BadGateway", "the pod has no file");
    };
    match file {
        "sha256" => {
            (StatusCode::OK, format!("{}\n", etcd::hex(&<sha2::Sha256 as sha2::Digest>::digest(&snapshot.bytes))))
                .into_response()
        }
        "snapshot" => {
            inner.served_snapshots.push(snapshot.file.clone());
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], snapshot.bytes).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "404 Not Found\n").into_response(),
    }
}
