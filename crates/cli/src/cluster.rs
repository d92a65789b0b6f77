//! `flatlab kubeconfig`, `flatlab secrets` and `flatlab cluster`: reaching the plan's cluster
//! from this workstation, keeping the keys to it safe, and running it without SSH.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use flatlab_api::{Access, ClusterStatus, Flatlab, NodeState, NodeView, Reach, Reboot, RemoveStep};

use crate::args::{AccessArgs, ClusterCommand, SecretsCommand};

pub async fn kubeconfig(app: &Flatlab, plan: &str, output: Option<&Path>, merge: bool) -> anyhow::Result<ExitCode> {
    if !merge && output.is_none() {
        print!("{}", app.kubeconfig(plan, &mut rand::rng()).await?.yaml);
        return Ok(ExitCode::SUCCESS);
    }
    let saved = app.save_kubeconfig(plan, output, merge, &mut rand::rng()).await?;
    let expires = flatlab_api::format_time(saved.expires_at);
    if saved.merged {
        eprintln!(
            "added context {plan} ({}) to {}; its certificate is valid until {expires}: `kubectl --context {plan} get nodes`",
            saved.server,
            saved.path.display()
        );
    } else {
        eprintln!(
            "wrote a kubeconfig for plan {plan} ({}) to {} (readable by you only: it holds an admin key); valid until {expires}",
            saved.server,
            saved.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn secrets(app: &Flatlab, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCommand::Export { plan, encrypt_to, output, with_snapshot } => {
            app.export_secrets_to(&plan, &encrypt_to, with_snapshot, &output, &mut rand::rng()).await?;
            eprintln!(
                "wrote plan {plan}'s secrets, encrypted to {} recipient(s), to {}; keep it somewhere safe: it holds the keys to the cluster",
                encrypt_to.len(),
                output.display()
            );
        }
        SecretsCommand::Import { file, identity, replace } => {
            let sealed = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let restored = app.import_secrets(&sealed, &identity, replace).await?;
            if let Some(snapshot) = &restored.snapshot {
                eprintln!(
                    "the backup carried snapshot {snapshot}: it is beside the database, ready for `flatlab cluster restore {} {snapshot}`",
                    restored.plan
                );
            }
            if restored.changed {
                eprintln!("restored {} secret(s) of plan {}", restored.secrets, restored.plan);
            } else {
                eprintln!("plan {} holds these {} secret(s) already; nothing changed", restored.plan, restored.secrets);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn access(args: &AccessArgs) -> Access {
    Access { server: args.server.clone() }
}

pub async fn run(app: &Flatlab, cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClusterCommand::Status { plan, access: a, json, watch } => status(app, &plan, &access(&a), json, watch).await,
        ClusterCommand::Upgrade { plan, k3s, sha256, no_wait, access: a } => {
            upgrade(app, &plan, &k3s, sha256.as_deref(), no_wait, &access(&a)).await
        }
        ClusterCommand::RemoveNode { plan, node, access: a } => remove_node(app, &plan, &node, &access(&a)).await,
        ClusterCommand::Snapshots { plan, access: a, json } => snapshots(app, &plan, &access(&a), json).await,
        ClusterCommand::Restore { plan, snapshot, no_wait, access: a } => {
            restore(app, &plan, &snapshot, no_wait, &access(&a)).await
        }
        ClusterCommand::Snapshot { plan, download, name, access: a } => {
            snapshot(app, &plan, download, name, &access(&a)).await
        }
    }
}

async fn snapshots(app: &Flatlab, plan: &str, a: &Access, json: bool) -> anyhow::Result<ExitCode> {
    let list = app.cluster_snapshots(plan, a, &mut rand::rng()).await?;
    if json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(if list.reach.is_reachable() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    if !list.reach.is_reachable() {
        println!("{}", reach_text(&list.plan, &list.server, &list.reach));
    }
    let mut rows = vec![["SNAPSHOT", "NODE", "TAKEN", "SIZE", "STATE", "HERE"].map(str::to_owned)];
    for s in &list.snapshots {
        let state = match (&s.error, s.ready, s.token_matches) {
            (Some(e), _, _) => format!("failed: {e}"),
            (None, false, _) => "in progress".into(),
            (None, true, Some(false)) => "ready (another token: no restore)".into(),
            (None, true, _) => "ready".into(),
        };
        let here = s.downloaded.as_ref().map(|d| format!("sha256 {}", &d.sha256[..16])).unwrap_or_else(|| "-".into());
        rows.push([
            s.name.clone(),
            s.node.clone(),
            s.created_at.map(flatlab_api::format_time).unwrap_or_else(|| "-".into()),
            s.size_bytes.map(crate::output::human_size).unwrap_or_else(|| "-".into()),
            state,
            here,
        ]);
    }
    for d in &list.local_only {
        rows.push([
            d.name.clone(),
            d.node.clone(),
            d.created_at.map(flatlab_api::format_time).unwrap_or_else(|| "-".into()),
            crate::output::human_size(d.size_bytes),
            "here only".into(),
            format!("sha256 {}", &d.sha256[..16]),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for r in &rows {
        let line: Vec<String> = (0..6).map(|i| format!("{:w$}", r[i], w = widths[i])).collect();
        println!("{}", line.join("  ").trim_end());
    }
    if rows.len() == 1 {
        println!(
            "no snapshots yet: K3s takes them on the plan's schedule (kubernetes.snapshots), or `flatlab cluster snapshot {plan}` now"
        );
    }
    println!("copies on this workstation: {}", app.snapshot_dir(plan).display());
    Ok(if list.reach.is_reachable() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn restore(app: &Flatlab, plan: &str, snapshot: &str, no_wait: bool, a: &Access) -> anyhow::Result<ExitCode> {
    let started = app.restore_cluster(plan, snapshot, &mut rand::rng()).await?;
    let others: Vec<&str> = started.servers.iter().filter(|s| **s != started.first).map(String::as_str).collect();
    eprintln!(
        "armed {} to restore snapshot {} at its next network boot{}; a running `flatlab serve {plan}` takes this up within 2 s: power the servers on (or reset them) to network-boot",
        started.first,
        started.snapshot,
        if others.is_empty() {
            String::new()
        } else {
            format!(", and {} to be reinstalled and rejoin it", others.join(", "))
        }
    );
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let mut last = String::new();
    loop {
        let p = app.restore_progress(plan, a, &mut rand::rng()).await?;
        for node in &p.deleted_stale {
            eprintln!("{node}: its stale Node (from the snapshot) deleted, so that it registers afresh");
        }
        let line = p
            .servers
            .iter()
            .map(|s| {
                format!("{} {} ({})", s.name, s.install_stage.map(|st| st.as_str()).unwrap_or("-"), state_name(s.state))
            })
            .collect::<Vec<_>>()
            .join(", ");
        if line != last {
            eprintln!("{}: {line}", flatlab_api::format_time_of_day(now_ms()));
            last = line;
        }
        if p.back {
            eprintln!(
                "the cluster is back: every server runs it again from snapshot {}",
                p.snapshot.unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("the restore goes on; `flatlab cluster restore` is not needed again: `flatlab cluster status {plan}` shows the servers");
                return Ok(ExitCode::SUCCESS);
            }
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn state_name(s: NodeState) -> &'static str {
    match s {
        NodeState::Ready => "ready",
        NodeState::NotReady => "not ready",
        NodeState::Missing => "not in the cluster",
        NodeState::NotInPlan => "not in the plan",
        NodeState::Unknown => "API not answering",
    }
}

async fn snapshot(
    app: &Flatlab,
    plan: &str,
    download: bool,
    name: Option<String>,
    a: &Access,
) -> anyhow::Result<ExitCode> {
    let file = match name {
        Some(n) => n,
        None => {
            let taken = app.take_snapshot(plan, "on demand", a, &mut rand::rng()).await?;
            for f in &taken.files {
                eprintln!("{}: took snapshot {f}", taken.server);
            }
            taken.files.into_iter().next().unwrap_or_default()
        }
    };
    if download {
        let mut last = std::time::Instant::now();
        let copy = app
            .download_snapshot(plan, &file, a, &mut rand::rng(), |sent, total| {
                if last.elapsed() >= std::time::Duration::from_secs(2) {
                    last = std::time::Instant::now();
                    let total = total.map(|t| format!(" of {}", crate::output::human_size(t))).unwrap_or_default();
                    eprintln!("{file}: {}{total}", crate::output::human_size(sent));
                }
            })
            .await?;
        eprintln!(
            "copied {} ({}, sha256 {}) from {} to {}",
            copy.name,
            crate::output::human_size(copy.size_bytes),
            copy.sha256,
            copy.node,
            copy.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn reach_line(s: &ClusterStatus) -> String {
    reach_text(&s.plan, &s.server, &s.reach)
}

/// `cluster PLAN at SERVER: ...`: whether the API answered, in words.
fn reach_text(plan: &str, server: &str, reach: &Reach) -> String {
    let at = if server.is_empty() { String::new() } else { format!(" at {server}") };
    match reach {
        Reach::Reachable { version } => format!("cluster {}{at}: reachable, Kubernetes {version}", plan),
        Reach::Unreachable { reason } => format!("cluster {}{at}: API unreachable: {reason}", plan),
        Reach::CertificateRefused { reason } => {
            format!("cluster {}{at}: the API refused Flatlab's certificate: {reason}", plan)
        }
        Reach::BadServerCertificate { reason } => format!("cluster {}{at}: {reason}", plan),
        Reach::WrongCluster { reason } => {
            format!("cluster {}{at}: another cluster answers there ({reason})", plan)
        }
        Reach::ForeignCa => {
            format!("cluster {}: installed before Flatlab made its CAs; Flatlab has no keys to reach it", plan)
        }
    }
}

fn state_word(n: &NodeView) -> &'static str {
    match n.state {
        NodeState::Ready => "ready",
        NodeState::NotReady => "not-ready",
        NodeState::Missing => "missing",
        NodeState::NotInPlan => "not-in-plan",
        NodeState::Unknown => "unknown",
    }
}

/// The status as a table, one node per line, then what the user should know.
pub fn status_text(s: &ClusterStatus) -> String {
    let mut out = format!("{}\n", reach_line(s));
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut rows = vec![[
        "NODE".to_owned(),
        "STATE".into(),
        "ROLE".into(),
        "K3S".into(),
        "FLATCAR".into(),
        "ADDRESS".into(),
        "INSTALL".into(),
        "NOTES".into(),
    ]];
    for n in &s.nodes {
        let role = n.role.or(n.planned_role).map(|r| r.as_str().to_owned());
        let mut notes = Vec::new();
        match n.reboot {
            Some(Reboot::Rebooting) => notes.push("rebooting into a Flatcar update".to_owned()),
            Some(Reboot::Pending) => notes.push("reboot pending (Flatcar update)".to_owned()),
            None => {}
        }
        if n.cordoned && n.reboot != Some(Reboot::Rebooting) {
            notes.push("cordoned".into());
        }
        if n.state == NodeState::NotInPlan {
            notes.push(format!("`flatlab cluster remove-node {} {}` drains and deletes it", s.plan, n.name));
        }
        notes.extend(n.problems.iter().cloned());
        rows.push([
            n.name.clone(),
            state_word(n).into(),
            dash(&role),
            dash(&n.k3s_version),
            dash(&n.flatcar_version),
            dash(&n.internal_ip),
            n.install_stage.map(|st| st.as_str().to_owned()).unwrap_or_else(|| "-".into()),
            notes.join("; "),
        ]);
    }
    let widths: Vec<usize> = (0..8).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for r in &rows {
        let line: Vec<String> = (0..8).map(|i| format!("{:w$}", r[i], w = widths[i])).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if let Some(u) = &s.upgrade {
        let total = u.done.len() + u.remaining.len();
        match u.saved_revision {
            Some(rev) => out.push_str(&format!(
                "upgrade to K3s {}: done on all {total} nodes; saved as plan revision {rev}\n",
                u.to
            )),
            None if u.remaining.is_empty() => out.push_str(&format!("K3s {} on all {total} nodes\n", u.to)),
            None => out.push_str(&format!(
                "upgrade to K3s {}: {} of {total} nodes done; next: {}\n",
                u.to,
                u.done.len(),
                u.remaining.join(", ")
            )),
        }
    }
    if let Some(why) = &s.upgrade_error {
        out.push_str(&format!("upgrade: unknown ({why})\n"));
    }
    if let Some(note) = &s.api_note {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

async fn status(app: &Flatlab, plan: &str, a: &Access, json: bool, watch: Option<u64>) -> anyhow::Result<ExitCode> {
    loop {
        let s = app.cluster_status(plan, a, &mut rand::rng()).await?;
        if json {
            println!("{}", serde_json::to_string(&s)?);
        } else {
            if watch.is_some() {
                println!("-- {}", flatlab_api::format_time_of_day(s.checked_at));
            }
            print!("{}", status_text(&s));
        }
        let Some(every) = watch else {
            return Ok(if s.reach.is_reachable() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        };
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(every.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn upgrade(
    app: &Flatlab,
    plan: &str,
    k3s: &str,
    sha256: Option<&str>,
    no_wait: bool,
    a: &Access,
) -> anyhow::Result<ExitCode> {
    let started = app.start_k3s_upgrade(plan, k3s, sha256, a, &mut rand::rng()).await?;
    eprintln!(
        "the cluster upgrades {} nodes from K3s {} to {}, one at a time, servers first",
        started.nodes, started.from, started.to
    );
    if no_wait {
        eprintln!(
            "`flatlab cluster status {plan}` follows it and saves the plan's new version once every node runs it"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut last: Option<Vec<String>> = None;
    loop {
        let s = app.cluster_status(plan, a, &mut rand::rng()).await?;
        if let Some(u) = &s.upgrade {
            if last.as_ref() != Some(&u.done) {
                for node in u.done.iter().filter(|n| last.as_ref().is_none_or(|l| !l.contains(n))) {
                    eprintln!("{node}: K3s {}", u.to);
                }
                last = Some(u.done.clone());
            }
            if let Some(rev) = u.saved_revision {
                eprintln!("every node runs K3s {}; saved plan {plan} revision {rev}", u.to);
                return Ok(ExitCode::SUCCESS);
            }
            if u.remaining.is_empty() {
                eprintln!("every node runs K3s {}", u.to);
                return Ok(ExitCode::SUCCESS);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => {
                eprintln!("the upgrade goes on in the cluster; `flatlab cluster status {plan}` follows it and saves the plan when it is done");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

async fn remove_node(app: &Flatlab, plan: &str, node: &str, a: &Access) -> anyhow::Result<ExitCode> {
    app.remove_cluster_node(plan, node, a, &mut rand::rng(), |step| match step {
        RemoveStep::Snapshot { file } => eprintln!("{node}: took etcd snapshot {file} first"),
        RemoveStep::Cordoned => eprintln!("{node}: cordoned"),
        RemoveStep::Evicted { pod } => eprintln!("{node}: evicted {pod}"),
        RemoveStep::LeftEtcd => eprintln!("{node}: left etcd"),
        RemoveStep::Deleted => eprintln!("{node}: deleted from the cluster"),
    })
    .await?;
    eprintln!(
        "{node} is out of the cluster; power the machine off or reinstall it (a K3s still running there would register it again)"
    );
    Ok(ExitCode::SUCCESS)
}
