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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub nodes: Vec<FixtureNode>,
    /// The node holding kured's reboot lock, if any.
    #[serde(default)]
    pub kured_lock: Option<String>,
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
    let mut inner = Inner { kured_lock: options.fixture.kured_lock.clone(), identity, ..Inner::default() };
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

fn discovery(path: &str) -> Option<Value> {
    let all = ["create", "delete", "get", "list", "patch", "update", "watch"];
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
        "/apis" => json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [
                { "name": "apps", "versions": [{ "groupVersion": "apps/v1", "version": "v1" }],
                  "preferredVersion": { "groupVersion": "apps/v1", "version": "v1" } },
                { "name": "upgrade.cattle.io", "versions": [{ "groupVersion": "upgrade.cattle.io/v1", "version": "v1" }],
                  "preferredVersion": { "groupVersion": "upgrade.cattle.io/v1", "version": "v1" } },
            ],
        }),
        "/apis/apps/v1" => json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
            "resources": [resource("daemonsets", "DaemonSet", true, &all)],
        }),
        "/apis/upgrade.cattle.io/v1" => json!({
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

/// K3s's etcd member controller: a server asked to leave etcd has left it.
fn play_member_controller(node: &mut Value) {
    let annotations = &mut node["metadata"]["annotations"];
    if annotations.get("etcd.k3s.cattle.io/remove").and_then(Value::as_str) == Some("true") {
        let member = annotations.get("etcd.k3s.cattle.io/node-name").cloned().unwrap_or(json!(""));
        annotations["etcd.k3s.cattle.io/removed-node-name"] = member;
    }
}

fn handle(state: &State, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    state.record_request(format!("{method} {}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")));
    if method == Method::GET
        && let Some(doc) = discovery(&path)
    {
        return json_response(StatusCode::OK, &doc);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut inner = state.lock();
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
        (Method::GET, ["api", "v1", "nodes"]) => {
            if accept.contains("as=Table") {
                json_response(StatusCode::OK, &nodes_table(&inner.nodes))
            } else {
                json_response(StatusCode::OK, &list("NodeList", inner.nodes.clone()))
            }
        }
        (Method::GET, ["api", "v1", "nodes", name]) => {
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
            play_member_controller(node);
            json_response(StatusCode::OK, node)
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
