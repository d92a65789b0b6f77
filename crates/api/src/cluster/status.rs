//! The cluster as its API shows it, beside the plan and the install timeline: every node with
//! Ready, role, K3s and Flatcar versions, address, kured's reboot state, and what disagrees.

use std::collections::BTreeMap;

use flatlab_bootd::Stage;
use flatlab_model::{Role, ValidatedPlan};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use rand::Rng;
use serde::Serialize;
use ts_rs::TS;

use super::client::{Access, Reach, reach_of, server_url};
use super::upgrade::{UpgradeView, upgrade_view};
use crate::boot::MachineState;
use crate::{Flatlab, Millis};

/// kured's annotations (with `--annotate-nodes=true`) and its lock on its DaemonSet.
pub(crate) const KURED_REBOOT_IN_PROGRESS: &str = "weave.works/kured-reboot-in-progress";
const KURED_LOCK: &str = "weave.works/kured-node-lock";

/// The cluster of a plan, as the API showed it just now.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ClusterStatus {
    pub plan: String,
    /// The API address Flatlab used.
    pub server: String,
    pub reach: Reach,
    /// Planned nodes first, in plan order, then nodes the plan does not have.
    pub nodes: Vec<NodeView>,
    /// When the plan has no virtual API address: which server API access depends on.
    pub api_note: Option<String>,
    /// A K3s upgrade the cluster is running or finished.
    pub upgrade: Option<UpgradeView>,
    /// Why the API could not say whether an upgrade runs (none: it said).
    pub upgrade_error: Option<String>,
    /// How many planned machines the install timeline has installed: once there are any, the
    /// cluster's CA keys are worth a backup.
    pub installed_nodes: u32,
    /// When the plan's secrets were last backed up (none: never).
    #[ts(type = "number | null")]
    pub secrets_backup_at: Option<Millis>,
    #[ts(type = "number")]
    pub checked_at: Millis,
}

/// What a node is, in the cluster's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum NodeState {
    Ready,
    NotReady,
    /// In the plan, not in the cluster.
    Missing,
    /// In the cluster, not in the plan: Flatlab can drain and delete it.
    NotInPlan,
    /// The API could not be asked.
    Unknown,
}

/// kured's view of a node's Flatcar update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Reboot {
    /// Flatcar installed an update and kured, inside the reboot window, waits for the lock.
    /// (kured marks a node only inside its window: one waiting for the window shows nothing.)
    Pending,
    /// kured holds the cluster's reboot lock for it: drained, rebooting.
    Rebooting,
}

/// One node.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct NodeView {
    pub name: String,
    pub state: NodeState,
    /// The plan's role; none for a node the plan does not have.
    pub planned_role: Option<Role>,
    /// The role the cluster gives it (server: control plane).
    pub role: Option<Role>,
    pub k3s_version: Option<String>,
    /// The OS image the kubelet reports (`Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo)`).
    pub os_image: Option<String>,
    /// The Flatcar version in it.
    pub flatcar_version: Option<String>,
    pub internal_ip: Option<String>,
    /// Cordoned (kured or an upgrade drains it, or someone did).
    pub cordoned: bool,
    pub reboot: Option<Reboot>,
    /// The install timeline's stage (the node's own reports to the boot server).
    pub install_stage: Option<Stage>,
    /// Where the plan, the timeline and the API disagree, in words.
    pub problems: Vec<String>,
}

impl NodeView {
    fn planned(name: &str, role: Role, stage: Option<Stage>) -> Self {
        NodeView {
            name: name.to_owned(),
            state: NodeState::Unknown,
            planned_role: Some(role),
            role: None,
            k3s_version: None,
            os_image: None,
            flatcar_version: None,
            internal_ip: None,
            cordoned: false,
            reboot: None,
            install_stage: stage,
            problems: Vec::new(),
        }
    }
}

