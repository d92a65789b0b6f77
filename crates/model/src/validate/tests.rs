use super::*;
use crate::parse::parse_plan;
use crate::plan::{Node, Position, Switch};

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j me@laptop";
const RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDfBb4KFSDo3PgPp0Yk6EkMhf7AN5V8dXQK2XkKX4O6O2W1Y5CEW8bhzbZ2tXNX9d6Qd5U8sKY0pF2dWjvE8d6yQ8Y3sQ0vKXKJkX8K0OaYgV7pz3kS0s6vS1NLQ+6JBx2ubbJvXJ6l8N0L2fP5n5HqQm0x0cZ6y7vJqSjBw3g0o3bZ8V3jv4j2k0X5l1Y9mGQmZ0N5s7K9hJb8h0W7Q2N2cH8d4tq0W3cS9k8Zl0cWQ6y9fJ1f8nS4aK4X7g2Z1l5o7T0i3V3c8bF9mQ9w0Y3b5z1Q8R4v7k2L9c0X1m5a6s7d8f9g0h1j2k3l4z5x6c7v8b9n0m1Q2w3e4r5t6y7u8i9o0p1a2s3d4f5g6h7j8k9l0 other";

fn base() -> Plan {
    let mut plan = parse_plan(include_str!("../../../../assets/demo-plan.yaml")).expect("demo parses").plan;
    plan.ssh_authorized_keys = vec![KEY.to_string()];
    plan
}

fn findings(plan: &Plan) -> Vec<Finding> {
    validate(plan).findings
}

/// Asserts exactly one finding at `path` with `severity` whose message contains `needle`.
#[track_caller]
fn assert_finding(plan: &Plan, severity: Severity, path: &str, needle: &str) {
    let all = findings(plan);
    let hits: Vec<&Finding> = all.iter().filter(|f| f.path == path && f.severity == severity).collect();
    assert_eq!(hits.len(), 1, "expected one {severity:?} at {path}, got {all:#?}");
    assert!(hits[0].message.contains(needle), "message {:?} lacks {needle:?}", hits[0].message);
}

#[track_caller]
fn assert_clean(plan: &Plan) {
    let all = findings(plan);
    assert!(all.is_empty(), "expected no findings, got {all:#?}");
}

fn node(name: &str, mac: &str, role: Role, address: Option<&str>) -> Node {
    Node {
        name: name.into(),
        mac: mac.into(),
        role: Some(role),
        install_disk: "/dev/sda".into(),
        address: address.map(Into::into),
        switch: None,
        position: None,
    }
}

#[test]
fn the_demo_plan_with_a_key_is_clean_and_validates() {
    let plan = base();
    assert_clean(&plan);
    let v = validate(&plan).into_validated().expect("valid");
    assert_eq!(v.nodes().len(), 5);
    assert_eq!(v.first_server().name, "cp1");
    assert_eq!(v.subnet(), Some("10.0.0.0/24".parse().expect("net")));
    assert_eq!(v.nodes()[4].address, None, "worker2 uses DHCP");
}

#[test]
fn the_shipped_demo_plan_only_asks_for_an_ssh_key() {
    let plan = parse_plan(include_str!("../../../../assets/demo-plan.yaml")).expect("demo parses").plan;
    let all = findings(&plan);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].path, "ssh_authorized_keys");
    assert_eq!(all[0].severity, Severity::Warning);
}

#[test]
fn a_plan_with_errors_does_not_validate() {
    let mut plan = base();
    plan.nodes[0].mac = "nope".into();
    let report = validate(&plan);
    assert!(report.has_errors());
    assert!(report.into_validated().is_err());
}

#[test]
fn format_version_is_required_and_must_be_1() {
    let mut plan = base();
    plan.version = 0;
    assert_finding(&plan, Severity::Error, "version", "add `version: 1`");
    plan.version = 7;
    assert_finding(&plan, Severity::Error, "version", "not supported");
}

