//! The use cases every Flatlab front end calls: the desktop app and the `flatlab` CLI alike.
//!
//! `api` ties the plan model to the store (and, as they arrive, to rendering, the boot server,
//! discovery, the mirror and export). It holds policy such as "a plan is imported only if nothing
//! in it would be lost", and it is where time and randomness enter: through [`Clock`] and the
//! random source handed to the use cases that need one (such as [`Flatlab::k3s_token`]). No Tauri
//! and no terminal output in here.

mod boot;
mod cluster;
mod desktop;
mod discover;
mod error;
pub mod export;
mod inventory;
pub mod kubeconfig;
pub mod mirror;
pub mod pki;
mod power;
mod preview;
mod render;
mod secrets;
pub mod sidecar;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use flatlab_model::{DEMO_PLAN, Finding, Plan, Report, ValidatedPlan, parse_plan, to_yaml, validate, validate_parsed};
use flatlab_store::Store;
pub use flatlab_store::{PlanSummary, RevisionInfo, Saved};
use serde::Serialize;
use ts_rs::TS;

pub use boot::{
    Armed, BootSession, IPXE_BINARIES, InspectRequested, InspectTarget, ServeOptions, default_ipxe_dirs,
    server_address, taken_addresses,
};
pub use cluster::{
    Access, ClusterDecision, ClusterStatus, DownloadedSnapshot, NodeState, NodeView, Reach, Reboot, RemoveStep,
    RestoreProgress, RestoreServer, RestoreStarted, SnapshotList, SnapshotView, TakenSnapshot, UpgradeStarted,
    UpgradeView,
};
pub use desktop::{
    AppInfo, DbProblem, GIT_REVISION, LocalNetwork, NetInterface, SshPublicKey, VERSION, VERSION_LINE, find_on_path,
    list_interfaces, local_network, ssh_public_keys,
};
pub use discover::Sighting;
pub use error::{ApiError, ErrorBody, ErrorCode, error_code};
pub use flatlab_bootd::{DhcpMode, Event as BootEvent, EventKind as BootEventKind, HistoryEntry, Stage};
pub use flatlab_render::PLACEHOLDER_BASE_URL;
pub use flatlab_store::Millis;
pub use inventory::MachineInventory;
pub use power::{PACKETS_PER_MACHINE, PoweredOn, interface_on, wake_route};
pub use preview::{
    EmbeddedFile, PREVIEW_AGENT_TOKEN, PREVIEW_BOOT_TOKEN, PREVIEW_K3S_TOKEN, PreviewFile, Verdict, preview_plan,
};
pub use render::PLACEHOLDER_BOOT_TOKEN;
pub use secrets::{K3S_TOKEN, generate_boot_token, generate_k3s_token};

/// The first line of every exported plan file.
pub const PLAN_FILE_HEADER: &str =
    "# Flatlab plan file, format version 1. Fields: docs/plan-format.md in the Flatlab sources.\n";

/// Where time comes from. Tests pass a fixed clock so that stored times are exact.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> Millis;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The default database: `$XDG_DATA_HOME/flatlab/flatlab.db` (`~/.local/share/flatlab/flatlab.db`).
pub fn default_db_path() -> anyhow::Result<PathBuf> {
    let base =
        dirs::data_dir().context("cannot find your data folder: set XDG_DATA_HOME or HOME, or pass --db PATH")?;
    Ok(base.join("flatlab").join("flatlab.db"))
}

/// A plan with its validation findings, as shown to the user.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PlanView {
    pub name: String,
    #[ts(type = "number")]
    pub revision: i64,
    #[ts(type = "number")]
    pub saved_at: Millis,
    pub plan: Plan,
    pub findings: Vec<Finding>,
}

/// What a save or import did, with the plan's findings after it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SaveOutcome {
    pub saved: Saved,
    pub findings: Vec<Finding>,
}

/// A plan as listed, with a count of its nodes and problems.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PlanListing {
    #[serde(flatten)]
    #[ts(flatten)]
    pub summary: PlanSummary,
    pub nodes: u32,
    pub errors: u32,
    pub warnings: u32,
}

