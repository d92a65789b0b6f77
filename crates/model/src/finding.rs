//! Validation findings: data, not errors. Each names the field it concerns by a stable path
//! (`nodes[cp2].mac`) that the desktop app uses to highlight the node and field.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// How bad a finding is. Errors block rendering and installing; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Where in the plan a finding is, for a program to act on (the UI highlights that node and
/// field): the same place as [`Finding::path`], without parsing it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[ts(export)]
pub enum Target {
    /// A field of the plan itself, such as `os.version` or `ssh_authorized_keys[1]`; empty for
    /// the plan as a whole.
    Plan { field: String },
    /// A field of the node at `index` in `nodes`, such as `mac`; empty for the node itself.
    Node { index: u32, field: String },
    /// A field of the switch at `index` in `switches`.
    Switch { index: u32, field: String },
}

impl Target {
    pub fn plan(field: impl Into<String>) -> Self {
        Target::Plan { field: field.into() }
    }

    pub fn node(index: usize, field: impl Into<String>) -> Self {
        Target::Node { index: u32::try_from(index).unwrap_or(u32::MAX), field: field.into() }
    }

    pub fn switch(index: usize, field: impl Into<String>) -> Self {
        Target::Switch { index: u32::try_from(index).unwrap_or(u32::MAX), field: field.into() }
    }
}

/// One thing wrong with (or worth a look in) a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Finding {
    pub severity: Severity,
    /// The field concerned, such as `nodes[cp2].mac`; empty for the plan as a whole.
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The same place as `path`, structured.
    pub target: Target,
}

impl Finding {
    /// An error at a plan-level field (the path is the field).
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        Self { severity: Severity::Error, target: Target::plan(path.clone()), path, message: message.into() }
    }

    /// A warning at a plan-level field (the path is the field).
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        Self { severity: Severity::Warning, target: Target::plan(path.clone()), path, message: message.into() }
    }

    /// A finding at `target`, whose path is written with the plan's node and switch names.
    pub fn at(severity: Severity, plan: &crate::Plan, target: Target, message: impl Into<String>) -> Self {
        let path = match &target {
            Target::Plan { field } => field.clone(),
            Target::Node { index, field } => join(plan.node_path(*index as usize), field),
            Target::Switch { index, field } => join(plan.switch_path(*index as usize), field),
        };
        Self { severity, path, message: message.into(), target }
    }
}

fn join(item: String, field: &str) -> String {
    if field.is_empty() { item } else { format!("{item}.{field}") }
}

impl std::fmt::Display for Finding {
    /// `error: nodes[cp2].mac: ...`, the CLI's one-line form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.severity.as_str(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.severity.as_str(), self.path, self.message)
        }
    }
}

/// Counts findings by severity.
pub fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}
