//! `flatlab kubeconfig` and `flatlab cluster` as a user runs them, against a TLS stand-in of the
//! plan's Kubernetes API made from the first server's rendered `config.ign`.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;

const DEMO: &str = include_str!("../../../assets/demo-plan.yaml");
const FIXTURE: &str = include_str!("../../kube-standin/fixtures/demo-lab.yaml");

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Self { dir: tempfile::tempdir().expect("tempdir") };
        let plan = env.dir.path().join("demo.yaml");
        std::fs::write(&plan, DEMO).expect("write");
        env.flatlab().args(["plan", "import"]).arg(&plan).assert().success();
        env.flatlab().args(["render", "demo-lab", "-o"]).arg(env.bundle()).assert().success();
        env
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn flatlab(&self) -> Command {
        let mut cmd = Command::cargo_bin("flatlab").expect("binary built");
        cmd.arg("--db").arg(self.dir.path().join("flatlab.db")).env_remove("FLATLAB_DB").env("HOME", self.dir.path());
        cmd
    }
}

async fn standin(env: &Env) -> flatlab_kube_standin::Running {
    let config = std::fs::read_to_string(env.bundle().join("nodes/cp1/config.ign")).expect("cp1 config");
    flatlab_kube_standin::start(flatlab_kube_standin::Options {
        config,
        node_config: None,
        listen: "127.0.0.1:0".parse().expect("addr"),
        identity: None,
        fixture: flatlab_kube_standin::Fixture::from_yaml(FIXTURE).expect("fixture"),
        record: None,
        upgrade_step: Duration::from_millis(100),
        client_ca_override: None,
    })
    .await
    .expect("starts")
}