/// `4593.2.5` out of `Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo)`.
pub(crate) fn flatcar_version(os_image: &str) -> Option<String> {
    let rest = os_image.strip_prefix("Flatcar Container Linux")?;
    rest.split_whitespace()
        .find(|w| {
            w.split('.').count() == 3 && w.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

pub(crate) fn is_server(node: &Node) -> bool {
    let labels = node.metadata.labels.as_ref();
    labels.is_some_and(|l| l.get("node-role.kubernetes.io/control-plane").is_some_and(|v| v == "true"))
}

pub(crate) fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn internal_ip(node: &Node) -> Option<String> {
    let addresses = node.status.as_ref()?.addresses.as_ref()?;
    addresses.iter().find(|a| a.type_ == "InternalIP").map(|a| a.address.clone())
}

/// The node kured's lock names, from its DaemonSet's annotation.
fn kured_lock_holder(annotation: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Lock {
        #[serde(rename = "nodeID")]
        node_id: String,
    }
    serde_json::from_str::<Lock>(annotation).ok().map(|l| l.node_id)
}

/// Fills `view` from the API's node.
fn apply_node(view: &mut NodeView, node: &Node, lock_holder: Option<&str>) {
    let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
    view.state = if is_ready(node) { NodeState::Ready } else { NodeState::NotReady };
    view.role = Some(if is_server(node) { Role::Server } else { Role::Agent });
    view.k3s_version = info.map(|i| i.kubelet_version.clone());
    view.os_image = info.map(|i| i.os_image.clone());
    view.flatcar_version = info.and_then(|i| flatcar_version(&i.os_image));
    view.internal_ip = internal_ip(node);
    view.cordoned = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    let annotations = node.metadata.annotations.as_ref();
    let flagged = annotations.is_some_and(|a| a.contains_key(KURED_REBOOT_IN_PROGRESS));
    view.reboot = if lock_holder == Some(view.name.as_str()) {
        Some(Reboot::Rebooting)
    } else if flagged {
        Some(Reboot::Pending)
    } else {
        None
    };
}

/// What disagrees between the plan, the timeline and the API for a planned node.
/// `upgrading_to`: the version an upgrade in the cluster moves nodes to (not a disagreement).
fn problems(view: &NodeView, plan: &ValidatedPlan, upgrading_to: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let planned = plan.nodes().iter().find(|n| n.name == view.name);
    match (view.state, view.install_stage) {
        (NodeState::Missing, Some(Stage::K3sReady)) => {
            out.push("reported k3s-ready during its install, but the cluster has no such node".to_owned())
        }
        (NodeState::NotReady, Some(Stage::K3sReady)) => {
            out.push("reported k3s-ready during its install, but the API says it is not Ready".to_owned())
        }
        (NodeState::Ready, Some(stage)) if stage != Stage::K3sReady && stage != Stage::Armed => out.push(format!(
            "the API says Ready, but its install timeline stopped at {} (it never reported k3s-ready)",
            stage.as_str()
        )),
        _ => {}
    }
    if let (Some(want), Some(have)) = (view.planned_role, view.role)
        && want != have
    {
        out.push(format!(
            "the plan has it as {}, the cluster as {}; reinstall it to change its role",
            want.as_str(),
            have.as_str()
        ));
    }
    if let (Some(n), Some(ip)) = (planned, &view.internal_ip)
        && let Some(addr) = n.address
        && addr.addr().to_string() != *ip
    {
        out.push(format!("the plan gives it {}, the cluster knows it at {ip}", addr.addr()));
    }
    let k3s = &plan.plan().kubernetes.k3s_version;
    if let Some(v) = &view.k3s_version
        && v != k3s
        && Some(v.as_str()) != upgrading_to
        && view.state != NodeState::NotInPlan
    {
        out.push(format!("runs K3s {v}, the plan says {k3s}"));
    }
    out
}

impl Flatlab {
    /// The cluster of plan `name` as its API shows it now. An API that cannot be reached is a
    /// status (`reach`), not an error; errors are for a plan that does not exist or is invalid.
    pub async fn cluster_status(
        &self,
        name: &str,
        access: &Access,
        rng: &mut impl Rng,
    ) -> anyhow::Result<ClusterStatus> {
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let states: Vec<MachineState> =
            self.store().machines(name).await?.iter().filter_map(MachineState::from_row).collect();
        let stage_of = |node: &str| states.iter().find(|s| s.node == node).map(|s| s.stage);
        let mut views: Vec<NodeView> =
            plan.nodes().iter().map(|n| NodeView::planned(&n.name, n.role, stage_of(&n.name))).collect();
        let api_note = api_note(&plan);
        let mut status = ClusterStatus {
            plan: name.to_owned(),
            server: server_url(&plan, access),
            reach: Reach::ForeignCa,
            nodes: Vec::new(),
            api_note,
            upgrade: None,
            upgrade_error: None,
            installed_nodes: u32::try_from(states.iter().filter(|s| s.stage.is_installed()).count()).unwrap_or(0),
            secrets_backup_at: self.secrets_backup_at(name).await?,
            checked_at: self.now(),
        };
        let cc = match self.cluster_client(name, access, rng).await {
            Ok(cc) => cc,
            Err(e) => {
                status.reach = reach_of(&e);
                status.nodes = views;
                return Ok(status);
            }
        };
        status.server = cc.server.clone();
        let nodes = match Api::<Node>::all(cc.client.clone()).list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                status.reach = reach_of(&anyhow::Error::new(e));
                status.nodes = views;
                return Ok(status);
            }
        };
        // The cluster's identity: recorded on first contact; another one is another cluster,
        // even with the plan's CAs (a first server that started a cluster of its own).
        match super::kube_system_uid(&cc.client).await {
            Ok(uid) => {
                if let super::Identity::Other { found, recorded } = self.check_identity(name, &uid).await? {
                    status.reach = Reach::WrongCluster { reason: super::Identity::other_reason(&found, &recorded) };
                    status.nodes = views;
                    return Ok(status);
                }
            }
            Err(e) => {
                status.reach = reach_of(&anyhow::Error::new(e));
                status.nodes = views;
                return Ok(status);
            }
        }
        let version = match cc.client.apiserver_version().await {
            Ok(v) => v.git_version,
            Err(_) => String::from("unknown"),
        };
        status.reach = Reach::Reachable { version };
        // kured's lock is best effort: an older cluster may not run kured yet.
        let lock = Api::<DaemonSet>::namespaced(cc.client.clone(), "kube-system")
            .get_metadata_opt("kured")
            .await
            .ok()
            .flatten()
            .and_then(|m| m.metadata.annotations.and_then(|a| a.get(KURED_LOCK).cloned()))
            .and_then(|a| kured_lock_holder(&a));
        let mut by_name: BTreeMap<String, Node> =
            nodes.into_iter().filter_map(|n| n.metadata.name.clone().map(|name| (name, n))).collect();
        for view in &mut views {
            match by_name.remove(&view.name) {
                Some(node) => apply_node(view, &node, lock.as_deref()),
                None => view.state = NodeState::Missing,
            }
        }
        for (node_name, node) in by_name {
            let mut view = NodeView::planned(&node_name, Role::Agent, None);
            view.planned_role = None;
            apply_node(&mut view, &node, lock.as_deref());
            view.state = NodeState::NotInPlan;
            views.push(view);
        }
        match upgrade_view(self, name, &plan, &cc, &views).await? {
            Ok(view) => status.upgrade = view,
            Err(why) => status.upgrade_error = Some(why),
        }
        // Judged against the plan as it is now, with an upgrade that just finished saved in it.
        let plan = match status.upgrade.as_ref().and_then(|u| u.saved_revision) {
            Some(_) => self.validated_plan(name, "fix the plan's errors first").await?,
            None => plan,
        };
        let upgrading_to = status.upgrade.as_ref().map(|u| u.to.as_str());
        for view in &mut views {
            view.problems = problems(view, &plan, upgrading_to);
        }
        status.nodes = views;
        Ok(status)
    }
}

/// Without a virtual API address, API access depends on whatever answers at the endpoint.
fn api_note(plan: &ValidatedPlan) -> Option<String> {
    if flatlab_render::virtual_ip(plan).is_some() {
        return None;
    }
    let servers = plan.nodes().iter().filter(|n| n.role == Role::Server).count();
    let endpoint = plan.api_endpoint();
    let holder = plan
        .nodes()
        .iter()
        .find(|n| {
            n.address.is_some_and(|a| a.addr().to_string() == endpoint) || format!("{}.local", n.name) == endpoint
        })
        .map(|n| n.name.clone());
    let mut note = format!("API access goes through {endpoint}");
    if servers > 1 {
        let down = match &holder {
            Some(name) => format!("when {name} is down"),
            None => format!("when nothing answers at {endpoint}"),
        };
        note.push_str(&format!(
            ": {down}, the cluster runs on but Flatlab and your kubeconfig cannot reach it; set kubernetes.api_endpoint to a free address for a virtual IP that follows a healthy server"
        ));
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flatcar_version_comes_out_of_the_os_image() {
        assert_eq!(flatcar_version("Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo)").as_deref(), Some("4593.2.5"));
        assert_eq!(flatcar_version("Flatcar Container Linux by Kinvolk 4230.0.0 (Oklo)").as_deref(), Some("4230.0.0"));
        assert_eq!(flatcar_version("Debian GNU/Linux 12 (bookworm)"), None);
    }

    #[test]
    fn kured_s_lock_names_its_node() {
        let a = r#"{"nodeID":"cp2","metadata":{"unschedulable":false},"created":"2026-11-30T03:00:00Z","TTL":0}"#;
        assert_eq!(kured_lock_holder(a).as_deref(), Some("cp2"));
        assert_eq!(kured_lock_holder("{}"), None);
    }
}
