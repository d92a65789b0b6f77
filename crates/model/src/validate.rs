//! Validation: every rule a plan must meet before it can be rendered and installed.
//!
//! [`validate`] never stops at the first problem: it returns every finding, each with the path of
//! the field it concerns and a message that says what to do. Only a plan without errors becomes a
//! [`ValidatedPlan`], the one input the renderer accepts.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use serde::Serialize;
use ts_rs::TS;

use crate::finding::{Finding, Severity};
use crate::mac::MacAddr;
use crate::parse::ParsedPlan;
use crate::plan::{FORMAT_VERSION, Plan, Role};

/// The Ignition spec versions `os.ignition_version` may name.
pub const IGNITION_VERSIONS: &[&str] = &["3.3.0", "3.4.0"];

/// K3s components that `kubernetes.disable` may name (`k3s server --disable`).
pub const DISABLABLE_COMPONENTS: &[&str] =
    &["coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"];

/// The outcome of validating a plan: every finding, and the validated plan when there are no errors.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Report {
    pub findings: Vec<Finding>,
    #[serde(skip)]
    #[ts(skip)]
    validated: Option<Box<ValidatedPlan>>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }

    /// The validated plan, or this report if the plan has errors.
    pub fn into_validated(self) -> Result<ValidatedPlan, Report> {
        match self.validated {
            Some(v) => Ok(*v),
            None => Err(self),
        }
    }
}

/// A plan that passed validation, with its values parsed. Only [`validate`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPlan {
    plan: Plan,
    nodes: Vec<ValidatedNode>,
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
    dns: Vec<IpAddr>,
}

/// A node of a [`ValidatedPlan`], with its values parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedNode {
    pub name: String,
    pub mac: MacAddr,
    pub role: Role,
    pub install_disk: String,
    /// The static address, or `None` for DHCP.
    pub address: Option<Ipv4Net>,
}

impl ValidatedPlan {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn nodes(&self) -> &[ValidatedNode] {
        &self.nodes
    }

    pub fn subnet(&self) -> Option<Ipv4Net> {
        self.subnet
    }

    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.gateway
    }

    pub fn dns(&self) -> &[IpAddr] {
        &self.dns
    }

    /// Where nodes reach the Kubernetes API: `kubernetes.api_endpoint`, else the first server's
    /// static address, else its mDNS name `<name>.local`.
    pub fn api_endpoint(&self) -> String {
        if let Some(e) = self.plan.kubernetes.api_endpoint.as_deref() {
            return e.trim().to_owned();
        }
        let first = self.first_server();
        match first.address {
            Some(a) => a.addr().to_string(),
            None => format!("{}.local", first.name),
        }
    }

    /// The SSH public keys, one per line as given.
    pub fn ssh_keys(&self) -> Vec<String> {
        self.plan.ssh_authorized_keys.iter().map(|k| k.trim().to_owned()).collect()
    }

    /// The first server in plan order: the one that initialises the cluster.
    pub fn first_server(&self) -> &ValidatedNode {
        self.nodes.iter().find(|n| n.role == Role::Server).expect("validation guarantees at least one server")
    }
}

/// Validates a plan read from a file, including the unknown fields it had.
pub fn validate_parsed(parsed: &ParsedPlan) -> Report {
    let mut report = validate(&parsed.plan);
    if !parsed.unknown_fields.is_empty() {
        let mut findings = parsed.unknown_fields.clone();
        findings.append(&mut report.findings);
        report = Report { findings, validated: None };
    }
    report
}

/// Checks every rule and returns all findings.
pub fn validate(plan: &Plan) -> Report {
    let mut v = Validator { plan, findings: Vec::new() };
    v.format_version();
    v.plan_name();
    v.os();
    v.ignition_version();
    let (subnet, gateway, dns) = v.network();
    v.kubernetes(subnet, gateway);
    v.ssh_keys();
    v.switches();
    let nodes = v.nodes(subnet, gateway);
    v.api_endpoint_against_nodes(&nodes);

    let findings = v.findings;
    let has_errors = findings.iter().any(|f| f.severity == Severity::Error);
    let validated = if has_errors {
        None
    } else {
        nodes
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|nodes| Box::new(ValidatedPlan { plan: plan.clone(), nodes, subnet, gateway, dns }))
    };
    Report { findings, validated }
}

