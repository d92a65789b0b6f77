//! The one place where install state crosses between the boot server's types and the store:
//! a machine row (text columns) to and from bootd's `Stage`, `HistoryEntry`, `Mac` and address,
//! and each planned node's row with its install token. No other module spells a stage, parses
//! a stored history or builds a history entry by hand.

use std::net::Ipv4Addr;

use flatlab_bootd::{Attempt, HistoryEntry, Mac, MachineRecord, Millis, Stage};
use flatlab_model::{MacAddr, ValidatedPlan};
use flatlab_store::MachineRow;
use rand::Rng;
use serde::Deserialize;

use crate::{Flatlab, generate_boot_token};

/// The protocol side's MAC of a plan node's MAC.
pub(crate) fn wire_mac(mac: MacAddr) -> Mac {
    Mac(mac.0)
}

/// A planned machine's install state, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MachineState {
    pub mac: Mac,
    pub node: String,
    /// The install token: in the Ignition and report URLs of this install, and nowhere else.
    pub token: String,
    pub stage: Stage,
    pub history: Vec<HistoryEntry>,
    pub ip: Option<Ipv4Addr>,
    /// The boot attempt under way: its own token, and which configs went out.
    pub attempt: Option<Attempt>,
}

/// History entries as rows may hold them: tagged, or the `{stage, at, detail}` of databases
/// written before entries had a kind.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredEntry {
    Tagged(HistoryEntry),
    Untagged {
        stage: Stage,
        at: Millis,
        #[serde(default)]
        detail: Option<String>,
    },
}

fn history_from_row(text: &str) -> Vec<HistoryEntry> {
    let entries: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|e| match serde_json::from_value::<StoredEntry>(e) {
            Ok(StoredEntry::Tagged(entry)) => Some(entry),
            Ok(StoredEntry::Untagged { stage, at, detail }) => Some(HistoryEntry::stage(at, stage, detail)),
            // An entry of a newer kind than this build knows is left out of the view.
            Err(_) => None,
        })
        .collect()
}

fn history_to_row(history: &[HistoryEntry]) -> String {
    serde_json::to_string(history).unwrap_or_else(|_| "[]".into())
}

impl MachineState {
    /// A row as the store keeps it. A stage this build does not know reads as `armed`.
    pub(crate) fn from_row(row: &MachineRow) -> Option<Self> {
        Some(MachineState {
            mac: row.mac.parse().ok()?,
            node: row.node.clone(),
            token: row.token.clone(),
            stage: Stage::parse(&row.stage).unwrap_or(Stage::Armed),
            history: history_from_row(&row.history),
            ip: row.ip.as_deref().and_then(|ip| ip.parse().ok()),
            // One this build cannot read is no attempt: the machine's next boot makes one.
            attempt: row.attempt.as_deref().and_then(|a| serde_json::from_str(a).ok()),
        })
    }

    pub(crate) fn to_row(&self, at: Millis) -> MachineRow {
        MachineRow {
            mac: self.mac.to_string(),
            node: self.node.clone(),
            stage: self.stage.as_str().to_owned(),
            token: self.token.clone(),
            history: history_to_row(&self.history),
            ip: self.ip.map(|ip| ip.to_string()),
            attempt: self.attempt.as_ref().and_then(|a| serde_json::to_string(a).ok()),
            updated_at: at,
        }
    }

    pub(crate) fn from_record(record: &MachineRecord) -> Self {
        MachineState {
            mac: record.mac,
            node: record.node.clone(),
            token: record.token.clone(),
            stage: record.stage,
            history: record.history.clone(),
            ip: record.ip,
            attempt: record.attempt.clone(),
        }
    }

    /// A machine armed for a new install, with a new token.
    fn armed(mac: Mac, node: &str, rng: &mut impl Rng) -> Self {
        MachineState {
            mac,
            node: node.to_owned(),
            token: generate_boot_token(rng),
            stage: Stage::Armed,
            history: Vec::new(),
            ip: None,
            attempt: None,
        }
    }
}

