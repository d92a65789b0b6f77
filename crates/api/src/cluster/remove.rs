//! Taking a node the plan no longer has out of the running cluster: cordon it, evict its pods,
//! take a server out of etcd (K3s's member controller does it when asked by annotation), delete
//! its Node and its node-password secret so that a machine of that name can join again.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use rand::Rng;
use serde_json::json;

use super::client::Access;
use super::status::NodeState;
use crate::{ApiError, Flatlab};

const ETCD_REMOVE: &str = "etcd.k3s.cattle.io/remove";
const ETCD_REMOVED: &str = "etcd.k3s.cattle.io/removed-node-name";

/// How long K3s gets to take a server out of etcd.
pub(crate) const ETCD_LEAVE_TIMEOUT: Duration = Duration::from_secs(120);

/// A step of a removal, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveStep {
    /// An etcd snapshot taken before anything changed (its file name).
    Snapshot {
        file: String,
    },
    Cordoned,
    Evicted {
        pod: String,
    },
    LeftEtcd,
    Deleted,
}

fn is_daemonset_pod(pod: &Pod) -> bool {
    pod.metadata.owner_references.as_ref().is_some_and(|o| o.iter().any(|o| o.kind == "DaemonSet"))
}

fn is_mirror_pod(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
}

impl Flatlab {
    /// Drains node `node` and deletes it from the cluster of plan `name`. Only for a node the
    /// plan no longer has; never the last server, and a server only while the others are Ready.
    pub async fn remove_cluster_node(
        &self,
        name: &str,
        node: &str,
        access: &Access,
        rng: &mut impl Rng,
        mut progress: impl FnMut(RemoveStep),
    ) -> anyhow::Result<()> {
        let status = self.cluster_status(name, access, rng).await?;
        if !status.reach.is_reachable() {
            return Err(ApiError::ClusterUnreachable { server: status.server, reach: status.reach }.into());
        }
        let Some(view) = status.nodes.iter().find(|n| n.name == node) else {
            return Err(ApiError::BadRequest(format!("the cluster has no node {node}")).into());
        };
        match view.state {
            NodeState::NotInPlan => {}
            NodeState::Missing => return Err(ApiError::BadRequest(format!("{node} is not in the cluster")).into()),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "{node} is still in plan {name}: remove it from the plan first, then from the cluster"
                ))
                .into());
            }
        }
        let server = view.role == Some(flatlab_model::Role::Server);
        if server {
            let others: Vec<_> =
                status.nodes.iter().filter(|n| n.name != node && n.role == Some(flatlab_model::Role::Server)).collect();
            if others.is_empty() {
                return Err(ApiError::BadRequest(format!("{node} is the cluster's last server")).into());
            }
            if let Some(down) = others.iter().find(|n| n.state != NodeState::Ready) {
                return Err(ApiError::BadRequest(format!(
                    "server {} is not Ready: taking {node} out of etcd now could cost the cluster its quorum",
                    down.name
                ))
                .into());
            }
        }
        // A way back first: an etcd snapshot named after what is about to happen.
        let taken = self
            .take_snapshot(name, &format!("before removing {node}"), access, rng)
            .await
            .context("taking an etcd snapshot before the removal (nothing was changed)")?;
        for file in taken.files {
            progress(RemoveStep::Snapshot { file });
        }
        let cc = self.cluster_client(name, access, rng).await?;
        let nodes: Api<Node> = Api::all(cc.client.clone());
        let merge = |value: serde_json::Value| Patch::Merge(value);
        nodes
            .patch(node, &PatchParams::default(), &merge(json!({ "spec": { "unschedulable": true } })))
            .await
            .with_context(|| format!("cordoning {node}"))?;
        progress(RemoveStep::Cordoned);
        let pods: Api<Pod> = Api::all(cc.client.clone());
        let on_node = pods
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .with_context(|| format!("listing the pods on {node}"))?;
        for pod in on_node.items.iter().filter(|p| !is_daemonset_pod(p) && !is_mirror_pod(p)) {
            let (Some(pod_name), Some(ns)) = (pod.metadata.name.as_deref(), pod.metadata.namespace.as_deref()) else {
                continue;
            };
            match Api::<Pod>::namespaced(cc.client.clone(), ns).evict(pod_name, &EvictParams::default()).await {
                Ok(_) => {}
                // The eviction API's answer when a PodDisruptionBudget does not allow it now.
                Err(kube::Error::Api(status)) if status.code == 429 => {
                    return Err(ApiError::BadRequest(format!(
                        "{ns}/{pod_name} cannot be evicted now: its disruption budget does not allow it ({}); {node} stays cordoned: try again once more of its pods run elsewhere",
                        status.message
                    ))
                    .into());
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("evicting {ns}/{pod_name} from {node}")));
                }
            }
            progress(RemoveStep::Evicted { pod: format!("{ns}/{pod_name}") });
        }
        if server {
            nodes
                .patch(
                    node,
                    &PatchParams::default(),
                    &merge(json!({ "metadata": { "annotations": { ETCD_REMOVE: "true" } } })),
                )
                .await
                .with_context(|| format!("asking K3s to take {node} out of etcd"))?;
            let timeout = self.etcd_leave_timeout;
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let current = nodes.get(node).await.with_context(|| format!("reading {node}"))?;
                if current.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ETCD_REMOVED)) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "K3s did not take {node} out of etcd within {} s; its Node stays, cordoned, so that nothing is lost: try again once every server is Ready",
                        timeout.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            progress(RemoveStep::LeftEtcd);
        }
        nodes.delete(node, &DeleteParams::default()).await.with_context(|| format!("deleting the Node {node}"))?;
        // K3s keeps a node's password to stop another machine taking its name; the name is free now.
        let secrets: Api<Secret> = Api::namespaced(cc.client.clone(), "kube-system");
        match secrets.delete(&format!("{node}.node-password.k3s"), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("deleting {node}'s node password"))),
        }
        progress(RemoveStep::Deleted);
        Ok(())
    }
}
