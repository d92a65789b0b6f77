//! Bringing a cluster back from a snapshot: what is refused (no secrets, another cluster's or
//! another token's snapshot, a newer K3s), what arming for a restore renders (the first server
//! restores the snapshot fetched from the boot server pinned by its hash; the others rejoin),
//! and, once the API answers, the stale Nodes of the rejoining servers deleted.

#[path = "../../export/tests/support/required.rs"]
mod required;

#[path = "support/clock.rs"]
mod clock;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flatlab_api::{Access, ErrorCode, Flatlab, error_code};
use flatlab_kube_standin::etcd::{FORMAT, Header, Snapshot, token_hash, token_secret};
use flatlab_kube_standin::{Fixture, Options};

use clock::{Now, now, rng};

async fn app(dir: &Path) -> Flatlab {
    let app = Flatlab::with_clock(&dir.join("flatlab.db"), Arc::new(Now(now()))).await.expect("opens");
    app.ensure_demo_plan().await.expect("demo");
    app
}

/// The plan's server token, as its first server's rendered `config.yaml` holds it.
async fn token(app: &Flatlab) -> String {
    let bundle = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    let k3s = flatlab_kube_standin::file_of(&bundle.nodes[0].config, flatlab_kube_standin::K3S_CONFIG).expect("k3s");
    let line = k3s.lines().find_map(|l| l.strip_prefix("token: ")).expect("token");
    token_secret(line).to_owned()
}

/// A snapshot file with the `.flatlab.json` a download writes beside it.
fn snapshot_file(dir: &Path, identity: &str, secret: &str, k3s: &str) -> PathBuf {
    let s = Snapshot::new(
        "etcd-snapshot",
        Header {
            format: FORMAT.into(),
            identity: identity.into(),
            token_hash: token_hash(secret),
            node: "cp1".into(),
            taken_unix: 1_765_000_000,
            nodes: vec!["cp1".into(), "cp2".into(), "cp3".into()],
        },
    );
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(&s.file);
    std::fs::write(&path, &s.bytes).expect("write");
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&s.bytes).iter().map(|b| format!("{b:02x}")).collect();
    let meta = serde_json::json!({
        "name": s.file, "node": "cp1", "path": path, "sha256": sha, "size_bytes": s.bytes.len(),
        "created_at": 1_765_000_000_000i64, "downloaded_at": 1_765_000_100_000i64, "identity": identity,
        "k3s_version": k3s, "token_hash": token_hash(secret),
    });
    std::fs::write(dir.join(format!("{}.flatlab.json", s.file)), meta.to_string()).expect("meta");
    path
}

fn files_of(ign: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(ign).expect("json")
}

#[tokio::test]
async fn a_restore_is_refused_without_secrets_and_for_a_snapshot_that_cannot_work() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    // A new workstation: the plan is there, its secrets are not.
    let e = app.restore_cluster("demo-lab", "/nonexistent", &mut rng()).await.expect_err("no secrets");
    assert_eq!(error_code(&e), ErrorCode::RestoreRefused);
    assert!(
        format!("{e:#}").contains("import the secrets backup first (`flatlab secrets import FILE --identity KEY`"),
        "{e:#}"
    );

    let secret = token(&app).await;
    let e = app.restore_cluster("demo-lab", "nothing-here", &mut rng()).await.expect_err("no such snapshot");
    assert!(format!("{e:#}").contains("no snapshot nothing-here on this workstation"), "{e:#}");
    let files = dir.path().join("files");
    let other_token = snapshot_file(
        &files.join("a"),
        "11111111-1111-4111-8111-111111111111",
        "AnotherClustersSecret",
        "v1.32.2+k3s1",
    );
    let e = app.restore_cluster("demo-lab", other_token.to_str().expect("utf-8"), &mut rng()).await.expect_err("token");
    assert_eq!(error_code(&e), ErrorCode::RestoreRefused);
    assert!(format!("{e:#}").contains("was made with another server token"), "{e:#}");
    let newer = snapshot_file(&files.join("b"), "11111111-1111-4111-8111-111111111111", &secret, "v1.33.4+k3s1");
    let e = app.restore_cluster("demo-lab", newer.to_str().expect("utf-8"), &mut rng()).await.expect_err("newer");
    assert!(format!("{e:#}").contains("was made by K3s v1.33.4+k3s1, newer than the plan's v1.32.2+k3s1"), "{e:#}");

    // The workstation knows its cluster: a snapshot of another cluster is refused.
    let bundle = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    let s = flatlab_kube_standin::start(Options {
        config: bundle.nodes[0].config.clone(),
        node_config: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        fixture: Fixture::from_yaml("nodes: []").expect("fixture"),
        identity: Some("22222222-2222-4222-8222-222222222222".into()),
        record: None,
        upgrade_step: Duration::from_secs(3600),
        client_ca_override: None,
    })
    .await
    .expect("stand-in");
    app.cluster_status("demo-lab", &Access { server: Some(format!("https://{}", s.addr)) }, &mut rng())
        .await
        .expect("status");
    let theirs = snapshot_file(&files.join("c"), "11111111-1111-4111-8111-111111111111", &secret, "v1.32.2+k3s1");
    let e = app.restore_cluster("demo-lab", theirs.to_str().expect("utf-8"), &mut rng()).await.expect_err("another");
    assert!(format!("{e:#}").contains("is a snapshot of another cluster"), "{e:#}");
    assert!(
        app.restore_progress("demo-lab", &Access::default(), &mut rng()).await.expect("progress").snapshot.is_none()
    );
}

