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
    /// Servers: K3s's scheduled etcd snapshots (`kubernetes.snapshots`).
    #[serde(skip_serializing_if = "Option::is_none")]
    etcd_snapshot_schedule_cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etcd_snapshot_retention: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    etcd_disable_snapshots: bool,
}

/// Whether a server is the plan's first (the one that holds the CA files).
fn is_first_server(plan: &ValidatedPlan, node: &ValidatedNode) -> bool {
    node.role == Role::Server && plan.first_server().name == node.name
}

/// Whether a server starts the cluster: the first server, unless the cluster it would start
/// exists already (it is being reinstalled into a cluster that runs on, or one that is restored).
fn starts_cluster(plan: &ValidatedPlan, node: &ValidatedNode, cluster: &ClusterSecrets) -> bool {
    is_first_server(plan, node) && (!cluster.first_server_joins || cluster.restore.is_some())
}

/// Where a node that joins may reach the cluster, in the order its join step tries them: the
/// API endpoint when it is no node's own address (a virtual IP, or a DNS name), then every other
/// server of the plan. No address is special: a reinstalled server joins through whichever
/// server is up (`/opt/flatlab/k3s-join.sh`).
pub(crate) fn join_candidates(plan: &ValidatedPlan, node: &ValidatedNode) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Some(endpoint) = plan.plan().kubernetes.api_endpoint.as_deref().map(str::trim) {
        let is_node = plan.nodes().iter().any(|n| n.address.is_some_and(|a| a.addr().to_string() == endpoint));
        if !is_node {
            hosts.push(endpoint.to_owned());
        }
    }
    for server in plan.nodes().iter().filter(|n| n.role == Role::Server && n.name != node.name) {
        let host = match server.address {
            Some(a) => a.addr().to_string(),
            None => format!("{}.local", server.name),
        };
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts.into_iter().map(|h| api_url(&h)).collect()
}

/// Where K3s reads configuration drop-ins, after `config.yaml`.
pub(crate) const DROPIN_DIR: &str = "/etc/rancher/k3s/config.yaml.d";
/// The drop-in the join step writes: `server:` of the server it found.
pub(crate) const JOIN_DROPIN: &str = "/etc/rancher/k3s/config.yaml.d/50-flatlab-join.yaml";
/// The join step.
pub(crate) const JOIN_SCRIPT: &str = "/opt/flatlab/k3s-join.sh";

