//! The cluster decides: its identity (the `kube-system` namespace's UID) is recorded on first
//! contact, another cluster with the plan's CAs is shown as another cluster, and arming a
//! server asks the cluster first (join a running cluster; refuse when a cluster that ran answers
//! nowhere, naming the choices; start one only for a plan never installed, or when the user
//! chooses a new cluster).
//!
//! The plan's servers live on loopback addresses (127.77.x.0/24, one subnet per test), so that
//! the stand-in can answer as one of them at its own address and port 6443, and the others
//! refuse at once. The stand-in's serving certificate names what the server's rendered
//! `config.yaml` says (its `node-ip`, the `tls-san`), nothing from the test.

#[path = "support/clock.rs"]
mod clock;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flatlab_api::{Access, ClusterDecision, ErrorCode, Flatlab, ImportPolicy, Reach, error_code};
use flatlab_kube_standin::{Fixture, Options, Running};

use clock::{Now, now, rng};

fn plan_yaml(name: &str, net: u8) -> String {
    format!(
        r#"version: 1
name: {name}
os: {{channel: stable, version: 4593.2.5, arch: amd64}}
kubernetes: {{k3s_version: v1.32.2+k3s1}}
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j test@flatlab
network: {{subnet: 127.77.{net}.0/24, gateway: 127.77.{net}.1, dns: [127.77.{net}.1]}}
nodes:
  - {{name: cp1, mac: "52:54:00:77:{net:02x}:01", role: server, install_disk: /dev/vda, address: 127.77.{net}.11/24}}
  - {{name: cp2, mac: "52:54:00:77:{net:02x}:02", role: server, install_disk: /dev/vda, address: 127.77.{net}.12/24}}
  - {{name: cp3, mac: "52:54:00:77:{net:02x}:03", role: server, install_disk: /dev/vda, address: 127.77.{net}.13/24}}
  - {{name: worker1, mac: "52:54:00:77:{net:02x}:04", role: agent, install_disk: /dev/vda, address: 127.77.{net}.21/24}}
"#
    )
}

/// The cluster as the fixture describes it: cp1 down, cp2 and cp3 Ready.
fn fixture(net: u8, cp1_ready: bool) -> Fixture {
    let node = |name: &str, role: &str, ip: u8, ready: bool| {
        format!(
            "  - {{name: {name}, role: {role}, ready: {ready}, kubelet: v1.32.2+k3s1, os_image: 'Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo)', ip: 127.77.{net}.{ip}}}\n"
        )
    };
    let yaml = format!(
        "nodes:\n{}{}{}{}",
        node("cp1", "server", 11, cp1_ready),
        node("cp2", "server", 12, true),
        node("cp3", "server", 13, true),
        node("worker1", "agent", 21, true)
    );
    Fixture::from_yaml(&yaml).expect("fixture")
}

/// The app with the plan, and the configs its cluster was first installed with (the first
/// server's carries the CA files, which the cluster keeps from then on).
async fn app(dir: &Path, name: &str, net: u8) -> (Flatlab, Vec<String>) {
    let app = Flatlab::with_clock(&dir.join("flatlab.db"), Arc::new(Now(now()))).await.expect("opens");
    app.import_text(&plan_yaml(name, net), "test", ImportPolicy::Strict).await.expect("imports");
    let bundle = app.render_plan(name, "http://127.0.0.1:8080", &mut rng()).await.expect("renders");
    (app, bundle.nodes.into_iter().map(|n| n.config).collect())
}

/// The stand-in answering as `node` (index into the plan's nodes) at its own address.
async fn answer_as(installed: &[String], node: usize, net: u8, fixture: Fixture) -> Running {
    flatlab_kube_standin::start(Options {
        config: installed[0].clone(),
        node_config: Some(installed[node].clone()),
        listen: format!("127.77.{net}.{}:6443", 11 + node).parse().expect("addr"),
        fixture,
        identity: None,
        record: None,
        upgrade_step: Duration::from_secs(3600),
        client_ca_override: None,
    })
    .await
    .expect("stand-in starts")
}

async fn first_server_k3s_config(app: &Flatlab, plan: &str) -> String {
    let bundle = app.render_plan(plan, "http://127.0.0.1:8080", &mut rng()).await.expect("renders");
    flatlab_kube_standin::file_of(&bundle.nodes[0].config, flatlab_kube_standin::K3S_CONFIG).expect("config.yaml")
}

#[tokio::test]
async fn a_plan_never_installed_starts_its_cluster_on_the_first_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, _) = app(dir.path(), "fresh", 1).await;
    // Nothing is asked: no server listens, and the answer comes at once.
    let armed = app.arm_machine("fresh", "cp1", false, None, &mut rng()).await.expect("arms");
    assert_eq!(armed.cluster, Some(ClusterDecision::Start));
    assert!(first_server_k3s_config(&app, "fresh").await.contains("cluster-init: true"));
    let agent = app.arm_machine("fresh", "worker1", false, None, &mut rng()).await.expect("arms");
    assert_eq!(agent.cluster, None);
}

