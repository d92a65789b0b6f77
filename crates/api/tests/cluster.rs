//! The cluster view, kubeconfig, upgrades and node removal against a TLS stand-in of the
//! Kubernetes API (`flatlab-kube-standin`) that holds what a real first server holds: the CA
//! files of its rendered `config.ign`, a serving certificate from `server-ca`, and client
//! certificates required from `client-ca`. Debian's own `kubectl` checks the kubeconfig.

#[path = "../../export/tests/support/required.rs"]
mod required;

#[path = "support/clock.rs"]
mod clock;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use flatlab_api::{Access, ErrorCode, Flatlab, NodeState, Reach, Reboot, error_code};
use flatlab_kube_standin::{Fixture, Options, Running};

use clock::{Now, now, rng};

const DEMO_FIXTURE: &str = include_str!("../../kube-standin/fixtures/demo-lab.yaml");
/// The demo cluster's identity (its kube-system namespace's UID).
const DEMO_CLUSTER: &str = "5f0c2a4e-7d1b-4c8e-9a36-2b7e1d0f4c91";

async fn app(dir: &Path) -> Flatlab {
    let app = Flatlab::with_clock(&dir.join("flatlab.db"), Arc::new(Now(now()))).await.expect("opens");
    app.ensure_demo_plan().await.expect("demo");
    app
}

/// The first server's config, as `flatlab render` writes it.
async fn first_server_config(app: &Flatlab, plan: &str) -> String {
    let bundle = app.render_plan(plan, "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    bundle.nodes[0].config.clone()
}

async fn standin(config: String, fixture: &str, record: Option<PathBuf>, client_ca: Option<String>) -> Running {
    standin_stepping(config, fixture, record, client_ca, Duration::from_millis(50)).await
}

/// A stand-in whose upgrades move one node every `step`.
async fn standin_stepping(
    config: String,
    fixture: &str,
    record: Option<PathBuf>,
    client_ca: Option<String>,
    step: Duration,
) -> Running {
    flatlab_kube_standin::start(Options {
        config,
        node_config: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        // One cluster throughout a test, however often its API is started.
        identity: Some(DEMO_CLUSTER.into()),
        fixture: Fixture::from_yaml(fixture).expect("fixture"),
        record,
        upgrade_step: step,
        client_ca_override: client_ca,
    })
    .await
    .expect("stand-in starts")
}

fn access(s: &Running) -> Access {
    Access { server: Some(format!("https://{}", s.addr)) }
}

#[tokio::test]
async fn the_cluster_view_matches_the_apis_nodes_to_the_plan() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let s = standin(first_server_config(&app, "demo-lab").await, DEMO_FIXTURE, None, None).await;
    let status = app.cluster_status("demo-lab", &access(&s), &mut rng()).await.expect("status");
    assert_eq!(status.reach, Reach::Reachable { version: "v1.32.2+k3s1".into() });
    assert_eq!(status.server, format!("https://{}", s.addr));
    let names: Vec<&str> = status.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["cp1", "cp2", "cp3", "worker1", "worker2"], "plan order");
    let node = |name: &str| status.nodes.iter().find(|n| n.name == name).expect(name);
    assert_eq!(node("cp1").state, NodeState::Ready);
    assert_eq!(node("cp1").k3s_version.as_deref(), Some("v1.32.2+k3s1"));
    assert_eq!(node("cp1").flatcar_version.as_deref(), Some("4593.2.5"));
    assert_eq!(node("cp1").internal_ip.as_deref(), Some("10.0.0.11"));
    assert_eq!(node("cp1").role, Some(flatlab_model::Role::Server));
    assert_eq!(node("cp2").reboot, Some(Reboot::Rebooting), "kured's lock holder");
    assert!(node("cp2").cordoned);
    assert_eq!(node("worker1").reboot, Some(Reboot::Pending), "annotated, waiting for the lock");
    assert_eq!(node("worker1").role, Some(flatlab_model::Role::Agent));
    assert_eq!(node("worker2").state, NodeState::Missing);
    assert!(node("cp3").problems.is_empty(), "{:?}", node("cp3").problems);
    // The demo's API endpoint is cp1's own address: no virtual IP, and the view says so.
    assert!(status.api_note.as_deref().is_some_and(|n| n.contains("when cp1 is down")), "{:?}", status.api_note);
    assert!(status.upgrade.is_none());
    assert_eq!(status.installed_nodes, 0);
    assert_eq!(status.secrets_backup_at, None);
}

