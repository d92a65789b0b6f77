//! K3s on a node: its configuration file, the systemd unit that runs it, and how the binary
//! gets onto the node.

use flatlab_model::{Role, ValidatedNode, ValidatedPlan};
use serde::Serialize;

use crate::ignition::{ConfigBuilder, MODE_0600, MODE_0644, MODE_0700, MODE_0755};
use crate::{ClusterSecrets, Inputs, K3sSource};

/// Where K3s keeps its certificates and keys.
const TLS_DIR: &str = "/var/lib/rancher/k3s/server/tls";

/// `/etc/rancher/k3s/config.yaml`, as K3s reads it (its flags, as YAML keys).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct K3sConfig<'a> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cluster_init: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    token: &'a str,
    /// Servers only: the token agents join with, so that agents never hold the servers' token.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_ip: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tls_san: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    disable: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    node_label: Vec<String>,
}

/// Whether a server is the plan's first (the one that holds the CA files).
fn is_first_server(plan: &ValidatedPlan, node: &ValidatedNode) -> bool {
    node.role == Role::Server && plan.first_server().name == node.name
}

/// Whether a server starts the cluster: the first server, unless it is being reinstalled into
/// a cluster that runs on.
fn starts_cluster(plan: &ValidatedPlan, node: &ValidatedNode, cluster: &ClusterSecrets) -> bool {
    is_first_server(plan, node) && cluster.first_server_joins.is_none()
}

/// Where a server that joins reaches the cluster: the first server's own address (the API
/// endpoint may be a virtual address that exists only once the cluster runs), or where a
/// reinstalled first server is told to join.
fn join_host(plan: &ValidatedPlan, node: &ValidatedNode, cluster: &ClusterSecrets) -> String {
    if is_first_server(plan, node)
        && let Some(host) = &cluster.first_server_joins
    {
        return host.clone();
    }
    let first = plan.first_server();
    match first.address {
        Some(a) => a.addr().to_string(),
        None => plan.api_endpoint(),
    }
}

pub(crate) fn config_yaml(plan: &ValidatedPlan, node: &ValidatedNode, cluster: &ClusterSecrets) -> String {
    let endpoint = plan.api_endpoint();
    let server = node.role == Role::Server;
    let first = starts_cluster(plan, node, cluster);
    let url = |host: &str| format!("https://{}:6443", bracket_ipv6(host));
    let config = K3sConfig {
        cluster_init: first,
        server: match (first, server) {
            (true, _) => None,
            (false, true) => Some(url(&join_host(plan, node, cluster))),
            (false, false) => Some(url(&endpoint)),
        },
        token: if server { &cluster.server_token } else { &cluster.agent_token },
        // Where everyone has one token (a cluster whose CA K3s made), servers are told none.
        agent_token: (server && cluster.agent_token != cluster.server_token).then_some(cluster.agent_token.as_str()),
        node_ip: node.address.map(|a| a.addr().to_string()),
        tls_san: if server { vec![endpoint] } else { Vec::new() },
        disable: if server { plan.plan().kubernetes.disable.clone() } else { Vec::new() },
        node_label: vec![format!("flatlab.dev/plan={}", plan.plan().name)],
    };
    let yaml = serde_yaml_ng::to_string(&config).expect("the K3s config always serializes");
    format!("# Written by Flatlab for node {} ({}). K3s reads this at start.\n{yaml}", node.name, node.role.as_str())
}

