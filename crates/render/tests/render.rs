//! Rendering the fixture plans: golden files, Ignition validity (Debian's `ignition-validate`),
//! and the decoded contents of what the configs write.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use flatlab_model::{ValidatedPlan, parse_plan, validate};
use flatlab_render::{
    Bundle, CA_FILES, ClusterSecrets, Inputs, K3sSource, PLACEHOLDER_BASE_URL, inline_contents, render,
};
use serde_json::Value;

const FIXTURES: &[&str] = &["single", "ha", "dhcp", "arm64"];
const K3S_TOKEN: &str = "TestClusterToken0123456789abcdefghijklmnopqrstuv";
const AGENT_TOKEN: &str = "TestAgentToken0123456789abcdefghijklmnopqrstuvw";

/// The test CAs of `tests/fixtures/pki/` and the tokens that pin their server CA.
fn cluster() -> ClusterSecrets {
    use sha2::Digest;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pki");
    let ca_files: Vec<(String, String)> = CA_FILES
        .iter()
        .map(|f| ((*f).to_owned(), std::fs::read_to_string(dir.join(f)).expect("fixture CA file")))
        .collect();
    let server_ca = &ca_files.iter().find(|(p, _)| p == "server-ca.crt").expect("server CA").1;
    let hash: String = sha2::Sha256::digest(server_ca.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    ClusterSecrets {
        server_token: format!("K10{hash}::server:{K3S_TOKEN}"),
        agent_token: format!("K10{hash}::node:{AGENT_TOKEN}"),
        ca_files,
        first_server_joins: false,
        restore: None,
    }
}
const BASE: &str = "http://10.0.0.2:8080";

fn plan(fixture: &str) -> ValidatedPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{fixture}.yaml"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    let parsed = parse_plan(&text).expect("fixture parses");
    assert!(parsed.unknown_fields.is_empty());
    validate(&parsed.plan).into_validated().unwrap_or_else(|r| panic!("{fixture} is invalid: {:#?}", r.findings))
}

fn tokens(plan: &ValidatedPlan) -> BTreeMap<String, String> {
    plan.nodes().iter().map(|n| (n.name.clone(), format!("boot{}token0123456789", n.name.replace('-', "")))).collect()
}

fn render_fixture(fixture: &str, base: &str) -> (ValidatedPlan, Bundle) {
    let plan = plan(fixture);
    let p = plan.plan();
    let k3s = K3sSource::upstream(&p.kubernetes.k3s_version, p.os.arch, p.kubernetes.k3s_sha256.clone());
    let node_tokens = tokens(&plan);
    let cluster = cluster();
    let bundle = render(&plan, &Inputs { base_url: base, cluster: &cluster, node_tokens: &node_tokens, k3s: &k3s })
        .expect("renders");
    (plan, bundle)
}

/// The files an Ignition config writes, decoded, and its units: what a reviewer reads.
fn decoded(ign: &str) -> String {
    let v: Value = serde_json::from_str(ign).expect("json");
    let mut out = format!("ignition {}\n", v["ignition"]["version"].as_str().unwrap_or("?"));
    for user in v["passwd"]["users"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "user {} with {} ssh key(s)\n",
            user["name"],
            user["sshAuthorizedKeys"].as_array().map_or(0, Vec::len)
        ));
    }
    for d in v["storage"]["directories"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "dir {} mode {:o}\n",
            d["path"].as_str().unwrap_or("?"),
            d["mode"].as_i64().unwrap_or(0)
        ));
    }
    for f in v["storage"]["files"].as_array().into_iter().flatten() {
        let source = f["contents"]["source"].as_str().unwrap_or("");
        out.push_str(&format!(
            "\n--- file {} mode {:o}",
            f["path"].as_str().unwrap_or("?"),
            f["mode"].as_i64().unwrap_or(0)
        ));
        let compression = f["contents"]["compression"].as_str();
        match inline_contents(source, compression) {
            // Vendored manifests are long and the same in every config: named by their size.
            Some(text) if text.len() > 8 << 10 => {
                out.push_str(&format!(" ({} bytes, {})\n", text.len(), compression.unwrap_or("inline")))
            }
            Some(text) => out.push_str(&format!("\n{text}")),
            None => out.push_str(&format!(" from {source} verified by {}\n", f["contents"]["verification"]["hash"])),
        }
    }
    for u in v["systemd"]["units"].as_array().into_iter().flatten() {
        if u["mask"] == true {
            out.push_str(&format!("\n--- unit {} masked\n", u["name"].as_str().unwrap_or("?")));
            continue;
        }
        out.push_str(&format!(
            "\n--- unit {} enabled={}\n{}",
            u["name"].as_str().unwrap_or("?"),
            u["enabled"],
            u["contents"].as_str().unwrap_or("")
        ));
    }
    out
}

