//! K3s upgrades through system-upgrade-controller: Flatlab applies a server Plan and an agent
//! Plan (server-side apply, never files in K3s's auto-deploy folder, which K3s re-applies on
//! every start), the controller upgrades one node at a time, servers first, and Flatlab follows
//! each node's kubelet version. When every node runs the new version the plan gets it as a new
//! revision.

use anyhow::Context;
use flatlab_model::{K3sVersion, ValidatedPlan};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ts_rs::TS;

use super::client::{Access, ClusterClient};
use super::status::{NodeState, NodeView};
use crate::{ApiError, Flatlab};

/// Where the controller runs and looks for Plans.
const NAMESPACE: &str = "system-upgrade";
const SERVER_PLAN: &str = "server-plan";
const AGENT_PLAN: &str = "agent-plan";
/// The image that replaces the K3s binary (tagged by the controller with the Plan's version).
const UPGRADE_IMAGE: &str = "rancher/k3s-upgrade";
/// The upgrade Flatlab started and has not yet written into the plan.
pub(crate) const PENDING: &str = "k3s-upgrade";

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    version: String,
    sha256: Option<String>,
}

/// A K3s upgrade the cluster runs (or ran), node by node.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct UpgradeView {
    /// The version the Plans ask for.
    pub to: String,
    /// Nodes that run it.
    pub done: Vec<String>,
    /// Nodes still on another version.
    pub remaining: Vec<String>,
    /// The plan revision that records the new version, once every node runs it.
    #[ts(type = "number | null")]
    pub saved_revision: Option<i64>,
}

/// An upgrade just handed to the cluster.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct UpgradeStarted {
    pub from: String,
    pub to: String,
    pub nodes: u32,
    /// The etcd snapshot taken before the upgrade (its file names).
    pub snapshot: Vec<String>,
}

fn plan_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("upgrade.cattle.io", "v1", "Plan"), "plans")
}

/// The two Plans of K3s's documentation: servers one at a time (cordoned), then agents, whose
/// `prepare` step waits for the server Plan to finish.
pub(crate) fn upgrade_plans(version: &str) -> [Value; 2] {
    let meta = |name: &str| json!({ "name": name, "namespace": NAMESPACE, "labels": { "app.kubernetes.io/managed-by": "flatlab" } });
    let server = json!({
        "apiVersion": "upgrade.cattle.io/v1",
        "kind": "Plan",
        "metadata": meta(SERVER_PLAN),
        "spec": {
            "concurrency": 1,
            "cordon": true,
            "nodeSelector": { "matchExpressions": [
                { "key": "node-role.kubernetes.io/control-plane", "operator": "In", "values": ["true"] },
            ] },
            "serviceAccountName": "system-upgrade",
            "upgrade": { "image": UPGRADE_IMAGE },
            "version": version,
        },
    });
    let agent = json!({
        "apiVersion": "upgrade.cattle.io/v1",
        "kind": "Plan",
        "metadata": meta(AGENT_PLAN),
        "spec": {
            "concurrency": 1,
            "cordon": true,
            "nodeSelector": { "matchExpressions": [
                { "key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist" },
            ] },
            "prepare": { "image": UPGRADE_IMAGE, "args": ["prepare", SERVER_PLAN] },
            "serviceAccountName": "system-upgrade",
            "upgrade": { "image": UPGRADE_IMAGE },
            "version": version,
        },
    });
    [server, agent]
}

/// Why an upgrade from `from` to `to` is not one K3s supports, if it is not.
pub(crate) fn refusal(from: &K3sVersion, to: &K3sVersion) -> Option<String> {
    if to == from {
        return Some(format!("the cluster runs {to} already"));
    }
    if to < from {
        return Some(format!(
            "{to} is older than the {from} the cluster runs: K3s does not downgrade (its datastore may not read back)"
        ));
    }
    if to.major != from.major || to.minor > from.minor + 1 {
        return Some(format!(
            "{to} skips a minor version: Kubernetes upgrades one minor version at a time, so upgrade to the newest v{}.{}.x first",
            from.major,
            from.minor + 1
        ));
    }
    None
}