#[test]
fn plan_name_is_an_rfc1123_label() {
    let mut plan = base();
    for (bad, needle) in [
        ("", "missing"),
        ("Edge-Lab", "write `edge-lab`"),
        ("edge_lab", "a-z, 0-9"),
        ("-lab", "start and end"),
        ("lab-", "start and end"),
        ("lab.example", "a-z, 0-9"),
    ] {
        plan.name = bad.into();
        assert_finding(&plan, Severity::Error, "name", needle);
    }
    plan.name = "a".repeat(64);
    assert_finding(&plan, Severity::Error, "name", "longer than 63");
    plan.name = "a".repeat(63);
    assert_clean(&plan);
}

#[test]
fn os_version_is_a_release_or_current() {
    let mut plan = base();
    plan.os.version = "".into();
    assert_finding(&plan, Severity::Error, "os.version", "missing");
    for bad in ["4593.2", "4593.2.5.1", "v4593.2.5", "latest", "4593.x.5"] {
        plan.os.version = bad.into();
        assert_finding(&plan, Severity::Error, "os.version", "not a Flatcar release");
    }
    plan.os.version = "current".into();
    assert_finding(&plan, Severity::Warning, "os.version", "pin a version");
    plan.os.version = "3815.2.0".into();
    assert_clean(&plan);
}

#[test]
fn k3s_version_is_well_formed() {
    let mut plan = base();
    for good in ["v1.32.2+k3s1", "v1.33.0-rc1+k3s1", "v1.30.10+k3s2"] {
        plan.kubernetes.k3s_version = good.into();
        assert_clean(&plan);
    }
    for bad in ["1.32.2+k3s1", "v1.32.2", "v1.32+k3s1", "v1.32.2+k3s", "v1.32.2+rke1", "v1.32.2-+k3s1", "latest"] {
        plan.kubernetes.k3s_version = bad.into();
        assert_finding(&plan, Severity::Error, "kubernetes.k3s_version", "not a K3s release");
    }
    plan.kubernetes.k3s_version = "".into();
    assert_finding(&plan, Severity::Error, "kubernetes.k3s_version", "missing");
}

#[test]
fn api_endpoint_is_an_ip_or_dns_name_that_can_serve_the_api() {
    let mut plan = base();
    for good in ["10.0.0.11", "k8s.lab.example", "cp1.local", "fd00::10"] {
        plan.kubernetes.api_endpoint = Some(good.into());
        assert_clean(&plan);
    }
    // A free address is a virtual IP (kube-vip holds it); a joining server's address is fine too
    // (servers join through the first server, agents through the endpoint).
    for fine in ["10.0.0.10", "10.0.0.13"] {
        plan.kubernetes.api_endpoint = Some(fine.into());
        assert_clean(&plan);
    }
    plan.kubernetes.api_endpoint = Some("192.168.7.10".into());
    assert_finding(&plan, Severity::Warning, "kubernetes.api_endpoint", "choose a free address in 10.0.0.0/24");
    plan.kubernetes.api_endpoint = None;
    assert_clean(&plan);
    plan.kubernetes.api_endpoint = Some("https://10.0.0.10:6443".into());
    assert_finding(&plan, Severity::Error, "kubernetes.api_endpoint", "without scheme or port");
    plan.kubernetes.api_endpoint = Some("10.0.0.300".into());
    assert_finding(&plan, Severity::Error, "kubernetes.api_endpoint", "not a valid IP address");
    plan.kubernetes.api_endpoint = Some("bad_name!".into());
    assert_finding(&plan, Severity::Error, "kubernetes.api_endpoint", "not an IP address or DNS name");
    plan.kubernetes.api_endpoint = Some("10.0.0.1".into());
    assert_finding(&plan, Severity::Error, "kubernetes.api_endpoint", "is the gateway");
    plan.kubernetes.api_endpoint = Some("10.0.0.255".into());
    assert_finding(&plan, Severity::Error, "kubernetes.api_endpoint", "broadcast");
    plan.kubernetes.api_endpoint = Some("10.0.0.21".into());
    assert_finding(&plan, Severity::Error, "kubernetes.api_endpoint", "agent `worker1`");
    plan.kubernetes.api_endpoint = Some(" ".into());
    assert_finding(&plan, Severity::Error, "kubernetes.api_endpoint", "empty");
}

