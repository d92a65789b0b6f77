//! Flatlab's cluster PKI as the nodes and the workstation get it: every certificate checked with
//! `openssl`, the join token pinning the exact `server-ca.crt` bytes, private keys only where
//! they belong, kubeconfigs, and backups of the secrets.

#[path = "support/clock.rs"]
mod clock;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use flatlab_api::{ErrorCode, Flatlab, error_code};
use serde_json::Value;

use clock::{Now, now, rng};

async fn app(dir: &Path, at: i64) -> Flatlab {
    let app = Flatlab::with_clock(&dir.join("flatlab.db"), Arc::new(Now(at))).await.expect("opens");
    app.ensure_demo_plan().await.expect("demo");
    app
}

/// The inline files of an Ignition config, decoded, by path.
fn files(config: &str) -> Vec<(String, i64, String)> {
    let v: Value = serde_json::from_str(config).expect("json");
    v["storage"]["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let text = flatlab_render::inline_contents(
                f["contents"]["source"].as_str()?,
                f["contents"]["compression"].as_str(),
            )?;
            Some((f["path"].as_str()?.to_owned(), f["mode"].as_i64()?, text))
        })
        .collect()
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl runs (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const TLS: &str = "/var/lib/rancher/k3s/server/tls/";

#[tokio::test]
async fn the_first_servers_certificate_authorities_are_what_k3s_expects() {
    let dir = tempfile::tempdir().expect("tmp");
    let at = now();
    let app = app(dir.path(), at).await;
    let bundle = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    let cp1 = &bundle.nodes[0];
    assert_eq!(cp1.name, "cp1");
    let ca: Vec<(String, i64, String)> =
        files(&cp1.config).into_iter().filter(|(p, _, _)| p.starts_with(TLS)).collect();
    assert_eq!(ca.len(), 11, "{:?}", ca.iter().map(|c| &c.0).collect::<Vec<_>>());
    let out = dir.path().join("tls");
    for (path, mode, text) in &ca {
        let file = out.join(path.trim_start_matches(TLS));
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, text).expect("write");
        assert_eq!(*mode, if path.ends_with(".key") { 0o600 } else { 0o644 }, "{path}");
    }
    for stem in ["server-ca", "client-ca", "request-header-ca", "etcd/peer-ca", "etcd/server-ca"] {
        let crt = out.join(format!("{stem}.crt"));
        let crt = crt.to_str().expect("utf-8");
        // Self-signed: it verifies against itself.
        assert!(openssl(&["verify", "-CAfile", crt, crt]).contains(": OK"), "{stem}");
        let text = openssl(&["x509", "-in", crt, "-noout", "-text"]);
        for want in ["CA:TRUE", "Certificate Sign", "Digital Signature", "Key Encipherment", "prime256v1"] {
            assert!(text.contains(want), "{stem} lacks {want}:\n{text}");
        }
        // Valid from a day before now (a node whose clock is behind accepts it), for ten years.
        let dates = openssl(&["x509", "-in", crt, "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601"]);
        let start = dates.lines().find_map(|l| l.strip_prefix("notBefore=")).expect("notBefore");
        let end = dates.lines().find_map(|l| l.strip_prefix("notAfter=")).expect("notAfter");
        let year = |d: &str| d[..4].parse::<i32>().expect("year");
        assert_eq!(year(end) - year(start), 10, "{dates}");
        let day_before = time::OffsetDateTime::from_unix_timestamp(at / 1000 - 86_400).expect("time");
        assert!(
            start.starts_with(&format!(
                "{}-{:02}-{:02}",
                day_before.year(),
                day_before.month() as u8,
                day_before.day()
            )),
            "{dates}"
        );
        let key = out.join(format!("{stem}.key"));
        openssl(&["pkey", "-in", key.to_str().expect("utf-8"), "-noout"]);
    }
    let service = openssl(&["rsa", "-in", out.join("service.key").to_str().expect("utf-8"), "-noout", "-text"]);
    assert!(service.contains("Private-Key: (2048 bit"), "{service}");

    // The servers' token pins the exact bytes of server-ca.crt as written.
    use sha2::Digest;
    let server_ca = &ca.iter().find(|(p, _, _)| *p == format!("{TLS}server-ca.crt")).expect("server CA").2;
    let hash: String = sha2::Sha256::digest(server_ca.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let k3s_config = |node: &flatlab_render::RenderedNode| {
        files(&node.config).into_iter().find(|(p, _, _)| p == "/etc/rancher/k3s/config.yaml").expect("K3s config").2
    };
    for node in &bundle.nodes {
        let config = k3s_config(node);
        let server = node.name.starts_with("cp");
        let token = config.lines().find_map(|l| l.strip_prefix("token: ")).expect("a token");
        let user = if server { "server" } else { "node" };
        assert!(token.starts_with(&format!("K10{hash}::{user}:")), "{}: {token}", node.name);
        if server {
            let agent = config.lines().find_map(|l| l.strip_prefix("agent-token: ")).expect("the agent token");
            assert!(agent.starts_with(&format!("K10{hash}::node:")));
            assert_ne!(agent.rsplit(':').next(), token.rsplit(':').next(), "agents have a secret of their own");
        }
        // No private key outside the first server's config.
        if node.name != "cp1" {
            let decoded: String = files(&node.config).into_iter().map(|(_, _, t)| t).collect();
            assert!(!node.config.contains("PRIVATE KEY") && !decoded.contains("PRIVATE KEY"), "{}", node.name);
        }
        for config in [&node.config, &node.install] {
            check_ignition(config, dir.path());
        }
    }
    // Rendering again gives the same PKI: it is made once per plan.
    let again = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    assert_eq!(again.nodes[0].config, cp1.config);
}

/// Debian's ignition-validate, on a config rendered with a real PKI.
fn check_ignition(config: &str, scratch: &Path) {
    let file = scratch.join("check.ign");
    std::fs::write(&file, config).expect("write");
    let out = Command::new("ignition-validate")
        .arg(&file)
        .output()
        .expect("ignition-validate runs (apt-get install ignition)");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "ignition-validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn decode_b64(text: &str) -> String {
    use base64::Engine;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).expect("base64")).expect("utf-8")
}

