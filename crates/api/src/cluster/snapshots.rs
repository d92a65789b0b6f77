//! The cluster's etcd snapshots, through the Kubernetes API only: K3s lists them as
//! `ETCDSnapshotFile` resources; a snapshot is taken by K3s's supervisor (`POST /db/snapshot` on
//! a server's port 6443, with the server token's secret, as `k3s etcd-snapshot save` does); and
//! one is copied to the workstation from a short-lived pod pinned to its server, with that one
//! file mounted read-only, streamed through the API server's pod proxy and checked by its
//! SHA-256. Copies are kept beside the database (`snapshots/<plan>/`), each with what Flatlab
//! knows of it: its hash, its cluster's identity, the K3s version that made it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use ts_rs::TS;

use super::client::{Access, Reach, reach_of, server_url};
use crate::pki::ClusterPki;
use crate::pki::hex;
use crate::{ApiError, Flatlab, K3S_TOKEN, Millis};

/// The annotation K3s puts on a snapshot: the first 12 hex digits of the SHA-256 of the server
/// token's secret it was made with (a restore needs that token).
const TOKEN_HASH: &str = "etcd.k3s.cattle.io/snapshot-token-hash";
/// The file that describes a downloaded copy, beside it.
const META_SUFFIX: &str = ".flatlab.json";
/// How long the download pod may live at most.
const POD_DEADLINE_SECS: i64 = 1800;

/// One snapshot as the cluster lists it, with the copy on this workstation if there is one.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SnapshotView {
    /// The snapshot's file name, such as `etcd-snapshot-cp1-1764993600`.
    pub name: String,
    /// The server that holds it.
    pub node: String,
    /// Where K3s keeps it (`file:///var/lib/rancher/k3s/server/db/snapshots/…`, or `s3://…`).
    pub location: String,
    #[ts(type = "number | null")]
    pub size_bytes: Option<u64>,
    #[ts(type = "number | null")]
    pub created_at: Option<Millis>,
    /// K3s finished it (`readyToUse`).
    pub ready: bool,
    /// Why K3s failed to make it.
    pub error: Option<String>,
    /// Whether it was made with the plan's server token (none: K3s did not say), which a
    /// restore needs.
    pub token_matches: Option<bool>,
    /// K3s's token hash annotation: the first 12 hex digits of the SHA-256 of the token's secret.
    pub token_hash: Option<String>,
    /// The copy on this workstation.
    pub downloaded: Option<DownloadedSnapshot>,
}

/// A snapshot copied to this workstation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DownloadedSnapshot {
    pub name: String,
    pub node: String,
    pub path: PathBuf,
    pub sha256: String,
    #[ts(type = "number")]
    pub size_bytes: u64,
    #[ts(type = "number | null")]
    pub created_at: Option<Millis>,
    #[ts(type = "number")]
    pub downloaded_at: Millis,
    /// The identity of the cluster it came from (its `kube-system` namespace's UID).
    pub identity: Option<String>,
    /// The K3s version of the server it came from.
    pub k3s_version: Option<String>,
    /// K3s's token hash annotation (see [`SnapshotView::token_matches`]).
    pub token_hash: Option<String>,
}

/// The cluster's snapshots and the workstation's copies.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SnapshotList {
    pub plan: String,
    pub server: String,
    pub reach: Reach,
    /// Newest first.
    pub snapshots: Vec<SnapshotView>,
    /// Copies of snapshots the cluster no longer lists (or that were made while it was down),
    /// newest first: what a restore can use when the cluster is gone.
    pub local_only: Vec<DownloadedSnapshot>,
}

/// A snapshot K3s took on request.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TakenSnapshot {
    /// The server that took it.
    pub server: String,
    /// Its file names, as K3s answered.
    pub files: Vec<String>,
}

#[derive(Deserialize)]
struct SaveResult {
    #[serde(default)]
    created: Vec<String>,
}

fn snapshot_resource() -> ApiResource {
    ApiResource {
        group: "k3s.cattle.io".into(),
        version: "v1".into(),
        api_version: "k3s.cattle.io/v1".into(),
        kind: "ETCDSnapshotFile".into(),
        plural: "etcdsnapshotfiles".into(),
    }
}

