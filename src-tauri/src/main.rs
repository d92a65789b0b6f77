//! The Flatlab desktop app: a Tauri window around `flatlab-api`.
//!
//! Each command is a thin wrapper over one api use case; every error crosses to the UI as
//! `{ code, message }` (`flatlab_api::ErrorBody`), converted in one place. The boot server runs as
//! a separate process (`flatlab serve --json`, see `sidecar.rs`) so that only it needs the
//! privilege for ports 67 and 69. The UI lives in `ui/`.

// Without a console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod cluster;
mod commands;
mod database;
mod dialogs;
mod images;
mod sidecar;

use std::path::PathBuf;

use tauri::Manager;

fn db_path() -> anyhow::Result<PathBuf> {
    match std::env::var_os("FLATLAB_DB") {
        Some(p) => Ok(PathBuf::from(p)),
        None => flatlab_api::default_db_path(),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLATLAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .setup(|app| {
            app.manage(flatlab_api::mirror::FetchJob::default());
            let path = db_path()?;
            // A database that cannot be opened is shown in the window (with a way on), not
            // told on stderr before an exit.
            match database::open(&path) {
                Ok(flatlab) => database::manage(app.handle(), flatlab, path),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = format!("{e:#}"), "cannot open the database");
                    app.manage(database::Problem::new(&path, &e));
                }
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            database::db_problem,
            database::open_other_database,
            database::quit,
            commands::list_plans,
            commands::show_plan,
            commands::inventories,
            commands::validate_plan,
            commands::validate_plan_text,
            commands::check_addresses,
            commands::save_plan,
            commands::create_plan,
            commands::rename_plan,
            commands::duplicate_plan,
            commands::delete_plan,
            commands::plan_history,
            commands::revert_plan,
            commands::import_plan_file,
            commands::export_plan_file,
            commands::preview_plan,
            commands::ssh_public_keys,
            commands::discover,
            commands::list_interfaces,
            commands::list_drives,
            commands::mount_drive,
            commands::eject_drive,
            commands::export_usb,
            commands::export_git,
            dialogs::pick_open_plan_file,
            dialogs::pick_save_plan_file,
            dialogs::pick_folder,
            sidecar::boot_start,
            sidecar::boot_stop,
            sidecar::boot_status,
            sidecar::boot_arm,
            sidecar::power_on,
            sidecar::inspect_machine,
            sidecar::inspections,
            sidecar::grant_boot_privilege,
            cluster::cluster_status,
            cluster::start_k3s_upgrade,
            cluster::remove_cluster_node,
            cluster::cluster_snapshots,
            cluster::take_snapshot,
            cluster::download_snapshot,
            cluster::restore_cluster,
            cluster::restore_progress,
            cluster::save_kubeconfig,
            cluster::export_secrets,
            cluster::import_secrets,
            dialogs::pick_save_file,
            dialogs::pick_open_file,
            images::mirror_settings,
            images::save_mirror_settings,
            images::mirror_overview,
            images::release_versions,
            images::images_readiness,
            images::mirror_fetch,
            images::mirror_cancel,
            images::mirror_verify,
            images::mirror_prune,
        ])
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: Flatlab could not start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // The boot server also stops by itself when its stdin closes with this process.
            if let Some(boot) = handle.try_state::<flatlab_api::sidecar::Supervisor>() {
                boot.kill();
            }
        }
    });
}
