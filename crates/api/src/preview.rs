//! Previews of the files a plan renders to, for the app's Generate view.
//!
//! A preview renders the plan as it is on screen (saved or not) with stand-in secrets, so it
//! can be shown freely: it never creates or reveals the K3s token or a boot token.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use flatlab_model::{Plan, validate};
use flatlab_render::{CA_FILES, ClusterSecrets, Inputs, K3sSource, PLACEHOLDER_BASE_URL, inline_contents, render};
use serde::Serialize;
use ts_rs::TS;

use crate::ApiError;

/// The stand-in K3s token of previews (the real one is made when the plan is first rendered).
pub const PREVIEW_K3S_TOKEN: &str = "K3sTokenHiddenInPreview";
/// The stand-in boot token of previews.
pub const PREVIEW_BOOT_TOKEN: &str = "BootTokenHiddenInPreview";
/// The stand-in agent token of previews.
pub const PREVIEW_AGENT_TOKEN: &str = "K3sAgentTokenHiddenInPreview";

/// What a preview shows in place of one of the cluster's CA files (made at the first install).
fn stand_in_ca_file(path: &str) -> String {
    format!("(stand-in: the cluster's {path}, which Flatlab makes when the plan is first rendered or installed)\n")
}

/// One rendered file, with what the validators say about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct PreviewFile {
    /// Its path in the bundle, such as `nodes/cp1/config.ign`.
    pub path: String,
    /// The node it belongs to; none for the plan's own files.
    pub node: Option<String>,
    /// `json`, `ipxe`, `yaml` or `markdown`, for syntax highlighting.
    pub language: String,
    pub contents: String,
    /// True for files that carry the K3s token (shown here with a stand-in).
    pub secret: bool,
    /// The files an Ignition config writes, with their contents decoded from data URLs.
    pub embedded: Vec<EmbeddedFile>,
    /// One verdict per validator that looked at the file (Ignition configs only).
    pub verdicts: Vec<Verdict>,
}

/// A file an Ignition config writes on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct EmbeddedFile {
    pub path: String,
    /// Decoded text; none when the source is not an inline data URL (such as the K3s binary).
    pub contents: Option<String>,
    pub source: Option<String>,
}

/// What one validator said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Verdict {
    /// `ignition-config` (the Rust parser, always run) or `ignition-validate` (when installed).
    pub validator: String,
    pub ok: bool,
    /// Warnings or errors, empty when the config is clean.
    pub message: String,
}

/// Renders `plan` (unsaved edits included) with stand-in secrets and validates each Ignition
/// config. A plan with errors is refused with its findings.
pub fn preview_plan(plan: &Plan) -> anyhow::Result<Vec<PreviewFile>> {
    let validated = validate(plan).into_validated().map_err(|report| ApiError::InvalidPlan {
        findings: report.errors().cloned().collect(),
        hint: "fix the plan's errors to preview its files",
    })?;
    let node_tokens: BTreeMap<String, String> =
        validated.nodes().iter().map(|n| (n.name.clone(), PREVIEW_BOOT_TOKEN.to_owned())).collect();
    let p = validated.plan();
    let k3s = K3sSource::upstream(&p.kubernetes.k3s_version, p.os.arch, p.kubernetes.k3s_sha256.clone());
    let cluster = ClusterSecrets {
        server_token: PREVIEW_K3S_TOKEN.to_owned(),
        agent_token: PREVIEW_AGENT_TOKEN.to_owned(),
        ca_files: CA_FILES.iter().map(|f| ((*f).to_owned(), stand_in_ca_file(f))).collect(),
        first_server_joins: false,
        restore: None,
    };
    let inputs = Inputs { base_url: PLACEHOLDER_BASE_URL, cluster: &cluster, node_tokens: &node_tokens, k3s: &k3s };
    let bundle = render(&validated, &inputs)?;
    let validator = crate::find_on_path("ignition-validate");
    let scratch = tempfile::tempdir()?;
    let mut out = Vec::new();
    for (path, file) in bundle.files() {
        let language = match path.rsplit('.').next() {
            Some("ign") => "json",
            Some("ipxe") => "ipxe",
            Some("yaml") => "yaml",
            _ => "markdown",
        };
        let node = path.strip_prefix("nodes/").and_then(|rest| rest.split('/').next()).map(str::to_owned);
        let (embedded, verdicts) = if language == "json" {
            (embedded_files(file.contents), check_ignition(file.contents, validator.as_deref(), scratch.path()))
        } else {
            (Vec::new(), Vec::new())
        };
        out.push(PreviewFile {
            path,
            node,
            language: language.to_owned(),
            contents: file.contents.to_owned(),
            secret: file.secret,
            embedded,
            verdicts,
        });
    }
    Ok(out)
}