/// The token hash K3s puts on snapshots made with this server token secret.
pub(crate) fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))[..12].to_owned()
}

/// A snapshot name K3s accepts, from what Flatlab is about to do.
pub(crate) fn snapshot_label(what: &str) -> String {
    let mut out = String::from("flatlab-");
    for c in what.chars() {
        out.push(if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' });
    }
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_end_matches('-').chars().take(60).collect()
}

fn parse_time(text: Option<&str>) -> Option<Millis> {
    let t = time::OffsetDateTime::parse(text?, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

/// The size K3s gives (a resource quantity: plain bytes, as K3s writes it).
fn parse_size(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// The busybox image K3s's own local-path-provisioner uses (in K3s's air-gap images), for the
/// download pod: present on nodes that imported the air-gap tarball.
fn busybox_image(k3s_version: Option<&str>) -> &'static str {
    let old = k3s_version.and_then(flatlab_model::K3sVersion::parse).is_some_and(|v| {
        let (minor, patch) = (v.minor, v.patch);
        minor < 32 || (minor == 32 && patch < 11)
    });
    if old { "rancher/mirrored-library-busybox:1.36.1" } else { "rancher/mirrored-library-busybox:1.37.0" }
}

impl Flatlab {
    /// Where the plan's downloaded snapshots are kept: beside the database.
    pub fn snapshot_dir(&self, name: &str) -> PathBuf {
        self.db_path().parent().unwrap_or(Path::new(".")).join("snapshots").join(name)
    }

    /// The copies of the plan's snapshots on this workstation, newest first.
    pub fn downloaded_snapshots(&self, name: &str) -> anyhow::Result<Vec<DownloadedSnapshot>> {
        let dir = self.snapshot_dir(name);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", dir.display()))),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.to_string_lossy().ends_with(META_SUFFIX) {
                continue;
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            match serde_json::from_str::<DownloadedSnapshot>(&text) {
                Ok(mut d) => {
                    // The folder may have moved with the database.
                    d.path = dir.join(&d.name);
                    if d.path.is_file() {
                        out.push(d);
                    }
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring a snapshot description"),
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.downloaded_at.cmp(&a.downloaded_at)));
        Ok(out)
    }

    /// A client for K3s's supervisor on a server (its port 6443, where `/db/snapshot` is), that
    /// authenticates as K3s's `server` user with the server token's secret.
    async fn supervisor_client(
        &self,
        name: &str,
        access: &Access,
        rng: &mut impl Rng,
    ) -> anyhow::Result<(kube::Client, String)> {
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let pki = self.cluster_pki(name, rng).await?;
        let ClusterPki::Flatlab { .. } = &pki else { return Err(ApiError::ForeignCa.into()) };
        let server_ca = pki.file("server-ca.crt").context("the cluster has no server CA")?;
        let secret = self.store().secret(name, K3S_TOKEN).await?.context("the plan has no server token")?;
        let server = server_url(&plan, access);
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let yaml = serde_json::to_string(&json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{ "name": name, "cluster": { "server": server, "certificate-authority-data": b64(server_ca) } }],
            "users": [{ "name": "k3s-server", "user": { "username": "server", "password": secret } }],
            "contexts": [{ "name": name, "context": { "cluster": name, "user": "k3s-server" } }],
            "current-context": name,
        }))?;
        let kc = Kubeconfig::from_yaml(&yaml).context("reading the supervisor's client config")?;
        let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .context("reading the supervisor's client config")?;
        config.connect_timeout = Some(Duration::from_secs(4));
        config.read_timeout = Some(Duration::from_secs(150));
        config.default_retry = false;
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok((kube::Client::try_from(config).context("making a client")?, server))
    }

    /// Asks K3s on a server (the API endpoint, or `access`) to take an etcd snapshot now, named
    /// after `what` (`before upgrade to v1.33.4+k3s1`), as `k3s etcd-snapshot save` does: on-demand
    /// snapshots are kept until deleted (retention does not prune them).
    pub async fn take_snapshot(
        &self,
        name: &str,
        what: &str,
        access: &Access,
        rng: &mut impl Rng,
    ) -> anyhow::Result<TakenSnapshot> {
        let (client, server) = self.supervisor_client(name, access, rng).await?;
        let label = snapshot_label(what);
        let body = serde_json::to_vec(&json!({ "operation": "save", "name": [label], "retention": 0 }))?;
        let request = http::Request::post("/db/snapshot")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .context("making the snapshot request")?;
        let answer = client.request_text(request).await.map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 401 || s.code == 403 => anyhow::Error::new(ApiError::ClusterUnreachable {
                server: server.clone(),
                reach: Reach::CertificateRefused {
                    reason: format!(
                        "K3s refused the plan's server token ({}): the cluster was installed with another token",
                        s.code
                    ),
                },
            }),
            kube::Error::Api(s) if s.code == 400 => anyhow::Error::new(ApiError::BadRequest(format!(
                "K3s at {server} takes no etcd snapshots ({}): its datastore is not etcd",
                s.message
            ))),
            _ => {
                let reach = reach_of(&anyhow::Error::new(kube_error_copy(&e)));
                anyhow::Error::new(ApiError::ClusterUnreachable { server: server.clone(), reach })
            }
        })?;
        let result: SaveResult = serde_json::from_str(&answer)
            .with_context(|| format!("K3s answered the snapshot request with {answer}"))?;
        if result.created.is_empty() {
            bail!("K3s at {server} took no snapshot (it answered {answer})");
        }
        Ok(TakenSnapshot { server, files: result.created })
    }

    /// The cluster's snapshots (every server's, as `ETCDSnapshotFile` resources) and the
    /// workstation's copies. An API that does not answer is a state (`reach`), not an error.
    pub async fn cluster_snapshots(
        &self,
        name: &str,
        access: &Access,
        rng: &mut impl Rng,
    ) -> anyhow::Result<SnapshotList> {
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let downloaded = self.downloaded_snapshots(name)?;
        let mut list = SnapshotList {
            plan: name.to_owned(),
            server: server_url(&plan, access),
            reach: Reach::ForeignCa,
            snapshots: Vec::new(),
            local_only: Vec::new(),
        };
        let secret = self.store().secret(name, K3S_TOKEN).await?;
        let items = match self.cluster_client(name, access, rng).await {
            Ok(cc) => {
                list.server = cc.server.clone();
                match self.listed_snapshots(name, &cc.client).await {
                    Ok(items) => {
                        list.reach = Reach::Reachable { version: String::new() };
                        items
                    }
                    Err(e) => {
                        list.reach = reach_of(&e);
                        Vec::new()
                    }
                }
            }
            Err(e) => {
                list.reach = reach_of(&e);
                Vec::new()
            }
        };
        for item in items {
            let spec = &item.data["spec"];
            let status = &item.data["status"];
            let token = item.metadata.annotations.as_ref().and_then(|a| a.get(TOKEN_HASH)).cloned();
            let name = spec["snapshotName"].as_str().unwrap_or_default().to_owned();
            let node = spec["nodeName"].as_str().unwrap_or_default().to_owned();
            let copy = downloaded.iter().find(|d| d.name == name && d.node == node).cloned();
            list.snapshots.push(SnapshotView {
                location: spec["location"].as_str().unwrap_or_default().to_owned(),
                size_bytes: parse_size(&status["size"]),
                created_at: parse_time(status["creationTime"].as_str()),
                ready: status["readyToUse"].as_bool().unwrap_or(false),
                error: status["error"]["message"].as_str().map(str::to_owned),
                token_matches: match (&token, &secret) {
                    (Some(t), Some(s)) => Some(*t == token_hash(s)),
                    _ => None,
                },
                token_hash: token,
                downloaded: copy,
                name,
                node,
            });
        }
        list.snapshots.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.name.cmp(&b.name)));
        list.local_only = downloaded
            .into_iter()
            .filter(|d| !list.snapshots.iter().any(|s| s.name == d.name && s.node == d.node))
            .collect();
        Ok(list)
    }

    /// The `ETCDSnapshotFile`s, after checking that the API is the plan's cluster.
    async fn listed_snapshots(&self, name: &str, client: &kube::Client) -> anyhow::Result<Vec<DynamicObject>> {
        let uid = super::kube_system_uid(client).await?;
        if let super::Identity::Other { found, recorded } = self.check_identity(name, &uid).await? {
            return Err(ApiError::AnotherCluster(super::Identity::other_reason(&found, &recorded)).into());
        }
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &snapshot_resource());
        Ok(api.list(&ListParams::default()).await?.items)
    }

    /// Copies snapshot `snapshot` (its file name) to the workstation, through the API: a pod
    /// pinned to its server serves that one file (mounted read-only) for as long as the copy
    /// takes, and the copy is kept only when its SHA-256 is the one the pod computed there.
    /// `progress` hears (bytes so far, bytes in all).
    pub async fn download_snapshot(
        &self,
        name: &str,
        snapshot: &str,
        access: &Access,
        rng: &mut impl Rng,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> anyhow::Result<DownloadedSnapshot> {
        let list = self.cluster_snapshots(name, access, rng).await?;
        if !list.reach.is_reachable() {
            return Err(ApiError::ClusterUnreachable { server: list.server, reach: list.reach }.into());
        }
        let Some(view) = list.snapshots.iter().find(|s| s.name == snapshot) else {
            return Err(ApiError::BadRequest(format!(
                "the cluster has no snapshot {snapshot} (`flatlab cluster snapshots {name}` lists them)"
            ))
            .into());
        };
        if !view.ready {
            return Err(ApiError::BadRequest(format!(
                "snapshot {snapshot} is not ready: {}",
                view.error.as_deref().unwrap_or("K3s has not finished it")
            ))
            .into());
        }
        let Some(file) = view.location.strip_prefix("file://") else {
            return Err(ApiError::BadRequest(format!(
                "snapshot {snapshot} is at {}, not on a server's disk: Flatlab copies local snapshots only",
                view.location
            ))
            .into());
        };
        let cc = self.cluster_client(name, access, rng).await?;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cc.client.clone());
        let kubelet = nodes.get_opt(&view.node).await?.and_then(|n| n.status?.node_info.map(|i| i.kubelet_version));
        let uid = super::kube_system_uid(&cc.client).await?;
        let pods: Api<Pod> = Api::namespaced(cc.client.clone(), "kube-system");
        let pod_name = format!("flatlab-snapshot-{}", &hex(&Sha256::digest(format!("{}{file}", view.node)))[..10]);
        let pod: Pod =
            serde_json::from_value(download_pod(&pod_name, &view.node, file, busybox_image(kubelet.as_deref())))?;
        // A pod of an earlier, interrupted download goes first.
        let _ = pods.delete(&pod_name, &DeleteParams::default()).await;
        let _ = wait_gone(&pods, &pod_name).await;
        pods.create(&PostParams::default(), &pod).await.with_context(|| format!("starting a pod on {}", view.node))?;
        let copied = self.copy_through(name, &cc.client, &pods, &pod_name, view, uid, kubelet, &mut progress).await;
        if let Err(e) = pods.delete(&pod_name, &DeleteParams::default()).await {
            tracing::warn!(pod = pod_name, error = %e, "cannot delete the snapshot download pod");
        }
        copied
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_through(
        &self,
        plan: &str,
        client: &kube::Client,
        pods: &Api<Pod>,
        pod_name: &str,
        view: &SnapshotView,
        identity: String,
        k3s_version: Option<String>,
        progress: &mut impl FnMut(u64, Option<u64>),
    ) -> anyhow::Result<DownloadedSnapshot> {
        wait_ready(pods, pod_name, &view.node).await?;
        let proxy = |file: &str| format!("/api/v1/namespaces/kube-system/pods/{pod_name}:8080/proxy/{file}");
        let get = |path: String| http::Request::get(path).body(Vec::new());
        let sum = client.request_text(get(proxy("sha256"))?).await.context("reading the snapshot's SHA-256")?;
        let expected = sum.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
        if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("the pod on {} gave no SHA-256 for {} ({sum:?})", view.node, view.name);
        }
        let dir = self.snapshot_dir(plan);
        std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
        let partial = dir.join(format!(".{}.partial", view.name));
        let mut reader = client.request_stream(get(proxy("snapshot"))?).await.context("downloading the snapshot")?;
        let mut out = std::fs::File::create(&partial).with_context(|| format!("writing {}", partial.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).await.context("downloading the snapshot")?;
            if n == 0 {
                break;
            }
            use std::io::Write;
            out.write_all(&buf[..n]).with_context(|| format!("writing {}", partial.display()))?;
            hasher.update(&buf[..n]);
            total += n as u64;
            progress(total, view.size_bytes);
        }
        out.sync_all()?;
        drop(out);
        let got = hex(&hasher.finalize());
        if got != expected {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "the copy of {} has SHA-256 {got}, the server's file {expected}: it changed on the way, and nothing was kept; try again",
                view.name
            );
        }
        let path = dir.join(&view.name);
        std::fs::rename(&partial, &path).with_context(|| format!("keeping {}", path.display()))?;
        let token_hash = view.token_hash.clone();
        let meta = DownloadedSnapshot {
            name: view.name.clone(),
            node: view.node.clone(),
            path: path.clone(),
            sha256: got,
            size_bytes: total,
            created_at: view.created_at,
            downloaded_at: self.now(),
            identity: Some(identity),
            k3s_version,
            token_hash,
        };
        crate::write_atomically(&dir.join(format!("{}{META_SUFFIX}", view.name)), &serde_json::to_vec_pretty(&meta)?)?;
        Ok(meta)
    }
}

