//! A kubeconfig for the workstation: an admin client certificate minted on demand from the
//! plan's `client-ca`, with `server-ca` as the cluster CA and the plan's API address.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use rand::Rng;
use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};
use ts_rs::TS;

use crate::pki::{self, ClusterPki};
use crate::{ApiError, Flatlab};

/// A kubeconfig made for a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// The context (and cluster) name: the plan's.
    pub name: String,
    /// `https://<api endpoint>:6443`.
    pub server: String,
    /// The whole file, YAML.
    pub yaml: String,
    /// Until when its certificate is valid.
    pub expires_at: crate::Millis,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String(k.to_owned()), v);
    }
    Value::Mapping(m)
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// `https://<api endpoint>:6443`, an IPv6 endpoint in brackets.
pub(crate) fn api_url(plan: &flatlab_model::ValidatedPlan) -> String {
    let host = plan.api_endpoint();
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    format!("https://{host}:6443")
}

/// The user name a plan's admin credentials have in a kubeconfig.
fn user_name(plan: &str) -> String {
    format!("{plan}-admin")
}

impl Flatlab {
    /// Mints an admin client certificate (valid one year) and returns a kubeconfig with it.
    pub async fn kubeconfig(&self, name: &str, rng: &mut impl Rng) -> anyhow::Result<Kubeconfig> {
        let plan = self.validated_plan(name, "fix the plan's errors first").await?;
        let pki = self.cluster_pki(name, rng).await?;
        let ClusterPki::Flatlab { .. } = &pki else { return Err(ApiError::ForeignCa.into()) };
        let now = self.now();
        let cert = pki::admin_certificate(&pki, "flatlab-admin", now, rng).context("minting the admin certificate")?;
        let server_ca = pki.file("server-ca.crt").context("the cluster has no server CA")?;
        let server = api_url(&plan);
        let user = user_name(name);
        let doc = map(vec![
            ("apiVersion", s("v1")),
            ("kind", s("Config")),
            (
                "clusters",
                Value::Sequence(vec![map(vec![
                    ("name", s(name)),
                    ("cluster", map(vec![("server", s(&server)), ("certificate-authority-data", s(&b64(server_ca)))])),
                ])]),
            ),
            (
                "users",
                Value::Sequence(vec![map(vec![
                    ("name", s(&user)),
                    (
                        "user",
                        map(vec![
                            ("client-certificate-data", s(&b64(&cert.cert))),
                            ("client-key-data", s(&b64(&cert.key))),
                        ]),
                    ),
                ])]),
            ),
            (
                "contexts",
                Value::Sequence(vec![map(vec![
                    ("name", s(name)),
                    ("context", map(vec![("cluster", s(name)), ("user", s(&user))])),
                ])]),
            ),
            ("current-context", s(name)),
        ]);
        let yaml = serde_yaml_ng::to_string(&doc).context("writing the kubeconfig")?;
        Ok(Kubeconfig { name: name.to_owned(), server, yaml, expires_at: now + 365 * 24 * 3600 * 1000 })
    }
}

/// A kubeconfig Flatlab wrote for the user.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct KubeconfigSaved {
    pub path: PathBuf,
    /// The context to use (`kubectl --context <plan>`).
    pub context: String,
    pub server: String,
    /// True when it was added to an existing file among other contexts.
    pub merged: bool,
    #[ts(type = "number")]
    pub expires_at: crate::Millis,
}

/// Where a merge adds a context: `$KUBECONFIG`'s first file, else `~/.kube/config`.
pub fn default_kubeconfig_path() -> anyhow::Result<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next())
        && !first.as_os_str().is_empty()
    {
        return Ok(first);
    }
    let home = dirs::home_dir().context("cannot find your home folder: set HOME, or choose a file")?;
    Ok(home.join(".kube").join("config"))
}

impl Flatlab {
    /// Mints a kubeconfig and writes it to `path` (owner-only), or with `merge` adds its context
    /// to the kubeconfig at `path` (default: [`default_kubeconfig_path`]) keeping the others.
    pub async fn save_kubeconfig(
        &self,
        name: &str,
        path: Option<&Path>,
        merge: bool,
        rng: &mut impl Rng,
    ) -> anyhow::Result<KubeconfigSaved> {
        let config = self.kubeconfig(name, rng).await?;
        let path = match path {
            Some(p) => p.to_owned(),
            None if merge => default_kubeconfig_path()?,
            None => anyhow::bail!(ApiError::BadRequest("say where to write the kubeconfig".into())),
        };
        let text = if merge {
            let existing = match std::fs::read_to_string(&path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {}", path.display()))),
            };
            merge_kubeconfig(existing.as_deref(), &config)
                .with_context(|| format!("merging into {}", path.display()))?
        } else {
            config.yaml.clone()
        };
        write_kubeconfig(&path, &text)?;
        Ok(KubeconfigSaved {
            path,
            context: config.name,
            server: config.server,
            merged: merge,
            expires_at: config.expires_at,
        })
    }
}

