//! The app's side of the line protocol: starts `flatlab serve --json`, keeps and forwards its
//! lines, arms nodes through its stdin, and stops it (it also stops by itself when its stdin
//! closes with the app).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flatlab_bootd::DhcpMode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use ts_rs::TS;

use super::{Request, SidecarLine, SidecarMessage};
use crate::{ApiError, ErrorBody, ErrorCode};

/// Lines kept per run, so that a reopened view can replay them; a long install sends a few
/// thousand.
const MAX_LINES: usize = 20_000;

/// What the app asks the boot server to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct StartOptions {
    pub plan: String,
    pub interface: String,
    pub dhcp: DhcpMode,
    /// A mirror folder; none for the default mirror folder when it exists.
    #[ts(type = "string | null")]
    pub mirror: Option<PathBuf>,
}

/// The boot server as the app last heard of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct BootStatus {
    pub running: bool,
    /// Every line the running (or last) boot server sent, oldest first.
    pub messages: Vec<SidecarLine>,
    /// Why the last boot server stopped, when it failed.
    pub error: Option<ErrorBody>,
    /// The `flatlab` program the app runs as its boot server (empty when there is none).
    pub sidecar: String,
}

/// Sent when the boot server process exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct BootStopped {
    pub error: Option<ErrorBody>,
}

/// What the supervisor tells the app as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorEvent {
    Line(SidecarLine),
    Stopped(BootStopped),
}

type Notify = Arc<dyn Fn(SupervisorEvent) + Send + Sync>;

#[derive(Default)]
struct Inner {
    run: Option<Run>,
    lines: Vec<SidecarLine>,
    error: Option<ErrorBody>,
    /// Counts starts, so that a finished run's reader does not clear a newer run.
    generation: u64,
}

struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    plan: String,
}

/// Runs and watches the boot-server sidecar for the app.
pub struct Supervisor {
    db: PathBuf,
    program: Option<PathBuf>,
    inner: Arc<Mutex<Inner>>,
    notify: Notify,
}

/// The state, even after a panic elsewhere while it was held (it stays consistent: every change
/// to it is a single assignment or push).
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `flatlab` program to run as the sidecar: `FLATLAB_CLI`, else the one beside `exe` (where
/// the package and a source build put it), else the first on `PATH`.
pub fn sidecar_program(exe: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLATLAB_CLI") {
        return Some(PathBuf::from(p));
    }
    if let Some(beside) = exe.and_then(Path::parent).map(|d| d.join("flatlab"))
        && beside.is_file()
    {
        return Some(beside);
    }
    crate::find_on_path("flatlab")
}

fn failure(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody { code, message: message.into() }
}

impl Supervisor {
    /// A supervisor for boot servers over database `db`, running `program` (see
    /// [`sidecar_program`]); `notify` hears every line and every stop.
    pub fn new(
        db: PathBuf,
        program: Option<PathBuf>,
        notify: impl Fn(SupervisorEvent) + Send + Sync + 'static,
    ) -> Self {
        Supervisor { db, program, inner: Arc::default(), notify: Arc::new(notify) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn program(&self) -> anyhow::Result<&Path> {
        self.program.as_deref().ok_or_else(|| anyhow::Error::from(ApiError::NoSidecar))
    }

    /// Starts the boot server. Refused while one runs.
    pub fn start(&self, options: StartOptions) -> anyhow::Result<()> {
        let program = self.program()?;
        let mirror = options.mirror.clone().or_else(|| crate::mirror::default_mirror_dir().ok().filter(|d| d.is_dir()));
        let mut command = Command::new(program);
        command
            .arg("--db")
            .arg(&self.db)
            .args(["serve", &options.plan, "--interface", &options.interface, "--dhcp", options.dhcp.as_str()])
            .args(["--admin", "127.0.0.1:0", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(m) = &mirror {
            command.arg("--mirror").arg(m);
        }

        let mut inner = self.lock();
        if let Some(run) = &inner.run {
            return Err(ApiError::AlreadyRunning { plan: run.plan.clone() }.into());
        }
        let mut child = command.spawn().map_err(|e| {
            anyhow::Error::from(e).context(format!("cannot start the boot server {}", program.display()))
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let stdin = child.stdin.take();
        inner.generation += 1;
        inner.lines.clear();
        inner.error = None;
        inner.run = Some(Run { child, stdin, plan: options.plan.clone() });
        let generation = inner.generation;
        drop(inner);

        let stderr_tail = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr_reader = stderr.map(|stderr| {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "flatlab::bootd", "{line}");
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    tail.push(line);
                    if tail.len() > 20 {
                        tail.remove(0);
                    }
                }
            })
        });
        if let Some(stdout) = stdout {
            let ended = Ended { tail: stderr_tail, reader: stderr_reader };
            tokio::spawn(follow(self.inner.clone(), self.notify.clone(), generation, stdout, ended));
        }
        tracing::info!(generation, plan = %options.plan, "boot server started");
        Ok(())
    }

    /// Stops the boot server: closing its stdin asks it to stop; it is killed if it has not
    /// after five seconds.
    pub fn stop(&self) {
        let generation = {
            let mut inner = self.lock();
            let generation = inner.generation;
            match inner.run.as_mut() {
                Some(run) => drop(run.stdin.take()),
                None => return,
            }
            generation
        };
        let shared = self.inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let mut inner = lock(&shared);
            if inner.generation == generation
                && let Some(run) = inner.run.as_mut()
            {
                let _ = run.child.start_kill();
            }
        });
    }

