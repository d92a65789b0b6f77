//! The Flatlab desktop app: a Tauri window around `flatlab-api`.
//!
//! Each command is a thin wrapper over one api use case; every error crosses to the UI as
//! `{ code, message }` (`flatlab_api::ErrorBody`), converted in one place. The UI lives in `ui/`.

// Without a console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::path::PathBuf;

use flatlab_api::{ErrorBody, Flatlab, PlanListing, PlanView, SaveOutcome, default_db_path, validate_text};
use flatlab_model::{Finding, Plan, validate};
use serde::Serialize;
use tauri::Manager;

type CmdResult<T> = Result<T, ErrorBody>;

/// What the About box and the status bar show.
#[derive(Serialize)]
struct AppInfo {
    version: &'static str,
    db_path: PathBuf,
}

#[tauri::command]
fn app_info(app: tauri::State<'_, Flatlab>) -> AppInfo {
    AppInfo { version: env!("CARGO_PKG_VERSION"), db_path: app.db_path().to_owned() }
}

#[tauri::command]
async fn list_plans(app: tauri::State<'_, Flatlab>) -> CmdResult<Vec<PlanListing>> {
    Ok(app.list_plans().await?)
}

#[tauri::command]
async fn show_plan(app: tauri::State<'_, Flatlab>, name: String, revision: Option<i64>) -> CmdResult<PlanView> {
    Ok(app.show_plan(&name, revision).await?)
}

#[tauri::command]
fn validate_plan(plan: Plan) -> Vec<Finding> {
    validate(&plan).findings
}

#[tauri::command]
fn validate_plan_text(text: String) -> Vec<Finding> {
    validate_text(&text)
}

#[tauri::command]
async fn save_plan(app: tauri::State<'_, Flatlab>, plan: Plan, message: String) -> CmdResult<SaveOutcome> {
    Ok(app.save_plan(&plan, &message).await?)
}

fn db_path() -> anyhow::Result<PathBuf> {
    match std::env::var_os("FLATLAB_DB") {
        Some(p) => Ok(PathBuf::from(p)),
        None => default_db_path(),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLATLAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let result = tauri::Builder::default()
        .setup(|app| {
            let path = db_path()?;
            let flatlab = tauri::async_runtime::block_on(async {
                let flatlab = Flatlab::open(&path).await?;
                if let Some(saved) = flatlab.ensure_demo_plan().await? {
                    tracing::info!(plan = %saved.name, "created the demo plan on first start");
                }
                anyhow::Ok(flatlab)
            })?;
            app.manage(flatlab);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            app_info,
            list_plans,
            show_plan,
            validate_plan,
            validate_plan_text,
            save_plan
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("error: Flatlab could not start: {e}");
        std::process::exit(1);
    }
}
