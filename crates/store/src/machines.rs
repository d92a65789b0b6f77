//! Install state of planned machines, and machines seen network-booting without a plan.

use serde::Serialize;
use ts_rs::TS;

use crate::{Error, Millis, Result, Store};

/// The most machines without a plan the database keeps (the ones seen longest ago go first).
pub const MAX_DISCOVERED: i64 = 1024;

/// A planned machine's install state, as the boot server last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRow {
    pub mac: String,
    pub node: String,
    pub stage: String,
    pub token: String,
    /// JSON array of history entries (`api` reads and writes them).
    pub history: String,
    /// The address the install is bound to.
    pub ip: Option<String>,
    /// JSON of the boot attempt under way (`api` reads and writes it).
    pub attempt: Option<String>,
    pub updated_at: Millis,
}

/// A machine that network-booted without being in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DiscoveredMachine {
    pub mac: String,
    pub firmware: Option<String>,
    pub vendor_class: Option<String>,
    #[ts(type = "number")]
    pub first_seen: Millis,
    #[ts(type = "number")]
    pub last_seen: Millis,
}

impl Store {
    /// The install state of every machine of plan `name`.
    pub async fn machines(&self, name: &str) -> Result<Vec<MachineRow>> {
        let id = self.plan_id(name).await?;
        let rows = sqlx::query_as!(
            MachineRow,
            "SELECT mac, node, stage, token, history, ip, attempt, updated_at FROM machines WHERE plan_id = ? ORDER BY mac",
            id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Saves a machine's install state (insert or replace).
    pub async fn save_machine(&self, name: &str, row: &MachineRow) -> Result<()> {
        self.save_machines(name, std::slice::from_ref(row)).await
    }

    /// Saves several machines' install state in one transaction (one sync for a whole plan).
    pub async fn save_machines(&self, name: &str, rows: &[MachineRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM plans WHERE name = ?"#, name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::PlanNotFound { name: name.to_owned() })?;
        for row in rows {
            sqlx::query!(
                "INSERT INTO machines (plan_id, mac, node, stage, token, history, ip, attempt, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (plan_id, mac) DO UPDATE SET node = excluded.node, stage = excluded.stage,
                   token = excluded.token, history = excluded.history, ip = excluded.ip, attempt = excluded.attempt,
                   updated_at = excluded.updated_at",
                id,
                row.mac,
                row.node,
                row.stage,
                row.token,
                row.history,
                row.ip,
                row.attempt,
                row.updated_at
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the install state of one machine of a plan.
    pub async fn forget_machine(&self, name: &str, mac: &str) -> Result<bool> {
        let id = self.plan_id(name).await?;
        let done =
            sqlx::query!("DELETE FROM machines WHERE plan_id = ? AND mac = ?", id, mac).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a sighting of a machine without a plan. The table keeps the
    /// [`MAX_DISCOVERED`] seen most recently.
    pub async fn record_discovered(
        &self,
        mac: &str,
        firmware: Option<&str>,
        vendor_class: Option<&str>,
        at: Millis,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query!(
            "INSERT INTO discovered_machines (mac, firmware, vendor_class, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (mac) DO UPDATE SET firmware = COALESCE(excluded.firmware, firmware),
               vendor_class = COALESCE(excluded.vendor_class, vendor_class), last_seen = excluded.last_seen",
            mac,
            firmware,
            vendor_class,
            at,
            at
        )
        .execute(&mut *tx)
        .await
        .map_err(Error::from)?;
        let keep = MAX_DISCOVERED;
        sqlx::query!(
            "DELETE FROM discovered_machines WHERE mac NOT IN
               (SELECT mac FROM discovered_machines ORDER BY last_seen DESC, mac LIMIT ?)",
            keep
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Machines seen network-booting without a plan, most recent first.
    pub async fn discovered(&self) -> Result<Vec<DiscoveredMachine>> {
        let rows = sqlx::query_as!(
            DiscoveredMachine,
            "SELECT mac, firmware, vendor_class, first_seen, last_seen FROM discovered_machines ORDER BY last_seen DESC"
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