/// How strict an import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportPolicy {
    /// Refuse a plan with any error finding (the default for scripts).
    #[default]
    Strict,
    /// Store a plan with validation errors so that it can be fixed in the app. Unknown fields
    /// still refuse the import, since they would be lost.
    KeepErrors,
}

/// Every finding of a plan (as edited, saved or not).
pub fn validate_plan(plan: &Plan) -> Vec<Finding> {
    validate(plan).findings
}

/// Reads and validates a plan file without storing anything.
pub fn validate_text(text: &str) -> Vec<Finding> {
    match parse_plan(text) {
        Ok(parsed) => validate_parsed(&parsed).findings,
        Err(e) => vec![e.to_finding()],
    }
}

/// [`validate_text`], then the LAN's word on the plan's static addresses ([`taken_addresses`]).
pub async fn validate_text_on_lan(text: &str) -> Vec<Finding> {
    match parse_plan(text) {
        Ok(parsed) => {
            let mut findings = validate_parsed(&parsed).findings;
            findings.extend(taken_addresses(&parsed.plan, None).await);
            findings
        }
        Err(e) => vec![e.to_finding()],
    }
}

/// The Flatlab application core, over one database.
#[derive(Clone)]
pub struct Flatlab {
    store: Store,
    clock: Arc<dyn Clock>,
    /// How long a node removal waits for K3s to take a server out of etcd.
    etcd_leave_timeout: std::time::Duration,
}

impl Flatlab {
    /// Opens the database at `db` with the system clock.
    pub async fn open(db: &Path) -> anyhow::Result<Self> {
        Self::with_clock(db, Arc::new(SystemClock)).await
    }

    pub async fn with_clock(db: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = Store::open(db).await.with_context(|| format!("opening the Flatlab database {}", db.display()))?;
        Ok(Self { store, clock, etcd_leave_timeout: cluster::ETCD_LEAVE_TIMEOUT })
    }

    /// Waits `timeout` instead of 120 s for K3s to take a removed server out of etcd (for a
    /// slow cluster, and for tests that see the wait end).
    pub fn with_etcd_leave_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.etcd_leave_timeout = timeout;
        self
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn db_path(&self) -> &Path {
        self.store.path()
    }

    pub async fn close(self) {
        self.store.close().await;
    }

    /// Stores the demo plan if the database has no plans yet (a new user's first start).
    pub async fn ensure_demo_plan(&self) -> anyhow::Result<Option<Saved>> {
        if !self.store.list_plans().await?.is_empty() {
            return Ok(None);
        }
        let plan = parse_plan(DEMO_PLAN).context("the built-in demo plan")?.plan;
        let saved = self.store.save_plan(&plan, "demo plan created on first start", self.clock.now_ms()).await?;
        Ok(Some(saved))
    }

    /// Every stored plan, with node and finding counts.
    pub async fn list_plans(&self) -> anyhow::Result<Vec<PlanListing>> {
        let mut out = Vec::new();
        for summary in self.store.list_plans().await.context("listing plans")? {
            let stored = self.store.load_plan(&summary.name).await?;
            let findings = validate(&stored.plan).findings;
            out.push(PlanListing {
                nodes: u32::try_from(stored.plan.nodes.len()).unwrap_or(u32::MAX),
                errors: count(&findings, flatlab_model::Severity::Error),
                warnings: count(&findings, flatlab_model::Severity::Warning),
                summary,
            });
        }
        Ok(out)
    }

    /// The newest (or a given) revision of a stored plan, with its findings.
    pub async fn show_plan(&self, name: &str, revision: Option<i64>) -> anyhow::Result<PlanView> {
        let stored = match revision {
            Some(r) => self.store.load_revision(name, r).await?,
            None => self.store.load_plan(name).await?,
        };
        let findings = validate(&stored.plan).findings;
        Ok(PlanView {
            name: stored.name,
            revision: stored.revision,
            saved_at: stored.saved_at,
            plan: stored.plan,
            findings,
        })
    }

