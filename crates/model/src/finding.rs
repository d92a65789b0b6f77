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

/// One thing wrong with (or worth a look in) a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Finding {
    pub severity: Severity,
    /// The field concerned, such as `nodes[cp2].mac`; empty for the plan as a whole.
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Finding {
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, path: path.into(), message: message.into() }
    }

    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, path: path.into(), message: message.into() }
    }
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
