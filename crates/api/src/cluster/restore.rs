//! Bringing a cluster back from an etcd snapshot onto new disks: the plan's first server is
//! armed to restore the snapshot (`cluster-reset` with `cluster-reset-restore-path`, the file
//! fetched from the boot server pinned by its hash) with the original token and CAs; the other
//! servers are armed too, so that they come back with their datastores wiped and rejoin it.
//! Once the API answers, the servers' stale Node objects (and node passwords) from the snapshot
//! go, so that they register afresh; the restore ends when every server is Ready again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use flatlab_bootd::Stage;
use flatlab_model::{K3sVersion, Role};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::Api;
use kube::api::DeleteParams;
use rand::Rng;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::client::{Access, Reach};
use super::snapshots::{DownloadedSnapshot, token_hash};
use super::status::NodeState;
use crate::boot::MachineState;
use crate::pki::{ClusterPki, PKI};
use crate::{ApiError, Flatlab, K3S_TOKEN, Millis};

/// Plan state: a restore under way.
const RESTORE: &str = "cluster-restore";

/// A restore under way, as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RestoreState {
    pub snapshot: String,
    pub path: PathBuf,
    pub sha256: String,
    pub started_at: Millis,
    /// The servers armed for it (the first restores, the others rejoin).
    pub servers: Vec<String>,
    /// The stale Node objects were deleted (once, when the API first answered).
    #[serde(default)]
    pub stale_deleted: bool,
}

/// What `flatlab cluster restore` set going.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RestoreStarted {
    pub snapshot: String,
    /// The server that restores the snapshot.
    pub first: String,
    /// Every server armed (the first one included): each must network-boot to be reinstalled.
    pub servers: Vec<String>,
}

/// One server of a restore.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RestoreServer {
    pub name: String,
    pub install_stage: Option<Stage>,
    pub state: NodeState,
}

/// How a restore goes.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RestoreProgress {
    /// A restore is under way (none: none was started, or it is done).
    pub active: bool,
    pub snapshot: Option<String>,
    pub reach: Reach,
    pub servers: Vec<RestoreServer>,
    /// The first server is installed again and the API answers: what answers is the restored
    /// cluster (before that, an API that answers is the old one, still running).
    pub restored: bool,
    /// Stale Node objects deleted once the restored cluster answered.
    pub deleted_stale: Vec<String>,
    /// Every server is back and Ready: the cluster is restored (and the restore is over).
    pub back: bool,
}

impl Flatlab {
    /// The restore under way, if any.
    pub(crate) async fn restoring(&self, name: &str) -> anyhow::Result<Option<RestoreState>> {
        let Some(text) = self.store().state(name, RESTORE).await? else { return Ok(None) };
        Ok(serde_json::from_str(&text).ok())
    }