#[test]
fn disable_names_known_components_once() {
    let mut plan = base();
    plan.kubernetes.disable = vec!["traefik".into(), "servicelb".into(), "local-storage".into()];
    assert_clean(&plan);
    plan.kubernetes.disable = vec!["treafik".into()];
    assert_finding(&plan, Severity::Error, "kubernetes.disable[0]", "choose from");
    plan.kubernetes.disable = vec!["traefik".into(), "traefik".into()];
    assert_finding(&plan, Severity::Warning, "kubernetes.disable[1]", "listed twice");
}

#[test]
fn subnet_is_an_ipv4_network_address() {
    let mut plan = base();
    plan.network.subnet = "10.0.0.5/24".into();
    assert_finding(&plan, Severity::Error, "network.subnet", "write the network address: `10.0.0.0/24`");
    plan.network.subnet = "10.0.0.0".into();
    assert_finding(&plan, Severity::Error, "network.subnet", "not an IPv4 subnet");
    plan.network.subnet = "10.0.0.0/31".into();
    assert!(findings(&plan).iter().any(|f| f.path == "network.subnet" && f.message.contains("no room")));
    plan.network.subnet = "".into();
    assert_finding(&plan, Severity::Error, "network.subnet", "missing");
}

#[test]
fn gateway_lies_in_the_subnet() {
    let mut plan = base();
    plan.network.gateway = "10.0.1.1".into();
    assert_finding(&plan, Severity::Error, "network.gateway", "outside the subnet");
    plan.network.gateway = "10.0.0.0".into();
    assert_finding(&plan, Severity::Error, "network.gateway", "network or broadcast");
    plan.network.gateway = "router".into();
    assert_finding(&plan, Severity::Error, "network.gateway", "not an IPv4 address");
    plan.network.gateway = "".into();
    assert_finding(&plan, Severity::Error, "network.gateway", "missing");
}

#[test]
fn network_may_be_omitted_when_every_node_uses_dhcp() {
    let mut plan = base();
    plan.network = Default::default();
    plan.kubernetes.api_endpoint = None;
    for n in &mut plan.nodes {
        n.address = None;
    }
    assert_clean(&plan);
}

#[test]
fn dns_servers_are_addresses_and_static_nodes_want_one() {
    let mut plan = base();
    plan.network.dns = vec!["10.0.0.1".into(), "one.one.one.one".into()];
    assert_finding(&plan, Severity::Error, "network.dns[1]", "not an IP address");
    plan.network.dns = vec![];
    assert_finding(&plan, Severity::Warning, "network.dns", "will not resolve names");
    plan.network.dns = vec!["2606:4700:4700::1111".into()];
    assert_clean(&plan);
}

#[test]
fn ssh_keys_parse_and_missing_keys_warn() {
    let mut plan = base();
    plan.ssh_authorized_keys = vec![];
    assert_finding(&plan, Severity::Warning, "ssh_authorized_keys", "add your public key");
    plan.ssh_authorized_keys = vec![KEY.into(), "ssh-ed25519 AAAAnotbase64!! me".into()];
    assert_finding(&plan, Severity::Error, "ssh_authorized_keys[1]", "not an OpenSSH public key");
    plan.ssh_authorized_keys = vec![KEY.into(), KEY.replace("me@laptop", "again")];
    assert_finding(&plan, Severity::Warning, "ssh_authorized_keys[1]", "listed twice");
}

#[test]
fn a_pasted_private_key_is_refused_without_being_echoed() {
    let mut plan = base();
    let secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
    plan.ssh_authorized_keys = vec![secret.into()];
    assert_finding(&plan, Severity::Error, "ssh_authorized_keys[0]", "private key");
    assert!(findings(&plan).iter().all(|f| !f.message.contains("b3BlbnNzaC1rZXktdjEA")));
}

#[test]
fn rsa_keys_are_checked_too() {
    let mut plan = base();
    plan.ssh_authorized_keys = vec![RSA_KEY.into()];
    // A made-up RSA blob is not a valid key: the parser must say so.
    assert_finding(&plan, Severity::Error, "ssh_authorized_keys[0]", "not an OpenSSH public key");
}