#[test]
fn golden_files() {
    for fixture in FIXTURES {
        let (_, bundle) = render_fixture(fixture, BASE);
        for (path, file) in bundle.files() {
            let name = format!("{fixture}__{}", path.replace('/', "__"));
            insta::assert_snapshot!(name.clone(), file.contents);
            if path.ends_with(".ign") {
                insta::assert_snapshot!(format!("{name}.decoded"), decoded(file.contents));
            }
        }
    }
}

#[test]
fn every_ignition_config_passes_ignition_validate() {
    let validator = which_ignition_validate();
    let dir = tempfile_dir();
    let mut checked = 0;
    for fixture in FIXTURES {
        for base in [BASE, PLACEHOLDER_BASE_URL] {
            let (_, bundle) = render_fixture(fixture, base);
            for (path, file) in bundle.files() {
                if !path.ends_with(".ign") {
                    continue;
                }
                let on_disk = dir.join(format!("{fixture}-{}", path.replace('/', "-")));
                std::fs::write(&on_disk, file.contents).expect("write");
                // Debian's ignition-validate (2.14) knows spec 3.3.0 at the most; a 3.4.0 config
                // is checked as the 3.3.0 document it is apart from the version string.
                let text = file.contents.replace("\"version\": \"3.4.0\"", "\"version\": \"3.3.0\"");
                std::fs::write(&on_disk, text).expect("write");
                let out = Command::new(&validator).arg(&on_disk).output().expect("ignition-validate runs");
                assert!(
                    out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
                    "{fixture} {path}: ignition-validate says:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                // The crate's own parser agrees, at the declared version.
                let (_, warnings) = ignition_config::Config::parse_str(file.contents).expect("parses");
                assert!(warnings.is_empty(), "{fixture} {path}: {warnings:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 2 * (1 + 5 + 2 + 2), "every node's two configs, with and without a boot server");
}

fn which_ignition_validate() -> String {
    for candidate in ["ignition-validate", "/usr/bin/ignition-validate"] {
        if Command::new(candidate).arg("--version").output().is_ok() {
            return candidate.to_owned();
        }
    }
    panic!("ignition-validate is not installed: `apt-get install ignition` (scripts/setup-debian.sh does)");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flatlab-render-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn files_of(ign: &str) -> BTreeMap<String, (i64, String)> {
    let v: Value = serde_json::from_str(ign).expect("json");
    v["storage"]["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let text = inline_contents(f["contents"]["source"].as_str()?, f["contents"]["compression"].as_str())?;
            Some((f["path"].as_str()?.to_owned(), (f["mode"].as_i64()?, text)))
        })
        .collect()
}

fn units_of(ign: &str) -> BTreeMap<String, String> {
    let v: Value = serde_json::from_str(ign).expect("json");
    v["systemd"]["units"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| (u["name"].as_str().unwrap_or("").to_owned(), u["contents"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn the_cluster_has_exactly_one_initialising_server_and_one_token() {
    let (plan, bundle) = render_fixture("ha", BASE);
    let mut initialising = Vec::new();
    for node in &bundle.nodes {
        let files = files_of(&node.config);
        let (mode, k3s) = files.get("/etc/rancher/k3s/config.yaml").expect("k3s config");
        assert_eq!(*mode, 0o600, "the K3s config holds the token");
        let role = plan.nodes().iter().find(|n| n.name == node.name).expect("node").role;
        let server = role == flatlab_model::Role::Server;
        let c = cluster();
        if server {
            assert!(k3s.contains(&format!("token: {}\n", c.server_token)), "{k3s}");
            assert!(k3s.contains(&format!("agent-token: {}\n", c.agent_token)), "{k3s}");
        } else {
            assert!(k3s.contains(&format!("token: {}\n", c.agent_token)), "{k3s}");
            assert!(!k3s.contains(K3S_TOKEN), "an agent never holds the servers' token: {k3s}");
        }
        // No config names a server to join: the join step finds a live one.
        assert!(!k3s.contains("\nserver:"), "{}: {k3s}", node.name);
        let join = files.get("/opt/flatlab/k3s-join.sh");
        if k3s.contains("cluster-init: true") {
            initialising.push(node.name.clone());
            assert!(join.is_none(), "the server that starts the cluster joins nothing");
        } else {
            let (mode, script) = join.expect("a node that joins has its join step");
            assert_eq!(*mode, 0o755);
            // The virtual IP first, then every other server: none is special.
            let others: Vec<String> = ["cp1", "cp2", "cp3"]
                .iter()
                .zip(["10.0.0.11", "10.0.0.12", "10.0.0.13"])
                .filter(|(n, _)| **n != node.name)
                .map(|(_, a)| format!("'https://{a}:6443'"))
                .collect();
            let want = format!("candidates=('https://10.0.0.10:6443' {})", others.join(" "));
            assert!(script.contains(&want), "{}: {script}", node.name);
        }
        if server {
            assert!(k3s.contains("tls-san:\n- 10.0.0.10"), "{k3s}");
            assert!(k3s.contains("disable:\n- traefik\n- servicelb"), "{k3s}");
        } else {
            assert!(!k3s.contains("tls-san") && !k3s.contains("disable"), "{k3s}");
        }
        let address = plan.nodes().iter().find(|n| n.name == node.name).and_then(|n| n.address).expect("static");
        assert!(k3s.contains(&format!("node-ip: {}", address.addr())), "{k3s}");
    }
    assert_eq!(initialising, ["cp1"]);

    // Joining servers wait for the cluster and go one after another; agents wait without a
    // stagger; cp1 does not wait.
    let waits: Vec<(String, Option<u32>)> = bundle
        .nodes
        .iter()
        .map(|n| {
            let unit = units_of(&n.config).remove("k3s.service").expect("k3s unit");
            let joins = unit.contains("ExecStartPre=/opt/flatlab/k3s-join.sh");
            let stagger = joins.then(|| {
                let script = &files_of(&n.config)["/opt/flatlab/k3s-join.sh"].1;
                script.lines().find_map(|l| l.strip_prefix("sleep ")?.parse().ok()).unwrap_or(0)
            });
            (n.name.clone(), stagger)
        })
        .collect();
    assert_eq!(
        waits,
        [
            ("cp1".into(), None),
            ("cp2".into(), Some(0)),
            ("cp3".into(), Some(30)),
            ("worker1".into(), Some(0)),
            ("worker2".into(), Some(0))
        ]
    );
}

#[test]
fn final_configs_write_the_intended_files() {
    let (_, bundle) = render_fixture("ha", BASE);
    let cp2 = bundle.nodes.iter().find(|n| n.name == "cp2").expect("cp2");
    let files = files_of(&cp2.config);
    assert_eq!(files["/etc/hostname"], (0o644, "cp2\n".to_owned()));
    let network = &files["/etc/systemd/network/00-flatlab.network"].1;
    assert!(network.contains("MACAddress=52:54:00:00:00:02\n"));
    assert!(network.contains("Address=10.0.0.12/24\nGateway=10.0.0.1\nDNS=10.0.0.1\n"));
    // Wake-on-LAN armed on the same NIC, with the default naming policies kept.
    let (mode, link) = &files["/etc/systemd/network/50-flatlab-wol.link"];
    assert_eq!(*mode, 0o644);
    assert!(link.contains("[Match]\nMACAddress=52:54:00:00:00:02\n"), "{link}");
    assert!(link.contains("\nWakeOnLan=magic\n"), "{link}");
    assert!(link.contains("\nNamePolicy=keep kernel database onboard slot path\n"), "{link}");
    assert!(link.contains("\nMACAddressPolicy=persistent\n"), "{link}");
    assert!(files["/etc/flatcar/update.conf"].1.contains("GROUP=stable\nREBOOT_STRATEGY=off\n"));
    assert!(
        files["/etc/systemd/timesyncd.conf.d/00-flatlab.conf"].1.contains("[Time]\nNTP=ntp.lab.example 10.0.0.1\n")
    );
    let v: Value = serde_json::from_str(&cp2.config).expect("json");
    let locksmith = v["systemd"]["units"].as_array().into_iter().flatten().find(|u| u["name"] == "locksmithd.service");
    assert_eq!(locksmith.map(|u| &u["mask"]), Some(&Value::Bool(true)), "kured reboots, not locksmithd");
    assert!(files["/etc/systemd/dnssd/flatlab.dnssd"].1.contains("Type=_flatlab._tcp\n"));
    assert!(files["/etc/systemd/dnssd/flatlab.dnssd"].1.contains("TxtText=plan=edge-lab node=cp2 role=server\n"));
    assert_eq!(files["/etc/systemd/resolved.conf.d/00-flatlab-mdns.conf"].1, "[Resolve]\nMulticastDNS=yes\n");

    // K3s pinned by hash: Ignition fetches it, no download unit.
    let v: Value = serde_json::from_str(&cp2.config).expect("json");
    let k3s =
        v["storage"]["files"].as_array().expect("files").iter().find(|f| f["path"] == "/opt/bin/k3s").expect("k3s");
    assert_eq!(k3s["contents"]["source"], "https://github.com/k3s-io/k3s/releases/download/v1.32.2%2Bk3s1/k3s");
    assert_eq!(k3s["contents"]["verification"]["hash"], format!("sha256-{}", "0123456789abcdef".repeat(4)));
    assert_eq!(k3s["mode"], 493);
    let units = units_of(&cp2.config);
    assert!(!units.contains_key("flatlab-get-k3s.service"));
    assert!(
        units["flatlab-report-booted.service"]
            .contains("\"http://10.0.0.2:8080/v1/report/bootcp2token0123456789?stage=booted\"")
    );
    assert!(units["flatlab-report-k3s-ready.service"].contains("?stage=k3s-ready"));
}

#[test]
fn unpinned_k3s_is_checked_against_the_release_checksums() {
    let (_, bundle) = render_fixture("arm64", BASE);
    let arm1 = &bundle.nodes[0];
    let files = files_of(&arm1.config);
    let script = &files["/opt/flatlab/get-k3s.sh"].1;
    assert!(
        script.contains("url='https://github.com/k3s-io/k3s/releases/download/v1.31.6%2Bk3s1/k3s-arm64'"),
        "{script}"
    );
    assert!(
        script.contains("sums='https://github.com/k3s-io/k3s/releases/download/v1.31.6%2Bk3s1/sha256sum-arm64.txt'")
    );
    assert!(script.contains("sha256sum -c"));
    let units = units_of(&arm1.config);
    assert!(
        units["k3s.service"]
            .contains("After=network-online.target flatlab-get-k3s.service\nRequires=flatlab-get-k3s.service")
    );
}

#[test]
fn dhcp_nodes_use_dhcp_and_find_the_first_server_by_mdns() {
    let (_, bundle) = render_fixture("dhcp", BASE);
    for node in &bundle.nodes {
        let files = files_of(&node.config);
        let network = &files["/etc/systemd/network/00-flatlab.network"].1;
        assert!(network.contains("DHCP=yes\n") && !network.contains("\nAddress="), "{network}");
        assert!(!files["/etc/rancher/k3s/config.yaml"].1.contains("node-ip"));
    }
    let worker = files_of(&bundle.nodes[1].config);
    assert!(worker["/opt/flatlab/k3s-join.sh"].1.contains("candidates=('https://cp1.local:6443')"));
}

#[test]
fn install_configs_fetch_the_final_config_install_and_report() {
    let (_, bundle) = render_fixture("ha", BASE);
    let worker2 = bundle.nodes.iter().find(|n| n.name == "worker2").expect("worker2");
    let files = files_of(&worker2.install);
    let script = &files["/opt/flatlab/install.sh"].1;
    assert_eq!(files["/opt/flatlab/install.sh"].0, 0o755);
    assert!(script.contains("final_url='http://10.0.0.2:8080/v1/ignition/bootworker2token0123456789/final'"));
    assert!(script.contains("mirror='http://10.0.0.2:8080/mirror/stable/amd64-usr'"));
    assert!(script.contains("disk='/dev/disk/by-id/ata-Samsung_SSD_870'"));
    assert!(script.contains("flatcar-install -d \"$disk\" -V '4593.2.5' -b \"$mirror\" -i \"$final\""));
    for stage in ["report installing", "report installed", "report failed"] {
        assert!(script.contains(stage), "{stage}");
    }
    assert!(!worker2.install.contains(K3S_TOKEN), "the install config carries no cluster secret");
    assert!(units_of(&worker2.install).contains_key("flatlab-install.service"));
}

#[test]
fn ipxe_scripts_load_kernel_and_initrd_from_the_mirror_with_the_token() {
    let (_, bundle) = render_fixture("arm64", BASE);
    let ipxe = &bundle.nodes[1].ipxe;
    assert!(ipxe.starts_with("#!ipxe\n"));
    assert!(ipxe.contains("set mirror http://10.0.0.2:8080/mirror/lts/arm64-usr/4081.3.6\n"));
    assert!(ipxe.contains(
        "kernel ${mirror}/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz flatcar.first_boot=1 \
         ignition.config.url=http://10.0.0.2:8080/v1/ignition/bootarm2token0123456789 console=ttyS0,115200n8 console=tty0"
    ));
    assert!(
        ipxe.contains(
            "initrd --name flatcar_production_pxe_image.cpio.gz ${mirror}/flatcar_production_pxe_image.cpio.gz"
        )
    );
    assert!(ipxe.contains("goto retry"));
}

#[test]
fn rendering_is_deterministic() {
    for fixture in FIXTURES {
        assert_eq!(render_fixture(fixture, BASE).1, render_fixture(fixture, BASE).1);
    }
}

#[test]
fn without_a_boot_server_nothing_reports_progress() {
    let (_, bundle) = render_fixture("single", PLACEHOLDER_BASE_URL);
    let units = units_of(&bundle.nodes[0].config);
    assert!(!units.keys().any(|u| u.starts_with("flatlab-report")), "{units:?}");
    assert!(bundle.readme.contains("placeholder"));
}

#[test]
fn the_plan_file_in_the_bundle_has_no_secrets() {
    for fixture in FIXTURES {
        let (_, bundle) = render_fixture(fixture, BASE);
        assert!(!bundle.plan_yaml.contains(K3S_TOKEN));
        assert!(!bundle.readme.contains(K3S_TOKEN));
        for n in &bundle.nodes {
            assert!(!n.ipxe.contains(K3S_TOKEN) && !n.install.contains(K3S_TOKEN));
        }
        let secret: Vec<String> = bundle.files().into_iter().filter(|(_, f)| f.secret).map(|(p, _)| p).collect();
        assert!(secret.iter().all(|p| p.ends_with("config.ign")));
    }
}

#[test]
fn bad_inputs_are_refused() {
    let plan = plan("single");
    let k3s = K3sSource::upstream("v1.32.2+k3s1", flatlab_model::Arch::Amd64, None);
    let tokens = tokens(&plan);
    let cluster = cluster();
    let ok = Inputs { base_url: BASE, cluster: &cluster, node_tokens: &tokens, k3s: &k3s };
    assert!(render(&plan, &ok).is_ok());
    for base in ["10.0.0.2:8080", "http://x/", "http://x'; rm -rf /", "http://x/%2F", ""] {
        assert!(render(&plan, &Inputs { base_url: base, ..ok.clone() }).is_err(), "{base}");
    }
    let bad_tokens = [
        ClusterSecrets { server_token: "short".into(), ..cluster.clone() },
        ClusterSecrets { agent_token: "has spaces in it 0123".into(), ..cluster.clone() },
        ClusterSecrets { server_token: cluster.server_token.replace("::server:", "::node:"), ..cluster.clone() },
        ClusterSecrets { agent_token: format!("K10abc::node:{AGENT_TOKEN}"), ..cluster.clone() },
    ];
    for bad in &bad_tokens {
        assert!(render(&plan, &Inputs { cluster: bad, ..ok.clone() }).is_err(), "{bad:?}");
    }
    let plain = ClusterSecrets {
        server_token: K3S_TOKEN.into(),
        agent_token: K3S_TOKEN.into(),
        ca_files: vec![],
        first_server_joins: false,
        restore: None,
    };
    assert!(
        render(&plan, &Inputs { cluster: &plain, ..ok.clone() }).is_ok(),
        "plain tokens for a cluster whose CA K3s made"
    );
    let mut partial = cluster.clone();
    partial.ca_files.retain(|(p, _)| p != "etcd/peer-ca.key");
    let e = render(&plan, &Inputs { cluster: &partial, ..ok.clone() }).expect_err("a mixed PKI");
    assert!(e.to_string().contains("incomplete"), "{e}");
    let empty = BTreeMap::new();
    assert!(render(&plan, &Inputs { node_tokens: &empty, ..ok.clone() }).is_err());
    let bad_sha = K3sSource { sha256: Some("nothex".into()), ..k3s.clone() };
    assert!(render(&plan, &Inputs { k3s: &bad_sha, ..ok.clone() }).is_err());

    let mut current = plan.plan().clone();
    current.os.version = "current".into();
    let current = validate(&current).into_validated().expect("valid with a warning");
    let e = render(&current, &ok).expect_err("unpinned");
    assert!(e.to_string().contains("pinned release"), "{e}");
}

/// Only the first server carries the cluster's certificate authorities, all eleven files, keys
/// owner-only; no other node's config holds a private key.
#[test]
fn only_the_first_server_carries_the_certificate_authorities() {
    let (_, bundle) = render_fixture("ha", BASE);
    for node in &bundle.nodes {
        let files = files_of(&node.config);
        let tls: Vec<(&String, &(i64, String))> =
            files.iter().filter(|(p, _)| p.starts_with("/var/lib/rancher/k3s/server/tls/")).collect();
        if node.name == "cp1" {
            let names: Vec<&str> =
                tls.iter().map(|(p, _)| p.trim_start_matches("/var/lib/rancher/k3s/server/tls/")).collect();
            let mut wanted = CA_FILES.to_vec();
            wanted.sort_unstable();
            assert_eq!(names, wanted);
            for (path, (mode, text)) in &tls {
                let want = if path.ends_with(".key") { 0o600 } else { 0o644 };
                assert_eq!(*mode, want, "{path}");
                assert!(text.starts_with("-----BEGIN "), "{path}");
            }
        } else {
            assert!(tls.is_empty(), "{} carries CA files", node.name);
            assert!(!node.config.contains("PRIVATE KEY"), "{} carries a private key", node.name);
            let decoded = decoded(&node.config);
            assert!(!decoded.contains("PRIVATE KEY"), "{} carries a private key", node.name);
        }
        assert!(!node.install.contains("PRIVATE KEY") && !node.ipxe.contains("PRIVATE KEY"));
    }
}

/// A reinstalled first server joins the cluster that runs on; it starts nothing and writes no CA.
#[test]
fn a_first_server_reinstalled_into_a_running_cluster_joins_it() {
    let plan = plan("ha");
    let p = plan.plan();
    let k3s = K3sSource::upstream(&p.kubernetes.k3s_version, p.os.arch, p.kubernetes.k3s_sha256.clone());
    let node_tokens = tokens(&plan);
    let mut cluster = cluster();
    cluster.first_server_joins = true;
    let bundle = render(&plan, &Inputs { base_url: BASE, cluster: &cluster, node_tokens: &node_tokens, k3s: &k3s })
        .expect("renders");
    let cp1 = &bundle.nodes[0];
    let files = files_of(&cp1.config);
    let k3s_config = &files["/etc/rancher/k3s/config.yaml"].1;
    assert!(!k3s_config.contains("cluster-init"), "{k3s_config}");
    assert!(!cp1.config.contains("PRIVATE KEY") && !decoded(&cp1.config).contains("PRIVATE KEY"));
    assert!(units_of(&cp1.config)["k3s.service"].contains("ExecStartPre=/opt/flatlab/k3s-join.sh"));
    let script = &files["/opt/flatlab/k3s-join.sh"].1;
    assert!(
        script.contains("candidates=('https://10.0.0.10:6443' 'https://10.0.0.12:6443' 'https://10.0.0.13:6443')"),
        "{script}"
    );
}

/// The join step, run by bash against local files: it takes the first candidate whose CA has
/// the token's hash, skips one of another cluster, waits while none answers, and once the node
/// has joined it never holds K3s back.
#[test]
fn the_join_step_joins_through_the_first_server_with_the_pinned_ca() {
    let plan = plan("ha");
    let p = plan.plan();
    let k3s = K3sSource::upstream(&p.kubernetes.k3s_version, p.os.arch, p.kubernetes.k3s_sha256.clone());
    let node_tokens = tokens(&plan);
    let bundle = render(&plan, &Inputs { base_url: BASE, cluster: &cluster(), node_tokens: &node_tokens, k3s: &k3s })
        .expect("renders");
    let cp2 = &bundle.nodes[1];
    let files = files_of(&cp2.config);
    let script = files["/opt/flatlab/k3s-join.sh"].1.clone();
    let config = files["/etc/rancher/k3s/config.yaml"].1.clone();

    let dir = tempfile_dir().join("join-step");
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.as_path();
    // The script's fixed paths, moved under the test's folder; curl is a stand-in that serves
    // each URL's /cacerts from a file (missing: connection refused).
    let local = script
        .replace("/etc/rancher/k3s", &format!("{}/etc", root.display()))
        .replace("/var/lib/rancher/k3s", &format!("{}/var", root.display()));
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::create_dir_all(root.join("bin")).expect("bin");
    std::fs::write(root.join("etc/config.yaml"), &config).expect("config");
    std::fs::write(root.join("join.sh"), &local).expect("script");
    let curl = format!(
        "#!/bin/bash\nout=\"\"; url=\"\"\nwhile (($#)); do case $1 in -o) out=$2; shift 2;; --max-time) shift 2;; -*) shift;; *) url=$1; shift;; esac; done\nf={}/served/$(printf %s \"$url\" | tr -c 'a-z0-9' _)\n[[ -f $f ]] || exit 7\ncp \"$f\" \"$out\"\n",
        root.display()
    );
    std::fs::write(root.join("bin/curl"), curl).expect("curl");
    std::fs::write(root.join("bin/sleep"), "#!/bin/sh\nexit 0\n").expect("sleep");
    for f in ["bin/curl", "bin/sleep"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::create_dir_all(root.join("served")).expect("served");
    let serve = |url: &str, body: &str| {
        let name: String = format!("{url}/cacerts")
            .chars()
            .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '_' })
            .collect();
        std::fs::write(root.join("served").join(name), body).expect("serve");
    };
    let server_ca =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pki/server-ca.crt"))
            .expect("ca");
    // The virtual IP is not up yet; cp1 is down; cp3 answers, as does a stranger before it.
    serve("https://10.0.0.13:6443", &server_ca);
    let run = || {
        std::process::Command::new("bash")
            .arg(root.join("join.sh"))
            .env("PATH", format!("{}:/usr/bin:/bin", root.join("bin").display()))
            .output()
            .expect("bash runs")
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("joining the cluster through https://10.0.0.13:6443"), "{stdout}");
    let dropin = std::fs::read_to_string(root.join("etc/config.yaml.d/50-flatlab-join.yaml")).expect("drop-in");
    assert!(dropin.ends_with("server: https://10.0.0.13:6443\n"), "{dropin}");

    // Another cluster's CA at the virtual IP is passed over for cp3.
    serve("https://10.0.0.10:6443", "-----BEGIN CERTIFICATE-----\nanother cluster\n-----END CERTIFICATE-----\n");
    std::fs::remove_file(root.join("etc/config.yaml.d/50-flatlab-join.yaml")).expect("rm");
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("https://10.0.0.10:6443 answers with another cluster's CA"), "{stderr}");
    let dropin = std::fs::read_to_string(root.join("etc/config.yaml.d/50-flatlab-join.yaml")).expect("drop-in");
    assert!(dropin.ends_with("server: https://10.0.0.13:6443\n"), "{dropin}");

    // Joined once (its etcd member exists) and no server answers: K3s starts at once.
    std::fs::create_dir_all(root.join("var/server/db/etcd")).expect("etcd");
    for e in std::fs::read_dir(root.join("served")).expect("served") {
        std::fs::remove_file(e.expect("entry").path()).expect("rm");
    }
    let out = run();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server answers now"));
    let dropin = std::fs::read_to_string(root.join("etc/config.yaml.d/50-flatlab-join.yaml")).expect("drop-in");
    assert!(dropin.ends_with("server: https://10.0.0.13:6443\n"), "it keeps what it knew: {dropin}");
}

/// Every server deploys system-upgrade-controller and kured; kube-vip only where the API endpoint
/// is an address no node has; agents deploy nothing.
#[test]
fn servers_deploy_the_upgrade_controllers_and_kube_vip_for_a_virtual_ip() {
    let manifests = |config: &str| -> Vec<String> {
        files_of(config)
            .keys()
            .filter_map(|p| p.strip_prefix("/var/lib/rancher/k3s/server/manifests/").map(str::to_owned))
            .collect()
    };
    let (_, ha) = render_fixture("ha", BASE);
    for node in &ha.nodes {
        let found = manifests(&node.config);
        if node.name.starts_with("cp") {
            assert_eq!(
                found,
                ["flatlab-kube-vip.yaml", "flatlab-kured.yaml", "flatlab-system-upgrade-controller.yaml"]
            );
            let vip = &files_of(&node.config)["/var/lib/rancher/k3s/server/manifests/flatlab-kube-vip.yaml"].1;
            assert!(vip.contains("- name: address\n          value: 10.0.0.10\n"), "{vip}");
            let kured = &files_of(&node.config)["/var/lib/rancher/k3s/server/manifests/flatlab-kured.yaml"].1;
            assert!(
                kured.contains("        - --concurrency=1\n        - --period=10m\n        - --annotate-nodes=true\n        - --reboot-days=sa,su\n        - --start-time=02:00\n        - --end-time=05:00\n        - --time-zone=Europe/Berlin\n"),
                "{kured}"
            );
        } else {
            assert!(found.is_empty(), "{}: {found:?}", node.name);
        }
    }
    let (_, single) = render_fixture("single", BASE);
    let found = manifests(&single.nodes[0].config);
    assert_eq!(found, ["flatlab-kured.yaml", "flatlab-system-upgrade-controller.yaml"], "no virtual IP, no kube-vip");
    let kured = &files_of(&single.nodes[0].config)["/var/lib/rancher/k3s/server/manifests/flatlab-kured.yaml"].1;
    assert!(
        kured.contains("        - --reboot-sentinel=/sentinel/reboot-required\n        - --concurrency=1\n"),
        "{kured}"
    );
}

/// A mirrored air-gap image tarball goes to every node, where K3s imports it at start, pinned by
/// its SHA-256; the config still passes ignition-validate.
#[test]
fn mirrored_airgap_images_are_placed_on_every_node() {
    let plan = plan("ha");
    let tokens = tokens(&plan);
    let cluster = cluster();
    let sha = "ab".repeat(32);
    let k3s = K3sSource::mirror(BASE, "v1.32.2+k3s1", flatlab_model::Arch::Amd64, Some("cd".repeat(32)))
        .with_mirrored_airgap(BASE, "v1.32.2+k3s1", flatlab_model::Arch::Amd64, sha.clone());
    let bundle =
        render(&plan, &Inputs { base_url: BASE, cluster: &cluster, node_tokens: &tokens, k3s: &k3s }).expect("renders");
    let validator = which_ignition_validate();
    let dir = tempfile_dir();
    for node in &bundle.nodes {
        let v: Value = serde_json::from_str(&node.config).expect("json");
        let file = v["storage"]["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"] == "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst")
            .unwrap_or_else(|| panic!("{}: no air-gap images", node.name));
        assert_eq!(
            file["contents"]["source"],
            "http://10.0.0.2:8080/mirror/k3s/v1.32.2%2Bk3s1/k3s-airgap-images-amd64.tar.zst",
            "{}",
            node.name
        );
        assert_eq!(file["contents"]["verification"]["hash"], format!("sha256-{sha}"));
        assert_eq!(file["mode"], 0o644);
        let path = dir.join(format!("airgap-{}.ign", node.name));
        std::fs::write(&path, &node.config).expect("write");
        let out = Command::new(&validator).arg(&path).output().expect("ignition-validate runs");
        assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    // Without one in the mirror, nothing is placed.
    let (_, plain) = render_fixture("ha", BASE);
    assert!(!plain.nodes[0].config.contains("agent/images"));
}
