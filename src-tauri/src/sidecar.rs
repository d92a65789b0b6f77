//! The boot server as a separate process: `flatlab serve --json`, the app's sidecar.
//!
//! Only that process needs the privilege for ports 67 and 69 (`setcap` on the `flatlab`
//! binary, never on the GUI). It writes one `SidecarMessage` per stdout line, which is forwarded
//! to the UI as the `boot-message` event and kept for `boot_status`; it reads `arm NODE` lines on
//! stdin and stops when stdin closes, so it never outlives the app.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flatlab_api::{ErrorBody, ErrorCode, Flatlab};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tauri::{AppHandle, Emitter, State};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::commands::CmdResult;

/// Kept per run, so that a reopened view can replay it; a long install sends a few thousand.
const MAX_MESSAGES: usize = 20_000;

pub struct BootServer {
    db: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

/// The state, even after a panic elsewhere while it was held (it stays consistent: every
/// change to it is a single assignment or push).
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Inner {
    run: Option<Run>,
    messages: Vec<Value>,
    error: Option<ErrorBody>,
    /// Counts runs, so that a finished run's reader does not clear a newer run.
    generation: u64,
}

struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    plan: String,
}

#[derive(Deserialize)]
pub struct StartOptions {
    plan: String,
    interface: String,
    dhcp: String,
    mirror: Option<PathBuf>,
}

#[derive(Serialize)]
pub struct BootStatus {
    running: bool,
    messages: Vec<Value>,
    error: Option<ErrorBody>,
    sidecar: String,
}

#[derive(Clone, Serialize)]
struct BootStopped {
    error: Option<ErrorBody>,
}

fn failure(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody { code, message: message.into() }
}

impl BootServer {
    pub fn new(db: PathBuf) -> Self {
        BootServer { db, inner: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Kills the boot server at once (the app is quitting).
    pub fn kill(&self) {
        if let Some(run) = self.lock().run.as_mut() {
            let _ = run.child.start_kill();
        }
    }
}

/// The `flatlab` binary to run: `FLATLAB_CLI`, else the one beside this app (where the package
/// and a source build put it), else the first on `PATH`.
pub fn sidecar_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLATLAB_CLI") {
        return Some(PathBuf::from(p));
    }
    if let Some(beside) = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("flatlab")))
        && beside.is_file()
    {
        return Some(beside);
    }
    flatlab_api::find_on_path("flatlab")
}

fn need_sidecar() -> Result<PathBuf, ErrorBody> {
    sidecar_path().ok_or_else(|| {
        failure(
            ErrorCode::Io,
            "cannot find the `flatlab` program that runs the boot server: install the Flatlab package, or build it with `cargo build -p flatlab-cli`",
        )
    })
}

#[tauri::command]
pub async fn boot_start(handle: AppHandle, boot: State<'_, BootServer>, options: StartOptions) -> CmdResult<()> {
    let dhcp = match options.dhcp.as_str() {
        d @ ("proxy" | "full" | "off") => d,
        other => return Err(failure(ErrorCode::Internal, format!("unknown DHCP mode `{other}`"))),
    };
    let sidecar = need_sidecar()?;
    let mirror = options.mirror.or_else(|| flatlab_api::mirror::default_mirror_dir().ok().filter(|d| d.is_dir()));
    let mut command = Command::new(&sidecar);
    command
        .arg("--db")
        .arg(&boot.db)
        .args(["serve", &options.plan, "--interface", &options.interface, "--dhcp", dhcp])
        .args(["--admin", "127.0.0.1:0", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(m) = &mirror {
        command.arg("--mirror").arg(m);
    }

    let generation = {
        let mut inner = boot.lock();
        if let Some(run) = &inner.run {
            return Err(failure(
                ErrorCode::AddressInUse,
                format!("the boot server already runs for plan {}; stop it first", run.plan),
            ));
        }
        let mut child = command
            .spawn()
            .map_err(|e| failure(ErrorCode::Io, format!("cannot start the boot server {}: {e}", sidecar.display())))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let stdin = child.stdin.take();
        inner.generation += 1;
        inner.messages.clear();
        inner.error = None;
        inner.run = Some(Run { child, stdin, plan: options.plan.clone() });
        let generation = inner.generation;
        let shared = boot.inner.clone();
        let stderr_tail = Arc::new(Mutex::new(Vec::<String>::new()));
        if let Some(stderr) = stderr {
            let tail = stderr_tail.clone();
            tauri::async_runtime::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "flatlab::bootd", "{line}");
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    tail.push(line);
                    if tail.len() > 20 {
                        tail.remove(0);
                    }
                }
            });
        }
        if let Some(stdout) = stdout {
            tauri::async_runtime::spawn(follow(handle, shared, generation, stdout, stderr_tail));
        }
        generation
    };
    tracing::info!(generation, plan = %options.plan, "boot server started");
    Ok(())
}