#[tokio::test]
async fn a_kubeconfig_carries_an_admin_certificate_of_the_client_ca() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path(), now()).await;
    let config = app.kubeconfig("demo-lab", &mut rng()).await.expect("a kubeconfig");
    assert_eq!(config.server, "https://10.0.0.11:6443", "the plan's API endpoint");
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&config.yaml).expect("yaml");
    assert_eq!(yaml["current-context"], "demo-lab");
    let cert = decode_b64(yaml["users"][0]["user"]["client-certificate-data"].as_str().expect("cert"));
    let key = decode_b64(yaml["users"][0]["user"]["client-key-data"].as_str().expect("key"));
    let ca = decode_b64(yaml["clusters"][0]["cluster"]["certificate-authority-data"].as_str().expect("ca"));
    let bundle = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    let tls = files(&bundle.nodes[0].config);
    let file = |name: &str| tls.iter().find(|(p, _, _)| p == &format!("{TLS}{name}")).expect(name).2.clone();
    assert_eq!(ca, file("server-ca.crt"), "the cluster CA is the server CA");
    std::fs::write(dir.path().join("client.crt"), &cert).expect("write");
    std::fs::write(dir.path().join("client-ca.crt"), file("client-ca.crt")).expect("write");
    std::fs::write(dir.path().join("client.key"), &key).expect("write");
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    assert!(openssl(&["verify", "-CAfile", &p("client-ca.crt"), &p("client.crt")]).contains(": OK"));
    let text = openssl(&["x509", "-in", &p("client.crt"), "-noout", "-text"]);
    for want in ["O = system:masters", "TLS Web Client Authentication", "prime256v1"] {
        assert!(text.contains(want), "lacks {want}:\n{text}");
    }
    assert!(!text.contains("CA:TRUE"), "{text}");
    let dates = openssl(&["x509", "-in", &p("client.crt"), "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601"]);
    let year = |k: &str| dates.lines().find_map(|l| l.strip_prefix(k)).map(|d| d[..4].parse::<i32>().expect("year"));
    assert!(year("notAfter=").zip(year("notBefore=")).is_some_and(|(e, s)| e - s == 1), "one year: {dates}");
    // The key fits the certificate.
    let pubkey_of_cert = openssl(&["x509", "-in", &p("client.crt"), "-noout", "-pubkey"]);
    let pubkey_of_key = openssl(&["pkey", "-in", &p("client.key"), "-pubout"]);
    assert_eq!(pubkey_of_cert, pubkey_of_key);
    // A file written for the user is owner-only.
    let out = dir.path().join("kube/config");
    flatlab_api::kubeconfig::write_kubeconfig(&out, &config.yaml).expect("writes");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).expect("stat").permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn a_cluster_installed_before_flatlab_made_cas_keeps_k3s_own_and_says_so() {
    let dir = tempfile::tempdir().expect("tmp");
    let at = now();
    // An older Flatlab installed cp1: its machine row is there, with no PKI beside it.
    {
        let store = flatlab_store::Store::open(&dir.path().join("flatlab.db")).await.expect("opens");
        store
            .save_plan(&flatlab_model::parse_plan(flatlab_model::DEMO_PLAN).expect("demo").plan, "demo", at)
            .await
            .expect("saves");
        let row = flatlab_store::MachineRow {
            mac: "52:54:00:00:00:01".into(),
            node: "cp1".into(),
            stage: "k3s-ready".into(),
            token: "OldBootToken0123456789abcdefghij".into(),
            history: "[]".into(),
            ip: None,
            attempt: None,
            updated_at: at,
        };
        store.save_machine("demo-lab", &row).await.expect("saves");
        store.close().await;
    }
    let app = app(dir.path(), at).await;
    let e = app.kubeconfig("demo-lab", &mut rng()).await.expect_err("not Flatlab's CA");
    assert_eq!(error_code(&e), ErrorCode::ForeignCa);
    assert!(format!("{e:#}").contains("installed before Flatlab made its own certificate authorities"), "{e:#}");
    let bundle = app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders");
    for node in &bundle.nodes {
        let config =
            files(&node.config).into_iter().find(|(p, _, _)| p == "/etc/rancher/k3s/config.yaml").expect("K3s").2;
        let token = config.lines().find_map(|l| l.strip_prefix("token: ")).expect("token");
        assert!(!token.starts_with("K10"), "the plain token the cluster was made with: {token}");
        assert!(!config.contains("agent-token"), "{config}");
        assert!(!node.config.contains(TLS), "no CA files: K3s has its own");
    }
}