fn embedded_files(config: &str) -> Vec<EmbeddedFile> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(config) else { return Vec::new() };
    let Some(files) = json.pointer("/storage/files").and_then(|f| f.as_array()) else { return Vec::new() };
    files
        .iter()
        .filter_map(|f| {
            let path = f.get("path")?.as_str()?.to_owned();
            let source = f.pointer("/contents/source").and_then(|s| s.as_str());
            let compression = f.pointer("/contents/compression").and_then(|s| s.as_str());
            let contents = source.filter(|s| s.starts_with("data:")).and_then(|s| inline_contents(s, compression));
            let source = source.filter(|s| !s.starts_with("data:")).map(str::to_owned);
            Some(EmbeddedFile { path, contents, source })
        })
        .collect()
}

fn check_ignition(config: &str, validator: Option<&Path>, scratch: &Path) -> Vec<Verdict> {
    let mut verdicts = vec![match ignition_config::Config::parse_str(config) {
        Ok((_, warnings)) if warnings.is_empty() => {
            Verdict { validator: "ignition-config".into(), ok: true, message: String::new() }
        }
        Ok((_, warnings)) => Verdict {
            validator: "ignition-config".into(),
            ok: false,
            message: warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("; "),
        },
        Err(e) => Verdict { validator: "ignition-config".into(), ok: false, message: e.to_string() },
    }];
    if let Some(validator) = validator {
        // Debian's ignition-validate (2.14) knows spec 3.3.0 at the most; a 3.4.0 config is the
        // 3.3.0 document it is apart from the version string.
        let text = config.replace("\"version\": \"3.4.0\"", "\"version\": \"3.3.0\"");
        let file = scratch.join("config.ign");
        let verdict = match std::fs::write(&file, text).and_then(|()| Command::new(validator).arg(&file).output()) {
            Ok(out) => {
                let message = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                Verdict {
                    validator: "ignition-validate".into(),
                    ok: out.status.success() && message.is_empty(),
                    message,
                }
            }
            Err(e) => Verdict { validator: "ignition-validate".into(), ok: false, message: format!("cannot run: {e}") },
        };
        verdicts.push(verdict);
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use flatlab_model::DEMO_PLAN;

    #[test]
    fn the_demo_plan_previews_with_stand_in_secrets_and_clean_verdicts() {
        let plan = flatlab_model::parse_plan(DEMO_PLAN).expect("demo parses").plan;
        let files = preview_plan(&plan).expect("previews");
        let config = files.iter().find(|f| f.path.ends_with("config.ign")).expect("a config.ign");
        assert!(config.secret);
        assert_eq!(config.language, "json");
        assert!(config.node.is_some());
        assert!(config.verdicts.iter().all(|v| v.ok), "{:?}", config.verdicts);
        let k3s_config = config
            .embedded
            .iter()
            .find(|e| e.path == "/etc/rancher/k3s/config.yaml")
            .and_then(|e| e.contents.as_deref())
            .expect("the K3s config is embedded");
        assert!(k3s_config.contains(PREVIEW_K3S_TOKEN), "{k3s_config}");
        assert!(files.iter().any(|f| f.path == "plan.yaml" && f.node.is_none()));
        assert!(files.iter().any(|f| f.language == "ipxe"));
    }

    #[test]
    fn a_plan_with_errors_is_refused_with_its_findings() {
        let mut plan = flatlab_model::parse_plan(DEMO_PLAN).expect("demo parses").plan;
        plan.nodes[1].mac = plan.nodes[0].mac.clone();
        let err = preview_plan(&plan).expect_err("refused");
        assert_eq!(crate::error_code(&err), crate::ErrorCode::InvalidPlan);
    }

    #[test]
    fn only_public_keys_are_offered() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("id_ed25519.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ada@lab\n")
            .expect("w");
        std::fs::write(dir.path().join("id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\n").expect("w");
        std::fs::write(dir.path().join("notes.pub"), "not a key\n").expect("w");
        let keys = crate::ssh_public_keys(dir.path());
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ada@lab");
    }
}
