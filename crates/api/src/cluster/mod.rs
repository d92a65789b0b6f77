//! A plan's cluster as the rendered files need it: its join tokens and certificate authorities
//! (made by Flatlab before the first install, or known to have been made by K3s), and whether
//! the first server rejoins a cluster that runs on.

mod client;
mod remove;
mod status;
mod upgrade;

pub use client::{Access, Reach};
pub use remove::RemoveStep;
pub use status::{ClusterStatus, NodeState, NodeView, Reboot};
pub use upgrade::{UpgradeStarted, UpgradeView};

use flatlab_bootd::Stage;
use flatlab_model::{Role, ValidatedPlan};
use flatlab_render::ClusterSecrets;
use rand::Rng;

use crate::boot::MachineState;
use crate::pki::{self, AGENT_TOKEN, ClusterPki, PKI};
use crate::{Flatlab, K3S_TOKEN, generate_k3s_token};

impl Flatlab {
    /// The plan's cluster PKI, made on first use. A cluster already installed without one (by
    /// an older Flatlab) is recorded as one whose CAs K3s made, so that its nodes keep joining
    /// it as they did.
    pub(crate) async fn cluster_pki(&self, name: &str, rng: &mut impl Rng) -> anyhow::Result<ClusterPki> {
        if let Some(text) = self.store().secret(name, PKI).await? {
            return ClusterPki::from_json(&text);
        }
        let installed = self
            .store()
            .machines(name)
            .await?
            .iter()
            .filter_map(MachineState::from_row)
            .any(|m| m.stage.is_installed());
        let pki = if installed { ClusterPki::K3sMade } else { pki::generate(self.now(), rng)? };
        let json = pki.to_json();
        let stored = self.store().ensure_secret(name, PKI, self.now(), || json).await?;
        ClusterPki::from_json(&stored)
    }

    /// What the rendered files of `plan` need of its cluster, given its machines' state.
    pub(crate) async fn cluster_secrets(
        &self,
        name: &str,
        plan: &ValidatedPlan,
        states: &[MachineState],
        rng: &mut impl Rng,
    ) -> anyhow::Result<ClusterSecrets> {
        let server_secret = self.store().ensure_secret(name, K3S_TOKEN, self.now(), || generate_k3s_token(rng)).await?;
        let pki = self.cluster_pki(name, rng).await?;
        // A cluster whose CAs K3s made has one token for everyone, as its servers were told.
        let agent_secret = match pki {
            ClusterPki::K3sMade => server_secret.clone(),
            ClusterPki::Flatlab { .. } => {
                self.store().ensure_secret(name, AGENT_TOKEN, self.now(), || generate_k3s_token(rng)).await?
            }
        };
        Ok(ClusterSecrets {
            server_token: pki.token("server", &server_secret),
            agent_token: pki.token("node", &agent_secret),
            ca_files: pki.ca_files(),
            first_server_joins: rejoin_address(plan, states),
        })
    }
}

/// Where the first server joins when it is being installed again while another server runs
/// the cluster (reported `k3s-ready`): that server's address (the virtual API address when Flatlab's kube-vip holds
/// one, which follows a healthy server). None when the first server starts the cluster.
fn rejoin_address(plan: &ValidatedPlan, states: &[MachineState]) -> Option<String> {
    let first = plan.first_server();
    let stage_of = |node: &str| states.iter().find(|s| s.node == node).map(|s| s.stage);
    if stage_of(&first.name).is_some_and(Stage::is_installed) {
        return None;
    }
    let running: Vec<_> = plan
        .nodes()
        .iter()
        .filter(|n| {
            // Only a server that reported K3s running: one merely installed may itself be
            // waiting to join the first server, and the two would wait for each other.
            n.role == Role::Server && n.name != first.name && stage_of(&n.name) == Some(Stage::K3sReady)
        })
        .collect();
    if running.is_empty() {
        return None;
    }
    if let Some(vip) = flatlab_render::virtual_ip(plan) {
        return Some(vip.to_string());
    }
    running
        .iter()
        .find_map(|n| n.address.map(|a| a.addr().to_string()))
        .or_else(|| Some(format!("{}.local", running[0].name)))
}