#[tokio::test]
async fn api_trouble_is_a_state_of_the_view_not_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let config = first_server_config(&app, "demo-lab").await;

    // Nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let gone = Access { server: Some(format!("https://127.0.0.1:{port}")) };
    let status = app.cluster_status("demo-lab", &gone, &mut rng()).await.expect("status");
    assert!(
        matches!(&status.reach, Reach::Unreachable { reason } if reason.contains("connection refused")),
        "{:?}",
        status.reach
    );
    assert!(status.nodes.iter().all(|n| n.state == NodeState::Unknown));

    // A cluster that does not trust Flatlab's client CA refuses the certificate.
    app.duplicate_plan("demo-lab", "other").await.expect("dup");
    let other_config = first_server_config(&app, "other").await;
    let other_client_ca = flatlab_kube_standin::ca_files(&other_config).expect("cas").client_ca_crt;
    let strict = standin(config.clone(), DEMO_FIXTURE, None, Some(other_client_ca)).await;
    let status = app.cluster_status("demo-lab", &access(&strict), &mut rng()).await.expect("status");
    assert!(matches!(status.reach, Reach::CertificateRefused { .. }), "{:?}", status.reach);

    // Another plan's cluster answers at the address: its certificate is not from our server CA.
    let theirs = standin(other_config, DEMO_FIXTURE, None, None).await;
    let status = app.cluster_status("demo-lab", &access(&theirs), &mut rng()).await.expect("status");
    assert!(
        matches!(&status.reach, Reach::WrongCluster { reason } if reason.contains("BadSignature") || reason.contains("UnknownIssuer")),
        "{:?}",
        status.reach
    );

    // An upgrade needs the API.
    let e = app.start_k3s_upgrade("demo-lab", "v1.33.4+k3s1", None, &gone, &mut rng()).await.expect_err("no API");
    assert_eq!(error_code(&e), ErrorCode::ClusterUnreachable);
    assert!(format!("{e:#}").contains("connection refused"), "{e:#}");
}

