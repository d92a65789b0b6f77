//! etcd snapshots through the Kubernetes API only, against the API stand-in: the list
//! (`ETCDSnapshotFile`s of every server, whether each was made with the plan's token), one taken
//! through K3s's supervisor (`/db/snapshot` with the server token's secret), and a copy to the
//! workstation through a pod pinned to the snapshot's server, checked by SHA-256.

#[path = "support/clock.rs"]
mod clock;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flatlab_api::{Access, ErrorCode, Flatlab, error_code};
use flatlab_kube_standin::{Fixture, Options, Running};
use sha2::Digest;

use clock::{Now, now, rng};

const FIXTURE: &str = "
snapshots:
- { node: cp1, taken_unix: 1764979200 }
- { node: cp2, taken_unix: 1765000800 }
- { node: cp3, taken_unix: 1764990000, other_token: true }
nodes:
- { name: cp1, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.11 }
- { name: cp2, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.12 }
- { name: cp3, role: server, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.13 }
- { name: worker1, role: agent, kubelet: v1.32.2+k3s1, os_image: Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo), ip: 10.0.0.21 }
";

async fn setup(dir: &Path) -> (Flatlab, Running, Access) {
    let app = Flatlab::with_clock(&dir.join("flatlab.db"), Arc::new(Now(now()))).await.expect("opens");
    app.ensure_demo_plan().await.expect("demo");
    let bundle = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    let s = flatlab_kube_standin::start(Options {
        config: bundle.nodes[0].config.clone(),
        node_config: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        fixture: Fixture::from_yaml(FIXTURE).expect("fixture"),
        identity: None,
        record: None,
        upgrade_step: Duration::from_secs(3600),
        client_ca_override: None,
    })
    .await
    .expect("stand-in starts");
    let access = Access { server: Some(format!("https://{}", s.addr)) };
    (app, s, access)
}

#[tokio::test]
async fn the_list_shows_every_servers_snapshots_newest_first_and_which_a_restore_can_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, _s, access) = setup(dir.path()).await;
    let list = app.cluster_snapshots("demo-lab", &access, &mut rng()).await.expect("list");
    assert!(list.reach.is_reachable(), "{:?}", list.reach);
    let names: Vec<(&str, &str)> = list.snapshots.iter().map(|s| (s.name.as_str(), s.node.as_str())).collect();
    assert_eq!(
        names,
        [
            ("etcd-snapshot-cp2-1765000800", "cp2"),
            ("etcd-snapshot-cp3-1764990000", "cp3"),
            ("etcd-snapshot-cp1-1764979200", "cp1")
        ]
    );
    let cp2 = &list.snapshots[0];
    assert_eq!(cp2.location, "file:///var/lib/rancher/k3s/server/db/snapshots/etcd-snapshot-cp2-1765000800");
    assert_eq!(cp2.created_at, Some(1_765_000_800_000));
    assert!(cp2.ready && cp2.error.is_none());
    assert!(cp2.size_bytes.is_some_and(|s| s >= 192 * 1024));
    assert_eq!(cp2.token_matches, Some(true));
    assert_eq!(list.snapshots[1].token_matches, Some(false), "made with another token");
    assert!(list.local_only.is_empty());
}