/// Writes a kubeconfig to `path`, owner-only (it holds a client key), atomically.
pub fn write_kubeconfig(path: &Path, yaml: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::write_private(path, yaml.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// `existing` (a kubeconfig file's text, or none) with `new`'s cluster, user and context added,
/// replacing those of the same names; every other entry is kept as it was. The current context
/// is set only when there was none.
pub fn merge_kubeconfig(existing: Option<&str>, new: &Kubeconfig) -> anyhow::Result<String> {
    let fresh: Value = serde_yaml_ng::from_str(&new.yaml)?;
    let mut doc: Value = match existing.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => serde_yaml_ng::from_str(text).context("the existing kubeconfig is not YAML")?,
        None => map(vec![("apiVersion", s("v1")), ("kind", s("Config"))]),
    };
    let Value::Mapping(root) = &mut doc else { anyhow::bail!("the existing kubeconfig is not a YAML mapping") };
    for list in ["clusters", "users", "contexts"] {
        let added = fresh.get(list).and_then(Value::as_sequence).cloned().unwrap_or_default();
        let entry = root.entry(Value::String(list.to_owned())).or_insert_with(|| Value::Sequence(Vec::new()));
        if entry.is_null() {
            *entry = Value::Sequence(Vec::new());
        }
        let Value::Sequence(items) = entry else { anyhow::bail!("`{list}` in the existing kubeconfig is not a list") };
        for a in added {
            let name = a.get("name").cloned();
            match items.iter_mut().find(|i| i.get("name") == name.as_ref()) {
                Some(old) => *old = a,
                None => items.push(a),
            }
        }
    }
    let current = root.get("current-context").and_then(Value::as_str).filter(|c| !c.is_empty());
    if current.is_none() {
        root.insert(s("current-context"), s(&new.name));
    }
    Ok(serde_yaml_ng::to_string(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(name: &str) -> Kubeconfig {
        Kubeconfig {
            name: name.into(),
            server: "https://10.0.0.10:6443".into(),
            yaml: format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: https://10.0.0.10:6443\nusers:\n- name: {name}-admin\n  user:\n    client-key-data: NEW\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\ncurrent-context: {name}\n"
            ),
            expires_at: 0,
        }
    }

    #[test]
    fn merging_adds_or_replaces_the_plans_entries_and_keeps_the_others() {
        let existing = "apiVersion: v1\nkind: Config\nclusters:\n- name: work\n  cluster:\n    server: https://work:6443\n- name: lab\n  cluster:\n    server: https://old:6443\nusers:\n- name: work-user\n  user: {token: abc}\n- name: lab-admin\n  user:\n    client-key-data: OLD\ncontexts:\n- name: work\n  context: {cluster: work, user: work-user}\ncurrent-context: work\npreferences: {}\n";
        let merged = merge_kubeconfig(Some(existing), &kubeconfig("lab")).expect("merges");
        let v: Value = serde_yaml_ng::from_str(&merged).expect("yaml");
        let names = |list: &str| -> Vec<String> {
            v[list].as_sequence().expect("list").iter().map(|i| i["name"].as_str().unwrap_or("").to_owned()).collect()
        };
        assert_eq!(names("clusters"), ["work", "lab"]);
        assert_eq!(names("users"), ["work-user", "lab-admin"]);
        assert_eq!(names("contexts"), ["work", "lab"]);
        assert_eq!(v["clusters"][1]["cluster"]["server"], "https://10.0.0.10:6443", "replaced");
        assert_eq!(v["users"][1]["user"]["client-key-data"], "NEW");
        assert_eq!(v["users"][0]["user"]["token"], "abc", "others untouched");
        assert_eq!(v["current-context"], "work", "the user's current context is kept");
        assert!(v.get("preferences").is_some());
        let fresh = merge_kubeconfig(None, &kubeconfig("lab")).expect("merges");
        let v: Value = serde_yaml_ng::from_str(&fresh).expect("yaml");
        assert_eq!(v["current-context"], "lab");
        assert!(merge_kubeconfig(Some("- a list"), &kubeconfig("lab")).is_err());
    }
}
