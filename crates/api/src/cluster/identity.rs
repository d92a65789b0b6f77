//! Which cluster is the plan's, as the cluster itself says: its identity is the UID of its
//! `kube-system` namespace, which K3s makes once, when a server starts a new cluster, and keeps
//! in etcd (a restore from a snapshot keeps it; a second `cluster-init` makes another). Flatlab
//! records it on first contact, beside the plan's secrets (so a secrets backup carries it), and
//! from then on a cluster with the plan's CAs but another identity is another cluster.
//!
//! Arming a server asks the cluster first ([`Flatlab::cluster_decision`]): a cluster that runs
//! decides that the server joins it; one that ran and answers nowhere is never silently
//! replaced by a new one.

use std::time::Duration;

use flatlab_bootd::Stage;
use flatlab_model::{Role, ValidatedPlan};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Api;
use kube::api::ListParams;
use rand::Rng;

use super::client::{Access, Reach, reach_of};
use crate::boot::MachineState;
use crate::{ApiError, Flatlab};

/// The secret holding the cluster's identity (the `kube-system` namespace's UID).
pub(crate) const IDENTITY: &str = "cluster-identity";
/// Plan state: when a machine of the plan first reported `k3s-ready` (the cluster ran).
const RAN: &str = "cluster-ran";
/// Plan state: the user chose to start a new cluster; the first server starts one.
const START_NEW: &str = "cluster-start-new";

/// How long arming waits for each address's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(8);

/// The cluster's identity as its API gives it.
pub(crate) async fn kube_system_uid(client: &kube::Client) -> Result<String, kube::Error> {
    let ns = Api::<Namespace>::all(client.clone()).get("kube-system").await?;
    Ok(ns.metadata.uid.unwrap_or_default())
}

/// What comparing an answering cluster's identity with the recorded one says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The recorded one (or recorded just now: the first contact).
    Ours,
    /// Another cluster with the plan's CAs.
    Other { found: String, recorded: String },
}

impl Identity {
    /// The reason shown for a cluster that is not the plan's.
    pub(crate) fn other_reason(found: &str, recorded: &str) -> String {
        format!(
            "it has this plan's CAs but is another cluster: its kube-system namespace is {found}, the plan's cluster has {recorded} (a server started a cluster of its own, or the cluster was made again)"
        )
    }
}

/// What the cluster says about a server being armed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterDecision {
    /// The plan's cluster never ran: the first server starts it.
    Start,
    /// The plan's cluster runs (it answered at `via`, with another server Ready): the server
    /// joins it, through whichever server is up when it starts.
    Join { via: String },
    /// The user chose to start a new cluster.
    StartNew,
}

/// Each address asked, and what it answered.
struct Answer {
    url: String,
    result: Result<(String, Vec<Node>), anyhow::Error>,
}

impl Flatlab {
    /// Compares the identity of a cluster that answered with the recorded one; records it on
    /// first contact (and ends a "start a new cluster" choice: the new one now has its identity).
    pub(crate) async fn check_identity(&self, name: &str, uid: &str) -> anyhow::Result<Identity> {
        match self.store().secret(name, IDENTITY).await? {
            Some(recorded) if recorded == uid => Ok(Identity::Ours),
            Some(recorded) => Ok(Identity::Other { found: uid.to_owned(), recorded }),
            None => {
                let stored = self.store().ensure_secret(name, IDENTITY, self.now(), || uid.to_owned()).await?;
                self.store().delete_state(name, START_NEW).await?;
                tracing::info!(plan = name, identity = uid, "recorded the cluster's identity");
                if stored == uid {
                    Ok(Identity::Ours)
                } else {
                    Ok(Identity::Other { found: uid.to_owned(), recorded: stored })
                }
            }
        }
    }