#[tokio::test]
async fn a_snapshot_is_taken_through_the_supervisor_and_copied_here_through_a_pod() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, s, access) = setup(dir.path()).await;
    let taken = app.take_snapshot("demo-lab", "on demand", &access, &mut rng()).await.expect("taken");
    assert_eq!(taken.files.len(), 1);
    let file = taken.files[0].clone();
    assert!(file.starts_with("flatlab-on-demand-cp1-"), "{file}");
    assert!(s.state.lock().requests.iter().any(|r| r == "POST /db/snapshot"));

    let mut seen = Vec::new();
    let copy = app
        .download_snapshot("demo-lab", &file, &access, &mut rng(), |sent, total| seen.push((sent, total)))
        .await
        .expect("copied");
    let original = s.state.lock().snapshots.iter().find(|x| x.file == file).expect("taken").bytes.clone();
    let bytes = std::fs::read(&copy.path).expect("copy");
    assert_eq!(bytes, original, "the bytes the server holds");
    let hex: String = sha2::Sha256::digest(&original).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(copy.sha256, hex);
    assert_eq!(copy.size_bytes, original.len() as u64);
    assert_eq!(copy.path, app.snapshot_dir("demo-lab").join(&file));
    assert_eq!(copy.identity.as_deref(), Some(s.state.lock().identity.as_str()));
    assert_eq!(copy.k3s_version.as_deref(), Some("v1.32.2+k3s1"));
    assert!(seen.last().is_some_and(|(sent, _)| *sent == original.len() as u64), "progress to the end");
    {
        let state = s.state.lock();
        // The pod: pinned to the server, that one file mounted read-only, gone afterwards.
        let pod = state.created_pods.is_empty();
        assert!(pod, "the pod was deleted");
        let asked: Vec<&String> =
            state.requests.iter().filter(|r| r.starts_with("POST /api/v1/namespaces/kube-system/pods")).collect();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(state.served_snapshots, std::slice::from_ref(&file));
    }
    // It is listed as here, and survives the cluster: the list without an API still has it.
    let list = app.cluster_snapshots("demo-lab", &access, &mut rng()).await.expect("list");
    assert_eq!(list.snapshots.iter().find(|x| x.name == file).and_then(|x| x.downloaded.as_ref()), Some(&copy));
    drop(s);
    let list = app.cluster_snapshots("demo-lab", &access, &mut rng()).await.expect("list");
    assert!(!list.reach.is_reachable());
    assert_eq!(list.local_only, [copy]);

    // A snapshot the cluster does not have.
    let (app2, _s2, access2) = setup(&dir.path().join("other")).await;
    let e = app2.download_snapshot("demo-lab", "nope", &access2, &mut rng(), |_, _| {}).await.expect_err("none");
    assert_eq!(error_code(&e), ErrorCode::BadRequest);
    assert!(format!("{e:#}").contains("the cluster has no snapshot nope"), "{e:#}");
}

#[tokio::test]
async fn the_download_pod_serves_one_file_read_only_from_its_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, s, access) = setup(dir.path()).await;
    app.download_snapshot("demo-lab", "etcd-snapshot-cp2-1765000800", &access, &mut rng(), |_, _| {})
        .await
        .expect("copied");
    let state = s.state.lock();
    assert_eq!(state.asked_pods.len(), 1);
    let pod = &state.asked_pods[0];
    let spec = &pod["spec"];
    assert_eq!(pod["metadata"]["namespace"], "kube-system");
    assert_eq!(spec["nodeName"], "cp2", "pinned to the snapshot's server");
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["activeDeadlineSeconds"], 1800, "it ends by itself");
    assert_eq!(spec["automountServiceAccountToken"], false);
    let volume = &spec["volumes"][0];
    assert_eq!(volume["hostPath"]["path"], "/var/lib/rancher/k3s/server/db/snapshots/etcd-snapshot-cp2-1765000800");
    assert_eq!(volume["hostPath"]["type"], "File", "that one file, not the folder");
    let container = &spec["containers"][0];
    assert_eq!(container["image"], "rancher/mirrored-library-busybox:1.36.1", "K3s v1.32.2's own busybox");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    let mount =
        container["volumeMounts"].as_array().expect("mounts").iter().find(|m| m["name"] == "snapshot").expect("mount");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(state.created_pods.is_empty(), "deleted when done");
}

#[tokio::test]
async fn an_upgrade_and_a_node_removal_take_a_snapshot_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let (app, s, access) = setup(dir.path()).await;
    let started = app.start_k3s_upgrade("demo-lab", "v1.33.4+k3s1", None, &access, &mut rng()).await.expect("starts");
    assert_eq!(started.snapshot.len(), 1);
    assert!(started.snapshot[0].starts_with("flatlab-before-upgrade-to-v1-33-4-k3s1-cp1-"), "{:?}", started.snapshot);
    let state = s.state.lock();
    let at = |prefix: &str| state.requests.iter().position(|r| r.starts_with(prefix)).expect(prefix);
    assert!(at("POST /db/snapshot") < at("PATCH /apis/upgrade.cattle.io"), "the snapshot before the Plans");
}