#[tokio::test]
async fn the_first_server_restores_the_snapshot_from_the_boot_server_and_the_others_rejoin() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path()).await;
    let secret = token(&app).await;
    let identity = "33333333-3333-4333-8333-333333333333";
    let file = snapshot_file(&dir.path().join("kit"), identity, &secret, "v1.32.2+k3s1");
    let started = app.restore_cluster("demo-lab", file.to_str().expect("utf-8"), &mut rng()).await.expect("armed");
    assert_eq!(started.first, "cp1");
    assert_eq!(started.servers, ["cp1", "cp2", "cp3"]);
    assert_eq!(app.cluster_identity("demo-lab").await.expect("id").as_deref(), Some(identity), "the snapshot's, kept");
    let name = started.snapshot.clone();
    assert!(app.snapshot_dir("demo-lab").join(&name).is_file(), "copied beside the database");

    let bundle = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    let cp1 = files_of(&bundle.nodes[0].config);
    let k3s = flatlab_kube_standin::file_of(&bundle.nodes[0].config, flatlab_kube_standin::K3S_CONFIG).expect("k3s");
    assert!(
        k3s.contains("cluster-init: true") && !k3s.contains("cluster-reset"),
        "the flags stay out of config.yaml: {k3s}"
    );
    let remote = cp1["storage"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == format!("/var/lib/flatlab/restore/{name}"))
        .expect("the snapshot is fetched");
    let url = remote["contents"]["source"].as_str().expect("url");
    assert!(url.starts_with("http://10.0.0.2:8080/v1/file/") && url.ends_with(&format!("/{name}")), "{url}");
    use sha2::Digest;
    let sha: String =
        sha2::Sha256::digest(std::fs::read(&file).expect("read")).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(remote["contents"]["verification"]["hash"], format!("sha256-{sha}"));
    let units = cp1["systemd"]["units"].as_array().expect("units");
    let restore = units.iter().find(|u| u["name"] == "flatlab-k3s-restore.service").expect("restore unit");
    let text = restore["contents"].as_str().expect("unit");
    assert!(
        text.contains(&format!("--cluster-reset --cluster-reset-restore-path=/var/lib/flatlab/restore/{name}")),
        "{text}"
    );
    assert!(text.contains("ConditionPathExists=!/var/lib/flatlab/restored"), "once: {text}");
    let k3s_unit = units.iter().find(|u| u["name"] == "k3s.service").expect("k3s")["contents"].as_str().expect("unit");
    assert!(k3s_unit.contains("Requires=flatlab-k3s-restore.service"), "{k3s_unit}");
    // The others join, wherever the restored server answers.
    for n in &bundle.nodes[1..3] {
        assert!(n.config.contains("k3s-join.sh") && !n.config.contains("cluster-reset"), "{} joins", n.name);
    }

    // Once the restored cluster answers (cp1 installed again, cp2 and cp3 not back yet): their
    // stale Nodes from the snapshot go, with their node passwords, so that they register afresh;
    // once only.
    let fixture = "