#[test]
fn at_least_one_server() {
    let mut plan = base();
    for n in &mut plan.nodes {
        n.role = Some(Role::Agent);
    }
    plan.kubernetes.api_endpoint = None;
    assert_finding(&plan, Severity::Error, "nodes", "make at least one node a server");
    plan.nodes.clear();
    assert_finding(&plan, Severity::Error, "nodes", "no nodes");
}

#[test]
fn an_even_number_of_servers_warns() {
    let mut plan = base();
    plan.nodes[3].role = Some(Role::Server);
    plan.kubernetes.api_endpoint = None;
    assert_finding(&plan, Severity::Warning, "nodes", "4 servers tolerate no more failures than 3");
    // One server is fine, two warn.
    plan.nodes.truncate(2);
    assert_finding(&plan, Severity::Warning, "nodes", "2 servers");
    plan.nodes.truncate(1);
    assert_clean(&plan);
}

#[test]
fn node_names_are_hostnames_and_unique() {
    let mut plan = base();
    plan.nodes[1].name = "CP2".into();
    assert_finding(&plan, Severity::Error, "nodes[CP2].name", "write `cp2`");
    plan.nodes[1].name = "cp1".into();
    // Both nodes are now `nodes[cp1]`; the second one carries the finding.
    assert_finding(&plan, Severity::Error, "nodes[cp1].name", "another node is already called `cp1`");
    plan.nodes[1].name = "".into();
    assert_finding(&plan, Severity::Error, "nodes[1].name", "missing");
}

#[test]
fn macs_parse_are_unicast_and_unique() {
    let mut plan = base();
    plan.nodes[1].mac = "52:54:00:00:00".into();
    assert_finding(&plan, Severity::Error, "nodes[cp2].mac", "six hexadecimal octets");
    plan.nodes[1].mac = "01:00:5e:00:00:01".into();
    assert_finding(&plan, Severity::Error, "nodes[cp2].mac", "multicast");
    plan.nodes[1].mac = "00:00:00:00:00:00".into();
    assert_finding(&plan, Severity::Error, "nodes[cp2].mac", "multicast or empty");
    plan.nodes[1].mac = "52-54-00-00-00-01".into();
    assert_finding(&plan, Severity::Error, "nodes[cp2].mac", "already the MAC of node `cp1`");
    plan.nodes[1].mac = "".into();
    assert_finding(&plan, Severity::Error, "nodes[cp2].mac", "missing");
    plan.nodes[1].mac = "52:54:00:AA:00:02".into();
    assert_clean(&plan);
}

#[test]
fn role_is_required() {
    let mut plan = base();
    plan.nodes[4].role = None;
    assert_finding(&plan, Severity::Error, "nodes[worker2].role", "choose `server`");
}

#[test]
fn install_disk_is_an_absolute_dev_path() {
    let mut plan = base();
    for (bad, needle) in [
        ("", "missing"),
        ("sda", "not a device path"),
        ("/mnt/sda", "not a device path"),
        ("/dev/", "not a device path"),
        ("/dev/../etc/passwd", "without `.`, `..`"),
        ("/dev/disk by-id", "unusual characters"),
    ] {
        plan.nodes[0].install_disk = bad.into();
        assert_finding(&plan, Severity::Error, "nodes[cp1].install_disk", needle);
    }
    for good in ["/dev/vda", "/dev/nvme1n1", "/dev/mmcblk0", "/dev/disk/by-id/ata-Samsung_SSD_870_S1"] {
        plan.nodes[0].install_disk = good.into();
        assert_clean(&plan);
    }
    for partition in ["/dev/sda1", "/dev/nvme0n1p2", "/dev/mmcblk0p1", "/dev/disk/by-id/ata-X-part1"] {
        plan.nodes[0].install_disk = partition.into();
        assert_finding(&plan, Severity::Warning, "nodes[cp1].install_disk", "looks like a partition");
    }
}

