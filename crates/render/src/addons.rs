//! What K3s deploys by itself on every server, from `/var/lib/rancher/k3s/server/manifests/`:
//! system-upgrade-controller (K3s upgrades, applied one node at a time through its Plans),
//! kured (Flatcar updates: one reboot at a time, in the plan's reboot window), and kube-vip when
//! the plan's API endpoint is a virtual address that no node has.
//!
//! Only controllers go in that folder. K3s applies it again on every start and resets what was
//! changed elsewhere, so upgrade Plans are applied through the API instead (`api`).

use std::net::IpAddr;

use flatlab_model::{Role, ValidatedNode, ValidatedPlan};

use crate::ignition::{ConfigBuilder, MODE_0600};

const MANIFESTS: &str = "/var/lib/rancher/k3s/server/manifests";
const SYSTEM_UPGRADE_CONTROLLER: &str = include_str!("../../../assets/manifests/system-upgrade-controller.yaml");
const KURED: &str = include_str!("../../../assets/manifests/kured.yaml");
const KUBE_VIP: &str = include_str!("../../../assets/manifests/kube-vip.yaml");

/// The images these manifests run, for sites that pre-load them (docs/cluster.md).
pub const IMAGES: &[&str] = &[
    "rancher/system-upgrade-controller:v0.20.1",
    "rancher/kubectl:v1.30.3",
    "ghcr.io/kubereboot/kured:1.23.0",
    "ghcr.io/kube-vip/kube-vip:v1.2.3",
];

/// The virtual address Flatlab's kube-vip holds: the API endpoint, when it is an IPv4 address
/// that no node has (the nodes' LAN is IPv4; kube-vip's manifest announces a /32).
pub fn virtual_ip(plan: &ValidatedPlan) -> Option<IpAddr> {
    let endpoint = plan.plan().kubernetes.api_endpoint.as_deref()?.trim();
    let ip: IpAddr = endpoint.parse::<std::net::Ipv4Addr>().ok()?.into();
    let taken = plan.nodes().iter().any(|n| n.address.is_some_and(|a| IpAddr::V4(a.addr()) == ip));
    (!taken).then_some(ip)
}

/// kured's command-line flags: one node at a time, in the reboot window.
fn kured_flags(plan: &ValidatedPlan) -> Vec<String> {
    let mut flags = vec!["--concurrency=1".to_owned(), "--period=10m".to_owned(), "--annotate-nodes=true".to_owned()];
    if let Some(w) = plan.reboot_window() {
        if !w.days.is_empty() {
            flags.push(format!("--reboot-days={}", w.days.join(",")));
        }
        flags.push(format!("--start-time={}", w.start));
        flags.push(format!("--end-time={}", w.end));
        flags.push(format!("--time-zone={}", w.time_zone));
    }
    flags
}

pub(crate) fn kured_manifest(plan: &ValidatedPlan) -> String {
    let line = "        - FLATLAB_KURED_ARGS\n";
    let flags: String = kured_flags(plan).iter().map(|f| format!("        - {f}\n")).collect();
    KURED.replace(line, &flags)
}

pub(crate) fn kube_vip_manifest(ip: IpAddr) -> String {
    KUBE_VIP.replace("FLATLAB_VIP_ADDRESS", &ip.to_string())
}

/// Adds the manifests to a server's final config.
pub(crate) fn add(b: &mut ConfigBuilder, plan: &ValidatedPlan, node: &ValidatedNode) {
    if node.role != Role::Server {
        return;
    }
    b.compressed_file(
        &format!("{MANIFESTS}/flatlab-system-upgrade-controller.yaml"),
        MODE_0600,
        SYSTEM_UPGRADE_CONTROLLER,
    );
    b.compressed_file(&format!("{MANIFESTS}/flatlab-kured.yaml"), MODE_0600, &kured_manifest(plan));
    if let Some(ip) = virtual_ip(plan) {
        b.compressed_file(&format!("{MANIFESTS}/flatlab-kube-vip.yaml"), MODE_0600, &kube_vip_manifest(ip));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_vendored_manifests_hold_what_flatlab_fills_in() {
        assert_eq!(super::KURED.matches("        - FLATLAB_KURED_ARGS\n").count(), 1);
        assert_eq!(super::KUBE_VIP.matches("FLATLAB_VIP_ADDRESS").count(), 1);
        for image in super::IMAGES {
            let found =
                [super::SYSTEM_UPGRADE_CONTROLLER, super::KURED, super::KUBE_VIP].iter().any(|m| m.contains(image));
            assert!(found, "{image} is in no manifest");
        }
        assert!(!super::SYSTEM_UPGRADE_CONTROLLER.contains("Always"), "every pull policy is IfNotPresent");
    }
}
