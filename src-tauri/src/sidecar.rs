//! The boot server as a separate process (`flatlab serve --json`), supervised by
//! `flatlab_api::sidecar::Supervisor`: these commands are thin wrappers over it, and its lines
//! reach the UI as the `boot-message` and `boot-stopped` events.
//!
//! Only that process needs the privilege for ports 67 and 69 (`setcap` on the `flatlab`
//! binary, never on the GUI).

use std::path::Path;
use std::process::Stdio;

use flatlab_api::sidecar::{BootStatus, Request, StartOptions, Supervisor, SupervisorEvent, sidecar_program};
use flatlab_api::{ErrorBody, ErrorCode, Flatlab};
use tauri::{AppHandle, Emitter, State};
use tokio::process::Command;

use crate::commands::CmdResult;

/// The supervisor of the app's boot server, telling the UI what it hears.
pub fn supervisor(handle: AppHandle, db: std::path::PathBuf) -> Supervisor {
    let exe = std::env::current_exe().ok();
    Supervisor::new(db, sidecar_program(exe.as_deref()), move |event| {
        let _ = match event {
            SupervisorEvent::Line(line) => handle.emit("boot-message", line),
            SupervisorEvent::Stopped(stopped) => handle.emit("boot-stopped", stopped),
        };
    })
}

// Async, so that they run on the runtime the supervisor spawns its tasks on.
#[tauri::command]
pub async fn boot_start(
    boot: State<'_, Supervisor>,
    app: State<'_, Flatlab>,
    mut options: StartOptions,
) -> CmdResult<()> {
    // The mirror of the Images view's settings, when it exists.
    if options.mirror.is_none() {
        options.mirror = app.mirror_settings().await?.dir().ok().filter(|d| d.is_dir());
    }
    Ok(boot.start(options)?)
}

#[tauri::command]
pub async fn boot_stop(boot: State<'_, Supervisor>) -> CmdResult<()> {
    boot.stop();
    Ok(())
}

#[tauri::command]
pub fn boot_status(boot: State<'_, Supervisor>) -> BootStatus {
    boot.status()
}

/// Arms a node for reinstall: through the running boot server (at once), or in the store (at
/// the boot server's next start).
#[tauri::command]
pub async fn boot_arm(
    boot: State<'_, Supervisor>,
    app: State<'_, Flatlab>,
    plan: String,
    node: String,
    new_cluster: Option<bool>,
) -> CmdResult<()> {
    let new_cluster = new_cluster.unwrap_or(false);
    // The cluster is asked here first, so that a refusal (another cluster, or a cluster that
    // ran and answers nowhere) reaches the UI with its code at once.
    app.decide_arm(&plan, &node, new_cluster, &mut crate::commands::os_rng()).await?;
    if boot.request(&plan, &Request::Arm { node: node.clone(), new_cluster }).await? {
        return Ok(());
    }
    app.arm_machine(&plan, &node, new_cluster, None, &mut crate::commands::os_rng()).await?;
    Ok(())
}

/// Powers machines on by Wake-on-LAN: magic packets for one node, or every node of the plan, on
/// `interface` (none: the one with an address on the plan's subnet). No privilege needed.
#[tauri::command]
pub async fn power_on(
    app: State<'_, Flatlab>,
    plan: String,
    node: Option<String>,
    interface: Option<String>,
) -> CmdResult<Vec<flatlab_api::PoweredOn>> {
    Ok(app.power_on(&plan, node.as_deref(), interface.as_deref()).await?)
}

/// Inspects a machine (a node of the plan, or a MAC) at its next network boot. A running boot
/// server takes it up from the store within two seconds.
#[tauri::command]
pub async fn inspect_machine(
    app: State<'_, Flatlab>,
    plan: String,
    node: Option<String>,
    mac: Option<String>,
) -> CmdResult<flatlab_api::InspectRequested> {
    let target = match (node, mac) {
        (Some(node), _) => flatlab_api::InspectTarget::Node(node),
        (None, Some(mac)) => flatlab_api::InspectTarget::Mac(
            mac.parse().map_err(|e| anyhow::Error::from(flatlab_api::ApiError::BadRequest(format!("{mac}: {e}"))))?,
        ),
        (None, None) => {
            return Err(anyhow::Error::from(flatlab_api::ApiError::BadRequest("name a node or a MAC".into())).into());
        }
    };
    Ok(app.inspect_machine(&plan, &target, &mut crate::commands::os_rng()).await?)
}

/// The machines of a plan to be inspected before their install.
#[tauri::command]
pub async fn inspections(app: State<'_, Flatlab>, plan: String) -> CmdResult<Vec<flatlab_api::InspectRequested>> {
    Ok(app.inspections(&plan).await?)
}

/// Grants the boot-server binary (never this GUI) the capabilities for ports 67/69 and raw
/// DHCP, through pkexec's password prompt.
#[tauri::command]
pub async fn grant_boot_privilege() -> CmdResult<()> {
    let exe = std::env::current_exe().ok();
    let sidecar =
        sidecar_program(exe.as_deref()).ok_or_else(|| anyhow::Error::from(flatlab_api::ApiError::NoSidecar))?;
    let sidecar = sidecar.canonicalize().unwrap_or(sidecar);
    grant(&sidecar).await
}

async fn grant(sidecar: &Path) -> CmdResult<()> {
    let failure = |message: String| ErrorBody { code: ErrorCode::NeedsPrivilege, message };
    let manual = format!("sudo setcap cap_net_bind_service,cap_net_raw+ep {}", sidecar.display());
    let out = Command::new("pkexec")
        .args(["setcap", "cap_net_bind_service,cap_net_raw+ep"])
        .arg(sidecar)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            failure(format!("cannot ask for the password (pkexec: {e}); run `{manual}` once in a terminal"))
        })?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Err(failure(format!(
        "the permission was not granted{}; run `{manual}` once in a terminal",
        if why.is_empty() { String::new() } else { format!(" ({why})") }
    )))
}