#[tokio::test]
async fn an_upgrade_applies_both_plans_and_saves_the_plan_once_every_node_runs_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let record = dir.path().join("record");
    let s = standin(first_server_config(&app, "demo-lab").await, DEMO_FIXTURE, Some(record.clone()), None).await;
    let a = access(&s);

    for (to, why) in [
        ("v1.31.9+k3s1", "does not downgrade"),
        ("v1.34.1+k3s1", "skips a minor version"),
        ("v1.32.2+k3s1", "runs v1.32.2+k3s1 already"),
        ("1.33", "not a K3s release"),
    ] {
        let e = app.start_k3s_upgrade("demo-lab", to, None, &a, &mut rng()).await.expect_err(to);
        assert!(format!("{e:#}").contains(why), "{to}: {e:#}");
    }
    let e = app.start_k3s_upgrade("demo-lab", "v1.33.4+k3s1", Some("abc"), &a, &mut rng()).await.expect_err("sha");
    assert_eq!(error_code(&e), ErrorCode::BadRequest);
    assert!(s.state.lock().plans.is_empty(), "nothing applied for a refused upgrade");

    let sha = "a".repeat(64);
    let started = app.start_k3s_upgrade("demo-lab", "v1.33.4+k3s1", Some(&sha), &a, &mut rng()).await.expect("starts");
    assert_eq!((started.from.as_str(), started.to.as_str(), started.nodes), ("v1.32.2+k3s1", "v1.33.4+k3s1", 4));
    {
        let state = s.state.lock();
        assert_eq!(state.plans.keys().collect::<Vec<_>>(), ["agent-plan", "server-plan"]);
        let applies: Vec<&String> =
            state.requests.iter().filter(|r| r.starts_with("PATCH /apis/upgrade.cattle.io")).collect();
        assert_eq!(applies.len(), 2);
        assert!(applies.iter().all(|r| r.contains("fieldManager=flatlab") && r.contains("force=true")), "{applies:?}");
    }
    let server_plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record.join("server-plan.json")).expect("recorded"))
            .expect("json");
    assert_eq!(server_plan["spec"]["version"], "v1.33.4+k3s1");
    assert_eq!(server_plan["spec"]["concurrency"], 1);
    assert_eq!(server_plan["spec"]["upgrade"]["image"], "rancher/k3s-upgrade");
    let agent_plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record.join("agent-plan.json")).expect("recorded"))
            .expect("json");
    assert_eq!(agent_plan["spec"]["prepare"]["args"], serde_json::json!(["prepare", "server-plan"]));

    // The stand-in moves one node per step, servers first, as the controller does.
    let mut seen_partial = false;
    let saved = loop {
        let status = app.cluster_status("demo-lab", &a, &mut rng()).await.expect("status");
        let u = status.upgrade.expect("the view shows the upgrade");
        assert_eq!(u.to, "v1.33.4+k3s1");
        if !u.done.is_empty() && !u.remaining.is_empty() {
            seen_partial = true;
            let servers_done = ["cp1", "cp2", "cp3"].iter().all(|n| u.done.iter().any(|d| d == n));
            assert!(servers_done || !u.done.iter().any(|d| d == "worker1"), "agents wait for servers: {u:?}");
        }
        // Nodes the upgrade moved are no disagreement, during the upgrade or once it is saved.
        for n in &status.nodes {
            assert!(n.problems.is_empty(), "{}: {:?}", n.name, n.problems);
        }
        if let Some(rev) = u.saved_revision {
            break rev;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(seen_partial, "progress is visible node by node");
    let view = app.show_plan("demo-lab", None).await.expect("plan");
    assert_eq!(view.revision, saved);
    assert_eq!(view.plan.kubernetes.k3s_version, "v1.33.4+k3s1");
    assert_eq!(view.plan.kubernetes.k3s_sha256.as_deref(), Some(sha.as_str()));
    // Saved once: the next look changes nothing.
    let again = app.cluster_status("demo-lab", &a, &mut rng()).await.expect("status");
    assert_eq!(again.upgrade.and_then(|u| u.saved_revision), None);
    assert_eq!(app.show_plan("demo-lab", None).await.expect("plan").revision, saved);
}

const WITH_A_RETIRED_SERVER: &str = "
nodes:
- { name: cp1, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.11 }
- { name: cp2, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.12 }
- { name: cp3, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.13 }
- { name: cp4, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.14, pods: [web-1, web-2] }
- { name: worker1, role: agent, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.21 }
";

#[tokio::test]
async fn a_node_the_plan_no_longer_has_is_drained_and_leaves_etcd_and_the_cluster() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let s = standin(first_server_config(&app, "demo-lab").await, WITH_A_RETIRED_SERVER, None, None).await;
    let a = access(&s);
    let status = app.cluster_status("demo-lab", &a, &mut rng()).await.expect("status");
    let cp4 = status.nodes.iter().find(|n| n.name == "cp4").expect("cp4 listed");
    assert_eq!(cp4.state, NodeState::NotInPlan);
    assert_eq!(cp4.planned_role, None);

    let e = app.remove_cluster_node("demo-lab", "cp1", &a, &mut rng(), |_| {}).await.expect_err("in the plan");
    assert!(format!("{e:#}").contains("remove it from the plan first"), "{e:#}");
    let e = app.remove_cluster_node("demo-lab", "worker2", &a, &mut rng(), |_| {}).await.expect_err("not there");
    assert!(format!("{e:#}").contains("not in the cluster"), "{e:#}");

    let mut steps = Vec::new();
    app.remove_cluster_node("demo-lab", "cp4", &a, &mut rng(), |step| steps.push(step)).await.expect("removes");
    use flatlab_api::RemoveStep as R;
    // A snapshot first, named after the removal.
    assert!(
        matches!(steps.remove(0), R::Snapshot { file } if file.starts_with("flatlab-before-removing-cp4-cp1-")),
        "{steps:?}"
    );
    assert_eq!(
        steps,
        [
            R::Cordoned,
            R::Evicted { pod: "default/web-1".into() },
            R::Evicted { pod: "default/web-2".into() },
            R::LeftEtcd,
            R::Deleted
        ]
    );
    let state = s.state.lock();
    assert!(state.nodes.iter().all(|n| n["metadata"]["name"] != "cp4"));
    assert_eq!(state.evicted, ["default/web-1", "default/web-2"]);
    assert_eq!(state.deleted_secrets, ["cp4.node-password.k3s"]);
    let at = |prefix: &str| state.requests.iter().position(|r| r.starts_with(prefix)).expect(prefix);
    let (asked, deleted) = (at("PATCH /api/v1/nodes/cp4"), at("DELETE /api/v1/nodes/cp4"));
    assert!(asked < deleted);
}

