//! Commands over plans, previews, discovery and export: each a thin wrapper over `flatlab-api`.

use std::path::PathBuf;
use std::time::Duration;

use flatlab_api::export::{Drive, ExportProgress, GitExportOptions, GitOutcome};
use flatlab_api::{
    AppInfo, ErrorBody, Flatlab, ImportPolicy, MachineInventory, NetInterface, PLACEHOLDER_BASE_URL, PlanListing,
    PlanView, PreviewFile, RevisionInfo, SaveOutcome, Saved, Sighting, SshPublicKey,
};
use flatlab_model::{Finding, Plan};
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

/// The hardware the plan's machines reported when their installs started.
#[tauri::command]
pub async fn inventories(app: State<'_, Flatlab>, name: String) -> CmdResult<Vec<MachineInventory>> {
    Ok(app.inventories(&name).await?)
}

#[tauri::command]
pub fn validate_plan(plan: Plan) -> Vec<Finding> {
    flatlab_api::validate_plan(&plan)
}

/// Asks the LAN about `plan`'s static addresses: one another host answers for is a warning on
/// its node.
#[tauri::command]
pub async fn check_addresses(plan: Plan) -> Vec<Finding> {
    flatlab_api::taken_addresses(&plan, None).await
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
fn progress(app: &AppHandle) -> impl Fn(ExportProgress) + '_ {
    move |p| drop(app.emit("export-progress", p))
}

#[tauri::command]
pub async fn export_usb(
    handle: AppHandle,
    app: State<'_, Flatlab>,
    name: String,
    mountpoint: PathBuf,
) -> CmdResult<PathBuf> {
    Ok(app.export_usb_with_progress(&name, &mountpoint, PLACEHOLDER_BASE_URL, progress(&handle), &mut os_rng()).await?)
}

#[tauri::command]
pub async fn export_git(
    handle: AppHandle,
    app: State<'_, Flatlab>,
    options: GitExportOptions,
) -> CmdResult<GitOutcome> {
    Ok(app.export_git_with_progress(options, PLACEHOLDER_BASE_URL, progress(&handle), &mut os_rng()).await?)
}