struct Validator<'a> {
    plan: &'a Plan,
    findings: Vec<Finding>,
}

impl Validator<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding::error(path, message));
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding::warning(path, message));
    }

    fn format_version(&mut self) {
        match self.plan.version {
            0 => self.error("version", format!("missing; add `version: {FORMAT_VERSION}` at the top of the plan")),
            FORMAT_VERSION => {}
            other => self.error(
                "version",
                format!("plan format version {other} is not supported; this Flatlab reads version {FORMAT_VERSION}"),
            ),
        }
    }

    fn plan_name(&mut self) {
        if let Err(why) = check_label(&self.plan.name) {
            self.error("name", format!("{why}; a plan name is a short label such as `edge-lab`"));
        }
    }

    fn os(&mut self) {
        let version = self.plan.os.version.trim();
        if version.is_empty() {
            self.error("os.version", "missing; set a Flatcar release such as `4593.2.5`, or `current`");
        } else if version == "current" {
            self.warning(
                "os.version",
                "`current` changes with every release; pin a version such as `4593.2.5` so that reinstalls give the same system",
            );
        } else if !is_flatcar_version(version) {
            self.error(
                "os.version",
                format!(
                    "`{version}` is not a Flatcar release; write MAJOR.MINOR.PATCH such as `4593.2.5`, or `current`"
                ),
            );
        }
    }

    fn ignition_version(&mut self) {
        if let Some(v) = self.plan.os.ignition_version.as_deref()
            && !IGNITION_VERSIONS.contains(&v)
        {
            self.error(
                "os.ignition_version",
                format!("`{v}` is not an Ignition spec Flatlab writes; use `3.3.0` (every Flatcar) or `3.4.0` (Flatcar from 2024 on), or remove the field"),
            );
        }
    }

    fn network(&mut self) -> (Option<Ipv4Net>, Option<Ipv4Addr>, Vec<IpAddr>) {
        let net = &self.plan.network;
        let any_static = self.plan.nodes.iter().any(|n| n.address.as_deref().is_some_and(|a| !a.trim().is_empty()));

        let subnet = if net.subnet.trim().is_empty() {
            if any_static {
                self.error(
                    "network.subnet",
                    "missing; nodes with a static address need the subnet, such as `10.0.0.0/24`",
                );
            }
            None
        } else {
            match net.subnet.trim().parse::<Ipv4Net>() {
                Ok(s) if s.network() != s.addr() => {
                    self.error(
                        "network.subnet",
                        format!("`{s}` has host bits set; write the network address: `{}`", s.trunc()),
                    );
                    Some(s.trunc())
                }
                Ok(s) if s.prefix_len() > 30 => {
                    self.error(
                        "network.subnet",
                        format!("`{s}` has no room for nodes; use a prefix of /30 or shorter"),
                    );
                    None
                }
                Ok(s) => Some(s),
                Err(_) => {
                    self.error(
                        "network.subnet",
                        format!(
                            "`{}` is not an IPv4 subnet; write it as address/prefix, such as `10.0.0.0/24`",
                            net.subnet.trim()
                        ),
                    );
                    None
                }
            }
        };

        let gateway = if net.gateway.trim().is_empty() {
            if any_static {
                self.error(
                    "network.gateway",
                    "missing; nodes with a static address need the router's address, such as `10.0.0.1`",
                );
            }
            None
        } else {
            match net.gateway.trim().parse::<Ipv4Addr>() {
                Ok(gw) => {
                    if let Some(s) = subnet {
                        if !s.contains(&gw) {
                            self.error(
                                "network.gateway",
                                format!("`{gw}` is outside the subnet {s}; use the router's address in it"),
                            );
                        } else if gw == s.network() || gw == s.broadcast() {
                            self.error(
                                "network.gateway",
                                format!(
                                    "`{gw}` is the subnet's network or broadcast address; use the router's address"
                                ),
                            );
                        }
                    }
                    Some(gw)
                }
                Err(_) => {
                    self.error(
                        "network.gateway",
                        format!("`{}` is not an IPv4 address, such as `10.0.0.1`", net.gateway.trim()),
                    );
                    None
                }
            }
        };

        let mut dns = Vec::new();
        for (i, server) in net.dns.iter().enumerate() {
            match server.trim().parse::<IpAddr>() {
                Ok(ip) => dns.push(ip),
                Err(_) => self.error(
                    format!("network.dns[{i}]"),
                    format!(
                        "`{}` is not an IP address; DNS servers are given by address, such as `10.0.0.1`",
                        server.trim()
                    ),
                ),
            }
        }
        if any_static && net.dns.is_empty() {
            self.warning("network.dns", "no DNS server: nodes with a static address will not resolve names; add your router, such as `[10.0.0.1]`");
        }
        (subnet, gateway, dns)
    }

    fn kubernetes(&mut self, subnet: Option<Ipv4Net>, gateway: Option<Ipv4Addr>) {
        let k = &self.plan.kubernetes;
        let version = k.k3s_version.trim();
        if version.is_empty() {
            self.error("kubernetes.k3s_version", "missing; set a K3s release such as `v1.32.2+k3s1`");
        } else if !is_k3s_version(version) {
            self.error(
                "kubernetes.k3s_version",
                format!(
                    "`{version}` is not a K3s release; write it as on the K3s release page, such as `v1.32.2+k3s1`"
                ),
            );
        }

        if let Some(endpoint) = k.api_endpoint.as_deref().map(str::trim) {
            let path = "kubernetes.api_endpoint";
            if endpoint.is_empty() {
                self.error(path, "empty; remove the field to use the first server, or set a virtual IP or DNS name");
            } else if let Ok(ip) = endpoint.parse::<IpAddr>() {
                if let (IpAddr::V4(ip), Some(s)) = (ip, subnet) {
                    if s.contains(&ip) && (ip == s.network() || ip == s.broadcast()) {
                        self.error(
                            path,
                            format!("`{ip}` is the subnet's network or broadcast address; use a free address"),
                        );
                    }
                    if Some(ip) == gateway {
                        self.error(path, format!("`{ip}` is the gateway; use a free address or a server's address"));
                    }
                }
            } else if endpoint.contains("://") || endpoint.contains(':') || endpoint.contains('/') {
                self.error(path, format!("`{endpoint}` should be a bare IP address or DNS name, without scheme or port; Flatlab adds https:// and :6443"));
            } else if endpoint.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
                self.error(
                    path,
                    format!(
                        "`{endpoint}` is not a valid IP address; write four numbers from 0 to 255, such as `10.0.0.10`"
                    ),
                );
            } else if let Err(why) = check_dns_name(endpoint) {
                self.error(path, format!("`{endpoint}` is not an IP address or DNS name: {why}"));
            }
        }

        if let Some(sha) = k.k3s_sha256.as_deref()
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            self.error(
                "kubernetes.k3s_sha256",
                "not a SHA-256 checksum; copy the 64 hexadecimal digits for your binary from the release's sha256sum-<arch>.txt, or remove the field",
            );
        }

        let mut seen = HashSet::new();
        for (i, component) in k.disable.iter().enumerate() {
            let path = format!("kubernetes.disable[{i}]");
            if !DISABLABLE_COMPONENTS.contains(&component.as_str()) {
                self.error(
                    path,
                    format!(
                        "`{component}` is not a K3s component that can be disabled; choose from {}",
                        DISABLABLE_COMPONENTS.join(", ")
                    ),
                );
            } else if !seen.insert(component.as_str()) {
                self.warning(path, format!("`{component}` is listed twice; remove one"));
            }
        }
    }

    fn ssh_keys(&mut self) {
        let keys = &self.plan.ssh_authorized_keys;
        if keys.is_empty() {
            self.warning(
                "ssh_authorized_keys",
                "no SSH key: you will not be able to log in to the nodes if something goes wrong; add your public key (~/.ssh/id_ed25519.pub)",
            );
        }
        let mut seen = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            let path = format!("ssh_authorized_keys[{i}]");
            let key = key.trim();
            // Never echo what looks like a private key back into logs or the UI.
            if key.contains("PRIVATE KEY") {
                self.error(
                    path,
                    "this is a private key: remove it now and keep it secret; paste the public key from the matching .pub file instead",
                );
                continue;
            }
            match ssh_key::PublicKey::from_openssh(key) {
                Ok(parsed) => {
                    let blob = parsed.key_data().clone();
                    if !seen.insert(blob) {
                        self.warning(path, "the same key is listed twice; remove one");
                    }
                }
                Err(e) => self.error(
                    path,
                    format!("not an OpenSSH public key ({e}); paste one whole line of a .pub file, such as `ssh-ed25519 AAAA… me@laptop`"),
                ),
            }
        }
    }

    fn switches(&mut self) {
        let mut seen = HashSet::new();
        for (i, switch) in self.plan.switches.iter().enumerate() {
            let path = self.plan.switch_path(i);
            if let Err(why) = check_label(&switch.name) {
                self.error(
                    format!("{path}.name"),
                    format!("{why}; a switch name is a short label such as `rack-switch`"),
                );
            } else if !seen.insert(switch.name.as_str()) {
                self.error(
                    format!("{path}.name"),
                    format!("another switch is already called `{}`; give each switch its own name", switch.name),
                );
            }
            if let Some(p) = switch.position
                && !(p.x.is_finite() && p.y.is_finite())
            {
                self.error(
                    format!("{path}.position"),
                    "the position must be finite numbers; drag the switch to place it again",
                );
            }
        }
    }

    fn nodes(&mut self, subnet: Option<Ipv4Net>, gateway: Option<Ipv4Addr>) -> Vec<Option<ValidatedNode>> {
        let plan = self.plan;
        let servers = plan.nodes.iter().filter(|n| n.role == Some(Role::Server)).count();
        if plan.nodes.is_empty() {
            self.error("nodes", "the plan has no nodes; add at least one server");
        } else if servers == 0 {
            self.error(
                "nodes",
                "no node is a K3s server; make at least one node a server (three for high availability)",
            );
        } else if servers > 1 && servers % 2 == 0 {
            self.warning(
                "nodes",
                format!(
                    "{servers} servers tolerate no more failures than {}; use an odd number of servers (make one an agent, or add one)",
                    servers - 1
                ),
            );
        }

        let switches: HashSet<&str> = plan.switches.iter().map(|s| s.name.as_str()).collect();
        let mut names: HashSet<&str> = HashSet::new();
        let mut macs: BTreeMap<MacAddr, String> = BTreeMap::new();
        let mut addresses: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let mut out = Vec::with_capacity(plan.nodes.len());

        for (i, node) in plan.nodes.iter().enumerate() {
            let path = plan.node_path(i);
            let mut ok = true;

            if let Err(why) = check_label(&node.name) {
                self.error(
                    format!("{path}.name"),
                    format!("{why}; the name becomes the hostname, such as `cp1` or `worker-2`"),
                );
                ok = false;
            } else if !names.insert(node.name.as_str()) {
                self.error(
                    format!("{path}.name"),
                    format!("another node is already called `{}`; give each node its own name", node.name),
                );
                ok = false;
            }

            let mac = if node.mac.trim().is_empty() {
                self.error(
                    format!("{path}.mac"),
                    "missing; enter the MAC address of the network card the machine boots from",
                );
                None
            } else {
                match node.mac.parse::<MacAddr>() {
                    Ok(m) if m.is_multicast() || m.is_zero() => {
                        self.error(
                            format!("{path}.mac"),
                            format!("`{m}` is a multicast or empty address, not a network card's; check the sticker or the firmware's network screen"),
                        );
                        None
                    }
                    Ok(m) => {
                        if let Some(other) = macs.insert(m, node.name.clone()) {
                            self.error(
                                format!("{path}.mac"),
                                format!("`{m}` is already the MAC of node `{other}`; each machine has its own MAC"),
                            );
                        }
                        Some(m)
                    }
                    Err(e) => {
                        self.error(format!("{path}.mac"), format!("`{}`: {e}", node.mac.trim()));
                        None
                    }
                }
            };

            if node.role.is_none() {
                self.error(
                    format!("{path}.role"),
                    "missing; choose `server` (control plane) or `agent` (workloads only)",
                );
            }

            if let Err(why) = check_install_disk(&node.install_disk) {
                self.error(format!("{path}.install_disk"), why);
                ok = false;
            } else if looks_like_partition(&node.install_disk) {
                self.warning(
                    format!("{path}.install_disk"),
                    format!("`{}` looks like a partition; Flatcar is installed to a whole disk such as /dev/sda or /dev/nvme0n1", node.install_disk),
                );
            }

            let address = match node.address.as_deref().map(str::trim) {
                None => None,
                Some("") => {
                    self.error(
                        format!("{path}.address"),
                        "empty; remove the field for DHCP, or set an address such as `10.0.0.11/24`",
                    );
                    ok = false;
                    None
                }
                Some(text) => match self.node_address(&path, text, subnet, gateway) {
                    Some(net) => {
                        if let Some(other) = addresses.insert(net.addr(), node.name.clone()) {
                            self.error(
                                format!("{path}.address"),
                                format!("{} is already the address of node `{other}`; use a free address", net.addr()),
                            );
                        }
                        Some(net)
                    }
                    None => {
                        ok = false;
                        None
                    }
                },
            };

            if let Some(switch) = &node.switch
                && !switches.contains(switch.as_str())
            {
                self.error(
                    format!("{path}.switch"),
                    format!("there is no switch called `{switch}`; add it under `switches:` or connect the node to an existing one"),
                );
            }

            if let Some(p) = node.position
                && !(p.x.is_finite() && p.y.is_finite())
            {
                self.error(
                    format!("{path}.position"),
                    "the position must be finite numbers; drag the node to place it again",
                );
            }

            out.push(match (ok, mac, node.role) {
                (true, Some(mac), Some(role)) => Some(ValidatedNode {
                    name: node.name.clone(),
                    mac,
                    role,
                    install_disk: node.install_disk.clone(),
                    address,
                }),
                _ => None,
            });
        }
        out
    }

    fn node_address(
        &mut self,
        path: &str,
        text: &str,
        subnet: Option<Ipv4Net>,
        gateway: Option<Ipv4Addr>,
    ) -> Option<Ipv4Net> {
        let field = format!("{path}.address");
        let net = if text.contains('/') {
            match text.parse::<Ipv4Net>() {
                Ok(n) => n,
                Err(_) => {
                    self.error(
                        field,
                        format!("`{text}` is not an IPv4 address with prefix length, such as `10.0.0.11/24`"),
                    );
                    return None;
                }
            }
        } else {
            match (text.parse::<Ipv4Addr>(), subnet) {
                (Ok(ip), Some(s)) => Ipv4Net::new(ip, s.prefix_len()).expect("prefix length comes from a valid subnet"),
                (Ok(_), None) => {
                    self.error(
                        field,
                        format!("`{text}` has no prefix length; write it with your subnet's prefix, such as `{text}/24`, or set `network.subnet`"),
                    );
                    return None;
                }
                (Err(_), _) => {
                    self.error(field, format!("`{text}` is not an IPv4 address, such as `10.0.0.11/24`"));
                    return None;
                }
            }
        };
        let ip = net.addr();
        let Some(s) = subnet else {
            // The missing subnet is reported once, on `network.subnet`.
            return Some(net);
        };
        if !s.contains(&ip) {
            self.error(
                field,
                format!("{ip} is outside the subnet {s}; pick an address in it, or fix `network.subnet`"),
            );
            return None;
        }
        if net.prefix_len() != s.prefix_len() {
            self.error(
                field,
                format!(
                    "prefix /{} differs from the subnet's /{}; write `{ip}/{}`",
                    net.prefix_len(),
                    s.prefix_len(),
                    s.prefix_len()
                ),
            );
            return None;
        }
        if ip == s.network() {
            self.error(field, format!("{ip} is the subnet's network address; pick a host address"));
            return None;
        }
        if ip == s.broadcast() {
            self.error(field, format!("{ip} is the subnet's broadcast address; pick a host address"));
            return None;
        }
        if Some(ip) == gateway {
            self.error(field, format!("{ip} is the gateway's address; pick a free address"));
            return None;
        }
        Some(net)
    }

    fn api_endpoint_against_nodes(&mut self, nodes: &[Option<ValidatedNode>]) {
        let Some(endpoint) = self.plan.kubernetes.api_endpoint.as_deref().map(str::trim) else {
            return;
        };
        let Ok(IpAddr::V4(ip)) = endpoint.parse::<IpAddr>() else { return };
        let first_server = nodes.iter().flatten().find(|n| n.role == Role::Server).map(|n| n.name.clone());
        for node in nodes.iter().flatten() {
            if node.role == Role::Server
                && node.address.map(|a| a.addr()) == Some(ip)
                && Some(&node.name) != first_server.as_ref()
            {
                self.error(
                    "kubernetes.api_endpoint",
                    format!(
                        "{ip} is the address of `{}`, which joins the cluster through this endpoint and would wait for itself; use the first server's address, a virtual IP, or leave the field out",
                        node.name
                    ),
                );
            }
        }
        let is_server_address =
            nodes.iter().flatten().any(|n| n.role == Role::Server && n.address.map(|a| a.addr()) == Some(ip));
        let is_node_address = nodes.iter().flatten().any(|n| n.address.map(|a| a.addr()) == Some(ip));
        if !is_server_address && !is_node_address && !nodes.is_empty() {
            self.warning(
                "kubernetes.api_endpoint",
                format!(
                    "{ip} is no node's address: nodes join the cluster through it, so something must answer there (kube-vip or keepalived on the servers); Flatlab does not set that up. Leave the field out to use the first server"
                ),
            );
        }
        for node in nodes.iter().flatten() {
            if node.address.map(|a| a.addr()) == Some(ip) && node.role == Role::Agent {
                self.error(
                    "kubernetes.api_endpoint",
                    format!("{ip} is the address of agent `{}`, which does not serve the Kubernetes API; use a server's address or a free virtual IP", node.name),
                );
            }
        }
    }
}