/// Forwards the sidecar's lines until it exits, then reports how it ended.
async fn follow(
    handle: AppHandle,
    shared: Arc<Mutex<Inner>>,
    generation: u64,
    stdout: tokio::process::ChildStdout,
    stderr_tail: Arc<Mutex<Vec<String>>>,
) {
    let lock = || lock(&shared);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!("the boot server wrote a line that is not JSON: {line}");
            continue;
        };
        {
            let mut inner = lock();
            if inner.generation != generation {
                return;
            }
            if message["type"] == "error"
                && let Ok(error) = serde_json::from_value::<ErrorBody>(message["error"].clone())
            {
                inner.error = Some(error);
            }
            if inner.messages.len() >= MAX_MESSAGES {
                inner.messages.drain(..MAX_MESSAGES / 10);
            }
            inner.messages.push(message.clone());
        }
        let _ = handle.emit("boot-message", message);
    }
    // Stdout closed: the process is exiting. Wait for it (briefly), then say how it ended.
    let mut status = None;
    for _ in 0..50 {
        {
            let mut inner = lock();
            if inner.generation != generation {
                return;
            }
            match inner.run.as_mut().map(|r| r.child.try_wait()) {
                Some(Ok(Some(s))) => {
                    status = Some(s);
                    break;
                }
                Some(Ok(None)) => {}
                Some(Err(_)) | None => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = {
        let mut inner = lock();
        if inner.generation != generation {
            return;
        }
        if let Some(mut run) = inner.run.take()
            && status.is_none()
        {
            let _ = run.child.start_kill();
        }
        let failed = status.is_some_and(|s| !s.success());
        if failed && inner.error.is_none() {
            let tail = stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
            let last = tail.iter().rev().find(|l| !l.trim().is_empty()).cloned();
            let message = last.map(|l| l.trim_start_matches("error: ").to_owned()).unwrap_or_else(|| {
                format!("the boot server stopped ({})", status.map(|s| s.to_string()).unwrap_or_default())
            });
            inner.error = Some(failure(ErrorCode::Internal, message));
        }
        if failed { inner.error.clone() } else { None }
    };
    tracing::info!(generation, ?error, "boot server stopped");
    let _ = handle.emit("boot-stopped", BootStopped { error });
}

/// Stops the boot server: closing its stdin asks it to stop; it is killed if it has not after
/// five seconds.
#[tauri::command]
pub async fn boot_stop(boot: State<'_, BootServer>) -> CmdResult<()> {
    let generation = {
        let mut inner = boot.lock();
        let generation = inner.generation;
        match inner.run.as_mut() {
            Some(run) => drop(run.stdin.take()),
            None => return Ok(()),
        }
        generation
    };
    let shared = boot.inner.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut inner = lock(&shared);
        if inner.generation == generation
            && let Some(run) = inner.run.as_mut()
        {
            let _ = run.child.start_kill();
        }
    });
    Ok(())
}

#[tauri::command]
pub fn boot_status(boot: State<'_, BootServer>) -> BootStatus {
    let inner = boot.lock();
    BootStatus {
        running: inner.run.is_some(),
        messages: inner.messages.clone(),
        error: inner.error.clone(),
        sidecar: sidecar_path().map(|p| p.display().to_string()).unwrap_or_default(),
    }
}

/// Arms a node for reinstall: through the running boot server (at once), or in the store (at
/// the boot server's next start).
#[tauri::command]
pub async fn boot_arm(
    boot: State<'_, BootServer>,
    app: State<'_, Flatlab>,
    plan: String,
    node: String,
) -> CmdResult<()> {
    if node.is_empty() || node.contains(['\n', '\r']) {
        return Err(failure(ErrorCode::Internal, "a node name is one line"));
    }
    let stdin = {
        let mut inner = boot.lock();
        match inner.run.as_mut() {
            Some(run) if run.plan == plan => run.stdin.take(),
            _ => None,
        }
    };
    match stdin {
        Some(mut stdin) => {
            let written = stdin.write_all(format!("arm {node}\n").as_bytes()).await.and(stdin.flush().await);
            // Put it back (unless the server was stopped meanwhile).
            if let Some(run) = boot.lock().run.as_mut()
                && run.stdin.is_none()
            {
                run.stdin = Some(stdin);
            }
            written.map_err(|e| failure(ErrorCode::Io, format!("cannot reach the boot server: {e}")))?;
            Ok(())
        }
        None => Ok(app.arm_machine(&plan, &node, None, &mut crate::commands::os_rng()).await?),
    }
}

/// Grants the boot-server binary (never this GUI) the capabilities for ports 67/69 and raw
/// DHCP, through pkexec's password prompt.
#[tauri::command]
pub async fn grant_boot_privilege() -> CmdResult<()> {
    let sidecar = need_sidecar()?;
    let sidecar = sidecar.canonicalize().unwrap_or(sidecar);
    grant(&sidecar).await
}

async fn grant(sidecar: &Path) -> CmdResult<()> {
    let manual = format!("sudo setcap cap_net_bind_service,cap_net_raw+ep {}", sidecar.display());
    let out = Command::new("pkexec")
        .args(["setcap", "cap_net_bind_service,cap_net_raw+ep"])
        .arg(sidecar)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            failure(
                ErrorCode::NeedsPrivilege,
                format!("cannot ask for the password (pkexec: {e}); run `{manual}` once in a terminal"),
            )
        })?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Err(failure(
        ErrorCode::NeedsPrivilege,
        format!(
            "the permission was not granted{}; run `{manual}` once in a terminal",
            if why.is_empty() { String::new() } else { format!(" ({why})") }
        ),
    ))
}
