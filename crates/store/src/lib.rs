//! Flatlab's SQLite store: plans with their full revision history, and the secrets generated for
//! each plan (the K3s token, ...), which never appear in the plan file.
//!
//! One SQLite file in WAL mode, schema managed by the migrations in `migrations/`, queries checked
//! at compile time against the committed `.sqlx/` data. Every save is one transaction, so a process
//! killed in the middle of a save leaves the previous revision intact. Opening never writes to a
//! file that is not a Flatlab database, is damaged, or was written by a newer Flatlab.
//!
//! The store keeps plans as the YAML text of the plan file; it leaves validation to `model` and
//! use cases (what to save when) to `api`.

mod error;
mod machines;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use flatlab_model::{Plan, parse_plan, to_yaml};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use ts_rs::TS;

pub use error::{Error, Result};
pub use machines::{DiscoveredMachine, MAX_DISCOVERED, MachineRow};

/// Marks a SQLite file as Flatlab's (`PRAGMA application_id`), "FLAB".
pub const APPLICATION_ID: i32 = 0x464c_4142;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Milliseconds since the Unix epoch, UTC. Passed in by callers so that tests are exact.
pub type Millis = i64;

/// A plan as listed: its name and newest revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct PlanSummary {
    pub name: String,
    #[ts(type = "number")]
    pub revision: i64,
    #[ts(type = "number")]
    pub created_at: Millis,
    #[ts(type = "number")]
    pub updated_at: Millis,
}

/// One entry of a plan's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RevisionInfo {
    #[ts(type = "number")]
    pub revision: i64,
    /// What the save did, such as `imported from lab.yaml`.
    pub message: String,
    #[ts(type = "number")]
    pub created_at: Millis,
}

/// A stored revision of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPlan {
    pub name: String,
    pub revision: i64,
    pub saved_at: Millis,
    pub plan: Plan,
}

/// The outcome of a save.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Saved {
    pub name: String,
    /// The plan's newest revision after the save.
    #[ts(type = "number")]
    pub revision: i64,
    /// False when the plan was identical to its newest revision and nothing was written.
    pub changed: bool,
}

