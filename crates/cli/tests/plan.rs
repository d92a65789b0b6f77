//! The `flatlab plan` command contract, run as a real process on a real database file.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

const DEMO: &str = include_str!("../../../assets/demo-plan.yaml");

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("data/flatlab.db")
    }

    fn flatlab(&self) -> Command {
        let mut cmd = Command::cargo_bin("flatlab").expect("binary built");
        cmd.arg("--db").arg(self.db()).env_remove("FLATLAB_DB");
        cmd
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }
}

fn with_key(text: &str) -> String {
    text.replace(
        "ssh_authorized_keys: []",
        "ssh_authorized_keys:\n- ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j me@laptop",
    )
}

#[test]
fn validate_a_good_plan_exits_0_and_prints_nothing_on_stdout() {
    let env = Env::new();
    let file = env.file("lab.yaml", &with_key(DEMO));
    env.flatlab().args(["plan", "validate"]).arg(&file).assert().success().stdout("");
}

#[test]
fn validate_warnings_only_exits_0() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab()
        .args(["plan", "validate"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("warning: ssh_authorized_keys: no SSH key"));
}

#[test]
fn validate_errors_exit_1_one_finding_per_line() {
    let env = Env::new();
    let text = DEMO.replace("mac: 52:54:00:00:00:02", "mac: 52:54:00:00:00:01").replace("10.0.0.21/24", "10.0.1.21/24");
    let file = env.file("lab.yaml", &text);
    let out = env.flatlab().args(["plan", "validate"]).arg(&file).assert().code(1).get_output().stdout.clone();
    let out = String::from_utf8(out).expect("utf8");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(
            &"error: nodes[cp2].mac: `52:54:00:00:00:01` is already the MAC of node `cp1`; each machine has its own MAC"
        ),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("error: nodes[worker1].address: 10.0.1.21 is outside the subnet")),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.starts_with("warning: ssh_authorized_keys:")), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
}

#[test]
fn validate_json_has_the_documented_shape() {
    let env = Env::new();
    let file = env.file("lab.yaml", &DEMO.replace("  role: agent\n", "  role: agent\n  rol: x\n"));
    let out =
        env.flatlab().args(["plan", "validate", "--json"]).arg(&file).assert().code(1).get_output().stdout.clone();
    let json: serde_json::Value = serde_json::from_slice(&out).expect("json");
    let findings = json["findings"].as_array().expect("findings array");
    let rol = findings.iter().find(|f| f["path"] == "nodes[worker1].rol").expect("the unknown field");
    assert_eq!(rol["severity"], "error");
    // The documented fields, and since the findings gained a structured target, that too.
    let index = rol["target"]["index"].as_u64().expect("a node target");
    assert_eq!(rol["target"], serde_json::json!({"kind": "node", "index": index, "field": "rol"}));
    for f in findings {
        let keys: Vec<&str> = f.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["message", "path", "severity", "target"]);
    }
}

#[test]
fn validate_reads_standard_input() {
    let env = Env::new();
    env.flatlab().args(["plan", "validate", "-"]).write_stdin(with_key(DEMO)).assert().success();
}

