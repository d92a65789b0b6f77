//! K3s: release, API endpoint (alone and against the nodes), pinned checksum, disabled parts.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::names::{check_dns_name, is_k3s_version};
use super::{DISABLABLE_COMPONENTS, ValidatedNode, Validator};
use crate::plan::Role;

impl Validator<'_> {
    pub(super) fn kubernetes(&mut self, subnet: Option<Ipv4Net>, gateway: Option<Ipv4Addr>) {
        let k = &self.plan.kubernetes;
        let version = k.k3s_version.trim();
        if version.is_empty() {
            self.error("kubernetes.k3s_version", "missing; set a K3s release such as `v1.32.2+k3s1`");
        } else if !is_k3s_version(version) {
            self.error(
                "kubernetes.k3s_version",
                format!(
                    "`{version}` is not a K3s release; write it as on the K3s release page, such as `v1.32.2+k3s1`"
                ),
            );
        }

        if let Some(endpoint) = k.api_endpoint.as_deref().map(str::trim) {
            let path = "kubernetes.api_endpoint";
            if endpoint.is_empty() {
                self.error(path, "empty; remove the field to use the first server, or set a virtual IP or DNS name");
            } else if let Ok(ip) = endpoint.parse::<IpAddr>() {
                if let (IpAddr::V4(ip), Some(s)) = (ip, subnet) {
                    if s.contains(&ip) && (ip == s.network() || ip == s.broadcast()) {
                        self.error(
                            path,
                            format!("`{ip}` is the subnet's network or broadcast address; use a free address"),
                        );
                    }
                    if Some(ip) == gateway {
                        self.error(path, format!("`{ip}` is the gateway; use a free address or a server's address"));
                    }
                }
            } else if endpoint.contains("://") || endpoint.contains(':') || endpoint.contains('/') {
                self.error(path, format!("`{endpoint}` should be a bare IP address or DNS name, without scheme or port; Flatlab adds https:// and :6443"));
            } else if endpoint.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
                self.error(
                    path,
                    format!(
                        "`{endpoint}` is not a valid IP address; write four numbers from 0 to 255, such as `10.0.0.10`"
                    ),
                );
            } else if let Err(why) = check_dns_name(endpoint) {
                self.error(path, format!("`{endpoint}` is not an IP address or DNS name: {why}"));
            }
        }

        if let Some(sha) = k.k3s_sha256.as_deref()
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            self.error(
                "kubernetes.k3s_sha256",
                "not a SHA-256 checksum; copy the 64 hexadecimal digits for your binary from the release's sha256sum-<arch>.txt, or remove the field",
            );
        }

        if let Some(snapshots) = &k.snapshots {
            if let Some(schedule) = &snapshots.schedule
                && let Err(why) = check_cron(schedule.trim())
            {
                self.error(
                    "kubernetes.snapshots.schedule",
                    format!("`{}` {why}; write five fields (minute hour day month weekday), such as `0 */6 * * *` for every 6 hours", schedule.trim()),
                );
            }
            if let Some(retention) = snapshots.retention
                && !(1..=1000).contains(&retention)
            {
                self.error(
                    "kubernetes.snapshots.retention",
                    format!("{retention} snapshots: keep from 1 to 1000 (K3s deletes the oldest beyond it); to take none, set `enabled: false`"),
                );
            }
            if snapshots.enabled == Some(false) {
                self.warning(
                    "kubernetes.snapshots.enabled",
                    "no scheduled snapshots: if every server is lost, only a snapshot taken by hand (`flatlab cluster snapshot`) can bring the cluster back",
                );
            }
        }

        let mut seen = HashSet::new();
        for (i, component) in k.disable.iter().enumerate() {
            let path = format!("kubernetes.disable[{i}]");
            if !DISABLABLE_COMPONENTS.contains(&component.as_str()) {
                self.error(
                    path,
                    format!(
                        "`{component}` is not a K3s component that can be disabled; choose from {}",
                        DISABLABLE_COMPONENTS.join(", ")
                    ),
                );
            } else if !seen.insert(component.as_str()) {
                self.warning(path, format!("`{component}` is listed twice; remove one"));
            }
        }
    }

    pub(super) fn api_endpoint_against_nodes(&mut self, nodes: &[Option<ValidatedNode>]) {
        let Some(endpoint) = self.plan.kubernetes.api_endpoint.as_deref().map(str::trim) else {
            return;
        };
        let Ok(IpAddr::V4(ip)) = endpoint.parse::<IpAddr>() else { return };
        let is_node_address = nodes.iter().flatten().any(|n| n.address.map(|a| a.addr()) == Some(ip));
        let subnet = self.plan.network.subnet.trim().parse::<Ipv4Net>().ok();
        if !is_node_address
            && !nodes.is_empty()
            && let Some(subnet) = subnet
            && !subnet.contains(&ip)
        {
            self.warning(
                "kubernetes.api_endpoint",
                format!(
                    "{ip} is no node's address, so Flatlab's kube-vip holds it on the servers; kube-vip announces it by ARP on the nodes' LAN, so choose a free address in {subnet}"
                ),
            );
        }
        for node in nodes.iter().flatten() {
            if node.address.map(|a| a.addr()) == Some(ip) && node.role == Role::Agent {
                self.error(
                    "kubernetes.api_endpoint",
                    format!("{ip} is the address of agent `{}`, which does not serve the Kubernetes API; use a server's address or a free virtual IP", node.name),
                );
            }
        }
    }
}

/// A cron schedule as K3s reads it (robfig/cron's standard parser): five fields, or a
/// descriptor such as `@daily` or `@every 6h`.
fn check_cron(schedule: &str) -> Result<(), String> {
    if let Some(descriptor) = schedule.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(()),
            d if d.strip_prefix("every ").is_some_and(|dur| is_go_duration(dur.trim())) => Ok(()),
            _ => Err("is not a schedule K3s knows (@hourly, @daily, @weekly, @monthly, @every 6h)".into()),
        };
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("has {} fields, not 5", fields.len()));
    }
    let names = ["minute", "hour", "day of month", "month", "day of week"];
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
    for ((field, name), (lo, hi)) in fields.iter().zip(names).zip(ranges) {
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            if let Some(step) = step
                && !step.parse::<u32>().is_ok_and(|s| s > 0)
            {
                return Err(format!("has a step `{step}` in its {name} field that is not a positive number"));
            }
            let in_range = |v: &str| {
                let named = matches!(
                    v.to_ascii_lowercase().as_str(),
                    "jan"
                        | "feb"
                        | "mar"
                        | "apr"
                        | "may"
                        | "jun"
                        | "jul"
                        | "aug"
                        | "sep"
                        | "oct"
                        | "nov"
                        | "dec"
                        | "sun"
                        | "mon"
                        | "tue"
                        | "wed"
                        | "thu"
                        | "fri"
                        | "sat"
                );
                named || v.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n))
            };
            let ok = match range {
                "*" | "?" => true,
                r => match r.split_once('-') {
                    Some((a, b)) => in_range(a) && in_range(b),
                    None => in_range(r),
                },
            };
            if !ok {
                return Err(format!("has `{part}` in its {name} field, outside {lo}-{hi}"));
            }
        }
    }
    Ok(())
}

/// A Go duration such as `6h`, `90m` or `1h30m`.
fn is_go_duration(d: &str) -> bool {
    let mut rest = d;
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "ms", "s", "m", "h"].iter().find(|u| rest.starts_with(**u));
        let Some(unit) = unit else { return false };
        rest = &rest[unit.len()..];
        any = true;
    }
    any
}
