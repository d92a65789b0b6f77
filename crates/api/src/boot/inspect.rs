//! Inspections: a machine booted to report its hardware before it is installed. The user asks
//! for one (`flatlab inspect`, the app's Inspect); it is kept with the plan (plan state
//! `inspect`, one entry by MAC with its token) until the machine is armed for install, and a
//! running boot server takes it up within [`SYNC_EVERY`], as it does a `flatlab arm` from
//! another process.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use flatlab_bootd::{InspectSpec, Mac, Registry, Stage};
use flatlab_model::MacAddr;
use rand::Rng;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::machines::wire_mac;
use crate::{Flatlab, Millis};

/// The plan state key inspections live under.
const KEY: &str = "inspect";

/// How often a running boot server looks in the store for machines armed or inspected by
/// another process (the CLI, the app while the sidecar runs).
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    token: String,
    node: Option<String>,
    at: Millis,
}

type StoredMap = BTreeMap<String, Stored>;

/// Which machine to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectTarget {
    /// A node of the plan.
    Node(String),
    /// A machine by its MAC: one the plan has, or one it does not have yet.
    Mac(MacAddr),
}

/// An inspection that was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct InspectRequested {
    pub mac: String,
    /// The plan's node, when the machine is one.
    pub node: Option<String>,
}

/// One at a time: an inspection is a read-modify-write of one plan state value.
static WRITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Flatlab {
    /// Inspects a machine at its next network boot: it gets the Flatcar live system, which posts
    /// its hardware and then waits; arming it for install later installs it from there. A
    /// running boot server takes it up within two seconds; a machine already waiting in a
    /// stranger's script takes it up at its next ask.
    pub async fn inspect_machine(
        &self,
        plan: &str,
        target: &InspectTarget,
        rng: &mut impl Rng,
    ) -> anyhow::Result<InspectRequested> {
        let validated = self.validated_plan(plan, "fix the plan's errors first").await?;
        let (mac, node) = match target {
            InspectTarget::Node(name) => {
                let Some(n) = validated.nodes().iter().find(|n| &n.name == name) else {
                    bail!("plan {plan} has no node called `{name}`");
                };
                (n.mac, Some(n.name.clone()))
            }
            InspectTarget::Mac(mac) => (*mac, validated.nodes().iter().find(|n| n.mac == *mac).map(|n| n.name.clone())),
        };
        let token = crate::generate_boot_token(rng);
        let mac_text = wire_mac(mac).to_string();
        let _one = WRITING.lock().await;
        let mut all = self.stored_inspections(plan).await?;
        all.insert(mac_text.clone(), Stored { token, node: node.clone(), at: self.now() });
        self.save_inspections(plan, &all).await?;
        Ok(InspectRequested { mac: mac_text, node })
    }

    /// Ends machine `mac`'s inspection in the store (it is armed for install now; a running
    /// boot server hands its live system the install when it next asks).
    pub(crate) async fn end_inspection(&self, plan: &str, mac: Mac) -> anyhow::Result<()> {
        let _one = WRITING.lock().await;
        let mut all = self.stored_inspections(plan).await?;
        if all.remove(&mac.to_string()).is_some() {
            self.save_inspections(plan, &all).await?;
        }
        Ok(())
    }

    /// The machines of plan `name` to inspect, by MAC.
    pub async fn inspections(&self, name: &str) -> anyhow::Result<Vec<InspectRequested>> {
        Ok(self
            .stored_inspections(name)
            .await?
            .into_iter()
            .map(|(mac, s)| InspectRequested { mac, node: s.node })
            .collect())
    }

    async fn stored_inspections(&self, plan: &str) -> anyhow::Result<StoredMap> {
        match self.store().state(plan, KEY).await? {
            Some(text) => serde_json::from_str(&text).context("reading the plan's inspections"),
            None => Ok(StoredMap::new()),
        }
    }

    async fn save_inspections(&self, plan: &str, all: &StoredMap) -> anyhow::Result<()> {
        let text = serde_json::to_string(all).context("encoding inspections")?;
        self.store().set_state(plan, KEY, &text, self.now()).await?;
        Ok(())
    }

    /// Brings a running boot server up to date with the store: machines armed by another
    /// process (a new token, armed), and inspections it does not have yet.
    pub(crate) async fn sync_boot_server(
        &self,
        name: &str,
        registry: &Registry,
        http_base: &str,
        mirror: Option<&std::path::Path>,
    ) -> anyhow::Result<()> {
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let mut rng: rand::rngs::StdRng = rand::SeedableRng::from_os_rng();
        let states = self.machine_states(name, &plan, &mut rng).await?;
        let rearmed: Vec<&str> = states
            .iter()
            .filter(|s| {
                s.stage == Stage::Armed && registry.machine_token(s.mac).is_none_or(|(token, _)| token != s.token)
            })
            .map(|s| s.node.as_str())
            .collect();
        if !rearmed.is_empty() {
            let mut ignored = Vec::new();
            let specs = self.boot_specs(name, &plan, &states, http_base, mirror, &mut ignored, &mut rng).await?;
            for spec in specs.into_iter().filter(|s| rearmed.contains(&s.node.as_str())) {
                tracing::info!(node = %spec.node, "armed by another process; taken up by the running boot server");
                registry.arm(spec).await;
            }
        }
        for (mac, stored) in self.stored_inspections(name).await? {
            let Ok(wire) = mac.parse::<Mac>() else { continue };
            if registry.inspection_token(wire).as_deref() == Some(stored.token.as_str()) {
                continue;
            }
            let files = flatlab_render::render_inspection(&plan, http_base, &stored.token, &mac)
                .with_context(|| format!("rendering the inspection of {mac}"))?;
            registry.inspect(InspectSpec {
                mac: wire,
                node: stored.node,
                token: stored.token,
                ipxe_script: files.ipxe,
                ignition: files.ignition,
            });
        }
        Ok(())
    }
}