impl Flatlab {
    /// Every planned node's install state, in plan order. A node without a row (or whose row
    /// names another node: it was renamed, which re-arms it) gets a new row: armed, with a new
    /// token. `flatlab render` and `flatlab serve` both come here, so a rendered bundle carries
    /// the machine's token, which the boot server replaces by each boot attempt's own.
    pub(crate) async fn machine_states(
        &self,
        name: &str,
        plan: &ValidatedPlan,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Vec<MachineState>> {
        let stored: Vec<MachineState> =
            self.store().machines(name).await?.iter().filter_map(MachineState::from_row).collect();
        let mut out = Vec::new();
        let mut new_rows = Vec::new();
        for node in plan.nodes() {
            let mac = wire_mac(node.mac);
            let state = match stored.iter().find(|s| s.mac == mac) {
                Some(s) if s.node == node.name => s.clone(),
                _ => {
                    let s = MachineState::armed(mac, &node.name, rng);
                    new_rows.push(s.to_row(self.now()));
                    s
                }
            };
            out.push(state);
        }
        self.store().save_machines(name, &new_rows).await?;
        Ok(out)
    }

    /// Arms a machine again: a new row, armed, with a new token (the old one stops working).
    pub(crate) async fn rearm(
        &self,
        name: &str,
        mac: MacAddr,
        node: &str,
        rng: &mut impl Rng,
    ) -> anyhow::Result<MachineState> {
        let state = MachineState::armed(wire_mac(mac), node, rng);
        self.store().save_machine(name, &state.to_row(self.now())).await?;
        Ok(state)
    }

    /// Saves what the boot server reports of a machine.
    pub(crate) async fn save_record(&self, name: &str, record: &MachineRecord) -> anyhow::Result<()> {
        let row = MachineState::from_record(record).to_row(record.at);
        self.store().save_machine(name, &row).await?;
        if record.stage == Stage::K3sReady {
            self.record_cluster_ran(name).await?;
        }
        Ok(())
    }

    /// An installed node announced itself over mDNS: it booted from disk. Moves its stored state
    /// from `installed` to `booted`; false when there was nothing to move.
    pub(crate) async fn record_announced(&self, name: &str, mac: MacAddr) -> anyhow::Result<bool> {
        let rows = self.store().machines(name).await?;
        let mac = wire_mac(mac);
        let Some(mut state) = rows.iter().filter_map(MachineState::from_row).find(|s| s.mac == mac) else {
            return Ok(false);
        };
        if state.stage != Stage::Installed {
            return Ok(false);
        }
        let at = self.now();
        state.stage = Stage::Booted;
        state.history.push(HistoryEntry::stage(at, Stage::Booted, Some("announced over mDNS".into())));
        self.store().save_machine(name, &state.to_row(at)).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_before_history_entries_had_a_kind_still_read() {
        let row = MachineRow {
            mac: "52:54:00:00:00:01".into(),
            node: "cp1".into(),
            stage: "k3s-ready".into(),
            token: "t".into(),
            history: r#"[{"stage":"dhcp","at":1},{"stage":"failed","at":2,"detail":"disk"},{"kind":"stage","at":3,"stage":"k3s-ready"},{"kind":"from-the-future","at":4}]"#.into(),
            ip: Some("10.0.0.5".into()),
            attempt: Some(r#"{"token":"AttemptToken","at":7,"ip":"10.0.0.5","install_served":{"to":"10.0.0.5","at":8}}"#.into()),
            updated_at: 9,
        };
        let state = MachineState::from_row(&row).expect("reads");
        assert_eq!(state.stage, Stage::K3sReady);
        assert_eq!(
            state.history,
            [
                HistoryEntry::stage(1, Stage::Dhcp, None),
                HistoryEntry::stage(2, Stage::Failed, Some("disk".into())),
                HistoryEntry::stage(3, Stage::K3sReady, None),
            ]
        );
        assert_eq!(state.ip, Some(Ipv4Addr::new(10, 0, 0, 5)));
        let attempt = state.attempt.as_ref().expect("an attempt");
        assert_eq!(
            (attempt.token.as_str(), attempt.install_served.map(|s| s.at), attempt.final_served),
            ("AttemptToken", Some(8), None)
        );
        let again = MachineState::from_row(&state.to_row(9)).expect("reads");
        assert_eq!(again, state);
    }

    #[test]
    fn a_stage_from_a_newer_build_reads_as_armed() {
        let row = MachineRow {
            mac: "52:54:00:00:00:01".into(),
            node: "cp1".into(),
            stage: "levitating".into(),
            token: "t".into(),
            history: "not json".into(),
            ip: Some("not an address".into()),
            attempt: Some("not json".into()),
            updated_at: 9,
        };
        let state = MachineState::from_row(&row).expect("reads");
        assert_eq!((state.stage, state.history.len(), state.ip, state.attempt), (Stage::Armed, 0, None, None));
    }
}