#[test]
fn addresses_parse_and_lie_in_the_subnet() {
    let mut plan = base();
    plan.nodes[0].address = Some("10.0.0.300/24".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].address", "not an IPv4 address with prefix");
    plan.nodes[0].address = Some("10.0.1.11/24".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].address", "outside the subnet");
    plan.nodes[0].address = Some("10.0.0.11/16".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].address", "write `10.0.0.11/24`");
    plan.nodes[0].address = Some("".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].address", "remove the field for DHCP");
    // A bare address takes the subnet's prefix.
    plan.nodes[0].address = Some("10.0.0.11".into());
    assert_clean(&plan);
    let v = validate(&plan).into_validated().expect("valid");
    assert_eq!(v.nodes()[0].address, Some("10.0.0.11/24".parse().expect("net")));
}

#[test]
fn addresses_are_not_gateway_network_broadcast_or_taken() {
    let mut plan = base();
    plan.nodes[0].address = Some("10.0.0.1/24".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].address", "gateway");
    plan.nodes[0].address = Some("10.0.0.0/24".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].address", "network address");
    plan.nodes[0].address = Some("10.0.0.255/24".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].address", "broadcast address");
    plan.nodes[0].address = Some("10.0.0.12/24".into());
    plan.kubernetes.api_endpoint = None;
    assert_finding(&plan, Severity::Error, "nodes[cp2].address", "already the address of node `cp1`");
}

#[test]
fn switch_refers_to_a_declared_switch() {
    let mut plan = base();
    plan.nodes[0].switch = Some("core-switch".into());
    assert_finding(&plan, Severity::Error, "nodes[cp1].switch", "no switch called `core-switch`");
    plan.switches.push(Switch { name: "core-switch".into(), position: None });
    assert_clean(&plan);
}

#[test]
fn switch_names_are_labels_and_unique() {
    let mut plan = base();
    plan.switches.push(Switch { name: "rack-switch".into(), position: None });
    assert_finding(&plan, Severity::Error, "switches[rack-switch].name", "another switch");
    plan.switches[1].name = "Bad Name".into();
    assert_finding(&plan, Severity::Error, "switches[Bad Name].name", "a-z, 0-9");
}

#[test]
fn positions_are_finite() {
    let mut plan = base();
    plan.nodes[0].position = Some(Position { x: f64::NAN, y: 0.0 });
    assert_finding(&plan, Severity::Error, "nodes[cp1].position", "finite");
    plan.nodes[0].position = None;
    plan.switches[0].position = Some(Position { x: 0.0, y: f64::INFINITY });
    assert_finding(&plan, Severity::Error, "switches[rack-switch].position", "finite");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut plan = base();
    plan.name = "Bad Name".into();
    plan.nodes[0].mac = "x".into();
    plan.nodes[1].install_disk = "sda".into();
    plan.nodes.push(node("cp4", "52:54:00:00:00:09", Role::Agent, Some("10.9.9.9/24")));
    let report = validate(&plan);
    let paths: Vec<&str> = report.errors().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["name", "nodes[cp1].mac", "nodes[cp2].install_disk", "nodes[cp4].address"]);
}

#[test]
fn unknown_fields_from_a_file_are_errors_in_the_report() {
    let text =
        include_str!("../../../../assets/demo-plan.yaml").replace("  role: agent\n", "  role: agent\n  rol: x\n");
    let parsed = parse_plan(&text).expect("parses");
    let report = validate_parsed(&parsed);
    assert!(report.has_errors());
    let unknown: Vec<&str> = report.errors().map(|f| f.path.as_str()).collect();
    assert_eq!(unknown, ["nodes[worker1].rol", "nodes[worker2].rol"]);
    assert!(report.into_validated().is_err());
}

#[test]
fn findings_serialize_as_the_cli_json_contract() {
    let mut plan = base();
    plan.nodes[1].mac = "x".into();
    let json = serde_json::to_value(validate(&plan)).expect("json");
    assert_eq!(json["findings"][0]["severity"], "error");
    assert_eq!(json["findings"][0]["path"], "nodes[cp2].mac");
    assert!(json["findings"][0]["message"].is_string());
    assert_eq!(json.as_object().map(|o| o.len()), Some(1), "only findings are serialized");
}

#[test]
fn ignition_version_is_one_flatlab_writes() {
    let mut plan = base();
    for good in ["3.3.0", "3.4.0"] {
        plan.os.ignition_version = Some(good.into());
        assert_clean(&plan);
    }
    plan.os.ignition_version = Some("3.5.0".into());
    assert_finding(&plan, Severity::Error, "os.ignition_version", "use `3.3.0`");
}