    /// Imports a plan file: adds the plan, or saves it as a new revision of the plan of that name.
    pub async fn import_file(&self, path: &Path, policy: ImportPolicy) -> anyhow::Result<SaveOutcome> {
        let text = read_plan_file(path)?;
        let source = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "-".into());
        self.import_text(&text, &source, policy).await.with_context(|| format!("importing {}", path.display()))
    }

    /// Imports plan text; `source` names where it came from, for the revision message.
    pub async fn import_text(&self, text: &str, source: &str, policy: ImportPolicy) -> anyhow::Result<SaveOutcome> {
        let parsed = parse_plan(text).map_err(ApiError::from)?;
        let report = validate_parsed(&parsed);
        if !parsed.unknown_fields.is_empty() {
            return Err(ApiError::InvalidPlan {
                findings: parsed.unknown_fields,
                hint: "unknown fields would be lost; fix or remove them and import again",
            }
            .into());
        }
        self.check_storable(&parsed.plan, &report)?;
        if policy == ImportPolicy::Strict && report.has_errors() {
            return Err(ApiError::InvalidPlan {
                findings: report.errors().cloned().collect(),
                hint: "fix them, or import with --allow-errors to store the plan and fix it later",
            }
            .into());
        }
        let saved = self.store.save_plan(&parsed.plan, &format!("imported from {source}"), self.clock.now_ms()).await?;
        Ok(SaveOutcome { saved, findings: report.findings })
    }

    /// Creates a plan with no machines yet, with the demo plan's OS and K3s releases (the
    /// desktop app's New plan). Refuses a name that is taken.
    pub async fn create_plan(&self, name: &str) -> anyhow::Result<SaveOutcome> {
        check_name(name)?;
        if self.store.list_plans().await?.iter().any(|p| p.name == name) {
            return Err(flatlab_store::Error::NameTaken { name: name.to_owned() }.into());
        }
        let mut plan = parse_plan(DEMO_PLAN).context("the built-in demo plan")?.plan;
        plan.name = name.to_owned();
        plan.nodes.clear();
        plan.switches.clear();
        plan.ssh_authorized_keys.clear();
        // The workstation's own LAN (the default route's interface), not a made-up subnet.
        plan.network = match desktop::local_network() {
            Some(lan) => flatlab_model::Network { subnet: lan.subnet, gateway: lan.gateway, dns: lan.dns, ntp: vec![] },
            None => Default::default(),
        };
        plan.kubernetes.api_endpoint = None;
        let report = validate(&plan);
        let saved = self.store.save_plan(&plan, "created in the app", self.clock.now_ms()).await?;
        Ok(SaveOutcome { saved, findings: report.findings })
    }

    /// Saves an edited plan as a new revision (the desktop app's Save).
    pub async fn save_plan(&self, plan: &Plan, message: &str) -> anyhow::Result<SaveOutcome> {
        let report = validate(plan);
        self.check_storable(plan, &report)?;
        let saved = self
            .store
            .save_plan(plan, message, self.clock.now_ms())
            .await
            .with_context(|| format!("saving plan {}", plan.name))?;
        Ok(SaveOutcome { saved, findings: report.findings })
    }

    /// Writes a stored plan to a plan file, atomically (a reader never sees half a file).
    /// Returns the revision written.
    pub async fn export_plan(&self, name: &str, revision: Option<i64>, to: &Path) -> anyhow::Result<i64> {
        let text = self.export_text(name, revision).await?;
        write_atomically(to, text.as_bytes()).with_context(|| format!("writing {}", to.display()))?;
        Ok(match revision {
            Some(r) => r,
            None => self.store.load_plan(name).await?.revision,
        })
    }

    /// A stored plan as plan-file text.
    pub async fn export_text(&self, name: &str, revision: Option<i64>) -> anyhow::Result<String> {
        let view = self.show_plan(name, revision).await?;
        Ok(format!("{PLAN_FILE_HEADER}{}", to_yaml(&view.plan)))
    }

    pub async fn history(&self, name: &str) -> anyhow::Result<Vec<RevisionInfo>> {
        Ok(self.store.history(name).await?)
    }

    pub async fn revert(&self, name: &str, revision: i64) -> anyhow::Result<Saved> {
        Ok(self.store.revert(name, revision, self.clock.now_ms()).await?)
    }

    pub async fn rename_plan(&self, name: &str, new_name: &str) -> anyhow::Result<Saved> {
        check_name(new_name)?;
        Ok(self.store.rename_plan(name, new_name, self.clock.now_ms()).await?)
    }

    pub async fn duplicate_plan(&self, name: &str, new_name: &str) -> anyhow::Result<Saved> {
        check_name(new_name)?;
        Ok(self.store.duplicate_plan(name, new_name, self.clock.now_ms()).await?)
    }

    /// Deletes a plan with its history and secrets; returns how many revisions went with it.
    pub async fn delete_plan(&self, name: &str) -> anyhow::Result<i64> {
        Ok(self.store.delete_plan(name).await?)
    }

    /// The plan's K3s token, generated on first use and the same ever after.
    pub async fn k3s_token(&self, name: &str, rng: &mut impl rand::Rng) -> anyhow::Result<String> {
        let token = self.store.ensure_secret(name, K3S_TOKEN, self.clock.now_ms(), || generate_k3s_token(rng)).await?;
        Ok(token)
    }

    /// The newest revision of a stored plan, validated. Its errors become an `InvalidPlan`
    /// error carrying `hint`, which says what the caller needs the plan for.
    pub(crate) async fn validated_plan(&self, name: &str, hint: &'static str) -> anyhow::Result<ValidatedPlan> {
        let stored = self.store.load_plan(name).await?;
        validate(&stored.plan)
            .into_validated()
            .map_err(|report| ApiError::InvalidPlan { findings: report.errors().cloned().collect(), hint }.into())
    }

    /// The name is the plan's key in the store, so it must be valid before anything is saved.
    fn check_storable(&self, plan: &Plan, report: &Report) -> anyhow::Result<()> {
        let name_findings: Vec<Finding> = report.errors().filter(|f| f.path == "name").cloned().collect();
        if !name_findings.is_empty() {
            return Err(ApiError::InvalidPlan {
                findings: name_findings,
                hint: "a plan needs a valid name before it can be stored",
            }
            .into());
        }
        debug_assert!(!plan.name.is_empty());
        Ok(())
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let probe = Plan { name: name.to_owned(), ..parse_plan(DEMO_PLAN).context("the built-in demo plan")?.plan };
    let findings: Vec<Finding> = validate(&probe).errors().filter(|f| f.path == "name").cloned().collect();
    if findings.is_empty() { Ok(()) } else { bail!(ApiError::InvalidPlan { findings, hint: "choose another name" }) }
}

