//! The plan as a whole: format version, name, Flatcar release, Ignition spec.

use super::IGNITION_VERSIONS;
use super::Validator;
use super::names::{check_label, is_flatcar_version};
use crate::plan::FORMAT_VERSION;

impl Validator<'_> {
    pub(super) fn format_version(&mut self) {
        match self.plan.version {
            0 => self.error("version", format!("missing; add `version: {FORMAT_VERSION}` at the top of the plan")),
            FORMAT_VERSION => {}
            other => self.error(
                "version",
                format!("plan format version {other} is not supported; this Flatlab reads version {FORMAT_VERSION}"),
            ),
        }
    }

    pub(super) fn plan_name(&mut self) {
        if let Err(why) = check_label(&self.plan.name) {
            self.error("name", format!("{why}; a plan name is a short label such as `edge-lab`"));
        }
    }

    pub(super) fn os(&mut self) {
        let version = self.plan.os.version.trim();
        if version.is_empty() {
            self.error("os.version", "missing; set a Flatcar release such as `4593.2.5`, or `current`");
        } else if version == "current" {
            self.warning(
                "os.version",
                "`current` changes with every release; pin a version such as `4593.2.5` so that reinstalls give the same system",
            );
        } else if !is_flatcar_version(version) {
            self.error(
                "os.version",
                format!(
                    "`{version}` is not a Flatcar release; write MAJOR.MINOR.PATCH such as `4593.2.5`, or `current`"
                ),
            );
        }
    }

    pub(super) fn ignition_version(&mut self) {
        if let Some(v) = self.plan.os.ignition_version.as_deref()
            && !IGNITION_VERSIONS.contains(&v)
        {
            self.error(
                "os.ignition_version",
                format!("`{v}` is not an Ignition spec Flatlab writes; use `3.3.0` (every Flatcar) or `3.4.0` (Flatcar from 2024 on), or remove the field"),
            );
        }
    }
}