#[test]
fn k3s_sha256_is_64_hex_digits() {
    let mut plan = base();
    plan.kubernetes.k3s_sha256 = Some("ab".repeat(32));
    assert_clean(&plan);
    plan.kubernetes.k3s_sha256 = Some("xyz".into());
    assert_finding(&plan, Severity::Error, "kubernetes.k3s_sha256", "64 hexadecimal digits");
}

#[test]
fn snapshots_are_on_by_default_and_their_schedule_and_retention_are_checked() {
    let mut plan = base();
    let s = plan.kubernetes.snapshot_settings();
    assert_eq!((s.enabled, s.schedule.as_str(), s.retention), (true, "0 */6 * * *", 10));
    for ok in ["0 */6 * * *", "30 2 * * sun", "0 0,12 1-15 * *", "@daily", "@every 6h", "*/15 * * * mon-fri"] {
        plan.kubernetes.snapshots = Some(crate::Snapshots { schedule: Some(ok.into()), ..Default::default() });
        assert_clean(&plan);
    }
    for (bad, why) in [
        ("0 */6 * *", "has 4 fields, not 5"),
        ("61 * * * *", "outside 0-59"),
        ("0 */0 * * *", "not a positive number"),
        ("@fortnightly", "not a schedule K3s knows"),
        ("every 6 hours", "has 3 fields"),
    ] {
        plan.kubernetes.snapshots = Some(crate::Snapshots { schedule: Some(bad.into()), ..Default::default() });
        assert_finding(&plan, Severity::Error, "kubernetes.snapshots.schedule", why);
    }
    plan.kubernetes.snapshots = Some(crate::Snapshots { retention: Some(0), ..Default::default() });
    assert_finding(&plan, Severity::Error, "kubernetes.snapshots.retention", "keep from 1 to 1000");
    plan.kubernetes.snapshots = Some(crate::Snapshots { enabled: Some(false), ..Default::default() });
    assert_finding(&plan, Severity::Warning, "kubernetes.snapshots.enabled", "only a snapshot taken by hand");
    // From the plan file, and unknown keys inside it are findings with a suggestion.
    let text = include_str!("../../../../assets/demo-plan.yaml")
        .replace("kubernetes:\n", "kubernetes:\n  snapshots: {schedule: \"0 3 * * *\", retention: 20}\n");
    let parsed = parse_plan(&text).expect("parses");
    assert!(parsed.unknown_fields.is_empty(), "{:?}", parsed.unknown_fields);
    let s = parsed.plan.kubernetes.snapshot_settings();
    assert_eq!((s.schedule.as_str(), s.retention), ("0 3 * * *", 20));
    let text = include_str!("../../../../assets/demo-plan.yaml")
        .replace("kubernetes:\n", "kubernetes:\n  snapshots: {retain: 20}\n");
    let parsed = parse_plan(&text).expect("parses");
    assert_eq!(parsed.unknown_fields.len(), 1, "{:?}", parsed.unknown_fields);
    assert_eq!(parsed.unknown_fields[0].path, "kubernetes.snapshots.retain");
}

#[test]
fn api_endpoint_defaults_to_the_first_servers_address_or_mdns_name() {
    let mut plan = base();
    plan.kubernetes.api_endpoint = None;
    assert_eq!(validate(&plan).into_validated().expect("valid").api_endpoint(), "10.0.0.11");
    plan.nodes[0].address = None;
    assert_eq!(validate(&plan).into_validated().expect("valid").api_endpoint(), "cp1.local");
    plan.kubernetes.api_endpoint = Some("k8s.lab".into());
    assert_eq!(validate(&plan).into_validated().expect("valid").api_endpoint(), "k8s.lab");
}