    /// The recorded identity of the plan's cluster, if Flatlab ever reached it.
    pub async fn cluster_identity(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.store().secret(name, IDENTITY).await?)
    }

    /// Remembers that a machine of the plan reported K3s running: from then on the plan's
    /// cluster exists, and its first server never starts another silently.
    pub(crate) async fn record_cluster_ran(&self, name: &str) -> anyhow::Result<()> {
        if self.store().state(name, RAN).await?.is_none() {
            self.store().set_state(name, RAN, &self.now().to_string(), self.now()).await?;
        }
        Ok(())
    }

    /// Whether the plan's cluster ever ran: a machine reported `k3s-ready` (now or in an earlier
    /// install), or Flatlab reached it (here, or on the workstation a secrets backup came from).
    pub(crate) async fn cluster_ran(&self, name: &str, states: &[MachineState]) -> anyhow::Result<bool> {
        let reported = states.iter().any(|s| s.history.iter().any(|h| h.reached() == Some(Stage::K3sReady)));
        Ok(reported
            || self.store().state(name, RAN).await?.is_some()
            || self.store().secret(name, IDENTITY).await?.is_some())
    }

    /// Whether the plan's first server joins a cluster instead of starting one: the cluster
    /// exists (it ran), unless the user chose to start a new one.
    pub(crate) async fn first_server_joins(&self, name: &str, states: &[MachineState]) -> anyhow::Result<bool> {
        if self.store().state(name, START_NEW).await?.is_some() {
            return Ok(false);
        }
        self.cluster_ran(name, states).await
    }

    /// Asks the cluster what arming server `node` means, before anything changes: through the
    /// API endpoint and each planned server at once. `new_cluster`: the user chose to start a
    /// new cluster (the old cluster's data is gone).
    pub(crate) async fn cluster_decision(
        &self,
        name: &str,
        plan: &ValidatedPlan,
        node: &str,
        new_cluster: bool,
        rng: &mut impl Rng,
    ) -> anyhow::Result<ClusterDecision> {
        let first = plan.first_server().name.clone();
        if new_cluster {
            if node != first {
                return Err(ApiError::BadRequest(format!(
                    "a new cluster starts on the plan's first server, {first}: arm {first} to start it, then the other servers to join it"
                ))
                .into());
            }
            return Ok(ClusterDecision::StartNew);
        }
        let states: Vec<MachineState> =
            self.store().machines(name).await?.iter().filter_map(MachineState::from_row).collect();
        let ran = self.cluster_ran(name, &states).await?;
        if !ran && self.store().state(name, START_NEW).await?.is_none() {
            // Never installed: nothing to ask.
            return Ok(ClusterDecision::Start);
        }
        if matches!(self.cluster_pki(name, rng).await?, crate::pki::ClusterPki::K3sMade) {
            // Flatlab has no keys to ask a cluster whose CAs K3s made: it goes by what it knows.
            return Ok(ClusterDecision::Join { via: String::new() });
        }
        let answers = self.ask_every_server(name, plan, rng).await?;
        let mut silent = Vec::new();
        let mut lone = None;
        for Answer { url, result } in answers {
            let (uid, nodes) = match result {
                Ok(r) => r,
                Err(e) => {
                    silent.push(format!("{url}: {}", reach_words(&reach_of(&e))));
                    continue;
                }
            };
            if let Identity::Other { found, recorded } = self.check_identity(name, &uid).await? {
                return Err(ApiError::AnotherCluster(format!(
                    "not arming {node}: another cluster answers at {url}: {}; Flatlab will not mix it with the plan's",
                    Identity::other_reason(&found, &recorded)
                ))
                .into());
            }
            let others_ready = nodes.iter().any(|n| {
                n.metadata.name.as_deref() != Some(node) && super::status::is_server(n) && super::status::is_ready(n)
            });
            if others_ready {
                return Ok(ClusterDecision::Join { via: url });
            }
            lone = Some(url);
        }
        if node != first && self.store().state(name, START_NEW).await?.is_none() {
            // Not the server that would start a cluster: it joins once a server is back.
            return Ok(ClusterDecision::Join { via: String::new() });
        }
        let why = match lone {
            Some(url) => format!("the cluster answers at {url}, but no server other than {node} is Ready in it"),
            None => format!("no server of the cluster answers ({})", silent.join("; ")),
        };
        Err(ApiError::ClusterLost(format!(
            "not arming {node}: plan {name}'s cluster has run, and {why}; installing {node} now would start a second, empty cluster. Choose one: wait for a server to come back and arm {node} again; restore the cluster from a snapshot (`flatlab cluster restore {name} SNAPSHOT`, the app's Restore from a snapshot); or start a new cluster, losing the old cluster's data (`flatlab arm {name} {node} --new-cluster`, the app's Start a new cluster)"
        ))
        .into())
    }

    /// Applies a decision before the server's row is armed.
    pub(crate) async fn take_decision(&self, name: &str, decision: &ClusterDecision) -> anyhow::Result<()> {
        match decision {
            ClusterDecision::StartNew => {
                // The old cluster is given up: its identity goes, the new cluster's is recorded
                // on first contact.
                let kept: Vec<(String, String)> =
                    self.store().secrets(name).await?.into_iter().filter(|(k, _)| k != IDENTITY).collect();
                self.store().replace_secrets(name, &kept, self.now()).await?;
                self.store().delete_state(name, RAN).await?;
                self.store().set_state(name, START_NEW, &self.now().to_string(), self.now()).await?;
            }
            ClusterDecision::Join { .. } => {
                self.store().delete_state(name, START_NEW).await?;
            }
            ClusterDecision::Start => {}
        }
        Ok(())
    }

    /// Every address the plan's cluster may answer at (the API endpoint, then each server),
    /// asked at once: its identity and its nodes, or why not.
    async fn ask_every_server(
        &self,
        name: &str,
        plan: &ValidatedPlan,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Vec<Answer>> {
        let mut urls = vec![crate::kubeconfig::api_url(plan)];
        for n in plan.nodes().iter().filter(|n| n.role == Role::Server) {
            let host = match n.address {
                Some(a) => a.addr().to_string(),
                None => format!("{}.local", n.name),
            };
            let url = server_url_for(&host);
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, url) in urls.iter().enumerate() {
            let access = Access { server: Some(url.clone()) };
            let client = match self.cluster_client(name, &access, rng).await {
                Ok(cc) => cc.client,
                Err(e) => {
                    tasks.spawn(async move { (i, Err(e)) });
                    continue;
                }
            };
            tasks.spawn(async move {
                let ask = async {
                    let uid = kube_system_uid(&client).await?;
                    let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await?;
                    Ok::<_, kube::Error>((uid, nodes.items))
                };
                let result = match tokio::time::timeout(ASK_TIMEOUT, ask).await {
                    Ok(r) => r.map_err(anyhow::Error::new),
                    Err(_) => Err(anyhow::anyhow!("no answer (timed out)")),
                };
                (i, result)
            });
        }
        let mut answers: Vec<Option<Answer>> = urls.iter().map(|_| None).collect();
        while let Some(done) = tasks.join_next().await {
            let (i, result) = done?;
            answers[i] = Some(Answer { url: urls[i].clone(), result });
        }
        Ok(answers.into_iter().flatten().collect())
    }
}

fn server_url_for(host: &str) -> String {
    if host.contains(':') { format!("https://[{host}]:6443") } else { format!("https://{host}:6443") }
}

/// A few words for what an address answered.
fn reach_words(reach: &Reach) -> String {
    match reach {
        Reach::Reachable { .. } => "it answers".into(),
        Reach::Unreachable { reason }
        | Reach::CertificateRefused { reason }
        | Reach::WrongCluster { reason }
        | Reach::BadServerCertificate { reason } => reason.clone(),
        Reach::ForeignCa => "Flatlab has no keys for it".into(),
    }
}