fn check_sha256(sha: &str) -> anyhow::Result<String> {
    let sha = sha.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest(format!("{sha} is not a SHA-256 (64 hex digits)")).into());
    }
    Ok(sha)
}

impl Flatlab {
    /// Hands the cluster an upgrade to K3s `to`: checks it against what every node runs, applies
    /// the Plans, and remembers `sha256` (the new `k3s_sha256` of the plan, if the user pins one).
    pub async fn start_k3s_upgrade(
        &self,
        name: &str,
        to: &str,
        sha256: Option<&str>,
        access: &Access,
        rng: &mut impl Rng,
    ) -> anyhow::Result<UpgradeStarted> {
        let target = K3sVersion::parse(to.trim())
            .ok_or_else(|| ApiError::BadRequest(format!("{to} is not a K3s release such as v1.33.4+k3s1")))?;
        let sha256 = sha256.map(check_sha256).transpose()?;
        let status = self.cluster_status(name, access, rng).await?;
        if !status.reach.is_reachable() {
            return Err(ApiError::ClusterUnreachable { server: status.server, reach: status.reach }.into());
        }
        if let Some(why) = &status.upgrade_error {
            return Err(ApiError::UpgradeRefused(format!(
                "cannot tell whether an upgrade is running ({why}); try again once the API answers it"
            ))
            .into());
        }
        let running: Vec<&NodeView> = status.nodes.iter().filter(|n| n.k3s_version.is_some()).collect();
        if running.is_empty() {
            return Err(ApiError::UpgradeRefused("the cluster has no nodes to upgrade".into()).into());
        }
        if let Some(u) = &status.upgrade
            && !u.remaining.is_empty()
            && u.to != target.to_string()
        {
            return Err(ApiError::UpgradeRefused(format!(
                "an upgrade to {} is running ({} of {} nodes to go); let it finish first",
                u.to,
                u.remaining.len(),
                u.remaining.len() + u.done.len()
            ))
            .into());
        }
        // The oldest node decides: an upgrade must be one step for every node.
        let mut versions = Vec::new();
        for n in &running {
            let v = n.k3s_version.as_deref().unwrap_or_default();
            versions.push(K3sVersion::parse(v).ok_or_else(|| {
                ApiError::UpgradeRefused(format!("{} runs {v}, which is not a K3s release Flatlab can compare", n.name))
            })?);
        }
        let from = versions.iter().min().cloned().context("no versions")?;
        let newest = versions.iter().max().cloned().context("no versions")?;
        if target < newest {
            let node = running.iter().find(|n| n.k3s_version.as_deref() == Some(newest.to_string().as_str()));
            let node = node.map(|n| n.name.as_str()).unwrap_or("a node");
            return Err(
                ApiError::UpgradeRefused(format!("{node} runs {newest} already: K3s does not downgrade")).into()
            );
        }
        if let Some(why) = refusal(&from, &target) {
            return Err(ApiError::UpgradeRefused(why).into());
        }
        // A way back first: an etcd snapshot named after the upgrade.
        let taken = self
            .take_snapshot(name, &format!("before upgrade to {target}"), access, rng)
            .await
            .context("taking an etcd snapshot before the upgrade (nothing was changed)")?;
        let cc = self.cluster_client(name, access, rng).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(cc.client.clone(), NAMESPACE, &plan_resource());
        for plan in upgrade_plans(&target.to_string()) {
            let plan_name = plan["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let obj: DynamicObject = serde_json::from_value(plan)?;
            api.patch(&plan_name, &PatchParams::apply("flatlab").force(), &Patch::Apply(&obj)).await.map_err(|e| {
                match &e {
                    kube::Error::Api(s) if s.code == 404 => anyhow::Error::new(ApiError::UpgradeRefused(
                        "the cluster has no system-upgrade-controller (it was installed by an older Flatlab): reinstall its first server, or apply assets/manifests/system-upgrade-controller.yaml".into(),
                    )),
                    _ => anyhow::Error::new(e).context(format!("applying the Plan {plan_name}")),
                }
            })?;
        }
        // Remembered once the cluster has the Plans: the status saves the plan when it is done.
        let pending = serde_json::to_string(&Pending { version: target.to_string(), sha256 })?;
        self.store().set_state(name, PENDING, &pending, self.now()).await?;
        Ok(UpgradeStarted {
            from: from.to_string(),
            to: target.to_string(),
            nodes: u32::try_from(running.len()).unwrap_or(u32::MAX),
            snapshot: taken.files,
        })
    }
}

/// The upgrade the cluster's Plans describe, against each node's kubelet version; saves the
/// plan's new version once every node runs it (if Flatlab started that upgrade). The inner
/// error says why the API could not tell (which is not the same as no upgrade).
pub(crate) async fn upgrade_view(
    flatlab: &Flatlab,
    name: &str,
    plan: &ValidatedPlan,
    cc: &ClusterClient,
    nodes: &[NodeView],
) -> anyhow::Result<Result<Option<UpgradeView>, String>> {
    let api: Api<DynamicObject> = Api::namespaced_with(cc.client.clone(), NAMESPACE, &plan_resource());
    let server_plan = match api.get_opt(SERVER_PLAN).await {
        Ok(Some(p)) => p,
        // A cluster without the controller (its API answers 404), or without the Plan: no upgrade.
        Ok(None) => return Ok(Ok(None)),
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Ok(None)),
        Err(e) => return Ok(Err(format!("cannot read the upgrade Plan {SERVER_PLAN}: {e}"))),
    };
    let Some(to) = server_plan.data["spec"]["version"].as_str().map(str::to_owned) else { return Ok(Ok(None)) };
    let (mut done, mut remaining) = (Vec::new(), Vec::new());
    for n in nodes.iter().filter(|n| n.k3s_version.is_some() && n.state != NodeState::Missing) {
        if n.k3s_version.as_deref() == Some(to.as_str()) {
            done.push(n.name.clone())
        } else {
            remaining.push(n.name.clone())
        }
    }
    let mut view = UpgradeView { to: to.clone(), done, remaining, saved_revision: None };
    if view.remaining.is_empty() {
        let pending = flatlab.store().state(name, PENDING).await?;
        let pending: Option<Pending> = pending.and_then(|p| serde_json::from_str(&p).ok());
        if let Some(p) = pending.filter(|p| p.version == to) {
            let mut edited = plan.plan().clone();
            edited.kubernetes.k3s_version = to.clone();
            edited.kubernetes.k3s_sha256 = p.sha256;
            let outcome =
                flatlab.save_plan(&edited, &format!("K3s {to} on every node (upgraded by the cluster)")).await?;
            flatlab.store().delete_state(name, PENDING).await?;
            view.saved_revision = Some(outcome.saved.revision);
        }
    }
    Ok(Ok(Some(view)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> K3sVersion {
        K3sVersion::parse(s).expect(s)
    }

    #[test]
    fn upgrades_go_forward_one_minor_version_at_a_time() {
        assert_eq!(refusal(&v("v1.32.2+k3s1"), &v("v1.32.5+k3s1")), None);
        assert_eq!(refusal(&v("v1.32.2+k3s1"), &v("v1.33.4+k3s1")), None);
        assert_eq!(refusal(&v("v1.32.2+k3s1"), &v("v1.32.2+k3s2")), None);
        assert!(refusal(&v("v1.32.2+k3s1"), &v("v1.34.1+k3s1")).is_some_and(|w| w.contains("v1.33.x first")));
        assert!(refusal(&v("v1.32.2+k3s1"), &v("v1.31.9+k3s1")).is_some_and(|w| w.contains("does not downgrade")));
        assert!(refusal(&v("v1.32.2+k3s1"), &v("v1.32.2+k3s1")).is_some_and(|w| w.contains("already")));
        assert!(refusal(&v("v1.32.2+k3s1"), &v("v2.0.0+k3s1")).is_some());
    }

    #[test]
    fn the_agent_plan_waits_for_the_server_plan() {
        let [server, agent] = upgrade_plans("v1.33.4+k3s1");
        assert_eq!(server["spec"]["concurrency"], 1);
        assert_eq!(server["spec"]["cordon"], true);
        assert_eq!(agent["spec"]["prepare"]["args"], json!(["prepare", "server-plan"]));
        assert_eq!(agent["spec"]["version"], "v1.33.4+k3s1");
        assert_eq!(server["metadata"]["namespace"], "system-upgrade");
    }
}
