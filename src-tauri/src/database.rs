//! Opening the app's database, and what the window shows when it cannot be opened: the path,
//! the reason, and a way on (open another database file, or quit).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flatlab_api::{DbProblem, Flatlab};
use tauri::{AppHandle, Manager};

use crate::commands::CmdResult;

/// Opens the database at `path` (creating it with the demo plan on first start).
pub fn open(path: &Path) -> anyhow::Result<Flatlab> {
    tauri::async_runtime::block_on(async {
        let flatlab = Flatlab::open(path).await?;
        if let Some(saved) = flatlab.ensure_demo_plan().await? {
            tracing::info!(plan = %saved.name, "created the demo plan on first start");
        }
        anyhow::Ok(flatlab)
    })
}

/// Makes an opened database the app's, with its boot-server supervisor.
pub fn manage(app: &AppHandle, flatlab: Flatlab, path: PathBuf) {
    app.manage(crate::sidecar::supervisor(app.clone(), path));
    app.manage(flatlab);
}

/// Why the database could not be opened, until another one is.
pub struct Problem(Mutex<Option<DbProblem>>);

impl Problem {
    pub fn new(path: &Path, e: &anyhow::Error) -> Self {
        Problem(Mutex::new(Some(DbProblem::new(path, e))))
    }
}

/// The problem with the database, if the app could not open it.
#[tauri::command]
pub fn db_problem(app: AppHandle) -> Option<DbProblem> {
    app.try_state::<Problem>().and_then(|p| p.0.lock().ok().and_then(|p| p.clone()))
}

/// Opens another database file instead (the window reloads once it is open).
#[tauri::command]
pub async fn open_other_database(app: AppHandle, path: PathBuf) -> CmdResult<()> {
    if app.try_state::<Flatlab>().is_some() {
        return Err(anyhow::Error::from(flatlab_api::ApiError::BadRequest("a database is open already".into())).into());
    }
    let flatlab = Flatlab::open(&path).await?;
    if let Some(saved) = flatlab.ensure_demo_plan().await? {
        tracing::info!(plan = %saved.name, "created the demo plan in the new database");
    }
    manage(&app, flatlab, path);
    if let Some(problem) = app.try_state::<Problem>()
        && let Ok(mut p) = problem.0.lock()
    {
        *p = None;
    }
    Ok(())
}

#[tauri::command]
pub fn quit(app: AppHandle) {
    app.exit(0);
}