/// Debian's kubectl: `$FLATLAB_KUBECTL`, else the one scripts/setup-debian.sh unpacks.
fn debian_kubectl() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLATLAB_KUBECTL") {
        return Some(PathBuf::from(p));
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(c) => PathBuf::from(c),
        None => Path::new(&std::env::var_os("HOME")?).join(".cache"),
    };
    let p = cache.join("flatlab-tests/kubernetes-client/usr/bin/kubectl");
    p.exists().then_some(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_kubectl_lists_the_nodes_with_the_kubeconfig_and_refuses_another_cas_certificate() {
    let Some(kubectl) = debian_kubectl().or_else(|| {
        required::cannot_run(
            "Debian's kubectl is not unpacked (scripts/setup-debian.sh does it, or set FLATLAB_KUBECTL)",
        )
    }) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let s = standin(first_server_config(&app, "demo-lab").await, DEMO_FIXTURE, None, None).await;
    let path = dir.path().join("kubeconfig");
    let saved = app.save_kubeconfig("demo-lab", Some(&path), false, &mut rng()).await.expect("writes");
    assert_eq!(saved.server, "https://10.0.0.11:6443");
    let kubectl_at = |config: &Path, args: &[&str]| {
        let out = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(config)
            .arg("--server")
            .arg(format!("https://{}", s.addr))
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = tokio::task::block_in_place(|| kubectl_at(&path, &["get", "nodes"]));
    eprintln!("$ kubectl get nodes\n{out}{err}");
    assert!(ok, "kubectl get nodes: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("STATUS") && lines[0].contains("VERSION"), "{out}");
    for (node, status) in
        [("cp1", "Ready"), ("cp2", "Ready,SchedulingDisabled"), ("cp3", "Ready"), ("worker1", "Ready")]
    {
        let line =
            lines.iter().find(|l| l.starts_with(&format!("{node} "))).unwrap_or_else(|| panic!("{node} in {out}"));
        assert!(line.split_whitespace().nth(1) == Some(status), "{line}");
        assert!(line.contains("v1.32.2+k3s1"), "{line}");
    }
    assert!(!out.contains("worker2"));
    let (ok, wide, err) = tokio::task::block_in_place(|| kubectl_at(&path, &["get", "nodes", "-o", "wide"]));
    eprintln!("$ kubectl get nodes -o wide\n{wide}{err}");
    assert!(ok && wide.contains("Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo)"), "{wide}{err}");

    // The same kubeconfig with another plan's client certificate: the API refuses it, as
    // kube-apiserver does (kubectl prints "error: You must be logged in to the server (Unauthorized)").
    app.duplicate_plan("demo-lab", "other").await.expect("dup");
    let theirs = app.kubeconfig("other", &mut rng()).await.expect("kubeconfig");
    let ours = std::fs::read_to_string(&path).expect("read");
    let field = |yaml: &str, key: &str| {
        yaml.lines().find_map(|l| l.trim().strip_prefix(&format!("{key}: ")).map(str::to_owned)).expect(key)
    };
    let mixed = ours
        .replace(&field(&ours, "client-certificate-data"), &field(&theirs.yaml, "client-certificate-data"))
        .replace(&field(&ours, "client-key-data"), &field(&theirs.yaml, "client-key-data"));
    assert_ne!(mixed, ours);
    let mixed_path = dir.path().join("mixed");
    std::fs::write(&mixed_path, mixed).expect("write");
    let (ok, out, err) = tokio::task::block_in_place(|| kubectl_at(&mixed_path, &["get", "nodes"]));
    eprintln!("$ kubectl get nodes (another CA's certificate)\n{out}{err}");
    assert!(!ok, "refused: {out}");
    // As kube-apiserver: the handshake completes, the request is not authenticated.
    assert!(err.contains("Unauthorized"), "{err}");
    assert!(!out.contains("cp1"));
}

#[tokio::test]
async fn an_upgrade_is_refused_without_the_controller_and_while_another_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let config = first_server_config(&app, "demo-lab").await;

    // An older cluster, without system-upgrade-controller: its API group answers 404.
    let old = standin(config.clone(), &format!("system_upgrade_controller: false\n{DEMO_FIXTURE}"), None, None).await;
    let status = app.cluster_status("demo-lab", &access(&old), &mut rng()).await.expect("status");
    assert!(status.upgrade.is_none() && status.upgrade_error.is_none(), "no upgrade, and no error: {status:?}");
    let e =
        app.start_k3s_upgrade("demo-lab", "v1.33.4+k3s1", None, &access(&old), &mut rng()).await.expect_err("no SUC");
    assert_eq!(error_code(&e), ErrorCode::UpgradeRefused);
    assert!(format!("{e:#}").contains("has no system-upgrade-controller"), "{e:#}");
    assert!(old.state.lock().plans.is_empty());
    old.stop().await;

    // The controller's API does not answer: the view says it cannot tell, and no upgrade starts.
    let sick = standin(config.clone(), &format!("upgrade_api_unavailable: true\n{DEMO_FIXTURE}"), None, None).await;
    let status = app.cluster_status("demo-lab", &access(&sick), &mut rng()).await.expect("status");
    assert!(status.reach.is_reachable());
    assert!(status.upgrade.is_none());
    assert!(
        status.upgrade_error.as_deref().is_some_and(|e| e.contains("cannot read the upgrade Plan server-plan")),
        "{:?}",
        status.upgrade_error
    );
    let e =
        app.start_k3s_upgrade("demo-lab", "v1.33.4+k3s1", None, &access(&sick), &mut rng()).await.expect_err("unknown");
    assert!(format!("{e:#}").contains("cannot tell whether an upgrade is running"), "{e:#}");
    sick.stop().await;

    // An upgrade that takes its time: another is refused until it is done.
    let slow = standin_stepping(config, DEMO_FIXTURE, None, None, Duration::from_secs(3600)).await;
    let a = access(&slow);
    app.start_k3s_upgrade("demo-lab", "v1.33.4+k3s1", None, &a, &mut rng()).await.expect("starts");
    let e = app.start_k3s_upgrade("demo-lab", "v1.33.5+k3s1", None, &a, &mut rng()).await.expect_err("one runs");
    assert_eq!(error_code(&e), ErrorCode::UpgradeRefused);
    assert!(format!("{e:#}").contains("an upgrade to v1.33.4+k3s1 is running (4 of 4 nodes to go)"), "{e:#}");
    assert_eq!(slow.state.lock().plans["server-plan"]["spec"]["version"], "v1.33.4+k3s1", "unchanged");
}

#[tokio::test]
async fn node_removal_refuses_the_last_server_lost_quorum_a_disruption_budget_and_a_stuck_etcd() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let config = first_server_config(&app, "demo-lab").await;
    let remove = |app: &Flatlab, s: &Running, node: &'static str| {
        let (app, a) = (app.clone(), access(s));
        async move { app.remove_cluster_node("demo-lab", node, &a, &mut rng(), |_| {}).await }
    };

    // The cluster's only server is one the plan no longer has.
    let last = "
nodes:
- { name: old1, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.31 }
- { name: worker1, role: agent, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.21 }
";
    let s = standin(config.clone(), last, None, None).await;
    let e = remove(&app, &s, "old1").await.expect_err("last server");
    assert!(format!("{e:#}").contains("old1 is the cluster's last server"), "{e:#}");
    s.stop().await;

    // Another server is down: taking one out of etcd now could cost the quorum.
    let down = WITH_A_RETIRED_SERVER.replace("name: cp3, role: server,", "name: cp3, role: server, ready: false,");
    let s = standin(config.clone(), &down, None, None).await;
    let e = remove(&app, &s, "cp4").await.expect_err("quorum");
    assert!(
        format!("{e:#}")
            .contains("server cp3 is not Ready: taking cp4 out of etcd now could cost the cluster its quorum"),
        "{e:#}"
    );
    assert!(s.state.lock().requests.iter().all(|r| !r.starts_with("PATCH")), "nothing changed");
    s.stop().await;

    // A disruption budget holds a pod: the eviction API answers 429 (at once: kube's retries of
    // 429 would wait minutes), the node stays cordoned.
    let refused_at = std::time::Instant::now();
    let budget =
        format!("disruption_budgets: [{{name: web, pods: [web-1, web-2], min_available: 2}}]\n{WITH_A_RETIRED_SERVER}");
    let s = standin(config.clone(), &budget, None, None).await;
    let e = remove(&app, &s, "cp4").await.expect_err("budget");
    assert_eq!(error_code(&e), ErrorCode::BadRequest);
    assert!(refused_at.elapsed() < Duration::from_secs(20), "refused at once, not retried");
    let message = format!("{e:#}");
    assert!(
        message.contains("default/web-1 cannot be evicted now: its disruption budget does not allow it (Cannot evict pod as it would violate the pod's disruption budget.); cp4 stays cordoned"),
        "{message}"
    );
    {
        let state = s.state.lock();
        let cp4 = state.nodes.iter().find(|n| n["metadata"]["name"] == "cp4").expect("cp4 stays");
        assert_eq!(cp4["spec"]["unschedulable"], true);
        assert!(state.evicted.is_empty());
    }
    s.stop().await;

    // K3s never takes the member out: Flatlab stops at its timeout, the Node stays.
    let stuck = format!("etcd_removal_never: true\n{WITH_A_RETIRED_SERVER}");
    let s = standin(config.clone(), &stuck, None, None).await;
    let impatient = app.clone().with_etcd_leave_timeout(Duration::from_secs(1));
    let e = remove(&impatient, &s, "cp4").await.expect_err("stuck");
    assert!(
        format!("{e:#}")
            .contains("K3s did not take cp4 out of etcd within 1 s; its Node stays, cordoned, so that nothing is lost"),
        "{e:#}"
    );
    assert!(s.state.lock().nodes.iter().any(|n| n["metadata"]["name"] == "cp4"));
    s.stop().await;

    // A slow member controller (1.5 s): Flatlab waits for it.
    let slow = format!("etcd_removal_after_ms: 1500\n{WITH_A_RETIRED_SERVER}");
    let s = standin(config, &slow, None, None).await;
    let started = std::time::Instant::now();
    remove(&app, &s, "cp4").await.expect("removes");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(s.state.lock().nodes.iter().all(|n| n["metadata"]["name"] != "cp4"));
}
