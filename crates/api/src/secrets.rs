//! Secrets Flatlab generates for a plan. They live in the store, never in the plan file; a
//! backup the user asks for holds them encrypted to the user's `age` recipients.

use std::path::Path;

use anyhow::Context;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use crate::{ApiError, Flatlab};

/// The store's name for a plan's K3s cluster token.
pub const K3S_TOKEN: &str = "k3s-token";

/// A K3s token: 48 random letters and digits.
///
/// K3s reads a token beginning with `K10` as a full token with a CA hash, and one shaped like
/// `abcdef.0123456789abcdef` as a bootstrap token, so neither shape is ever produced.
pub fn generate_k3s_token(rng: &mut impl Rng) -> String {
    loop {
        let token: String = (0..48).map(|_| char::from(rng.sample(Alphanumeric))).collect();
        if !token.starts_with("K10") {
            return token;
        }
    }
}

/// A boot token (in a node's Ignition and report URLs): 32 random letters and digits.
pub fn generate_boot_token(rng: &mut impl Rng) -> String {
    (0..32).map(|_| char::from(rng.sample(Alphanumeric))).collect()
}

/// The inside of a secrets backup (JSON, then encrypted with age).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Backup {
    /// Always `flatlab-secrets`.
    format: String,
    version: u32,
    plan: String,
    secrets: std::collections::BTreeMap<String, String>,
    /// A recovery kit's snapshot: the newest copied to the workstation, whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot: Option<KitSnapshot>,
}

/// A snapshot carried in a secrets backup (`--with-snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KitSnapshot {
    about: crate::DownloadedSnapshot,
    /// The file, base64.
    data: String,
}

const BACKUP_FORMAT: &str = "flatlab-secrets";
/// The plan state that records the latest backup.
const SECRETS_BACKUP: &str = "secrets-backup";

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub plan: String,
    pub secrets: usize,
    /// False when the plan held exactly these secrets already.
    pub changed: bool,
    /// The snapshot a recovery kit carried, now beside the database.
    pub snapshot: Option<String>,
}

impl Flatlab {
    /// The plan's secrets (K3s tokens, the cluster's CA keys), encrypted to `recipients`
    /// (`age1...`): a backup of the keys to the cluster. Nothing leaves unencrypted.
    pub async fn export_secrets(
        &self,
        name: &str,
        recipients: &[String],
        rng: &mut impl Rng,
    ) -> anyhow::Result<Vec<u8>> {
        self.export_secrets_with(name, recipients, false, rng).await
    }