/// A copy of a kube error, for the reach it means (kube's errors are not `Clone`).
fn kube_error_copy(e: &kube::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The pod that serves one snapshot file: pinned to its server, the file mounted read-only,
/// its SHA-256 computed there, busybox's httpd serving both; it ends by itself after
/// [`POD_DEADLINE_SECS`] if Flatlab does not delete it first.
fn download_pod(name: &str, node: &str, file: &str, image: &str) -> serde_json::Value {
    let script = "mkdir -p /www && ln -s /snapshot/file /www/snapshot && sha256sum /snapshot/file | cut -d' ' -f1 > /www/sha256 && exec httpd -f -p 8080 -h /www";
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "kube-system",
            "labels": { "app.kubernetes.io/managed-by": "flatlab", "app.kubernetes.io/name": "flatlab-snapshot-download" },
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": POD_DEADLINE_SECS,
            "automountServiceAccountToken": false,
            "tolerations": [{ "operator": "Exists" }],
            "containers": [{
                "name": "serve",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
                "ports": [{ "containerPort": 8080, "name": "http" }],
                "readinessProbe": { "httpGet": { "path": "/sha256", "port": 8080 }, "periodSeconds": 1 },
                "volumeMounts": [
                    { "name": "snapshot", "mountPath": "/snapshot/file", "readOnly": true },
                    { "name": "www", "mountPath": "/www" },
                ],
                "securityContext": { "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false },
            }],
            "volumes": [
                { "name": "snapshot", "hostPath": { "path": file, "type": "File" } },
                { "name": "www", "emptyDir": {} },
            ],
        },
    })
}

async fn wait_ready(pods: &Api<Pod>, name: &str, node: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let pod = pods.get(name).await.with_context(|| format!("reading the pod {name}"))?;
        let status = pod.status.unwrap_or_default();
        let container = status.container_statuses.as_ref().and_then(|c| c.first());
        if container.is_some_and(|c| c.ready) {
            return Ok(());
        }
        if let Some(waiting) = container.and_then(|c| c.state.as_ref()?.waiting.as_ref())
            && matches!(waiting.reason.as_deref(), Some("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"))
        {
            bail!(
                "the pod on {node} cannot get its image ({}): {}",
                waiting.reason.as_deref().unwrap_or_default(),
                waiting.message.as_deref().unwrap_or("no message")
            );
        }
        if status.phase.as_deref() == Some("Failed") {
            bail!("the pod on {node} failed: {}", status.message.as_deref().unwrap_or("no message"));
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the pod on {node} did not get ready within 120 s (phase {})", status.phase.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_gone(pods: &Api<Pod>, name: &str) -> anyhow::Result<()> {
    for _ in 0..60 {
        if pods.get_opt(name).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the pod {name} of an earlier download is still there")
}