#[test]
fn bad_input_gives_one_line_errors_never_a_panic() {
    let env = Env::new();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["plan".into(), "validate".into(), "/no/such/plan.yaml".into()], "error: cannot read /no/such/plan.yaml"),
        (vec!["plan".into(), "import".into(), "/no/such/plan.yaml".into()], "error: cannot read /no/such/plan.yaml"),
        (vec!["plan".into(), "show".into(), "ghost".into()], "error: no plan called `ghost`"),
        (vec!["plan".into(), "history".into(), "ghost".into()], "error: no plan called `ghost`"),
        (vec!["plan".into(), "rm".into(), "ghost".into()], "error: removing plan ghost: no plan called `ghost`"),
        (
            vec!["plan".into(), "export".into(), "ghost".into(), "-o".into(), "x.yaml".into()],
            "error: no plan called `ghost`",
        ),
    ];
    for (args, expected) in cases {
        let out = env.flatlab().args(&args).assert().code(1).get_output().clone();
        let stderr = String::from_utf8(out.stderr).expect("utf8");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn bad_yaml_reports_line_and_column() {
    let env = Env::new();
    let file = env.file("broken.yaml", "version: 1\nname: lab\nnodes:\n  - name: [cp1\n");
    env.flatlab()
        .args(["plan", "validate"])
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::is_match(r"^error: line \d+, column \d+: ").expect("regex"));
    env.flatlab()
        .args(["plan", "import"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::is_match(r"^error: importing .*broken.yaml: line \d+, column \d+: ").expect("regex"));
}

#[test]
fn a_binary_file_is_refused() {
    let env = Env::new();
    let path = env.dir.path().join("plan.bin");
    std::fs::write(&path, [0xff, 0xfe, 0x00, 0x01]).expect("write");
    env.flatlab()
        .args(["plan", "validate"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a text file"));
}

#[test]
fn import_list_show_export_history_rm_round_trip() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success().stdout("demo-lab\n");
    assert!(env.db().exists(), "the database was created with its folder");

    // A second import of the same file makes no new revision; a changed file does.
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success().stderr(predicate::str::contains("unchanged"));
    let changed = env.file("lab2.yaml", &with_key(DEMO));
    env.flatlab()
        .args(["plan", "import"])
        .arg(&changed)
        .assert()
        .success()
        .stderr(predicate::str::contains("saved plan demo-lab as revision 2"));

    env.flatlab()
        .args(["plan", "list"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^demo-lab\s+2\s+5\s").expect("regex"));
    let json = env.flatlab().args(["plan", "list", "--json"]).assert().success().get_output().stdout.clone();
    let json: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(json[0]["name"], "demo-lab");
    assert_eq!(json[0]["revision"], 2);
    assert_eq!(json[0]["errors"], 0);

    let history = env.flatlab().args(["plan", "history", "demo-lab"]).assert().success().get_output().stdout.clone();
    let history = String::from_utf8(history).expect("utf8");
    assert!(history.contains("imported from lab2.yaml") && history.contains("imported from lab.yaml"), "{history}");

    // Export, then import the exported file into a fresh database: the same plan comes back.
    let exported = env.dir.path().join("exported.yaml");
    env.flatlab().args(["plan", "export", "demo-lab", "-o"]).arg(&exported).assert().success();
    let text = std::fs::read_to_string(&exported).expect("exported");
    assert!(text.starts_with("# Flatlab plan file, format version 1."));
    env.flatlab().args(["plan", "validate"]).arg(&exported).assert().success().stdout("");
    let other = Env::new();
    other.flatlab().args(["plan", "import"]).arg(&exported).assert().success();
    let a = env.flatlab().args(["plan", "show", "demo-lab"]).assert().success().get_output().stdout.clone();
    let b = other.flatlab().args(["plan", "show", "demo-lab"]).assert().success().get_output().stdout.clone();
    assert_eq!(a, b);
    assert_eq!(String::from_utf8(a).expect("utf8"), text);
    let _ = std::fs::remove_file(&exported);

    // An older revision can be shown, exported and reverted to.
    env.flatlab()
        .args(["plan", "show", "demo-lab", "--revision", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ssh_authorized_keys: []"));
    env.flatlab().args(["plan", "revert", "demo-lab", "1"]).assert().success();
    env.flatlab()
        .args(["plan", "show", "demo-lab"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ssh_authorized_keys: []"));

    env.flatlab()
        .args(["plan", "rm", "demo-lab"])
        .assert()
        .success()
        .stderr("removed plan demo-lab and its 3 revisions\n");
    env.flatlab().args(["plan", "list", "--json"]).assert().success().stdout("[]\n");
}

#[test]
fn import_refuses_errors_unless_asked_and_always_refuses_unknown_fields() {
    let env = Env::new();
    let broken = env.file("broken.yaml", &DEMO.replace("install_disk: /dev/sda\n", "install_disk: sda\n"));
    env.flatlab()
        .args(["plan", "import"])
        .arg(&broken)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--allow-errors"));
    env.flatlab().args(["plan", "list", "--json"]).assert().success().stdout("[]\n");
    env.flatlab().args(["plan", "import", "--allow-errors"]).arg(&broken).assert().success().stdout("demo-lab\n");

    let typo = env.file("typo.yaml", &DEMO.replace("name: demo-lab", "name: typo-lab\ncolour: blue"));
    env.flatlab()
        .args(["plan", "import", "--allow-errors"])
        .arg(&typo)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown field `colour`").and(predicate::str::contains("would be lost")));
}

#[test]
fn rename_and_copy_keep_names_valid_and_unique() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success();
    env.flatlab()
        .args(["plan", "rename", "demo-lab", "Bad Name"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("a-z, 0-9"));
    env.flatlab().args(["plan", "rename", "demo-lab", "garage"]).assert().success().stdout("garage\n");
    env.flatlab().args(["plan", "copy", "garage", "garage-2"]).assert().success();
    env.flatlab()
        .args(["plan", "copy", "garage", "garage-2"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    env.flatlab()
        .args(["plan", "show", "garage-2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("name: garage-2"));
}

#[test]
fn a_database_that_is_not_flatlabs_is_left_alone() {
    let env = Env::new();
    let db = env.db();
    std::fs::create_dir_all(db.parent().expect("parent")).expect("mkdir");
    std::fs::write(&db, "my shopping list\n".repeat(50)).expect("write");
    let before = std::fs::read(&db).expect("read");
    env.flatlab().args(["plan", "list"]).assert().code(1).stderr(predicate::str::contains("is not a Flatlab database"));
    assert_eq!(std::fs::read(&db).expect("read"), before);
}

#[test]
fn the_default_database_lives_in_the_xdg_data_folder() {
    let env = Env::new();
    let data = env.dir.path().join("xdg");
    let mut cmd = Command::cargo_bin("flatlab").expect("binary");
    cmd.env_remove("FLATLAB_DB").env("XDG_DATA_HOME", &data).args(["plan", "list"]).assert().success();
    assert!(Path::new(&data.join("flatlab/flatlab.db")).exists());
}

#[test]
fn version_and_help_work() {
    let env = Env::new();
    // `flatlab 0.1.0 (0123456789ab)`: the version and the git revision, as the app's About box shows.
    env.flatlab()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^flatlab \d+\.\d+\.\d+ \(([0-9a-f]{12}|unknown)\)\n$").expect("regex"));
    env.flatlab().args(["plan", "--help"]).assert().success().stdout(predicate::str::contains("validate"));
}

#[test]
fn render_writes_the_bundle_layout_and_is_reproducible() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    let out = env.dir.path().join("bundle");
    env.flatlab()
        .args(["render"])
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .args(["--base-url", "http://10.0.0.2:8080"])
        .assert()
        .success()
        .stderr(predicate::str::contains("wrote 17 files for plan demo-lab (5 nodes)"));
    for node in ["cp1", "cp2", "cp3", "worker1", "worker2"] {
        for f in ["config.ign", "install.ign", "boot.ipxe"] {
            assert!(out.join("nodes").join(node).join(f).is_file(), "{node}/{f}");
        }
    }
    assert!(out.join("plan.yaml").is_file() && out.join("README.md").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("nodes/cp1/config.ign")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let first = std::fs::read(out.join("nodes/cp2/config.ign")).expect("read");

    // The stored plan renders again to the same bytes: secrets are generated once.
    env.flatlab()
        .args(["render", "demo-lab", "-o"])
        .arg(&out)
        .args(["--base-url", "http://10.0.0.2:8080"])
        .assert()
        .success();
    assert_eq!(std::fs::read(out.join("nodes/cp2/config.ign")).expect("read"), first);
    let plan_yaml = std::fs::read_to_string(out.join("plan.yaml")).expect("plan");
    let config = String::from_utf8(first).expect("utf8");
    let token_line = config.split("token%3A%20").nth(1).expect("token in config").split('%').next().expect("token");
    assert!(token_line.len() >= 32);
    assert!(!plan_yaml.contains(token_line), "no secret in plan.yaml");
}

#[test]
fn render_refuses_invalid_plans_and_foreign_folders() {
    let env = Env::new();
    let broken = env.file("broken.yaml", &DEMO.replace("install_disk: /dev/sda\n", "install_disk: sda\n"));
    env.flatlab().args(["plan", "import", "--allow-errors"]).arg(&broken).assert().success();
    let out = env.dir.path().join("bundle");
    env.flatlab()
        .args(["render", "demo-lab", "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("fix the plan's errors before rendering"));
    assert!(!out.exists());

    let good = env.file("good.yaml", DEMO);
    let precious = env.dir.path().join("precious");
    std::fs::create_dir_all(&precious).expect("mkdir");
    std::fs::write(precious.join("thesis.txt"), "years of work").expect("write");
    env.flatlab()
        .args(["render"])
        .arg(&good)
        .arg("-o")
        .arg(&precious)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a Flatlab bundle"));
    assert_eq!(std::fs::read_to_string(precious.join("thesis.txt")).expect("kept"), "years of work");
    env.flatlab()
        .args(["render", "ghost", "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no plan called `ghost`"));
}

#[test]
fn serve_without_the_port_privilege_says_how_to_grant_it() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success();
    let bin = assert_cmd::cargo::cargo_bin("flatlab");
    // As root, drop to an unprivileged user; otherwise this user lacks the privilege already.
    let is_root = std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    let mut cmd = if is_root {
        // The unprivileged user must reach the binary and the database wherever the checkout is.
        let copy = env.dir.path().join("flatlab");
        std::fs::copy(&bin, &copy).expect("copy binary");
        let status =
            std::process::Command::new("chmod").args(["-R", "a+rwX"]).arg(env.dir.path()).status().expect("chmod");
        assert!(status.success());
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(&copy);
        c
    } else {
        std::process::Command::new(&bin)
    };
    let args = [
        "serve",
        "demo-lab",
        "--interface",
        "lo",
        "--address",
        "127.0.0.1",
        "--dhcp",
        "off",
        "--http-port",
        "0",
        "--admin",
        "127.0.0.1:0",
    ];
    let out = cmd.arg("--db").arg(env.db()).args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error: starting the boot server: TFTP needs port 69"), "{stderr}");
    assert!(last.contains("sudo setcap cap_net_bind_service,cap_net_raw+ep"), "{stderr}");
    assert!(!stderr.contains("panicked"));

    // As the app's sidecar, the same failure is a JSON line with a code the app branches on.
    let out = cmd.arg("--json").output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("a JSON line");
    assert_eq!(line["type"], "error", "{stdout}");
    assert_eq!(line["error"]["code"], "needs_privilege", "{stdout}");
}

/// `flatlab serve --json`, as the desktop app runs it: JSON lines out, `arm NODE` in, and it
/// stops when its stdin closes.
#[test]
fn serve_json_speaks_the_sidecar_protocol() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("flatlab"))
        .arg("--db")
        .arg(env.db())
        .args(["serve", "demo-lab", "--interface", "lo", "--address", "127.0.0.1", "--dhcp", "off"])
        .args(["--http-port", "0", "--tftp-port", "0", "--admin", "127.0.0.1:0", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || -> serde_json::Value {
        let line = lines.next().expect("a line").expect("readable");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };

    let ready = next();
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["seq"], 1, "{ready}");
    let run = ready["run"].as_str().expect("a run id").to_owned();
    assert_eq!(run.len(), 16, "{ready}");
    assert_eq!(ready["plan"], "demo-lab");
    assert!(ready["http"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{ready}");
    let machines = next();
    assert_eq!(
        (machines["type"].as_str(), machines["seq"].as_u64(), machines["run"].as_str()),
        (Some("machines"), Some(2), Some(run.as_str()))
    );
    assert_eq!(machines["machines"].as_array().map(Vec::len), Some(5), "{machines}");
    assert!(machines["machines"].as_array().into_iter().flatten().all(|m| m["stage"] == "armed"));

    writeln!(stdin, "arm cp2").expect("write");
    let armed = next();
    assert_eq!(armed, serde_json::json!({"run": run, "seq": 3, "type": "armed", "node": "cp2"}));
    writeln!(stdin, "reboot everything").expect("write");
    let bad = loop {
        let m = next();
        if m["type"] == "error" {
            break m;
        }
    };
    assert_eq!(bad["error"]["code"], "bad_request", "{bad}");
    writeln!(stdin, "arm nosuch").expect("write");
    let error = loop {
        let m = next();
        if m["type"] == "error" {
            break m;
        }
    };
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("nosuch")), "{error}");

    drop(stdin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the sidecar did not stop when its stdin closed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

/// `flatlab serve demo-lab --json` on 127.0.0.1:`port` (no DHCP, TFTP on any port), once it
/// said it is ready. Closing its stdin stops it.
fn serve_on_loopback(env: &Env, port: u16) -> std::process::Child {
    serve_on_loopback_with(env, port, &[]).0
}

/// `serve_on_loopback` with more arguments; also its `ready` message.
fn serve_on_loopback_with(env: &Env, port: u16, more: &[&str]) -> (std::process::Child, serde_json::Value) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut serve = std::process::Command::new(assert_cmd::cargo::cargo_bin("flatlab"))
        .arg("--db")
        .arg(env.db())
        .args(["serve", "demo-lab", "--interface", "lo", "--address", "127.0.0.1", "--dhcp", "off"])
        .args(["--http-port", &port.to_string(), "--tftp-port", "0", "--admin", "127.0.0.1:0", "--json"])
        .args(more)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(serve.stdout.take().expect("stdout")).lines();
    let ready: serde_json::Value = serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json");
    assert_eq!(ready["type"], "ready", "{ready}");
    // The rest of its lines are read by no one: keep the pipe drained so it never blocks.
    std::thread::spawn(move || for _ in lines {});
    (serve, ready)
}

/// An armed machine that never network-boots is told, on its timeline, how to choose network
/// boot: after `--no-boot-after` (5 minutes unless given).
#[test]
fn an_armed_machine_that_never_network_boots_is_told_how() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let (mut serve, ready) = serve_on_loopback_with(&env, port, &["--no-boot-after", "1"]);
    let admin = ready["admin"].as_str().expect("admin address").to_owned();
    let machines = format!("http://{admin}/api/v1/machines");
    // cp1 boots (its script is fetched); the others never do. The diagnosis runs every 5 s.
    assert_eq!(http_get(&format!("http://127.0.0.1:{port}/v1/boot/52-54-00-00-00-01.ipxe")).0, 200);
    let told = |m: &serde_json::Value| {
        m["history"].as_array().is_some_and(|h| h.iter().any(|e| e["diagnosis"] == "no-network-boot"))
    };
    let (_, body) = http_until(&machines, |_, body| {
        serde_json::from_str::<serde_json::Value>(body)
            .is_ok_and(|l| l.as_array().is_some_and(|n| n.iter().filter(|m| m["node"] != "cp1").all(told)))
    });
    let list: serde_json::Value = serde_json::from_str(&body).expect("json");
    let nodes = list.as_array().expect("a list");
    assert!(!nodes.iter().any(|m| m["node"] == "cp1" && told(m)), "cp1 network-booted: {list}");
    let cp2 = nodes.iter().find(|m| m["node"] == "cp2").expect("cp2").clone();
    let message = cp2["history"]
        .as_array()
        .and_then(|h| h.iter().find(|e| e["diagnosis"] == "no-network-boot"))
        .and_then(|e| e["message"].as_str())
        .expect("message")
        .to_owned();
    assert!(message.contains("boot menu") && message.contains("F12") && message.contains("second"), "{message}");
    drop(serve.stdin.take());
    assert!(serve.wait().expect("waits").success());
}

/// A plain HTTP/1.1 GET on loopback: status and body.
fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A bundle from `flatlab render --base-url` is what `flatlab serve` serves, but each boot is an
/// attempt with a token of its own: the served script and install config are the bundle's with
/// that token in place of the machine's, and each config goes out once per attempt.
#[test]
fn a_rendered_bundles_ignition_url_is_answered_by_serve() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let out = env.dir.path().join("bundle");
    env.flatlab().args(["render", "demo-lab", "--base-url", &base, "-o"]).arg(&out).assert().success();
    let ignition_url = |script: &str| {
        script
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ignition.config.url="))
            .expect("the kernel line names the install config")
            .to_owned()
    };
    let bundle_script = std::fs::read_to_string(out.join("nodes/cp1/boot.ipxe")).expect("boot.ipxe");
    let bundle_url = ignition_url(&bundle_script);
    assert!(bundle_url.starts_with(&format!("{base}/v1/ignition/")), "{bundle_url}");
    let machine_token = bundle_url.rsplit('/').next().expect("token").to_owned();

    let mut serve = serve_on_loopback(&env, port);

    // The machine boots: iPXE fetches its script, then the kernel fetches the install config.
    let (status, script) = http_get(&format!("{base}/v1/boot/52-54-00-00-00-01.ipxe"));
    assert_eq!(status, 200);
    let url = ignition_url(&script);
    let attempt = url.rsplit('/').next().expect("token").to_owned();
    assert_ne!(attempt, machine_token, "the attempt has its own token");
    assert_eq!(script, bundle_script.replace(&machine_token, &attempt), "otherwise the bundle's script");
    assert_eq!(http_get(&bundle_url).0, 403, "the machine's own token unlocks nothing");
    let (status, config) = http_get(&url);
    assert_eq!(status, 200, "the attempt's token is the one the boot server answers");
    let bundle_install = std::fs::read_to_string(out.join("nodes/cp1/install.ign")).expect("install.ign");
    assert_eq!(config, bundle_install.replace(&machine_token, &attempt));
    assert_eq!(http_get(&url).0, 200, "again from its address before it reports a next stage: a retry");
    assert_eq!(http_post(&format!("{base}/v1/report/{attempt}?stage=installing"), "").0, 204);
    assert_eq!(http_get(&url).0, 403, "once it moved on");
    // A reboot is a new attempt.
    let (_, again) = http_get(&format!("{base}/v1/boot/52-54-00-00-00-01.ipxe"));
    let retry = ignition_url(&again);
    assert_ne!(retry, url);
    assert_eq!(http_get(&retry).0, 200);
    assert_eq!(http_get(&url).0, 403, "the earlier attempt ended");
    drop(serve.stdin.take());
    assert!(serve.wait().expect("waits").success());
}

/// A Git export commits no live boot token: boot scripts and install configs carry a placeholder.
#[test]
fn a_git_export_carries_placeholders_instead_of_boot_tokens() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success();
    let out = env.dir.path().join("bundle");
    env.flatlab().args(["render", "demo-lab", "-o"]).arg(&out).assert().success();
    let script = std::fs::read_to_string(out.join("nodes/cp1/boot.ipxe")).expect("boot.ipxe");
    let token = script.split("/v1/ignition/").nth(1).and_then(|r| r.split_whitespace().next()).expect("token");
    assert_eq!(token.len(), 32, "{token}");
    let repo = env.dir.path().join("repo");
    env.flatlab().args(["export", "git", "demo-lab", "--repo"]).arg(&repo).assert().success();
    let log = std::process::Command::new("git").arg("-C").arg(&repo).args(["log", "-p"]).output().expect("git log");
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("nodes/cp1/install.ign"), "the install config is committed");
    assert!(!log.contains(token), "a live boot token is in the repository");
    // flatlab_api::PLACEHOLDER_BOOT_TOKEN (these tests run the binary, not the library).
    assert!(log.contains("v1/ignition/BootTokenNotInThisExport"), "the placeholder stands in for it");
}

/// A plain HTTP/1.1 request on loopback with a body: status and body.
fn http_post(url: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Polls `url` until its answer satisfies `done` (at most 10 s: the boot server takes up what
/// other processes store every 2 s).
fn http_until(url: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = http_get(url);
        if done(status, &body) {
            return (status, body);
        }
        assert!(std::time::Instant::now() < deadline, "{url} still answers {status}: {body}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `flatlab inspect` and `flatlab arm` from other processes reach a running `flatlab serve`:
/// a stranger's script keeps asking; an inspected machine gets the live system with an
/// inventory-only config, posts its hardware, waits, and once armed gets its install script.
#[test]
fn inspect_and_arm_reach_a_running_boot_server() {
    let env = Env::new();
    let file = env.file("lab.yaml", DEMO);
    env.flatlab().args(["plan", "import"]).arg(&file).assert().success();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = serve_on_loopback(&env, port);

    // A machine the plan does not have keeps asking, round after round.
    let stranger = format!("{base}/v1/boot/52-54-00-aa-bb-cc.ipxe");
    let (_, script) = http_get(&stranger);
    assert!(script.contains("is not in the plan") && script.contains(".ipxe?round=1"), "{script}");
    env.flatlab().args(["inspect", "demo-lab", "--mac", "52:54:00:aa:bb:cc"]).assert().success();
    let (_, script) = http_until(&format!("{stranger}?round=5"), |_, b| b.contains("inspect"));
    assert!(script.contains("/v1/inspect/") && script.contains("flatcar_production_pxe.vmlinuz"), "{script}");

    // A planned node, inspected before its install.
    env.flatlab().args(["inspect", "demo-lab", "cp1"]).assert().success();
    let cp1 = format!("{base}/v1/boot/52-54-00-00-00-01.ipxe");
    let (_, script) = http_until(&cp1, |_, b| b.contains("/v1/inspect/"));
    let url = script
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ignition.config.url="))
        .expect("the kernel line names the inspection config")
        .to_owned();
    let token = url.rsplit('/').next().and_then(|t| t.strip_suffix(".ign")).expect("token").to_owned();
    let (status, config) = http_get(&url);
    assert_eq!(status, 200);
    let config_file = env.file("inspect.ign", &config);
    let out =
        std::process::Command::new("ignition-validate").arg(&config_file).output().expect("ignition-validate runs");
    assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(config.contains("flatlab-inspect.service") && !config.contains("flatlab-install.service"));

    let inventory = r#"{"firmware":"uefi","vendor":"QEMU","product":"Standard PC","cpu_model":"QEMU Virtual CPU","cpus":2,
        "memory_bytes":4294967296,"nics":[{"name":"enp0s2","mac":"52:54:00:00:00:01","driver":"virtio_net","speed_mbps":null}],
        "disks":[{"name":"vda","by_id":["/dev/disk/by-id/virtio-flatlab-cp1"],"size_bytes":21474836480,"model":null,
                  "serial":"flatlab-cp1","rotational":false,"removable":false,"partitions":[]}]}"#;
    let (status, body) = http_post(&format!("{base}/v1/inventory/{token}"), inventory);
    assert_eq!(status, 204, "{body}");
    let next = format!("{base}/v1/inspect/{token}/next");
    assert_eq!(http_get(&next).0, 204, "it waits until armed");
    let listed = env.flatlab().args(["inventory", "demo-lab"]).output().expect("runs");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("cp1 (52:54:00:00:00:01)") && listed.contains("virtio-flatlab-cp1"), "{listed}");

    // Armed from another process: the live system's next ask gets the node's install script.
    env.flatlab().args(["arm", "demo-lab", "cp1"]).assert().success();
    let (_, install) = http_until(&next, |status, _| status == 200);
    assert!(install.starts_with("#!/bin/bash") && install.contains("flatcar-install -d"), "{install}");
    assert_eq!(http_get(&next).0, 403, "handed out once");
    drop(serve.stdin.take());
    assert!(serve.wait().expect("waits").success());
}
