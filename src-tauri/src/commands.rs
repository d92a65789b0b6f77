//! Commands over plans, previews, discovery and export: each a thin wrapper over `flatlab-api`.

use std::path::PathBuf;
use std::time::Duration;

use flatlab_api::export::Drive;
use flatlab_api::{
    AppInfo, ErrorBody, Flatlab, ImportPolicy, NetInterface, PLACEHOLDER_BASE_URL, PlanListing, PlanView, PreviewFile,
    SaveOutcome, Sighting, SshPublicKey,
};
use flatlab_model::{Finding, Plan, validate};
use flatlab_store::{RevisionInfo, Saved};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, State};

pub type CmdResult<T> = Result<T, ErrorBody>;

/// Randomness for secrets, seeded from the OS (a `Send` generator, unlike `rand::rng()`).
pub fn os_rng() -> rand::rngs::StdRng {
    rand::SeedableRng::from_os_rng()
}

#[tauri::command]
pub fn app_info(app: State<'_, Flatlab>) -> AppInfo {
    AppInfo::new(app.db_path())
}

#[tauri::command]
pub async fn list_plans(app: State<'_, Flatlab>) -> CmdResult<Vec<PlanListing>> {
    Ok(app.list_plans().await?)
}

#[tauri::command]
pub async fn show_plan(app: State<'_, Flatlab>, name: String, revision: Option<i64>) -> CmdResult<PlanView> {
    Ok(app.show_plan(&name, revision).await?)
}

#[tauri::command]
pub fn validate_plan(plan: Plan) -> Vec<Finding> {
    validate(&plan).findings
}

#[tauri::command]
pub fn validate_plan_text(text: String) -> Vec<Finding> {
    flatlab_api::validate_text(&text)
}

#[tauri::command]
pub async fn save_plan(app: State<'_, Flatlab>, plan: Plan, message: String) -> CmdResult<SaveOutcome> {
    Ok(app.save_plan(&plan, &message).await?)
}

#[tauri::command]
pub async fn create_plan(app: State<'_, Flatlab>, name: String) -> CmdResult<SaveOutcome> {
    Ok(app.create_plan(&name).await?)
}

#[tauri::command]
pub async fn rename_plan(app: State<'_, Flatlab>, name: String, new_name: String) -> CmdResult<Saved> {
    Ok(app.rename_plan(&name, &new_name).await?)
}

#[tauri::command]
pub async fn duplicate_plan(app: State<'_, Flatlab>, name: String, new_name: String) -> CmdResult<Saved> {
    Ok(app.duplicate_plan(&name, &new_name).await?)
}

#[tauri::command]
pub async fn delete_plan(app: State<'_, Flatlab>, name: String) -> CmdResult<i64> {
    Ok(app.delete_plan(&name).await?)
}

#[tauri::command]
pub async fn plan_history(app: State<'_, Flatlab>, name: String) -> CmdResult<Vec<RevisionInfo>> {
    Ok(app.history(&name).await?)
}

#[tauri::command]
pub async fn revert_plan(app: State<'_, Flatlab>, name: String, revision: i64) -> CmdResult<Saved> {
    Ok(app.revert(&name, revision).await?)
}

/// Imports keeping validation errors: the user fixes them on the canvas.
#[tauri::command]
pub async fn import_plan_file(app: State<'_, Flatlab>, path: PathBuf) -> CmdResult<SaveOutcome> {
    Ok(app.import_file(&path, ImportPolicy::KeepErrors).await?)
}

#[tauri::command]
pub async fn export_plan_file(app: State<'_, Flatlab>, name: String, path: PathBuf) -> CmdResult<i64> {
    Ok(app.export_plan(&name, None, &path).await?)
}

#[tauri::command]
pub async fn preview_plan(plan: Plan) -> CmdResult<Vec<PreviewFile>> {
    // Runs ignition-validate per config: off the async workers.
    let files = tokio::task::spawn_blocking(move || flatlab_api::preview_plan(&plan))
        .await
        .map_err(|e| anyhow::anyhow!("preview stopped: {e}"))??;
    Ok(files)
}

#[tauri::command]
pub fn ssh_public_keys() -> Vec<SshPublicKey> {
    dirs::home_dir().map(|h| flatlab_api::ssh_public_keys(&h.join(".ssh"))).unwrap_or_default()
}

#[tauri::command]
pub async fn discover(app: State<'_, Flatlab>, seconds: u64) -> CmdResult<Vec<Sighting>> {
    Ok(app.discover(Duration::from_secs(seconds.clamp(1, 30))).await?)
}

#[tauri::command]
pub fn list_interfaces() -> CmdResult<Vec<NetInterface>> {
    Ok(flatlab_api::list_interfaces()?)
}

#[tauri::command]
pub async fn list_drives() -> CmdResult<Vec<Drive>> {
    Ok(flatlab_api::export::list_drives().await)
}

/// Mounts a drive (through UDisks2) so it can take a bundle; returns its mount point.
#[tauri::command]
pub async fn mount_drive(device: String) -> CmdResult<PathBuf> {
    Ok(flatlab_api::export::mount_drive(&device).await?)
}

/// Unmounts a drive and powers it off, so it can be unplugged.
#[tauri::command]
pub async fn eject_drive(target: String) -> CmdResult<flatlab_api::export::Ejection> {
    Ok(flatlab_api::export::eject_drive(&target).await?)
}

/// Progress of an export, as the `export-progress` event.
#[derive(Clone, Serialize)]
struct ExportProgress {
    step: u32,
    total: u32,
    message: String,
}

fn progress(app: &AppHandle, step: u32, total: u32, message: impl Into<String>) {
    let _ = app.emit("export-progress", ExportProgress { step, total, message: message.into() });
}

#[tauri::command]
pub async fn export_usb(
    handle: AppHandle,
    app: State<'_, Flatlab>,
    name: String,
    mountpoint: PathBuf,
) -> CmdResult<PathBuf> {
    progress(&handle, 1, 2, format!("rendering plan {name} and writing it to {}", mountpoint.display()));
    let folder = app.export_usb(&name, &mountpoint, PLACEHOLDER_BASE_URL, &mut os_rng()).await?;
    progress(&handle, 2, 2, format!("written and read back: {}", folder.display()));
    Ok(folder)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitExportOptions {
    name: String,
    repo: PathBuf,
    branch: Option<String>,
    push: Option<String>,
    encrypt_to: Vec<String>,
}

#[tauri::command]
pub async fn export_git(
    handle: AppHandle,
    app: State<'_, Flatlab>,
    options: GitExportOptions,
) -> CmdResult<flatlab_export::GitOutcome> {
    let GitExportOptions { name, repo, branch, push, encrypt_to } = options;
    let branch = branch.filter(|b| !b.trim().is_empty());
    let push = push.filter(|p| !p.trim().is_empty());
    let encrypt_to: Vec<String> =
        encrypt_to.into_iter().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
    let total = if push.is_some() { 3 } else { 2 };
    progress(&handle, 1, total, format!("rendering plan {name} and committing it to {}", repo.display()));
    let outcome =
        app.export_git(&name, &repo, branch, push.clone(), encrypt_to, PLACEHOLDER_BASE_URL, &mut os_rng()).await?;
    if let Some(remote) = push.filter(|_| outcome.pushed) {
        progress(&handle, 2, total, format!("pushed to {remote}"));
    }
    progress(&handle, total, total, if outcome.commit.is_some() { "committed" } else { "unchanged: no new commit" });
    Ok(outcome)
}