#[tokio::test]
async fn a_secrets_backup_opens_with_the_identity_and_restores_the_cluster_elsewhere() {
    use age::secrecy::ExposeSecret;
    let dir = tempfile::tempdir().expect("tmp");
    let identity = age::x25519::Identity::generate();
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{}\n", identity.to_string().expose_secret())).expect("write");
    let recipient = identity.to_public().to_string();

    let first = tempfile::tempdir().expect("tmp");
    let app1 = app(first.path(), now()).await;
    let sealed = app1.export_secrets("demo-lab", std::slice::from_ref(&recipient), &mut rng()).await.expect("backs up");
    let text = String::from_utf8_lossy(&sealed);
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!text.contains("PRIVATE KEY") && !text.contains("k3s-token"), "nothing in clear text");
    let cfg1 = app1.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders").nodes[0]
        .config
        .clone();

    // Another workstation: the plan file is imported, then its secrets.
    let second = tempfile::tempdir().expect("tmp");
    let app2 = app(second.path(), now()).await;
    let restored = app2.import_secrets(&sealed, &key_file, false).await.expect("restores into a plan with no secrets");
    assert_eq!((restored.plan.as_str(), restored.changed), ("demo-lab", true));
    let cfg2 = app2.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("renders").nodes[0]
        .config
        .clone();
    let tls = |c: &str| {
        files(c).into_iter().filter(|(p, _, _)| p.starts_with(TLS) || p.ends_with("config.yaml")).collect::<Vec<_>>()
    };
    assert_eq!(tls(&cfg2), tls(&cfg1), "the same CAs and tokens");
    let again = app2.import_secrets(&sealed, &key_file, false).await.expect("the same again");
    assert!(!again.changed);

    // A plan that holds another cluster's secrets is not overwritten unless asked.
    let third = tempfile::tempdir().expect("tmp");
    let app3 = app(third.path(), now()).await;
    app3.render_plan("demo-lab", "http://10.0.0.2:8080", &mut rng()).await.expect("makes its own PKI");
    let e = app3.import_secrets(&sealed, &key_file, false).await.expect_err("refused");
    assert_eq!(error_code(&e), ErrorCode::SecretsClash);
    assert!(format!("{e:#}").contains("--replace"), "{e:#}");
    assert!(app3.import_secrets(&sealed, &key_file, true).await.expect("replaced").changed);

    let wrong = dir.path().join("other.txt");
    std::fs::write(&wrong, format!("{}\n", age::x25519::Identity::generate().to_string().expose_secret())).expect("w");
    assert!(app2.import_secrets(&sealed, &wrong, false).await.is_err());
}
