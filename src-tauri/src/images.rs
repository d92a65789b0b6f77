//! Commands of the Images view: the mirror of the app's settings (what it holds, fetch with
//! progress and cancel, verify, prune) and the release servers' versions. Thin wrappers over
//! `flatlab_api::mirror`.

use flatlab_api::Flatlab;
use flatlab_api::mirror::{
    FetchJob, FetchOutcome, FetchRequest, FileCheck, ImagesReadiness, MirrorOverview, MirrorSettings, ReleaseVersions,
};
use flatlab_model::Plan;
use tauri::{AppHandle, Emitter, State};

use crate::commands::CmdResult;

#[tauri::command]
pub async fn mirror_settings(app: State<'_, Flatlab>) -> CmdResult<MirrorSettings> {
    Ok(app.mirror_settings().await?)
}

#[tauri::command]
pub async fn save_mirror_settings(app: State<'_, Flatlab>, settings: MirrorSettings) -> CmdResult<()> {
    Ok(app.save_mirror_settings(&settings).await?)
}

#[tauri::command]
pub async fn mirror_overview(app: State<'_, Flatlab>) -> CmdResult<MirrorOverview> {
    Ok(app.mirror_overview().await?)
}

/// The release servers' current versions; a server that does not answer is a field, not an error.
#[tauri::command]
pub async fn release_versions(app: State<'_, Flatlab>, arch: String) -> CmdResult<ReleaseVersions> {
    let settings = app.mirror_settings().await?;
    let versions = tokio::task::spawn_blocking(move || flatlab_api::mirror::release_versions(&settings, &arch))
        .await
        .map_err(|e| anyhow::anyhow!("the lookup stopped: {e}"))?;
    Ok(versions)
}

/// Whether the mirror holds what `plan` (the editor's draft) needs.
#[tauri::command]
pub async fn images_readiness(app: State<'_, Flatlab>, plan: Plan) -> CmdResult<ImagesReadiness> {
    let dir = app.mirror_settings().await?.dir()?;
    Ok(flatlab_api::mirror::readiness(&plan, &dir))
}

/// Fetches into the mirror; progress goes out as `mirror-progress` events.
#[tauri::command]
pub async fn mirror_fetch(
    handle: AppHandle,
    app: State<'_, Flatlab>,
    job: State<'_, FetchJob>,
    request: FetchRequest,
) -> CmdResult<FetchOutcome> {
    let ticket = job.begin()?;
    let outcome =
        app.fetch_images(&request, ticket.cancel.clone(), move |p| drop(handle.emit("mirror-progress", p))).await?;
    Ok(outcome)
}

/// Cancels the running fetch; false when none runs.
#[tauri::command]
pub fn mirror_cancel(job: State<'_, FetchJob>) -> bool {
    job.cancel()
}

#[tauri::command]
pub async fn mirror_verify(app: State<'_, Flatlab>) -> CmdResult<Vec<FileCheck>> {
    Ok(app.verify_mirror().await?)
}

#[tauri::command]
pub async fn mirror_prune(app: State<'_, Flatlab>, keep: usize) -> CmdResult<Vec<String>> {
    Ok(app.prune_mirror(keep).await?)
}