    /// The snapshot a restore uses: a copy downloaded here (by name), or a snapshot file given
    /// by its path (copied here first; with its `.flatlab.json` beside it, what Flatlab knew of
    /// it comes along).
    fn restore_source(&self, name: &str, snapshot: &str) -> anyhow::Result<DownloadedSnapshot> {
        let copies = self.downloaded_snapshots(name)?;
        if let Some(copy) = copies.iter().find(|d| d.name == snapshot) {
            return Ok(copy.clone());
        }
        let path = Path::new(snapshot);
        if !path.is_file() {
            return Err(ApiError::RestoreRefused(format!(
                "no snapshot {snapshot} on this workstation: download one with `flatlab cluster snapshot {name} --download --name SNAPSHOT` while a server answers, or give the path of a snapshot file"
            ))
            .into());
        }
        let file = path.file_name().and_then(|f| f.to_str()).context("the snapshot file has no name")?.to_owned();
        let meta_path = path.with_file_name(format!("{file}.flatlab.json"));
        let known: Option<DownloadedSnapshot> =
            std::fs::read_to_string(&meta_path).ok().and_then(|t| serde_json::from_str(&t).ok());
        let dir = self.snapshot_dir(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
        let dest = dir.join(&file);
        if dest != path {
            std::fs::copy(path, &dest).with_context(|| format!("copying {} to {}", path.display(), dest.display()))?;
        }
        let sha256 = flatlab_mirror::sha256_file(&dest)?;
        let size_bytes = std::fs::metadata(&dest)?.len();
        let copy = DownloadedSnapshot {
            name: file.clone(),
            node: known.as_ref().map(|k| k.node.clone()).unwrap_or_default(),
            path: dest,
            sha256,
            size_bytes,
            created_at: known.as_ref().and_then(|k| k.created_at),
            downloaded_at: self.now(),
            identity: known.as_ref().and_then(|k| k.identity.clone()),
            k3s_version: known.as_ref().and_then(|k| k.k3s_version.clone()),
            token_hash: known.as_ref().and_then(|k| k.token_hash.clone()),
        };
        crate::write_atomically(&dir.join(format!("{file}.flatlab.json")), &serde_json::to_vec_pretty(&copy)?)?;
        Ok(copy)
    }

    /// Arms the plan's servers to bring the cluster back from `snapshot`: the first server
    /// restores it at its next network boot, the others are reinstalled and rejoin. Refuses a
    /// snapshot of another cluster or another token, one of a newer K3s minor than the plan's,
    /// and a plan without its secrets (the original token opens the snapshot's data).
    pub async fn restore_cluster(
        &self,
        name: &str,
        snapshot: &str,
        rng: &mut impl Rng,
    ) -> anyhow::Result<RestoreStarted> {
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        // The secrets first: making new ones now would make a cluster the snapshot cannot open.
        let secret = self.store().secret(name, K3S_TOKEN).await?;
        let pki = self.store().secret(name, PKI).await?.map(|t| ClusterPki::from_json(&t)).transpose()?;
        let (Some(secret), Some(ClusterPki::Flatlab { .. })) = (secret, pki) else {
            return Err(ApiError::RestoreRefused(format!(
                "plan {name} has no secrets of its cluster (its server token and CAs): a snapshot opens only with the cluster's original token; import the secrets backup first (`flatlab secrets import FILE --identity KEY`, the Cluster tab's Restore keys…)"
            ))
            .into());
        };
        let copy = self.restore_source(name, snapshot)?;
        let sha = flatlab_mirror::sha256_file(&copy.path)?;
        if sha != copy.sha256 {
            return Err(ApiError::RestoreRefused(format!(
                "{} has changed since it was copied here (SHA-256 {sha}, not {}): copy it again",
                copy.path.display(),
                copy.sha256
            ))
            .into());
        }
        if let (Some(recorded), Some(theirs)) = (self.cluster_identity(name).await?, &copy.identity)
            && recorded != *theirs
        {
            return Err(ApiError::RestoreRefused(format!(
                "{} is a snapshot of another cluster (identity {theirs}; plan {name}'s cluster is {recorded}): restore a snapshot of this plan's cluster",
                copy.name
            ))
            .into());
        }
        if let Some(theirs) = &copy.token_hash
            && *theirs != token_hash(&secret)
        {
            return Err(ApiError::RestoreRefused(format!(
                "{} was made with another server token than plan {name}'s: the plan's token cannot open it (import the secrets backup of the cluster it came from)",
                copy.name
            ))
            .into());
        }
        let planned = K3sVersion::parse(&plan.plan().kubernetes.k3s_version);
        if let (Some(made), Some(planned)) = (copy.k3s_version.as_deref().and_then(K3sVersion::parse), planned)
            && (made.major, made.minor) > (planned.major, planned.minor)
        {
            return Err(ApiError::RestoreRefused(format!(
                "{} was made by K3s {made}, newer than the plan's {planned}: an older K3s may not read a newer one's datastore; set kubernetes.k3s_version to v{}.{} or later first",
                copy.name, made.major, made.minor
            ))
            .into());
        }
        if let Some(identity) = &copy.identity
            && self.cluster_identity(name).await?.is_none()
        {
            // A restore keeps the cluster's identity (its kube-system namespace is in the snapshot).
            self.check_identity(name, identity).await?;
        }
        let servers: Vec<_> = plan.nodes().iter().filter(|n| n.role == Role::Server).collect();
        let state = RestoreState {
            snapshot: copy.name.clone(),
            path: copy.path.clone(),
            sha256: copy.sha256.clone(),
            started_at: self.now(),
            servers: servers.iter().map(|n| n.name.clone()).collect(),
            stale_deleted: false,
        };
        self.store().set_state(name, RESTORE, &serde_json::to_string(&state)?, self.now()).await?;
        for n in &servers {
            let armed = self.rearm(name, n.mac, &n.name, rng).await?;
            self.end_inspection(name, armed.mac).await?;
        }
        tracing::info!(plan = name, snapshot = copy.name, "restore armed");
        Ok(RestoreStarted { snapshot: copy.name, first: plan.first_server().name.clone(), servers: state.servers })
    }

    /// How the restore goes: each server's install and Node; once the API answers, deletes the
    /// rejoining servers' stale Nodes (once); ends the restore when every server is Ready and
    /// reported `k3s-ready`.
    pub async fn restore_progress(
        &self,
        name: &str,
        access: &Access,
        rng: &mut impl Rng,
    ) -> anyhow::Result<RestoreProgress> {
        let Some(mut state) = self.restoring(name).await? else {
            return Ok(RestoreProgress {
                active: false,
                snapshot: None,
                reach: Reach::Unreachable { reason: "no restore under way".into() },
                servers: Vec::new(),
                restored: false,
                deleted_stale: Vec::new(),
                back: false,
            });
        };
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let first = plan.first_server().name.clone();
        let status = self.cluster_status(name, access, rng).await?;
        let states: Vec<MachineState> =
            self.store().machines(name).await?.iter().filter_map(MachineState::from_row).collect();
        let stage_of = |n: &str| states.iter().find(|s| s.node == n).map(|s| s.stage);
        let mut deleted = Vec::new();
        // Arming set every server's stage back to armed: the first server at k3s-ready again has
        // restored the snapshot, and the API that answers is the restored cluster's. Before that
        // an answer comes from the old cluster (a server not yet powered off): nothing is deleted
        // there.
        let restored = status.reach.is_reachable() && stage_of(&first) == Some(Stage::K3sReady);
        if restored && !state.stale_deleted {
            // The snapshot's Nodes of the servers that come back on new disks: they register
            // afresh (a new node password), as K3s needs for a machine joining under an old name.
            let cc = self.cluster_client(name, access, rng).await?;
            let nodes: Api<Node> = Api::all(cc.client.clone());
            let secrets: Api<Secret> = Api::namespaced(cc.client.clone(), "kube-system");
            for server in state.servers.iter().filter(|s| **s != first) {
                let view = status.nodes.iter().find(|v| v.name == *server);
                if view.is_some_and(|v| v.state == NodeState::Ready) && stage_of(server) == Some(Stage::K3sReady) {
                    continue;
                }
                match nodes.delete(server, &DeleteParams::default()).await {
                    Ok(_) => deleted.push(server.clone()),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("deleting the stale Node {server}"))),
                }
                match secrets.delete(&format!("{server}.node-password.k3s"), &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("deleting {server}'s node password"))),
                }
            }
            state.stale_deleted = true;
            self.store().set_state(name, RESTORE, &serde_json::to_string(&state)?, self.now()).await?;
        }
        let servers: Vec<RestoreServer> = state
            .servers
            .iter()
            .map(|s| RestoreServer {
                name: s.clone(),
                install_stage: stage_of(s),
                state: status.nodes.iter().find(|v| v.name == *s).map(|v| v.state).unwrap_or(NodeState::Unknown),
            })
            .collect();
        let back =
            restored && servers.iter().all(|s| s.state == NodeState::Ready && s.install_stage == Some(Stage::K3sReady));
        if back {
            self.store().delete_state(name, RESTORE).await?;
            self.record_cluster_ran(name).await?;
            tracing::info!(plan = name, snapshot = state.snapshot, "the cluster is back");
        }
        Ok(RestoreProgress {
            active: !back,
            snapshot: Some(state.snapshot),
            reach: status.reach,
            servers,
            restored,
            deleted_stale: deleted,
            back,
        })
    }

    /// The restore's snapshot as the first server's private file (the boot server serves it to
    /// that machine only).
    pub(crate) async fn restore_files(
        &self,
        name: &str,
        node: &str,
        first: &str,
    ) -> anyhow::Result<Vec<flatlab_bootd::PrivateFile>> {
        match self.restoring(name).await? {
            Some(r) if node == first => Ok(vec![flatlab_bootd::PrivateFile { name: r.snapshot, path: r.path }]),
            _ => Ok(Vec::new()),
        }
    }
}