#[tokio::test]
async fn the_identity_is_recorded_at_first_contact_and_another_is_another_cluster() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, installed) = app(dir.path(), "lab", 2).await;
    let s = answer_as(&installed, 0, 2, fixture(2, true)).await;
    let identity = s.state.lock().identity.clone();
    let access = Access { server: None };
    let status = app.cluster_status("lab", &access, &mut rng()).await.expect("status");
    assert!(status.reach.is_reachable(), "{:?}", status.reach);
    assert_eq!(app.cluster_identity("lab").await.expect("identity").as_deref(), Some(identity.as_str()));
    s.stop().await;

    // The same CAs, another cluster: a first server that started a cluster of its own.
    let other = answer_as(&installed, 0, 2, fixture(2, true)).await;
    let status = app.cluster_status("lab", &access, &mut rng()).await.expect("status");
    let theirs = other.state.lock().identity.clone();
    match &status.reach {
        Reach::WrongCluster { reason } => {
            assert!(
                reason.contains("another cluster") && reason.contains(&theirs) && reason.contains(&identity),
                "{reason}"
            )
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(app.cluster_identity("lab").await.expect("identity").as_deref(), Some(identity.as_str()), "kept");
    // An upgrade is refused against it.
    let e = app.start_k3s_upgrade("lab", "v1.32.3+k3s1", None, &access, &mut rng()).await.expect_err("refused");
    assert_eq!(error_code(&e), ErrorCode::ClusterUnreachable);
}

#[tokio::test]
async fn a_first_server_armed_while_the_cluster_runs_joins_it_through_any_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, installed) = app(dir.path(), "lab", 3).await;
    // cp1 is down; the cluster runs on cp2 and cp3; the workstation reached it before.
    let s = answer_as(&installed, 1, 3, fixture(3, false)).await;
    let identity = s.state.lock().identity.clone();
    let status = app
        .cluster_status("lab", &Access { server: Some("https://127.77.3.12:6443".into()) }, &mut rng())
        .await
        .expect("status");
    assert!(status.reach.is_reachable(), "{:?}", status.reach);
    assert_eq!(app.cluster_identity("lab").await.expect("id").as_deref(), Some(identity.as_str()));

    let armed = app.arm_machine("lab", "cp1", false, None, &mut rng()).await.expect("arms");
    assert_eq!(armed.cluster, Some(ClusterDecision::Join { via: "https://127.77.3.12:6443".into() }));
    let config = first_server_k3s_config(&app, "lab").await;
    assert!(!config.contains("cluster-init"), "{config}");
    let bundle = app.render_plan("lab", "http://127.0.0.1:8080", &mut rng()).await.expect("renders");
    let script = flatlab_kube_standin::file_of(&bundle.nodes[0].config, "/opt/flatlab/k3s-join.sh").expect("join step");
    assert!(
        script.contains("candidates=('https://127.77.3.12:6443' 'https://127.77.3.13:6443')"),
        "cp1 joins through any other server: {script}"
    );
    assert!(!bundle.nodes[0].config.contains("PRIVATE KEY"), "a joining server carries no CA key");
}

#[tokio::test]
async fn a_cluster_that_ran_and_answers_nowhere_is_never_silently_replaced() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, installed) = app(dir.path(), "lab", 4).await;
    let s = answer_as(&installed, 0, 4, fixture(4, true)).await;
    let old = s.state.lock().identity.clone();
    app.cluster_status("lab", &Access::default(), &mut rng()).await.expect("status");
    s.stop().await;

    // Every server is gone.
    let e = app.arm_machine("lab", "cp1", false, None, &mut rng()).await.expect_err("refused");
    assert_eq!(error_code(&e), ErrorCode::ClusterLost);
    let message = format!("{e:#}");
    for words in [
        "not arming cp1",
        "no server of the cluster answers",
        "https://127.77.4.11:6443",
        "wait for a server to come back",
        "flatlab cluster restore lab SNAPSHOT",
        "flatlab arm lab cp1 --new-cluster",
        "losing the old cluster's data",
    ] {
        assert!(message.contains(words), "{words:?} in {message}");
    }
    eprintln!("refusal: {message}");
    assert!(!first_server_k3s_config(&app, "lab").await.contains("cluster-init"), "nothing changed");

    // Another server may wait for the cluster to come back.
    let cp2 = app.arm_machine("lab", "cp2", false, None, &mut rng()).await.expect("arms");
    assert_eq!(cp2.cluster, Some(ClusterDecision::Join { via: String::new() }));

    // Another cluster answers with the plan's CAs: refused, whatever the node.
    let other = answer_as(&installed, 2, 4, fixture(4, true)).await;
    let e = app.arm_machine("lab", "cp1", false, None, &mut rng()).await.expect_err("refused");
    assert_eq!(error_code(&e), ErrorCode::AnotherCluster);
    assert!(format!("{e:#}").contains("another cluster answers at https://127.77.4.13:6443"), "{e:#}");
    other.stop().await;

    // A new cluster starts on the first server only, and forgets the old identity.
    let e = app.arm_machine("lab", "cp2", true, None, &mut rng()).await.expect_err("not the first");
    assert_eq!(error_code(&e), ErrorCode::BadRequest);
    let armed = app.arm_machine("lab", "cp1", true, None, &mut rng()).await.expect("arms");
    assert_eq!(armed.cluster, Some(ClusterDecision::StartNew));
    assert!(first_server_k3s_config(&app, "lab").await.contains("cluster-init: true"));
    assert_eq!(app.cluster_identity("lab").await.expect("id"), None);

    // The new cluster's identity is recorded at first contact; from then on cp1 joins again.
    let new = answer_as(&installed, 0, 4, fixture(4, true)).await;
    let status = app.cluster_status("lab", &Access::default(), &mut rng()).await.expect("status");
    assert!(status.reach.is_reachable(), "{:?}", status.reach);
    let recorded = app.cluster_identity("lab").await.expect("id").expect("recorded");
    assert_ne!(recorded, old);
    assert_eq!(recorded, new.state.lock().identity);
    assert!(!first_server_k3s_config(&app, "lab").await.contains("cluster-init"));
}
