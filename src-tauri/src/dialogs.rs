//! Native file dialogs (tauri-plugin-dialog). Each answers `null` when the user cancels.
//!
//! End-to-end tests cannot drive GTK dialogs through WebDriver; with `FLATLAB_E2E_DIALOG_DIR`
//! set, the dialogs answer with paths in that folder instead of opening (`import.yaml` to open,
//! the suggested name to save, its `folder` subfolder to pick one).

use std::path::PathBuf;

use tauri::AppHandle;
use tauri_plugin_dialog::{DialogExt, FilePath};

use crate::commands::CmdResult;

fn e2e_dir() -> Option<PathBuf> {
    std::env::var_os("FLATLAB_E2E_DIALOG_DIR").map(PathBuf::from)
}

async fn answer(rx: tokio::sync::oneshot::Receiver<Option<FilePath>>) -> CmdResult<Option<PathBuf>> {
    let picked = rx.await.map_err(|_| anyhow::anyhow!("the file dialog closed without an answer"))?;
    Ok(picked.and_then(|p| p.into_path().ok()))
}

#[tauri::command]
pub async fn pick_open_plan_file(app: AppHandle) -> CmdResult<Option<PathBuf>> {
    if let Some(dir) = e2e_dir() {
        return Ok(Some(dir.join("import.yaml")));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Import a plan file")
        .add_filter("Flatlab plan", &["yaml", "yml"])
        .pick_file(move |p| drop(tx.send(p)));
    answer(rx).await
}

#[tauri::command]
pub async fn pick_save_plan_file(app: AppHandle, default_name: String) -> CmdResult<Option<PathBuf>> {
    if let Some(dir) = e2e_dir() {
        return Ok(Some(dir.join(default_name)));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Export the plan file")
        .set_file_name(default_name)
        .add_filter("Flatlab plan", &["yaml", "yml"])
        .save_file(move |p| drop(tx.send(p)));
    answer(rx).await
}

#[tauri::command]
pub async fn pick_folder(app: AppHandle, title: String) -> CmdResult<Option<PathBuf>> {
    if let Some(dir) = e2e_dir() {
        let folder = dir.join("folder");
        std::fs::create_dir_all(&folder).map_err(anyhow::Error::from)?;
        return Ok(Some(folder));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().set_title(title).pick_folder(move |p| drop(tx.send(p)));
    answer(rx).await
}

/// A file to write (a kubeconfig, a secrets backup): `default_name` suggested.
#[tauri::command]
pub async fn pick_save_file(app: AppHandle, title: String, default_name: String) -> CmdResult<Option<PathBuf>> {
    if let Some(dir) = e2e_dir() {
        return Ok(Some(dir.join(default_name)));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().set_title(title).set_file_name(default_name).save_file(move |p| drop(tx.send(p)));
    answer(rx).await
}

/// A file to read (a secrets backup, an age identity). In e2e runs: `<dir>/<e2e_name>`.
#[tauri::command]
pub async fn pick_open_file(app: AppHandle, title: String, e2e_name: String) -> CmdResult<Option<PathBuf>> {
    if let Some(dir) = e2e_dir() {
        return Ok(Some(dir.join(e2e_name)));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().set_title(title).pick_file(move |p| drop(tx.send(p)));
    answer(rx).await
}
