//! What the LAN says about a plan before its install: which planned static addresses another
//! host already answers for. Such a node would lose its network after its install (two hosts
//! with one address), so each is a finding on that node's `address`.

use std::net::Ipv4Addr;

use flatlab_model::{Finding, MacAddr, Plan, Severity, Target};

use super::machines::wire_mac;

/// How long the neighbour table gets to fill after the probes.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(1200);

/// A warning on each node of `plan` whose static address a host other than the node answers
/// for on the LAN (`own` is this machine's address, never probed). Only addresses on a link of
/// this machine can be checked; the others are never reported.
pub async fn taken_addresses(plan: &Plan, own: Option<Ipv4Addr>) -> Vec<Finding> {
    let planned: Vec<(usize, Ipv4Addr, flatlab_bootd::Mac)> = plan
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let address: ipnet::Ipv4Net = n.address.as_deref()?.parse().ok()?;
            Some((i, address.addr(), wire_mac(n.mac.parse::<MacAddr>().ok()?)))
        })
        .filter(|(_, ip, _)| Some(*ip) != own)
        .collect();
    if planned.is_empty() {
        return Vec::new();
    }
    let ips: Vec<Ipv4Addr> = planned.iter().map(|(_, ip, _)| *ip).collect();
    let answered = flatlab_bootd::probe_neighbors(&ips, PROBE_WAIT).await;
    let mut out = Vec::new();
    for (index, ip, mac) in planned {
        let Some((_, other)) = answered.iter().find(|(a, m)| *a == ip && *m != mac) else { continue };
        let name = &plan.nodes[index].name;
        out.push(Finding::at(
            Severity::Warning,
            plan,
            Target::node(index, "address"),
            format!(
                "{name}'s address {ip} is taken on the LAN: another host ({other}) answers for it; give {name} another address in the plan, or free {ip} (a DHCP reservation, another device)"
            ),
        ));
    }
    out
}
