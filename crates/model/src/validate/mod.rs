//! Validation: every rule a plan must meet before it can be rendered and installed.
//!
//! [`validate`] never stops at the first problem: it returns every finding, each with the path of
//! the field it concerns and a message that says what to do. Only a plan without errors becomes a
//! [`ValidatedPlan`], the one input the renderer accepts.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use serde::Serialize;
use ts_rs::TS;

use crate::finding::{Finding, Severity, Target};
use crate::mac::MacAddr;
use crate::parse::ParsedPlan;
use crate::plan::{Plan, Role};

mod kubernetes;
mod names;
mod network;
mod nodes;
mod plan;
mod ssh;

pub use plan::ValidatedRebootWindow;

/// The Ignition spec versions `os.ignition_version` may name.
pub const IGNITION_VERSIONS: &[&str] = &["3.3.0", "3.4.0"];

/// K3s components that `kubernetes.disable` may name (`k3s server --disable`).
pub const DISABLABLE_COMPONENTS: &[&str] =
    &["coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"];

/// The outcome of validating a plan: every finding, and the validated plan when there are no errors.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Report {
    pub findings: Vec<Finding>,
    #[serde(skip)]
    #[ts(skip)]
    validated: Option<Box<ValidatedPlan>>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }

    /// The validated plan, or this report if the plan has errors.
    pub fn into_validated(self) -> Result<ValidatedPlan, Report> {
        match self.validated {
            Some(v) => Ok(*v),
            None => Err(self),
        }
    }
}

/// A plan that passed validation, with its values parsed. Only [`validate`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPlan {
    plan: Plan,
    nodes: Vec<ValidatedNode>,
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
    dns: Vec<IpAddr>,
    reboot_window: Option<ValidatedRebootWindow>,
}

/// A node of a [`ValidatedPlan`], with its values parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedNode {
    pub name: String,
    pub mac: MacAddr,
    pub role: Role,
    pub install_disk: String,
    /// The static address, or `None` for DHCP.
    pub address: Option<Ipv4Net>,
}

impl ValidatedPlan {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn nodes(&self) -> &[ValidatedNode] {
        &self.nodes
    }

    pub fn subnet(&self) -> Option<Ipv4Net> {
        self.subnet
    }

    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.gateway
    }

    pub fn dns(&self) -> &[IpAddr] {
        &self.dns
    }

    /// The time servers (`network.ntp`), trimmed; empty for Flatcar's defaults.
    pub fn ntp(&self) -> Vec<&str> {
        self.plan.network.ntp.iter().map(|s| s.trim()).collect()
    }

    /// When kured may reboot nodes (`os.reboot_window`); any time when none.
    pub fn reboot_window(&self) -> Option<&ValidatedRebootWindow> {
        self.reboot_window.as_ref()
    }

    /// Where nodes reach the Kubernetes API: `kubernetes.api_endpoint`, else the first server's
    /// static address, else its mDNS name `<name>.local`.
    pub fn api_endpoint(&self) -> String {
        if let Some(e) = self.plan.kubernetes.api_endpoint.as_deref() {
            return e.trim().to_owned();
        }
        let first = self.first_server();
        match first.address {
            Some(a) => a.addr().to_string(),
            None => format!("{}.local", first.name),
        }
    }

    /// The SSH public keys, one per line as given.
    pub fn ssh_keys(&self) -> Vec<String> {
        self.plan.ssh_authorized_keys.iter().map(|k| k.trim().to_owned()).collect()
    }

    /// The first server in plan order: the one that initialises the cluster.
    pub fn first_server(&self) -> &ValidatedNode {
        self.nodes.iter().find(|n| n.role == Role::Server).expect("validation guarantees at least one server")
    }
}

/// Validates a plan read from a file, including the unknown fields it had.
pub fn validate_parsed(parsed: &ParsedPlan) -> Report {
    let mut report = validate(&parsed.plan);
    if !parsed.unknown_fields.is_empty() {
        let mut findings = parsed.unknown_fields.clone();
        findings.append(&mut report.findings);
        report = Report { findings, validated: None };
    }
    report
}

/// Checks every rule and returns all findings.
pub fn validate(plan: &Plan) -> Report {
    let mut v = Validator { plan, findings: Vec::new() };
    v.format_version();
    v.plan_name();
    v.os();
    v.ignition_version();
    let reboot_window = v.reboot_window();
    let (subnet, gateway, dns) = v.network();
    v.kubernetes(subnet, gateway);
    v.ssh_keys();
    v.switches();
    let nodes = v.nodes(subnet, gateway);
    v.api_endpoint_against_nodes(&nodes);

    let findings = v.findings;
    let has_errors = findings.iter().any(|f| f.severity == Severity::Error);
    let validated = if has_errors {
        None
    } else {
        nodes
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|nodes| Box::new(ValidatedPlan { plan: plan.clone(), nodes, subnet, gateway, dns, reboot_window }))
    };
    Report { findings, validated }
}

/// Collects the findings of one plan; the rule groups live in this module's children.
struct Validator<'a> {
    plan: &'a Plan,
    findings: Vec<Finding>,
}

impl Validator<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding::error(path, message));
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding::warning(path, message));
    }
    fn node_error(&mut self, index: usize, field: &str, message: impl Into<String>) {
        self.findings.push(Finding::at(Severity::Error, self.plan, Target::node(index, field), message));
    }

    fn node_warning(&mut self, index: usize, field: &str, message: impl Into<String>) {
        self.findings.push(Finding::at(Severity::Warning, self.plan, Target::node(index, field), message));
    }

    fn switch_error(&mut self, index: usize, field: &str, message: impl Into<String>) {
        self.findings.push(Finding::at(Severity::Error, self.plan, Target::switch(index, field), message));
    }
}

#[cfg(test)]
mod tests;