/// `https://<host>:6443`, an IPv6 host in brackets.
pub(crate) fn api_url(host: &str) -> String {
    format!("https://{}:6443", bracket_ipv6(host))
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

/// Adds the K3s binary, its configuration and its unit to a final config.
pub(crate) fn add(
    b: &mut ConfigBuilder,
    plan: &ValidatedPlan,
    index: usize,
    node: &ValidatedNode,
    inputs: &Inputs<'_>,
) {
    let arch = plan.plan().os.arch;
    b.directory("/etc/rancher/k3s", MODE_0755);
    b.file("/etc/rancher/k3s/config.yaml", MODE_0600, &config_yaml(plan, node, inputs.cluster));
    // The cluster's certificate authorities, on the server that starts the cluster only: K3s
    // uses them when they are there before its first start. Joining servers get them from the
    // cluster, so no other node's config holds a CA key.
    if starts_cluster(plan, node, inputs.cluster) && !inputs.cluster.ca_files.is_empty() {
        b.directory(TLS_DIR, MODE_0700);
        b.directory(&format!("{TLS_DIR}/etcd"), MODE_0700);
        for (path, contents) in &inputs.cluster.ca_files {
            let mode = if path.ends_with(".key") { MODE_0600 } else { MODE_0644 };
            b.file(&format!("{TLS_DIR}/{path}"), mode, contents);
        }
    }

    if let Some(airgap) = &inputs.k3s.airgap {
        let name = crate::airgap_name(arch);
        b.remote_file(&format!("{}/{name}", crate::AIRGAP_IMAGES_DIR), MODE_0644, &airgap.url, &airgap.sha256);
    }
    let install_unit = match &inputs.k3s.sha256 {
        Some(sha) => {
            b.remote_file("/opt/bin/k3s", MODE_0755, &inputs.k3s.url, sha);
            None
        }
        None => {
            b.file("/opt/flatlab/get-k3s.sh", MODE_0755, &get_k3s_script(inputs.k3s, arch));
            b.unit("flatlab-get-k3s.service", true, GET_K3S_UNIT);
            Some("flatlab-get-k3s.service")
        }
    };
    b.unit("k3s.service", true, &unit(plan, index, node, inputs.cluster, install_unit));
}

const GET_K3S_UNIT: &str = "\
[Unit]
Description=Flatlab: download and verify the K3s binary
Wants=network-online.target
After=network-online.target
ConditionPathExists=!/opt/bin/k3s

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/opt/flatlab/get-k3s.sh

[Install]
WantedBy=multi-user.target
";

fn get_k3s_script(source: &K3sSource, arch: flatlab_model::Arch) -> String {
    let binary = crate::k3s_binary(arch);
    format!(
        r#"#!/bin/bash
# Flatlab: download the K3s binary and check it against the release's published SHA-256.
# Used when the plan pins no kubernetes.k3s_sha256; retries until the network is there.
set -euo pipefail
url='{url}'
sums='{sums}'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for attempt in $(seq 1 60); do
  if curl -fsSL --retry 3 --max-time 900 -o "$tmp/{binary}" "$url" && curl -fsSL --retry 3 --max-time 60 -o "$tmp/sums" "$sums"; then
    break
  fi
  echo "flatlab: K3s download failed (attempt $attempt of 60), retrying in 10 s" >&2
  sleep 10
done
expected=$(awk '$2 == "{binary}" {{ print $1 }}' "$tmp/sums")
if [ -z "$expected" ]; then
  echo "flatlab: {binary} is not listed in $sums" >&2
  exit 1
fi
(cd "$tmp" && echo "$expected  {binary}" | sha256sum -c -)
install -D -m 0755 "$tmp/{binary}" /opt/bin/k3s
"#,
        url = source.url,
        sums = source.sums_url(arch),
    )
}

fn unit(
    plan: &ValidatedPlan,
    index: usize,
    node: &ValidatedNode,
    cluster: &ClusterSecrets,
    install_unit: Option<&str>,
) -> String {
    let mode = node.role.as_str();
    let mut after = String::from("network-online.target");
    let mut requires = String::new();
    if let Some(u) = install_unit {
        after.push(' ');
        after.push_str(u);
        requires = format!("Requires={u}\n");
    }
    // Servers after the first wait until the cluster answers, then join one after another: many
    // etcd learners joining at once fail with "too many learner members".
    let wait = if node.role == Role::Server && !starts_cluster(plan, node, cluster) {
        let endpoint = bracket_ipv6(&join_host(plan, node, cluster));
        let position = plan.nodes()[..index].iter().filter(|n| n.role == Role::Server).count();
        let stagger = match position.saturating_sub(1) * 30 {
            0 => String::new(),
            seconds => format!("; sleep {seconds}"),
        };
        // Only before the first join: once this server has its etcd member, it starts at once
        // (waiting on every start would keep it down whenever the first server is).
        format!(
            "ExecStartPre=/bin/sh -c 'test -d /var/lib/rancher/k3s/server/db/etcd && exit 0; until curl -ksf --max-time 10 https://{endpoint}:6443/cacerts >/dev/null; do echo waiting for the cluster at {endpoint}; sleep 5; done{stagger}'\n"
        )
    } else {
        String::new()
    };
    // As K3s's own installer: servers notify systemd when ready, agents are started as is.
    let service_type = if node.role == Role::Server { "notify" } else { "exec" };
    format!(
        "\
[Unit]
Description=K3s Kubernetes {mode}
Documentation=https://docs.k3s.io
Wants=network-online.target
After={after}
{requires}
[Service]
Type={service_type}
{wait}ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/opt/bin/k3s {mode}
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
"
    )
}
