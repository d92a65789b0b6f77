//! Discovery: machines found over mDNS, merged with machines the boot server saw network-boot,
//! each matched against the stored plans.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use flatlab_discovery::{FlatlabNode, Host, ServiceRecord};
use flatlab_model::validate;
use serde::Serialize;
use ts_rs::TS;

use crate::Flatlab;

/// A machine as the "found on the network" list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Sighting {
    /// Its mDNS host name; none for a machine only seen network-booting.
    pub name: Option<String>,
    pub addresses: Vec<String>,
    pub mac: Option<String>,
    pub services: Vec<ServiceRecord>,
    /// What an installed Flatlab node announced about itself.
    pub flatlab: Option<FlatlabNode>,
    /// Firmware, when the boot server saw it network-boot.
    pub firmware: Option<String>,
    /// `mdns`, `network-boot`, or both.
    pub sources: Vec<String>,
    /// The plan and node this machine is, when its MAC or announcement matches one.
    pub plan: Option<String>,
    pub node: Option<String>,
}

impl Flatlab {
    /// Browses mDNS for `duration` and merges in the boot server's sightings.
    pub async fn discover(&self, duration: Duration) -> anyhow::Result<Vec<Sighting>> {
        let hosts: Vec<Host> = tokio::task::spawn_blocking(move || flatlab_discovery::discover(duration))
            .await
            .context("discovery stopped")??;
        let booted: BTreeMap<String, Option<String>> =
            self.store().discovered().await?.into_iter().map(|d| (d.mac, d.firmware)).collect();

        // Which plan node each MAC is.
        let mut planned: BTreeMap<String, (String, String)> = BTreeMap::new();
        for listing in self.store().list_plans().await? {
            let plan = self.store().load_plan(&listing.name).await?.plan;
            for node in &plan.nodes {
                if let Ok(mac) = node.mac.parse::<flatlab_model::MacAddr>() {
                    planned.insert(mac.to_string(), (listing.name.clone(), node.name.clone()));
                }
            }
        }

        let mut out = Vec::new();
        let mut seen_macs = Vec::new();
        for h in hosts {
            let firmware = h.mac.as_ref().and_then(|m| booted.get(m).cloned().flatten());
            let mut sources = vec!["mdns".to_owned()];
            if h.mac.as_ref().is_some_and(|m| booted.contains_key(m)) {
                sources.push("network-boot".into());
            }
            let (plan, node) = match (&h.flatlab, h.mac.as_ref().and_then(|m| planned.get(m))) {
                (Some(f), _) => (Some(f.plan.clone()), Some(f.node.clone())),
                (None, Some((p, n))) => (Some(p.clone()), Some(n.clone())),
                (None, None) => (None, None),
            };
            if let Some(f) = &h.flatlab {
                self.mark_booted(&f.plan, &f.node).await;
            }
            seen_macs.extend(h.mac.clone());
            out.push(Sighting {
                name: Some(h.name),
                addresses: h.addresses,
                mac: h.mac,
                services: h.services,
                flatlab: h.flatlab,
                firmware,
                sources,
                plan,
                node,
            });
        }
        for (mac, firmware) in booted {
            if seen_macs.contains(&mac) {
                continue;
            }
            let (plan, node) = planned.get(&mac).cloned().map_or((None, None), |(p, n)| (Some(p), Some(n)));
            out.push(Sighting {
                name: None,
                addresses: Vec::new(),
                mac: Some(mac),
                services: Vec::new(),
                flatlab: None,
                firmware,
                sources: vec!["network-boot".into()],
                plan,
                node,
            });
        }
        Ok(out)
    }

    /// An installed node announced itself: it booted from disk. Moves its stored state from
    /// `installed` to `booted`.
    async fn mark_booted(&self, plan: &str, node: &str) {
        let Ok(view) = self.show_plan(plan, None).await else { return };
        let Ok(valid) = validate(&view.plan).into_validated() else { return };
        let Some(n) = valid.nodes().iter().find(|n| n.name == node) else { return };
        if let Err(e) = self.record_announced(plan, n.mac).await {
            tracing::warn!(plan, node, error = %e, "cannot record that the node booted");
        }
    }
}
