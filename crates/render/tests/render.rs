//! Rendering the fixture plans: golden files, Ignition validity (Debian's `ignition-validate`),
//! and the decoded contents of what the configs write.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use flatlab_model::{ValidatedPlan, parse_plan, validate};
use flatlab_render::{Bundle, Inputs, K3sSource, PLACEHOLDER_BASE_URL, data_url_decode, render};
use serde_json::Value;

const FIXTURES: &[&str] = &["single", "ha", "dhcp", "arm64"];
const K3S_TOKEN: &str = "TestClusterToken0123456789abcdefghijklmnopqrstuv";
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
    let bundle = render(&plan, &Inputs { base_url: base, k3s_token: K3S_TOKEN, node_tokens: &node_tokens, k3s: &k3s })
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
        match data_url_decode(source) {
            Some(text) => out.push_str(&format!("\n{text}")),
            None => out.push_str(&format!(" from {source} verified by {}\n", f["contents"]["verification"]["hash"])),
        }
    }
    for u in v["systemd"]["units"].as_array().into_iter().flatten() {
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
            let text = data_url_decode(f["contents"]["source"].as_str()?)?;
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
        assert!(k3s.contains(&format!("token: {K3S_TOKEN}")), "{k3s}");
        if k3s.contains("cluster-init: true") {
            initialising.push(node.name.clone());
            assert!(!k3s.contains("server:"), "{k3s}");
        } else {
            assert!(k3s.contains("server: https://10.0.0.10:6443"), "{}: {k3s}", node.name);
        }
        let role = plan.nodes().iter().find(|n| n.name == node.name).expect("node").role;
        if role == flatlab_model::Role::Server {
            assert!(k3s.contains("tls-san:\n- 10.0.0.10"), "{k3s}");
            assert!(k3s.contains("disable:\n- traefik\n- servicelb"), "{k3s}");
        } else {
            assert!(!k3s.contains("tls-san") && !k3s.contains("disable"), "{k3s}");
        }
        let address = plan.nodes().iter().find(|n| n.name == node.name).and_then(|n| n.address).expect("static");
        assert!(k3s.contains(&format!("node-ip: {}", address.addr())), "{k3s}");
    }
    assert_eq!(initialising, ["cp1"]);

    // Joining servers wait for the cluster and go one after another; agents and cp1 do not wait.
    let waits: Vec<(String, Option<u32>)> = bundle
        .nodes
        .iter()
        .map(|n| {
            let unit = units_of(&n.config).remove("k3s.service").expect("k3s unit");
            let stagger = unit.lines().find(|l| l.contains("/cacerts")).map(|l| {
                l.rsplit_once("; sleep ").and_then(|(_, s)| s.trim_end_matches('\'').parse().ok()).unwrap_or(0)
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
            ("worker1".into(), None),
            ("worker2".into(), None)
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
    assert!(files["/etc/flatcar/update.conf"].1.contains("GROUP=stable\nREBOOT_STRATEGY=off\n"));
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
    assert!(worker["/etc/rancher/k3s/config.yaml"].1.contains("server: https://cp1.local:6443"));
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
    let ok = Inputs { base_url: BASE, k3s_token: K3S_TOKEN, node_tokens: &tokens, k3s: &k3s };
    assert!(render(&plan, &ok).is_ok());
    for base in ["10.0.0.2:8080", "http://x/", "http://x'; rm -rf /", "http://x/%2F", ""] {
        assert!(render(&plan, &Inputs { base_url: base, ..ok.clone() }).is_err(), "{base}");
    }
    assert!(render(&plan, &Inputs { k3s_token: "short", ..ok.clone() }).is_err());
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