    /// [`Flatlab::export_secrets`], with the newest snapshot copied to this workstation inside
    /// when `with_snapshot` (a recovery kit: one file brings the cluster back).
    pub async fn export_secrets_with(
        &self,
        name: &str,
        recipients: &[String],
        with_snapshot: bool,
        rng: &mut impl Rng,
    ) -> anyhow::Result<Vec<u8>> {
        let to = flatlab_export::seal::recipients(recipients)?;
        let mut json = self.secrets_backup(name, rng).await?;
        if with_snapshot {
            let newest = self.downloaded_snapshots(name)?.into_iter().next().ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "no snapshot of plan {name} is copied to this workstation: `flatlab cluster snapshot {name} --download` first"
                ))
            })?;
            let bytes = std::fs::read(&newest.path).with_context(|| format!("reading {}", newest.path.display()))?;
            let mut backup: Backup = serde_json::from_slice(&json)?;
            use base64::Engine;
            backup.snapshot =
                Some(KitSnapshot { about: newest, data: base64::engine::general_purpose::STANDARD.encode(bytes) });
            json = serde_json::to_vec_pretty(&backup)?;
        }
        Ok(flatlab_export::seal::seal(&to, &json, "the secrets backup")?)
    }

    /// The backup's clear text, which only ever leaves sealed (here, or as the
    /// `secrets-backup.json.age` of a Git export with recipients).
    pub(crate) async fn secrets_backup(&self, name: &str, rng: &mut impl Rng) -> anyhow::Result<Vec<u8>> {
        // Make what an install makes, so that a backup taken before the first install is whole.
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let states = self.machine_states(name, &plan, rng).await?;
        self.cluster_secrets(name, &states, rng).await?;
        let secrets = self.store().secrets(name).await?.into_iter().collect();
        let backup =
            Backup { format: BACKUP_FORMAT.into(), version: 1, plan: name.to_owned(), secrets, snapshot: None };
        Ok(serde_json::to_vec_pretty(&backup)?)
    }

    /// [`Flatlab::export_secrets`] into the file `to` (owner-only), remembered as the plan's
    /// latest backup (the app stops reminding the user to make one).
    pub async fn export_secrets_to(
        &self,
        name: &str,
        recipients: &[String],
        with_snapshot: bool,
        to: &Path,
        rng: &mut impl Rng,
    ) -> anyhow::Result<()> {
        let sealed = self.export_secrets_with(name, recipients, with_snapshot, rng).await?;
        crate::write_private(to, &sealed).with_context(|| format!("writing {}", to.display()))?;
        self.record_secrets_backup(name).await
    }

    /// Remembers that the plan's secrets were just backed up (a file, a Git export).
    pub(crate) async fn record_secrets_backup(&self, name: &str) -> anyhow::Result<()> {
        self.store().set_state(name, SECRETS_BACKUP, &self.now().to_string(), self.now()).await?;
        Ok(())
    }

    /// When the plan's secrets were last backed up with [`Flatlab::export_secrets_to`].
    pub async fn secrets_backup_at(&self, name: &str) -> anyhow::Result<Option<crate::Millis>> {
        Ok(self.store().state(name, SECRETS_BACKUP).await?.and_then(|v| v.parse().ok()))
    }

    /// Restores a backup made by [`Flatlab::export_secrets`], opened with the `age` identity file
    /// `identity`, into the plan it names (which must be stored). A plan that holds other
    /// secrets already is refused unless `replace`: its nodes would no longer fit its cluster.
    pub async fn import_secrets(&self, sealed: &[u8], identity: &Path, replace: bool) -> anyhow::Result<Restored> {
        let json = flatlab_export::seal::open(sealed, identity)?;
        let backup: Backup = serde_json::from_slice(&json).context("the backup is not a Flatlab secrets backup")?;
        if backup.format != BACKUP_FORMAT || backup.version != 1 {
            anyhow::bail!(ApiError::NoSecrets(format!(
                "this is not a Flatlab secrets backup of a version this Flatlab reads ({} {})",
                backup.format, backup.version
            )));
        }
        let name = backup.plan.clone();
        self.store().load_plan(&name).await.with_context(|| {
            format!(
                "the backup is of plan {name}: import that plan's file first (`flatlab plan import`), then its secrets"
            )
        })?;
        let snapshot = match &backup.snapshot {
            Some(kit) => Some(self.keep_kit_snapshot(&name, kit)?),
            None => None,
        };
        let wanted: Vec<(String, String)> = backup.secrets.into_iter().collect();
        let current = self.store().secrets(&name).await?;
        if current == wanted {
            return Ok(Restored { plan: name, secrets: wanted.len(), changed: false, snapshot });
        }
        let clash = current.iter().any(|(k, v)| wanted.iter().any(|(wk, wv)| wk == k && wv != v));
        if clash && !replace {
            anyhow::bail!(ApiError::SecretsClash(format!(
                "plan {name} already has other secrets (another cluster's CA or tokens); restoring replaces them, and nodes installed with them no longer fit: pass --replace if that is what you want"
            )));
        }
        // Without a clash, what the plan holds beside the backup stays (such as the cluster's
        // identity, recorded after the backup was made); with `replace`, the backup is all.
        let mut restored = wanted.clone();
        if !replace {
            restored.extend(current.into_iter().filter(|(k, _)| !wanted.iter().any(|(wk, _)| wk == k)));
            restored.sort();
        }
        self.store().replace_secrets(&name, &restored, self.now()).await?;
        Ok(Restored { plan: name, secrets: wanted.len(), changed: true, snapshot })
    }

    /// Puts a recovery kit's snapshot beside the database, as a download would have; checked
    /// against the SHA-256 it was exported with.
    fn keep_kit_snapshot(&self, name: &str, kit: &KitSnapshot) -> anyhow::Result<String> {
        use base64::Engine;
        use sha2::Digest;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(&kit.data).context("the kit's snapshot is not base64")?;
        let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        let file = std::path::Path::new(&kit.about.name).file_name().and_then(|f| f.to_str()).unwrap_or_default();
        if sha != kit.about.sha256 || file.is_empty() || file.starts_with('.') {
            anyhow::bail!(ApiError::NoSecrets("the backup's snapshot is damaged (its SHA-256 does not match)".into()));
        }
        let dir = self.snapshot_dir(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
        let path = dir.join(file);
        crate::write_private(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        let mut about = kit.about.clone();
        about.path = path;
        crate::write_atomically(&dir.join(format!("{file}.flatlab.json")), &serde_json::to_vec_pretty(&about)?)?;
        Ok(file.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn tokens_are_long_alphanumeric_and_deterministic_for_a_seed() {
        let a = generate_k3s_token(&mut StdRng::seed_from_u64(7));
        let b = generate_k3s_token(&mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        let c = generate_k3s_token(&mut StdRng::seed_from_u64(8));
        assert_ne!(a, c);
    }

    #[test]
    fn never_starts_with_k10() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..2000 {
            assert!(!generate_k3s_token(&mut rng).starts_with("K10"));
        }
    }
}