fn count(findings: &[Finding], severity: flatlab_model::Severity) -> u32 {
    u32::try_from(flatlab_model::count(findings, severity)).unwrap_or(u32::MAX)
}

/// Reads a plan file, or standard input for `-`.
pub fn read_plan_file(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the plan from standard input")?;
        return Ok(text);
    }
    let bytes = std::fs::read(path).map_err(|io| ApiError::ReadFile { path: path.to_owned(), io })?;
    String::from_utf8(bytes).map_err(|_| ApiError::NotText { path: path.to_owned() }.into())
}

/// Writes `bytes` to `to` as [`write_atomically`] does, readable by the owner only (mode 0600,
/// checked before the file takes its name).
pub fn write_private(to: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_with_mode(to, bytes, 0o600)
}

/// Writes `bytes` to `to` through a temporary file in the same folder, fsynced and renamed.
pub fn write_atomically(to: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_with_mode(to, bytes, 0o644)
}

fn write_with_mode(to: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = match to.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".flatlab-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(to).map_err(|e| e.error)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Formats a time for people: `2026-11-26 07:26 UTC`.
pub fn format_time(ms: Millis) -> String {
    format_millis(ms, time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
}

/// Formats a time of day for progress lines: `07:26:03`.
pub fn format_time_of_day(ms: Millis) -> String {
    format_millis(ms, time::macros::format_description!("[hour]:[minute]:[second]"))
}

fn format_millis(ms: Millis, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}