/// RFC 1123 label, lowercase (Kubernetes node names must be lowercase).
fn check_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("missing".into());
    }
    if name.len() > 63 {
        return Err(format!("`{name}` is longer than 63 characters"));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("`{name}` has capital letters; write `{}`", name.to_ascii_lowercase()));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("`{name}` may only use a-z, 0-9 and `-`"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!("`{name}` must start and end with a letter or digit"));
    }
    Ok(())
}

fn check_dns_name(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in name.split('.') {
        check_label(&label.to_ascii_lowercase())?;
    }
    Ok(())
}

fn is_flatcar_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| is_number(p))
}

/// `v1.32.2+k3s1`, optionally with a pre-release such as `v1.33.0-rc1+k3s1`.
fn is_k3s_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else { return false };
    let Some((semver, build)) = rest.split_once('+') else { return false };
    let Some(build_number) = build.strip_prefix("k3s") else { return false };
    if !is_number(build_number) {
        return false;
    }
    let (core, pre) = match semver.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (semver, None),
    };
    if let Some(pre) = pre
        && (pre.is_empty() || !pre.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
    {
        return false;
    }
    is_flatcar_version(core)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_install_disk(disk: &str) -> Result<(), String> {
    if disk.trim().is_empty() {
        return Err("missing; set the whole disk to install to, such as `/dev/sda` or `/dev/nvme0n1`".into());
    }
    if !disk.starts_with("/dev/") || disk.len() <= "/dev/".len() {
        return Err(format!(
            "`{disk}` is not a device path; write an absolute /dev path such as `/dev/sda` or `/dev/disk/by-id/…`"
        ));
    }
    if disk.split('/').any(|part| part == ".." || part == ".") || disk.contains("//") || disk.ends_with('/') {
        return Err(format!("`{disk}` is not a plain device path; write it without `.`, `..` or empty parts"));
    }
    if !disk.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "`{}` has spaces or unusual characters; write a device path such as `/dev/sda`",
            disk.escape_default()
        ));
    }
    Ok(())
}

/// `/dev/sda1`, `/dev/nvme0n1p2`, `/dev/mmcblk0p1`, `…-part1`.
fn looks_like_partition(disk: &str) -> bool {
    let name = disk.rsplit('/').next().unwrap_or(disk);
    if name.contains("-part") {
        return true;
    }
    let trailing_digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if trailing_digits == 0 {
        return false;
    }
    let stem = &name[..name.len() - trailing_digits];
    if disk.starts_with("/dev/disk/") {
        return false;
    }
    if stem.starts_with("nvme") || stem.starts_with("mmcblk") || stem.starts_with("loop") {
        return stem.ends_with('p') && stem.len() > 1 && stem[..stem.len() - 1].ends_with(|c: char| c.is_ascii_digit());
    }
    // sda1, vdb2, hda1, xvda1
    ["sd", "vd", "hd", "xvd"].iter().any(|p| stem.starts_with(p) && stem.len() > p.len())
}

#[cfg(test)]
mod tests;
