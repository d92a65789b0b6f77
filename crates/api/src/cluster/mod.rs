//! A plan's cluster as the rendered files need it: its join tokens and certificate authorities
//! (made by Flatlab before the first install, or known to have been made by K3s), whether
//! the first server joins a cluster that exists already, and the cluster's identity.

mod client;
mod identity;
mod remove;
mod restore;
mod snapshots;
mod status;
mod upgrade;

pub use client::{Access, Reach};
pub use identity::ClusterDecision;
pub(crate) use identity::{Identity, kube_system_uid};
pub(crate) use remove::ETCD_LEAVE_TIMEOUT;
pub use remove::RemoveStep;
pub use restore::{RestoreProgress, RestoreServer, RestoreStarted};
pub use snapshots::{DownloadedSnapshot, SnapshotList, SnapshotView, TakenSnapshot};
pub use status::{ClusterStatus, NodeState, NodeView, Reboot};
pub use upgrade::{UpgradeStarted, UpgradeView};

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
            first_server_joins: self.first_server_joins(name, states).await?,
            restore: self
                .restoring(name)
                .await?
                .map(|r| flatlab_render::RestoreSnapshot { name: r.snapshot, sha256: r.sha256 }),
        })
    }
}