/// The Flatlab database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// Refuses, without writing anything, a file that is not a Flatlab database, is damaged, or
    /// has a schema newer than this build knows.
    pub async fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir { path: dir.to_owned(), source })?;
        }
        let fresh = probe(path).await?;
        if fresh {
            create_private(path)?;
        }

        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        if fresh {
            // A constant, not user input.
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA application_id = {APPLICATION_ID}")))
                .execute(&pool)
                .await?;
        }
        MIGRATOR.run(&pool).await?;
        tracing::debug!(path = %path.display(), fresh, "opened store");
        Ok(Store { pool, path: path.to_owned() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connections, checkpointing the WAL into the main file.
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Every plan, by name.
    pub async fn list_plans(&self) -> Result<Vec<PlanSummary>> {
        let rows = sqlx::query!(
            r#"SELECT p.name, p.created_at, p.updated_at,
                      (SELECT MAX(r.revision) FROM plan_revisions r WHERE r.plan_id = p.id) AS "revision!: i64"
               FROM plans p ORDER BY p.name"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PlanSummary {
                name: r.name,
                revision: r.revision,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect())
    }

    /// Saves `plan` under its name as a new revision, creating the plan if it is new.
    ///
    /// Saving a plan identical to its newest revision writes nothing and reports `changed: false`.
    pub async fn save_plan(&self, plan: &Plan, message: &str, at: Millis) -> Result<Saved> {
        let yaml = to_yaml(plan);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let name = plan.name.as_str();
        let existing = sqlx::query!(
            r#"SELECT p.id AS "id!", r.revision, r.yaml
               FROM plans p JOIN plan_revisions r ON r.plan_id = p.id
               WHERE p.name = ? ORDER BY r.revision DESC LIMIT 1"#,
            name
        )
        .fetch_optional(&mut *tx)
        .await?;
        let saved = match existing {
            Some(row) if row.yaml == yaml => Saved { name: plan.name.clone(), revision: row.revision, changed: false },
            Some(row) => {
                let revision = row.revision + 1;
                insert_revision(&mut tx, row.id, revision, &yaml, message, at).await?;
                sqlx::query!("UPDATE plans SET updated_at = ? WHERE id = ?", at, row.id).execute(&mut *tx).await?;
                Saved { name: plan.name.clone(), revision, changed: true }
            }
            None => {
                let id = sqlx::query_scalar!(
                    r#"INSERT INTO plans (name, created_at, updated_at) VALUES (?, ?, ?) RETURNING id AS "id!""#,
                    name,
                    at,
                    at
                )
                .fetch_one(&mut *tx)
                .await?;
                insert_revision(&mut tx, id, 1, &yaml, message, at).await?;
                Saved { name: plan.name.clone(), revision: 1, changed: true }
            }
        };
        tx.commit().await?;
        Ok(saved)
    }

    /// The newest revision of plan `name`.
    pub async fn load_plan(&self, name: &str) -> Result<StoredPlan> {
        let row = sqlx::query!(
            r#"SELECT r.revision, r.yaml, r.created_at
               FROM plans p JOIN plan_revisions r ON r.plan_id = p.id
               WHERE p.name = ? ORDER BY r.revision DESC LIMIT 1"#,
            name
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })?;
        stored(name, row.revision, &row.yaml, row.created_at)
    }

    /// Revision `revision` of plan `name`.
    pub async fn load_revision(&self, name: &str, revision: i64) -> Result<StoredPlan> {
        let row = sqlx::query!(
            r#"SELECT r.yaml, r.created_at
               FROM plans p JOIN plan_revisions r ON r.plan_id = p.id
               WHERE p.name = ? AND r.revision = ?"#,
            name,
            revision
        )
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => stored(name, revision, &row.yaml, row.created_at),
            None => {
                self.plan_id(name).await?;
                Err(Error::RevisionNotFound { name: name.to_owned(), revision })
            }
        }
    }

    /// Plan `name`'s revisions, newest first.
    pub async fn history(&self, name: &str) -> Result<Vec<RevisionInfo>> {
        let id = self.plan_id(name).await?;
        let rows = sqlx::query_as!(
            RevisionInfo,
            "SELECT revision, message, created_at FROM plan_revisions WHERE plan_id = ? ORDER BY revision DESC",
            id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Saves an earlier revision again as the newest one; nothing of the history is lost.
    pub async fn revert(&self, name: &str, revision: i64, at: Millis) -> Result<Saved> {
        let old = self.load_revision(name, revision).await?;
        let mut plan = old.plan;
        plan.name = name.to_owned();
        self.save_plan(&plan, &format!("reverted to revision {revision}"), at).await
    }

    /// Renames a plan, keeping its history and secrets; records the rename as a revision.
    pub async fn rename_plan(&self, name: &str, new_name: &str, at: Millis) -> Result<Saved> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query!(
            r#"SELECT r.revision, r.yaml, r.created_at
               FROM plans p JOIN plan_revisions r ON r.plan_id = p.id
               WHERE p.name = ? ORDER BY r.revision DESC LIMIT 1"#,
            name
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })?;
        let current = stored(name, row.revision, &row.yaml, row.created_at)?;
        let taken =
            sqlx::query_scalar!("SELECT id FROM plans WHERE name = ?", new_name).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(Error::NameTaken { name: new_name.to_owned() });
        }
        let id = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM plans WHERE name = ?"#, name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })?;
        let mut plan = current.plan;
        plan.name = new_name.to_owned();
        let revision = current.revision + 1;
        insert_revision(&mut tx, id, revision, &to_yaml(&plan), &format!("renamed from {name}"), at).await?;
        sqlx::query!("UPDATE plans SET name = ?, updated_at = ? WHERE id = ?", new_name, at, id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Saved { name: new_name.to_owned(), revision, changed: true })
    }

    /// Copies the newest revision of a plan under a new name, with a fresh history and no secrets
    /// (a copy is a different cluster and gets its own token).
    pub async fn duplicate_plan(&self, name: &str, new_name: &str, at: Millis) -> Result<Saved> {
        let mut plan = self.load_plan(name).await?.plan;
        if self.plan_id(new_name).await.is_ok() {
            return Err(Error::NameTaken { name: new_name.to_owned() });
        }
        plan.name = new_name.to_owned();
        self.save_plan(&plan, &format!("duplicated from {name}"), at).await
    }

    /// Deletes a plan with its history and secrets. Returns how many revisions were removed.
    pub async fn delete_plan(&self, name: &str) -> Result<i64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM plans WHERE name = ?"#, name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })?;
        let revisions =
            sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM plan_revisions WHERE plan_id = ?"#, id)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query!("DELETE FROM plans WHERE id = ?", id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(revisions)
    }

    /// The secret `key` of plan `name`, generating and storing it on first use.
    ///
    /// The same plan always gets the same secret back, so rendering twice gives identical output.
    pub async fn ensure_secret(
        &self,
        name: &str,
        key: &str,
        at: Millis,
        generate: impl FnOnce() -> String,
    ) -> Result<String> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM plans WHERE name = ?"#, name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })?;
        let existing = sqlx::query_scalar!("SELECT value FROM plan_secrets WHERE plan_id = ? AND name = ?", id, key)
            .fetch_optional(&mut *tx)
            .await?;
        let value = match existing {
            Some(v) => v,
            None => {
                let v = generate();
                sqlx::query!(
                    "INSERT INTO plan_secrets (plan_id, name, value, created_at) VALUES (?, ?, ?, ?)",
                    id,
                    key,
                    v,
                    at
                )
                .execute(&mut *tx)
                .await?;
                v
            }
        };
        tx.commit().await?;
        Ok(value)
    }

    /// The secret `key` of plan `name`, if it has been made.
    pub async fn secret(&self, name: &str, key: &str) -> Result<Option<String>> {
        let id = self.plan_id(name).await?;
        let value = sqlx::query_scalar!("SELECT value FROM plan_secrets WHERE plan_id = ? AND name = ?", id, key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value)
    }

    /// Every secret of plan `name`, by name: for a backup the user asked for.
    pub async fn secrets(&self, name: &str) -> Result<Vec<(String, String)>> {
        let id = self.plan_id(name).await?;
        let rows = sqlx::query!("SELECT name, value FROM plan_secrets WHERE plan_id = ? ORDER BY name", id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.name, r.value)).collect())
    }

    /// Replaces every secret of plan `name` with `secrets`, in one transaction (restoring a
    /// backup).
    pub async fn replace_secrets(&self, name: &str, secrets: &[(String, String)], at: Millis) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM plans WHERE name = ?"#, name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })?;
        sqlx::query!("DELETE FROM plan_secrets WHERE plan_id = ?", id).execute(&mut *tx).await?;
        for (key, value) in secrets {
            sqlx::query!(
                "INSERT INTO plan_secrets (plan_id, name, value, created_at) VALUES (?, ?, ?, ?)",
                id,
                key,
                value,
                at
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The state `key` of plan `name` (not plan, not secret: see migration 0004), if set.
    pub async fn state(&self, name: &str, key: &str) -> Result<Option<String>> {
        let id = self.plan_id(name).await?;
        let value = sqlx::query_scalar!("SELECT value FROM plan_state WHERE plan_id = ? AND key = ?", id, key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value)
    }

    /// Sets the state `key` of plan `name`.
    pub async fn set_state(&self, name: &str, key: &str, value: &str, at: Millis) -> Result<()> {
        let id = self.plan_id(name).await?;
        sqlx::query!(
            "INSERT INTO plan_state (plan_id, key, value, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (plan_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            id,
            key,
            value,
            at
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Clears the state `key` of plan `name`; true if it was set.
    pub async fn delete_state(&self, name: &str, key: &str) -> Result<bool> {
        let id = self.plan_id(name).await?;
        let done =
            sqlx::query!("DELETE FROM plan_state WHERE plan_id = ? AND key = ?", id, key).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// The workstation setting `key` (see migration 0005), if set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let value =
            sqlx::query_scalar!("SELECT value FROM settings WHERE key = ?", key).fetch_optional(&self.pool).await?;
        Ok(value)
    }

    /// Sets the workstation setting `key`.
    pub async fn set_setting(&self, key: &str, value: &str, at: Millis) -> Result<()> {
        sqlx::query!(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key,
            value,
            at
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The names of the secrets stored for plan `name` (never their values).
    pub async fn secret_names(&self, name: &str) -> Result<Vec<String>> {
        let id = self.plan_id(name).await?;
        let names = sqlx::query_scalar!("SELECT name FROM plan_secrets WHERE plan_id = ? ORDER BY name", id)
            .fetch_all(&self.pool)
            .await?;
        Ok(names)
    }

    pub(crate) async fn plan_id(&self, name: &str) -> Result<i64> {
        sqlx::query_scalar!(r#"SELECT id AS "id!" FROM plans WHERE name = ?"#, name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })
    }
}

/// Creates the database file readable by its owner only: it holds the plans' secrets.
/// SQLite creates the -wal and -shm files with the same permissions.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    Ok(())
}

async fn insert_revision(
    conn: &mut SqliteConnection,
    plan_id: i64,
    revision: i64,
    yaml: &str,
    message: &str,
    at: Millis,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO plan_revisions (plan_id, revision, yaml, message, created_at) VALUES (?, ?, ?, ?, ?)",
        plan_id,
        revision,
        yaml,
        message,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}

fn stored(name: &str, revision: i64, yaml: &str, saved_at: Millis) -> Result<StoredPlan> {
    let parsed =
        parse_plan(yaml).map_err(|e| Error::BadRevision { name: name.to_owned(), revision, detail: e.to_string() })?;
    Ok(StoredPlan { name: name.to_owned(), revision, saved_at, plan: parsed.plan })
}

/// Looks at an existing file read-only and decides whether it may be opened for writing.
/// Returns true for a new (missing or empty) database.
async fn probe(path: &Path) -> Result<bool> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(source) => return Err(Error::Read { path: path.to_owned(), source }),
    };
    if len == 0 {
        return Ok(true);
    }
    let mut header = [0u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        let n = f.read(&mut header).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        if n < header.len() || &header != b"SQLite format 3\0" {
            return Err(Error::NotFlatlab { path: path.to_owned(), reason: "not an SQLite database".into() });
        }
    }

    let corrupt = |e: sqlx::Error| Error::Corrupt { path: path.to_owned(), detail: e.to_string() };
    let url = SqliteConnectOptions::from_str("sqlite://")?.filename(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&url).await.map_err(corrupt)?;
    let result = probe_connection(path, &mut conn).await;
    // A failed close of a read-only connection changes nothing on disk.
    let _ = conn.close().await;
    result
}

async fn probe_connection(path: &Path, conn: &mut SqliteConnection) -> Result<bool> {
    let corrupt = |e: sqlx::Error| Error::Corrupt { path: path.to_owned(), detail: e.to_string() };
    let check: String = sqlx::query_scalar("PRAGMA quick_check").fetch_one(&mut *conn).await.map_err(corrupt)?;
    if check != "ok" {
        return Err(Error::Corrupt { path: path.to_owned(), detail: format!("integrity check: {check}") });
    }
    let app_id: i32 = sqlx::query_scalar("PRAGMA application_id").fetch_one(&mut *conn).await.map_err(corrupt)?;
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
        .fetch_one(&mut *conn)
        .await
        .map_err(corrupt)?;
    if app_id == 0 && tables == 0 {
        return Ok(true);
    }
    if app_id != APPLICATION_ID {
        return Err(Error::NotFlatlab {
            path: path.to_owned(),
            reason: format!("an SQLite database of another program, application id {app_id:#x}"),
        });
    }
    let has_migrations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_one(&mut *conn)
            .await
            .map_err(corrupt)?;
    if has_migrations == 1 {
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(corrupt)?;
        let supported = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        if let Some(found) = found
            && found > supported
        {
            return Err(Error::NewerSchema { path: path.to_owned(), found, supported });
        }
    }
    Ok(false)
}
