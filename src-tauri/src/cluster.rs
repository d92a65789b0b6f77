//! Commands over the running cluster: its view, kubeconfig, upgrades, node removal and the
//! secrets backup. Each a thin wrapper over `flatlab-api`.

use std::path::PathBuf;

use flatlab_api::kubeconfig::KubeconfigSaved;
use flatlab_api::{
    Access, ClusterStatus, DownloadedSnapshot, Flatlab, RestoreProgress, RestoreStarted, SnapshotList, TakenSnapshot,
    UpgradeStarted,
};
use tauri::State;

use crate::commands::{CmdResult, os_rng};

fn access(server: Option<String>) -> Access {
    Access { server: server.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) }
}

#[tauri::command]
pub async fn cluster_status(app: State<'_, Flatlab>, name: String, server: Option<String>) -> CmdResult<ClusterStatus> {
    Ok(app.cluster_status(&name, &access(server), &mut os_rng()).await?)
}

#[tauri::command]
pub async fn start_k3s_upgrade(
    app: State<'_, Flatlab>,
    name: String,
    version: String,
    sha256: Option<String>,
    server: Option<String>,
) -> CmdResult<UpgradeStarted> {
    let sha256 = sha256.filter(|s| !s.trim().is_empty());
    Ok(app.start_k3s_upgrade(&name, &version, sha256.as_deref(), &access(server), &mut os_rng()).await?)
}

#[tauri::command]
pub async fn remove_cluster_node(
    app: State<'_, Flatlab>,
    name: String,
    node: String,
    server: Option<String>,
) -> CmdResult<()> {
    Ok(app.remove_cluster_node(&name, &node, &access(server), &mut os_rng(), |_| {}).await?)
}

/// The cluster's etcd snapshots and the copies on this workstation.
#[tauri::command]
pub async fn cluster_snapshots(
    app: State<'_, Flatlab>,
    name: String,
    server: Option<String>,
) -> CmdResult<SnapshotList> {
    Ok(app.cluster_snapshots(&name, &access(server), &mut os_rng()).await?)
}

/// Takes an etcd snapshot now.
#[tauri::command]
pub async fn take_snapshot(app: State<'_, Flatlab>, name: String, server: Option<String>) -> CmdResult<TakenSnapshot> {
    Ok(app.take_snapshot(&name, "on demand", &access(server), &mut os_rng()).await?)
}

/// Copies a snapshot to this workstation through the API.
#[tauri::command]
pub async fn download_snapshot(
    app: State<'_, Flatlab>,
    name: String,
    snapshot: String,
    server: Option<String>,
) -> CmdResult<DownloadedSnapshot> {
    Ok(app.download_snapshot(&name, &snapshot, &access(server), &mut os_rng(), |_, _| {}).await?)
}

/// Arms the plan's servers to bring the cluster back from a snapshot copied here.
#[tauri::command]
pub async fn restore_cluster(app: State<'_, Flatlab>, name: String, snapshot: String) -> CmdResult<RestoreStarted> {
    Ok(app.restore_cluster(&name, &snapshot, &mut os_rng()).await?)
}

/// How the restore goes (and, once the API answers, the stale Nodes deleted).
#[tauri::command]
pub async fn restore_progress(
    app: State<'_, Flatlab>,
    name: String,
    server: Option<String>,
) -> CmdResult<RestoreProgress> {
    Ok(app.restore_progress(&name, &access(server), &mut os_rng()).await?)
}

/// Writes a kubeconfig to `path`, or (no path) adds the plan's context to `~/.kube/config`.
#[tauri::command]
pub async fn save_kubeconfig(
    app: State<'_, Flatlab>,
    name: String,
    path: Option<PathBuf>,
) -> CmdResult<KubeconfigSaved> {
    let merge = path.is_none();
    Ok(app.save_kubeconfig(&name, path.as_deref(), merge, &mut os_rng()).await?)
}

#[tauri::command]
pub async fn export_secrets(
    app: State<'_, Flatlab>,
    name: String,
    recipients: Vec<String>,
    path: PathBuf,
) -> CmdResult<PathBuf> {
    let recipients: Vec<String> =
        recipients.into_iter().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
    app.export_secrets_to(&name, &recipients, false, &path, &mut os_rng()).await?;
    Ok(path)
}

/// Restores a secrets backup; answers how many secrets it restored.
#[tauri::command]
pub async fn import_secrets(
    app: State<'_, Flatlab>,
    path: PathBuf,
    identity: PathBuf,
    replace: bool,
) -> CmdResult<usize> {
    let sealed =
        std::fs::read(&path).map_err(|e| anyhow::Error::from(e).context(format!("reading {}", path.display())))?;
    Ok(app.import_secrets(&sealed, &identity, replace).await?.secrets)
}