#[test]
fn findings_name_their_node_by_index_so_a_node_called_3_is_not_the_unnamed_fourth() {
    let mut plan = base();
    plan.nodes[0].name = "3".into();
    plan.nodes[0].mac = "bad".into();
    plan.nodes[3].name = String::new();
    let all = findings(&plan);
    let bad_mac = all.iter().find(|f| f.message.contains("`bad`")).expect("the MAC finding");
    assert_eq!(bad_mac.path, "nodes[3].mac", "the path is written with the node's name");
    assert_eq!(bad_mac.target, Target::node(0, "mac"), "the target is the first node");
    let unnamed = all.iter().find(|f| f.target == Target::node(3, "name")).expect("the unnamed node's finding");
    assert_eq!(unnamed.path, "nodes[3].name", "the same path, another node");
    let plan_level = all.iter().find(|f| f.path == "ssh_authorized_keys" || f.path == "nodes");
    if let Some(f) = plan_level {
        assert_eq!(f.target, Target::plan(f.path.clone()));
    }
}

#[test]
fn switch_findings_point_at_the_switch() {
    let mut plan = base();
    plan.switches = vec![Switch { name: "Rack".into(), position: None }];
    let all = findings(&plan);
    let f = all.iter().find(|f| f.path == "switches[Rack].name").expect("switch finding");
    assert_eq!(f.target, Target::switch(0, "name"));
}

fn window(days: &[&str], start: &str, end: &str, zone: &str) -> crate::plan::RebootWindow {
    crate::plan::RebootWindow {
        days: days.iter().map(|d| d.to_string()).collect(),
        start: start.into(),
        end: end.into(),
        time_zone: zone.into(),
    }
}

#[test]
fn a_reboot_window_is_read_in_kureds_terms() {
    let mut plan = base();
    plan.os.reboot_window = Some(window(&["Mon", "tuesday", "sa"], "22:00", "04:30", "Europe/Berlin"));
    assert_clean(&plan);
    let v = validate(&plan).into_validated().expect("valid");
    let w = v.reboot_window().expect("a window");
    assert_eq!(
        (w.days.clone(), w.start.as_str(), w.end.as_str(), w.time_zone.as_str()),
        (vec!["mo", "tu", "sa"], "22:00", "04:30", "Europe/Berlin")
    );
    plan.os.reboot_window = Some(window(&[], "02:00", "05:00:30", ""));
    let v = validate(&plan).into_validated().expect("valid");
    assert_eq!(v.reboot_window().map(|w| (w.days.len(), w.time_zone.as_str())), Some((0, "UTC")), "every day, UTC");
}

#[test]
fn a_reboot_window_says_what_is_wrong_with_it() {
    let mut plan = base();
    plan.os.reboot_window = Some(window(&["mon", "funday", "mon"], "2am", "", "Berlin"));
    assert_finding(&plan, Severity::Error, "os.reboot_window.days[1]", "`funday` is not a day");
    assert_finding(&plan, Severity::Warning, "os.reboot_window.days[2]", "listed twice");
    assert_finding(&plan, Severity::Error, "os.reboot_window.start", "HH:MM, 24-hour");
    assert_finding(&plan, Severity::Error, "os.reboot_window.end", "missing");
    assert_finding(&plan, Severity::Error, "os.reboot_window.time_zone", "`Berlin` is not a time zone");
    plan.os.reboot_window = Some(window(&[], "03:00", "03:00", "UTC"));
    assert_finding(&plan, Severity::Error, "os.reboot_window.end", "starts and ends at the same time");
    plan.os.reboot_window = Some(window(&[], "24:00", "03:60", "UTC"));
    assert_finding(&plan, Severity::Error, "os.reboot_window.start", "`24:00` is not a time of day");
    assert_finding(&plan, Severity::Error, "os.reboot_window.end", "`03:60` is not a time of day");
}

#[test]
fn time_servers_are_host_names_or_addresses() {
    let mut plan = base();
    plan.network.ntp = vec!["ntp.example.org".into(), "10.0.0.1".into()];
    assert_clean(&plan);
    assert_eq!(validate(&plan).into_validated().expect("valid").ntp(), ["ntp.example.org", "10.0.0.1"]);
    plan.network.ntp = vec!["ntp server".into(), "10.0.0.1".into(), "10.0.0.1".into()];
    assert_finding(&plan, Severity::Error, "network.ntp[0]", "not a host name or IP address");
    assert_finding(&plan, Severity::Warning, "network.ntp[2]", "listed twice");
}
