//! The plan as a whole: format version, name, Flatcar release, Ignition spec.

use super::IGNITION_VERSIONS;
use super::Validator;
use super::names::{check_label, is_flatcar_version};
use crate::plan::FORMAT_VERSION;

/// kured's names of the days of the week (`--reboot-days`), with the two-letter one first.
const DAYS: [[&str; 3]; 7] = [
    ["su", "sun", "sunday"],
    ["mo", "mon", "monday"],
    ["tu", "tue", "tuesday"],
    ["we", "wed", "wednesday"],
    ["th", "thu", "thursday"],
    ["fr", "fri", "friday"],
    ["sa", "sat", "saturday"],
];

/// A reboot window as kured takes it: two-letter days (all when empty), times of day and a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedRebootWindow {
    pub days: Vec<&'static str>,
    pub start: String,
    pub end: String,
    pub time_zone: String,
}

/// `02:00` or `02:00:30`, 24-hour.
fn is_time_of_day(t: &str) -> bool {
    let parts: Vec<&str> = t.split(':').collect();
    let ok = |p: &str, max: u32| {
        p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|v| v <= max)
    };
    matches!(parts.as_slice(), [h, m] if ok(h, 23) && ok(m, 59))
        || matches!(parts.as_slice(), [h, m, s] if ok(h, 23) && ok(m, 59) && ok(s, 59))
}

/// `UTC`, or an IANA name such as `Europe/Berlin` or `America/Argentina/Buenos_Aires`.
fn looks_like_time_zone(z: &str) -> bool {
    z == "UTC"
        || z.split('/').count() >= 2
            && z.split('/').all(|p| {
                !p.is_empty()
                    && p.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
            })
}

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

    /// `os.reboot_window`: when kured may reboot nodes into an update.
    pub(super) fn reboot_window(&mut self) -> Option<ValidatedRebootWindow> {
        let w = self.plan.os.reboot_window.as_ref()?;
        let mut ok = true;
        let mut days = Vec::new();
        for (i, day) in w.days.iter().enumerate() {
            let d = day.trim().to_ascii_lowercase();
            match DAYS.iter().find(|names| names.contains(&d.as_str())) {
                Some(names) if days.contains(&names[0]) => {
                    self.warning(format!("os.reboot_window.days[{i}]"), format!("`{day}` is listed twice; remove one"))
                }
                Some(names) => days.push(names[0]),
                None => {
                    self.error(
                        format!("os.reboot_window.days[{i}]"),
                        format!("`{day}` is not a day; write `mon`, `tue`, ... (or `monday`), or leave `days` out for every day"),
                    );
                    ok = false;
                }
            }
        }
        for (field, value) in [("start", &w.start), ("end", &w.end)] {
            let value = value.trim();
            if value.is_empty() {
                self.error(format!("os.reboot_window.{field}"), "missing; write a time of day such as `02:00`");
                ok = false;
            } else if !is_time_of_day(value) {
                self.error(
                    format!("os.reboot_window.{field}"),
                    format!("`{value}` is not a time of day; write it as HH:MM, 24-hour, such as `02:00` or `23:30`"),
                );
                ok = false;
            }
        }
        if ok && w.start.trim() == w.end.trim() {
            self.error(
                "os.reboot_window.end",
                "the window starts and ends at the same time; make it at least a few minutes long",
            );
            ok = false;
        }
        let zone = w.time_zone.trim();
        if !zone.is_empty() && !looks_like_time_zone(zone) {
            self.error(
                "os.reboot_window.time_zone",
                format!("`{zone}` is not a time zone; write `UTC` or a name such as `Europe/Berlin`, or leave it out for UTC"),
            );
            ok = false;
        }
        ok.then(|| ValidatedRebootWindow {
            days,
            start: w.start.trim().to_owned(),
            end: w.end.trim().to_owned(),
            time_zone: if zone.is_empty() { "UTC".into() } else { zone.to_owned() },
        })
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