    /// Kills the boot server at once (the app is quitting).
    pub fn kill(&self) {
        if let Some(run) = self.lock().run.as_mut() {
            let _ = run.child.start_kill();
        }
    }

    pub fn status(&self) -> BootStatus {
        let inner = self.lock();
        BootStatus {
            running: inner.run.is_some(),
            messages: inner.lines.clone(),
            error: inner.error.clone(),
            sidecar: self.program.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        }
    }

    /// Sends a request to the running boot server of `plan`. False when none runs for it.
    pub async fn request(&self, plan: &str, request: &Request) -> anyhow::Result<bool> {
        let stdin = {
            let mut inner = self.lock();
            match inner.run.as_mut() {
                Some(run) if run.plan == plan => run.stdin.take(),
                _ => None,
            }
        };
        let Some(mut stdin) = stdin else { return Ok(false) };
        let written = stdin.write_all(request.to_line().as_bytes()).await.and(stdin.flush().await);
        // Put it back (unless the server was stopped meanwhile).
        if let Some(run) = self.lock().run.as_mut()
            && run.stdin.is_none()
        {
            run.stdin = Some(stdin);
        }
        written.map_err(|e| anyhow::Error::from(e).context("cannot reach the boot server"))?;
        Ok(true)
    }
}

/// The sidecar's last words on stderr, for when it fails without an `error` line.
struct Ended {
    tail: Arc<Mutex<Vec<String>>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

/// Keeps and forwards the sidecar's lines until it exits, then reports how it ended.
async fn follow(
    shared: Arc<Mutex<Inner>>,
    notify: Notify,
    generation: u64,
    stdout: tokio::process::ChildStdout,
    ended: Ended,
) {
    let lock = || lock(&shared);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(text)) = lines.next_line().await {
        let line = match serde_json::from_str::<SidecarLine>(&text) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "the boot server wrote a line that is not of its protocol: {text}");
                continue;
            }
        };
        {
            let mut inner = lock();
            if inner.generation != generation {
                return;
            }
            if let SidecarMessage::Error { error } = &line.message {
                inner.error = Some(error.clone());
            }
            if inner.lines.len() >= MAX_LINES {
                inner.lines.drain(..MAX_LINES / 10);
            }
            inner.lines.push(line.clone());
        }
        notify(SupervisorEvent::Line(line));
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
    // Its stderr ends with it: read to the end before looking at the last words.
    if let Some(reader) = ended.reader {
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
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
            let tail = ended.tail.lock().unwrap_or_else(|e| e.into_inner());
            let last = tail.iter().rev().find(|l| !l.trim().is_empty()).cloned();
            let message = last.map(|l| l.trim_start_matches("error: ").to_owned()).unwrap_or_else(|| {
                format!("the boot server stopped ({})", status.map(|s| s.to_string()).unwrap_or_default())
            });
            inner.error = Some(failure(ErrorCode::Internal, message));
        }
        if failed { inner.error.clone() } else { None }
    };
    tracing::info!(generation, ?error, "boot server stopped");
    notify(SupervisorEvent::Stopped(BootStopped { error }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in sidecar: speaks the protocol from a shell script.
    fn fake_sidecar(dir: &Path, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("flatlab");
        std::fs::write(&path, format!("#!/bin/sh\n{script}")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    const SPEAKS: &str = r#"echo "$@" > "$(dirname "$0")/args"
echo '{"run":"r1","seq":1,"type":"ready","plan":"lab","interface":"eth0","http":"10.0.0.2:8080","tftp":null,"admin":"127.0.0.1:1","warnings":[]}'
echo 'not a protocol line'
while read -r line; do
  case "$line" in
    "arm "*) echo "{\"run\":\"r1\",\"seq\":2,\"type\":\"armed\",\"node\":\"${line#arm }\"}" ;;
  esac
done
"#;

    fn options() -> StartOptions {
        StartOptions {
            plan: "lab".into(),
            interface: "eth0".into(),
            dhcp: DhcpMode::Full,
            mirror: Some("/srv/m".into()),
        }
    }

    fn recorder() -> (Arc<Mutex<Vec<SupervisorEvent>>>, impl Fn(SupervisorEvent) + Send + Sync + 'static) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        (seen, move |e| sink.lock().expect("lock").push(e))
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..100 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn lines_are_kept_and_told_requests_reach_the_sidecar_and_a_stop_is_told() {
        let dir = tempfile::tempdir().expect("tmp");
        let program = fake_sidecar(dir.path(), SPEAKS);
        let (seen, notify) = recorder();
        let s = Supervisor::new(dir.path().join("db"), Some(program), notify);
        s.start(options()).expect("starts");
        until("ready", || s.status().messages.len() == 1).await;
        let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
        assert!(
            args.contains("serve lab --interface eth0 --dhcp full --admin 127.0.0.1:0 --json --mirror /srv/m"),
            "{args}"
        );
        let again = s.start(options()).expect_err("one at a time");
        assert_eq!(crate::error_code(&again), ErrorCode::AlreadyRunning);

        assert!(s.request("lab", &Request::Arm { node: "cp1".into(), new_cluster: false }).await.expect("sent"));
        assert!(
            !s.request("other", &Request::Arm { node: "cp1".into(), new_cluster: false }).await.expect("no server")
        );
        until("armed", || s.status().messages.len() == 2).await;
        assert!(matches!(&s.status().messages[1].message, SidecarMessage::Armed { node } if node == "cp1"));

        s.stop();
        until("stopped", || !s.status().running).await;
        until("told", || seen.lock().expect("lock").iter().any(|e| matches!(e, SupervisorEvent::Stopped(_)))).await;
        let events = seen.lock().expect("lock");
        let lines: Vec<u64> =
            events.iter().filter_map(|e| if let SupervisorEvent::Line(l) = e { Some(l.seq) } else { None }).collect();
        assert_eq!(lines, [1, 2], "the line that is not of the protocol is dropped");
        assert_eq!(events.last(), Some(&SupervisorEvent::Stopped(BootStopped { error: None })));
    }

    #[tokio::test]
    async fn a_sidecar_that_fails_says_why_from_its_last_words() {
        let dir = tempfile::tempdir().expect("tmp");
        let program = fake_sidecar(dir.path(), "echo 'error: TFTP needs port 69' >&2\nexit 1\n");
        let (seen, notify) = recorder();
        let s = Supervisor::new(dir.path().join("db"), Some(program), notify);
        s.start(options()).expect("starts");
        until("stopped", || seen.lock().expect("lock").iter().any(|e| matches!(e, SupervisorEvent::Stopped(_)))).await;
        let status = s.status();
        assert!(!status.running);
        assert_eq!(status.error.as_ref().map(|e| e.message.as_str()), Some("TFTP needs port 69"));
    }

    #[tokio::test]
    async fn without_a_sidecar_program_start_says_how_to_get_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Supervisor::new(dir.path().join("db"), None, |_| {});
        let e = s.start(options()).expect_err("no program");
        assert!(format!("{e:#}").contains("cargo build -p flatlab-cli"), "{e:#}");
        assert_eq!(s.status().sidecar, "");
    }
}
