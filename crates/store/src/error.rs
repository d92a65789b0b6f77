use std::path::PathBuf;

/// What can go wrong with the store. Messages are complete sentences a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no plan called `{name}`; `flatlab plan list` shows the stored plans")]
    PlanNotFound { name: String },
    #[error("plan `{name}` has no revision {revision}; `flatlab plan history {name}` lists them")]
    RevisionNotFound { name: String, revision: i64 },
    #[error("a plan called `{name}` already exists; choose another name")]
    NameTaken { name: String },
    #[error("{path} is not a Flatlab database ({reason}); it was left untouched. Choose another file with --db")]
    NotFlatlab { path: PathBuf, reason: String },
    #[error(
        "{path} was written by a newer Flatlab (database schema {found}, this build knows up to {supported}); it was left untouched. Upgrade Flatlab to open it"
    )]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },
    #[error("{path} is damaged ({detail}); it was left untouched. Restore a backup, or choose another file with --db")]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("stored revision {revision} of plan `{name}` cannot be read: {detail}")]
    BadRevision { name: String, revision: i64, detail: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