nodes:
- { name: cp1, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.11 }
- { name: cp2, role: server, ready: false, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.12 }
- { name: cp3, role: server, ready: false, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.13 }
- { name: worker1, role: agent, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.21 }
";
    let s = flatlab_kube_standin::start(Options {
        config: bundle.nodes[0].config.clone(),
        node_config: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        fixture: Fixture::from_yaml(fixture).expect("fixture"),
        identity: Some(identity.into()),
        record: None,
        upgrade_step: Duration::from_secs(3600),
        client_ca_override: None,
    })
    .await
    .expect("stand-in");
    let access = Access { server: Some(format!("https://{}", s.addr)) };
    // Before cp1 is installed again, what answers is the old cluster (a server not yet powered
    // off): not restored, and nothing deleted there.
    let early = app.restore_progress("demo-lab", &access, &mut rng()).await.expect("progress");
    assert!(early.active && !early.restored && early.deleted_stale.is_empty(), "{early:?}");
    assert!(s.state.lock().deleted_secrets.is_empty());
    // cp1's install reports k3s-ready (as its boot server would record it).
    {
        let store = flatlab_store::Store::open(&dir.path().join("flatlab.db")).await.expect("opens");
        let mut row =
            store.machines("demo-lab").await.expect("rows").into_iter().find(|r| r.node == "cp1").expect("cp1");
        row.stage = "k3s-ready".into();
        store.save_machine("demo-lab", &row).await.expect("saves");
        store.close().await;
    }
    let p = app.restore_progress("demo-lab", &access, &mut rng()).await.expect("progress");
    assert!(p.active && p.restored && !p.back, "{p:?}");
    assert_eq!(p.deleted_stale, ["cp2", "cp3"]);
    {
        let state = s.state.lock();
        assert_eq!(state.deleted_secrets, ["cp2.node-password.k3s", "cp3.node-password.k3s"]);
        let names: Vec<&str> = state.nodes.iter().filter_map(|n| n["metadata"]["name"].as_str()).collect();
        assert_eq!(names, ["cp1", "worker1"]);
    }
    let again = app.restore_progress("demo-lab", &access, &mut rng()).await.expect("progress");
    assert!(again.deleted_stale.is_empty(), "once");
    let stages: Vec<Option<flatlab_api::Stage>> = again.servers.iter().map(|s| s.install_stage).collect();
    use flatlab_api::Stage::{Armed, K3sReady};
    assert_eq!(stages, [Some(K3sReady), Some(Armed), Some(Armed)], "the others wait for their installs");

    // Every config is valid Ignition (Debian's ignition-validate).
    if std::process::Command::new("ignition-validate").arg("--version").output().is_err() {
        required::cannot_run::<()>("ignition-validate is missing (Debian package ignition)");
        return;
    }
    for n in &bundle.nodes {
        let path = dir.path().join(format!("{}.ign", n.name));
        std::fs::write(&path, &n.config).expect("write");
        let out = std::process::Command::new("ignition-validate").arg(&path).output().expect("runs");
        assert!(out.status.success(), "{}: {}", n.name, String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn a_recovery_kit_brings_the_cluster_back_on_a_new_workstation() {
    use age::secrecy::ExposeSecret;
    let dir = tempfile::tempdir().expect("tmp");
    let key = age::x25519::Identity::generate();
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{}\n", key.to_string().expose_secret())).expect("write");
    let recipient = key.to_public().to_string();

    let old = app(&dir.path().join("old")).await;
    let secret = token(&old).await;
    let e = old
        .export_secrets_with("demo-lab", std::slice::from_ref(&recipient), true, &mut rng())
        .await
        .expect_err("none");
    assert!(format!("{e:#}").contains("no snapshot of plan demo-lab is copied to this workstation"), "{e:#}");
    let identity = "44444444-4444-4444-8444-444444444444";
    let copy = snapshot_file(&old.snapshot_dir("demo-lab"), identity, &secret, "v1.32.2+k3s1");
    let kit =
        old.export_secrets_with("demo-lab", std::slice::from_ref(&recipient), true, &mut rng()).await.expect("kit");
    assert!(!String::from_utf8_lossy(&kit).contains("etcd-snapshot"), "sealed");

    // A new workstation: the plan file, then the one kit file.
    let new = app(&dir.path().join("new")).await;
    let restored = new.import_secrets(&kit, &key_file, false).await.expect("imports");
    let name = copy.file_name().and_then(|f| f.to_str()).expect("name").to_owned();
    assert_eq!(restored.snapshot.as_deref(), Some(name.as_str()));
    let here = new.downloaded_snapshots("demo-lab").expect("copies");
    assert_eq!(here.len(), 1);
    assert_eq!(std::fs::read(&here[0].path).expect("read"), std::fs::read(&copy).expect("read"));
    let started = new.restore_cluster("demo-lab", &name, &mut rng()).await.expect("restore armed");
    assert_eq!(started.snapshot, name);
    assert_eq!(token(&new).await, secret, "the original token");
}
