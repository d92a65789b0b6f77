//! Machine inventories: the hardware each planned machine's live system posted, kept per plan
//! (the plan state `inventory`, one JSON object by MAC), and what it means for the plan's node.

use anyhow::Context;
use flatlab_model::Inventory;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{Flatlab, Millis};

/// The plan state key the inventories live under.
const KEY: &str = "inventory";

/// One machine's inventory as Flatlab keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MachineInventory {
    pub mac: String,
    /// The plan's node this machine is; empty for a machine inspected that the plan does not
    /// have (yet).
    pub node: String,
    /// When it was posted (ms since the epoch).
    #[ts(type = "number")]
    pub at: Millis,
    pub inventory: Inventory,
    /// The disk to install to when the plan leaves the choice to Flatlab: the stable path of
    /// the machine's only non-removable disk.
    pub suggested_install_disk: Option<String>,
    /// What to tell the user before an install to the node's `install_disk`.
    pub warnings: Vec<String>,
}

type Stored = std::collections::BTreeMap<String, StoredInventory>;

#[derive(Serialize, Deserialize)]
struct StoredInventory {
    node: String,
    at: Millis,
    inventory: Inventory,
}

/// One at a time: an inventory is a read-modify-write of one plan state value.
static WRITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Flatlab {
    /// Keeps what machine `mac` (the plan's node `node`) posted (the boot server calls this for
    /// `POST /v1/inventory/<token>`). Refuses what is not an inventory; a machine posting again
    /// replaces what it posted before.
    pub async fn save_inventory(&self, plan: &str, mac: &str, node: &str, body: &[u8]) -> anyhow::Result<()> {
        let inventory = Inventory::parse(body)?;
        let _one = WRITING.lock().await;
        let mut all = self.stored_inventories(plan).await?;
        all.insert(mac.to_owned(), StoredInventory { node: node.to_owned(), at: self.now(), inventory });
        let text = serde_json::to_string(&all).context("encoding inventories")?;
        self.store().set_state(plan, KEY, &text, self.now()).await?;
        Ok(())
    }

    /// The inventories of plan `name`'s machines, in the plan's node order (machines the plan no
    /// longer has last), each with what it means for its node's install disk.
    pub async fn inventories(&self, name: &str) -> anyhow::Result<Vec<MachineInventory>> {
        let stored = self.stored_inventories(name).await?;
        let plan = self.store().load_plan(name).await?.plan;
        let same_mac = |a: &str, b: &str| a.replace('-', ":").eq_ignore_ascii_case(&b.replace('-', ":"));
        // A machine inspected before it was in the plan belongs to the node that has its MAC now.
        let by_mac: Vec<(String, String)> = plan.nodes.iter().map(|n| (n.mac.clone(), n.name.clone())).collect();
        let nodes: Vec<(String, String)> = plan.nodes.into_iter().map(|n| (n.name, n.install_disk)).collect();
        let mut out: Vec<MachineInventory> = stored
            .into_iter()
            .map(|(mac, mut s)| {
                if !nodes.iter().any(|(n, _)| *n == s.node)
                    && let Some((_, name)) = by_mac.iter().find(|(m, _)| same_mac(m, &mac))
                {
                    s.node = name.clone();
                }
                let disk = nodes.iter().find(|(n, _)| *n == s.node).map(|(_, d)| d.as_str()).filter(|d| !d.is_empty());
                MachineInventory {
                    suggested_install_disk: s.inventory.default_install_disk().map(|d| d.stable_path()),
                    warnings: s.inventory.warnings(disk),
                    mac,
                    node: s.node,
                    at: s.at,
                    inventory: s.inventory,
                }
            })
            .collect();
        let position = |node: &str| nodes.iter().position(|(n, _)| n == node).unwrap_or(usize::MAX);
        out.sort_by(|a, b| (position(&a.node), &a.node).cmp(&(position(&b.node), &b.node)));
        Ok(out)
    }

    async fn stored_inventories(&self, plan: &str) -> anyhow::Result<Stored> {
        match self.store().state(plan, KEY).await? {
            Some(text) => serde_json::from_str(&text).context("reading the stored inventories"),
            None => Ok(Stored::new()),
        }
    }
}