pub(crate) fn config_yaml(plan: &ValidatedPlan, node: &ValidatedNode, cluster: &ClusterSecrets) -> String {
    let endpoint = plan.api_endpoint();
    let server = node.role == Role::Server;
    let first = starts_cluster(plan, node, cluster);
    let snapshots = plan.plan().kubernetes.snapshot_settings();
    let config = K3sConfig {
        cluster_init: first,
        // A node that joins is told where by its join step (a drop-in), from whichever server
        // answers with the cluster's CA.
        server: None,
        token: if server { &cluster.server_token } else { &cluster.agent_token },
        // Where everyone has one token (a cluster whose CA K3s made), servers are told none.
        agent_token: (server && cluster.agent_token != cluster.server_token).then_some(cluster.agent_token.as_str()),
        node_ip: node.address.map(|a| a.addr().to_string()),
        tls_san: if server { vec![endpoint] } else { Vec::new() },
        disable: if server { plan.plan().kubernetes.disable.clone() } else { Vec::new() },
        node_label: vec![format!("flatlab.dev/plan={}", plan.plan().name)],
        etcd_snapshot_schedule_cron: (server && snapshots.enabled).then(|| snapshots.schedule.clone()),
        etcd_snapshot_retention: (server && snapshots.enabled).then_some(snapshots.retention),
        etcd_disable_snapshots: server && !snapshots.enabled,
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
    let joins = !starts_cluster(plan, node, inputs.cluster);
    if joins {
        b.directory(DROPIN_DIR, MODE_0755);
        b.file(JOIN_SCRIPT, MODE_0755, &join_script(plan, index, node));
    }
    // The first server of a cluster being brought back restores the snapshot once, before K3s
    // first starts; the file comes from the boot server, to this machine only, pinned by hash.
    let restore = match (&inputs.cluster.restore, starts_cluster(plan, node, inputs.cluster)) {
        (Some(snapshot), true) => {
            let token = inputs.node_tokens.get(&node.name).map(String::as_str).unwrap_or_default();
            let url = format!("{}/v1/file/{token}/{}", inputs.base_url.trim_end_matches('/'), snapshot.name);
            b.directory("/var/lib/flatlab", MODE_0700);
            b.directory(crate::RESTORE_DIR, MODE_0700);
            b.remote_file(&format!("{}/{}", crate::RESTORE_DIR, snapshot.name), MODE_0600, &url, &snapshot.sha256);
            b.unit(RESTORE_UNIT, true, &restore_unit(&snapshot.name, install_unit));
            Some(RESTORE_UNIT)
        }
        _ => None,
    };
    b.unit("k3s.service", true, &unit(node, joins, install_unit, restore));
}

/// The unit that restores an etcd snapshot before K3s first starts.
const RESTORE_UNIT: &str = "flatlab-k3s-restore.service";

/// `k3s server --cluster-reset --cluster-reset-restore-path=…`, once: K3s restores the snapshot
/// (the server token in `config.yaml` opens its bootstrap data), leaves its `reset-flag`, and
/// exits; then `k3s.service` starts the restored cluster. The flags stay out of `config.yaml`,
/// where K3s would restore again at every start.
fn restore_unit(name: &str, install_unit: Option<&str>) -> String {
    let path = format!("{}/{name}", crate::RESTORE_DIR);
    let (after, requires) = match install_unit {
        Some(u) => (format!(" {u}"), format!("Requires={u}\n")),
        None => (String::new(), String::new()),
    };
    format!(
        "\
[Unit]
Description=Flatlab: restore the cluster from etcd snapshot {name}
Wants=network-online.target
After=network-online.target{after}
{requires}Before=k3s.service
ConditionPathExists=!{mark}

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=0
# K3s stops after a reset: its exit status is not the verdict; the reset flag it leaves is.
ExecStart=-/opt/bin/k3s server --cluster-reset --cluster-reset-restore-path={path}
ExecStartPost=/bin/sh -c 'test -e /var/lib/rancher/k3s/server/db/reset-flag && mkdir -p /var/lib/flatlab && touch {mark}'

[Install]
WantedBy=multi-user.target
",
        mark = crate::RESTORED_MARK,
    )
}

/// The join step of a node that joins (`ExecStartPre` of `k3s.service`): tries each candidate's
/// `/cacerts`, takes the first whose CA bundle has the SHA-256 the token pins (as K3s itself
/// checks it), and writes that server into a drop-in K3s reads after `config.yaml`. Before the
/// first join it waits until one answers; once the node has joined, it only refreshes the
/// drop-in when a server answers and never holds K3s back.
fn join_script(plan: &ValidatedPlan, index: usize, node: &ValidatedNode) -> String {
    let candidates = join_candidates(plan, node);
    let list: Vec<String> = candidates.iter().map(|c| format!("'{c}'")).collect();
    // Joining servers go one after another on their first join: many etcd learners joining at
    // once fail with "too many learner members".
    let (stagger, joined) = if node.role == Role::Server {
        let position = plan.nodes()[..index].iter().filter(|n| n.role == Role::Server).count();
        (position.saturating_sub(1) * 30, "/var/lib/rancher/k3s/server/db/etcd")
    } else {
        (0, "/var/lib/rancher/k3s/agent/etc/k3s-agent-load-balancer.json")
    };
    format!(
        r#"#!/bin/bash
# Flatlab: find a live server of the cluster for node {name} ({role}) to join through.
# Tries each address below, takes the first whose /cacerts has the SHA-256 that the token in
# config.yaml pins (a server of another cluster is never joined), and writes it to
# {JOIN_DROPIN}, which K3s reads after config.yaml.
set -uo pipefail
candidates=({list})
joined={joined}
dropin={JOIN_DROPIN}
token=$(sed -n 's/^token: //p' /etc/rancher/k3s/config.yaml | head -n 1)
pinned=""
if [[ $token =~ ^K10([0-9a-f]{{64}}):: ]]; then pinned=${{BASH_REMATCH[1]}}; fi
tmp=$(mktemp)
trap 'rm -f "$tmp" "$dropin.tmp"' EXIT
try_each() {{
  local url got
  for url in "${{candidates[@]}}"; do
    curl -ksf --max-time "$1" -o "$tmp" "$url/cacerts" || continue
    got=$(sha256sum "$tmp" | cut -c1-64)
    if [[ -n $pinned && $got != "$pinned" ]]; then
      echo "flatlab: $url answers with another cluster's CA (sha256 $got, the token pins $pinned): not joining through it" >&2
      continue
    fi
    mkdir -p "${{dropin%/*}}"
    printf '# Written by %s: %s answered with the cluster CA the token pins.\nserver: %s\n' "$0" "$url" "$url" >"$dropin.tmp"
    mv -f "$dropin.tmp" "$dropin"
    echo "flatlab: joining the cluster through $url"
    return 0
  done
  return 1
}}
if [[ -e $joined && -s $dropin ]]; then
  try_each 3 || echo "flatlab: no server answers now; K3s starts with what it knows" >&2
  exit 0
fi
until try_each 10; do
  echo "flatlab: waiting for a server of the cluster at ${{candidates[*]}}" >&2
  sleep 5
done
{stagger_line}"#,
        name = node.name,
        role = node.role.as_str(),
        list = list.join(" "),
        stagger_line = if stagger > 0 {
            format!(
                "# Servers join one after another on their first join.
sleep {stagger}
"
            )
        } else {
            String::new()
        },
    )
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

fn unit(node: &ValidatedNode, joins: bool, install_unit: Option<&str>, restore_unit: Option<&str>) -> String {
    let mode = node.role.as_str();
    let mut after = String::from("network-online.target");
    let mut requires = String::new();
    for u in install_unit.into_iter().chain(restore_unit) {
        after.push(' ');
        after.push_str(u);
        requires.push_str(&format!("Requires={u}\n"));
    }
    let wait = if joins { format!("ExecStartPre={JOIN_SCRIPT}\n") } else { String::new() };
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