fn run(mut cmd: Command) -> (bool, String, String) {
    let out = tokio::task::block_in_place(|| cmd.output()).expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_shows_the_fixture_nodes_beside_the_plan() {
    let env = Env::new();
    let s = standin(&env).await;
    let server = format!("https://{}", s.addr);
    let mut cmd = env.flatlab();
    cmd.args(["cluster", "status", "demo-lab", "--server", &server]);
    let (ok, out, err) = run(cmd);
    eprintln!("$ flatlab cluster status demo-lab --server {server}\n{out}{err}");
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("cluster demo-lab at {server}: reachable, Kubernetes v1.32.2+k3s1\n")), "{out}");
    let line = |node: &str| {
        out.lines().find(|l| l.starts_with(&format!("{node} "))).unwrap_or_else(|| panic!("{node}: {out}")).to_owned()
    };
    assert!(
        line("cp1").split_whitespace().collect::<Vec<_>>().starts_with(&[
            "cp1",
            "ready",
            "server",
            "v1.32.2+k3s1",
            "4593.2.5",
            "10.0.0.11"
        ]),
        "{}",
        line("cp1")
    );
    assert!(line("cp2").contains("rebooting into a Flatcar update"), "{}", line("cp2"));
    assert!(line("worker1").contains("reboot pending"), "{}", line("worker1"));
    assert!(line("worker2").contains("missing"), "{}", line("worker2"));
    assert!(out.contains("note: API access goes through 10.0.0.11: when cp1 is down"), "{out}");

    let mut cmd = env.flatlab();
    cmd.args(["cluster", "status", "demo-lab", "--json", "--server", &server]);
    let (ok, out, err) = run(cmd);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["reach"]["kind"], "reachable");
    assert_eq!(v["nodes"][1]["reboot"], "rebooting");
    assert_eq!(v["nodes"][4]["state"], "missing");

    // Unreachable: exit 1 and a reason.
    drop(s);
    let mut cmd = env.flatlab();
    cmd.args(["cluster", "status", "demo-lab", "--server", &server]);
    let (ok, out, _) = run(cmd);
    assert!(!ok);
    assert!(out.contains("API unreachable"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_upgrade_follows_the_nodes_and_saves_the_plan() {
    let env = Env::new();
    let s = standin(&env).await;
    let server = format!("https://{}", s.addr);
    let mut cmd = env.flatlab();
    cmd.args(["cluster", "upgrade", "demo-lab", "--k3s", "v1.34.0+k3s1", "--server", &server]);
    let (ok, _, err) = run(cmd);
    assert!(!ok && err.contains("skips a minor version"), "{err}");

    let mut cmd = env.flatlab();
    cmd.args(["cluster", "upgrade", "demo-lab", "--k3s", "v1.33.4+k3s1", "--server", &server]);
    let (ok, _, err) = run(cmd);
    eprintln!("$ flatlab cluster upgrade demo-lab --k3s v1.33.4+k3s1\n{err}");
    assert!(ok, "{err}");
    assert!(err.contains("the cluster upgrades 4 nodes from K3s v1.32.2+k3s1 to v1.33.4+k3s1"), "{err}");
    assert!(err.contains("cp1: K3s v1.33.4+k3s1") && err.contains("worker1: K3s v1.33.4+k3s1"), "{err}");
    assert!(err.contains("saved plan demo-lab revision 2"), "{err}");
    let mut cmd = env.flatlab();
    cmd.args(["plan", "show", "demo-lab"]);
    let (ok, out, _) = run(cmd);
    assert!(ok && out.contains("k3s_version: v1.33.4+k3s1"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_merge_keeps_other_contexts() {
    let env = Env::new();
    let kube = env.dir.path().join(".kube/config");
    std::fs::create_dir_all(kube.parent().expect("dir")).expect("mkdir");
    std::fs::write(&kube, "apiVersion: v1\nkind: Config\nclusters:\n- name: work\n  cluster: {server: 'https://work:6443'}\ncontexts: []\nusers: []\ncurrent-context: work\n").expect("write");
    let mut cmd = env.flatlab();
    cmd.args(["kubeconfig", "demo-lab", "--merge"]).env_remove("KUBECONFIG");
    let (ok, _, err) = run(cmd);
    assert!(ok, "{err}");
    assert!(err.contains("added context demo-lab (https://10.0.0.11:6443)"), "{err}");
    let text = std::fs::read_to_string(&kube).expect("read");
    assert!(
        text.contains("name: work") && text.contains("name: demo-lab") && text.contains("current-context: work"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kube).expect("meta").permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_snapshot_takes_one_copies_it_here_and_cluster_snapshots_lists_it() {
    let env = Env::new();
    let s = standin(&env).await;
    let server = format!("https://{}", s.addr);
    let mut cmd = env.flatlab();
    cmd.args(["cluster", "snapshot", "demo-lab", "--download", "--server", &server]);
    let (ok, _, err) = run(cmd);
    eprintln!("$ flatlab cluster snapshot demo-lab --download\n{err}");
    assert!(ok, "{err}");
    assert!(err.contains(&format!("{server}: took snapshot flatlab-on-demand-cp1-")), "{err}");
    let copied = err.lines().find(|l| l.starts_with("copied ")).expect("copied line");
    assert!(
        copied.contains("from cp1 to ") && copied.contains("/snapshots/demo-lab/flatlab-on-demand-cp1-"),
        "{copied}"
    );

    let mut cmd = env.flatlab();
    cmd.args(["cluster", "snapshots", "demo-lab", "--server", &server]);
    let (ok, out, err) = run(cmd);
    eprintln!("$ flatlab cluster snapshots demo-lab\n{out}{err}");
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SNAPSHOT") && lines[0].contains("HERE"), "{out}");
    assert!(
        lines[1].starts_with("flatlab-on-demand-cp1-") && lines[1].contains("ready") && lines[1].contains("sha256 "),
        "{out}"
    );

    let mut cmd = env.flatlab();
    cmd.args(["cluster", "snapshots", "demo-lab", "--json", "--server", &server]);
    let (ok, out, _) = run(cmd);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["snapshots"][0]["node"], "cp1");
    assert_eq!(v["snapshots"][0]["token_matches"], true);
    assert_eq!(v["snapshots"][0]["downloaded"]["sha256"].as_str().map(str::len), Some(64));

    // Without the cluster: exit 1, and the copy is still listed.
    drop(s);
    let mut cmd = env.flatlab();
    cmd.args(["cluster", "snapshots", "demo-lab", "--server", &server]);
    let (ok, out, _) = run(cmd);
    assert!(!ok);
    assert!(out.contains("API unreachable") && out.contains("here only"), "{out}");
}
