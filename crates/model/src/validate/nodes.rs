//! Switches and nodes: names, MACs, roles, install disks, static addresses, canvas positions.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::names::check_label;
use super::{ValidatedNode, Validator};
use crate::mac::MacAddr;
use crate::plan::Role;

impl Validator<'_> {
    pub(super) fn switches(&mut self) {
        let mut seen = HashSet::new();
        for (i, switch) in self.plan.switches.iter().enumerate() {
            if let Err(why) = check_label(&switch.name) {
                self.switch_error(i, "name", format!("{why}; a switch name is a short label such as `rack-switch`"));
            } else if !seen.insert(switch.name.as_str()) {
                self.switch_error(
                    i,
                    "name",
                    format!("another switch is already called `{}`; give each switch its own name", switch.name),
                );
            }
            if let Some(p) = switch.position
                && !(p.x.is_finite() && p.y.is_finite())
            {
                self.switch_error(
                    i,
                    "position",
                    "the position must be finite numbers; drag the switch to place it again",
                );
            }
        }
    }

    pub(super) fn nodes(&mut self, subnet: Option<Ipv4Net>, gateway: Option<Ipv4Addr>) -> Vec<Option<ValidatedNode>> {
        let plan = self.plan;
        let servers = plan.nodes.iter().filter(|n| n.role == Some(Role::Server)).count();
        if plan.nodes.is_empty() {
            self.error("nodes", "the plan has no nodes; add at least one server");
        } else if servers == 0 {
            self.error(
                "nodes",
                "no node is a K3s server; make at least one node a server (three for high availability)",
            );
        } else if servers > 1 && servers % 2 == 0 {
            self.warning(
                "nodes",
                format!(
                    "{servers} servers tolerate no more failures than {}; use an odd number of servers (make one an agent, or add one)",
                    servers - 1
                ),
            );
        }

        let switches: HashSet<&str> = plan.switches.iter().map(|s| s.name.as_str()).collect();
        let mut names: HashSet<&str> = HashSet::new();
        let mut macs: BTreeMap<MacAddr, String> = BTreeMap::new();
        let mut addresses: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let mut out = Vec::with_capacity(plan.nodes.len());

        for (i, node) in plan.nodes.iter().enumerate() {
            let mut ok = true;

            if let Err(why) = check_label(&node.name) {
                self.node_error(
                    i,
                    "name",
                    format!("{why}; the name becomes the hostname, such as `cp1` or `worker-2`"),
                );
                ok = false;
            } else if !names.insert(node.name.as_str()) {
                self.node_error(
                    i,
                    "name",
                    format!("another node is already called `{}`; give each node its own name", node.name),
                );
                ok = false;
            }

            let mac = if node.mac.trim().is_empty() {
                self.node_error(i, "mac", "missing; enter the MAC address of the network card the machine boots from");
                None
            } else {
                match node.mac.parse::<MacAddr>() {
                    Ok(m) if m.is_multicast() || m.is_zero() => {
                        self.node_error(
                            i,
                            "mac",
                            format!("`{m}` is a multicast or empty address, not a network card's; check the sticker or the firmware's network screen"),
                        );
                        None
                    }
                    Ok(m) => {
                        if let Some(other) = macs.insert(m, node.name.clone()) {
                            self.node_error(
                                i,
                                "mac",
                                format!("`{m}` is already the MAC of node `{other}`; each machine has its own MAC"),
                            );
                        }
                        Some(m)
                    }
                    Err(e) => {
                        self.node_error(i, "mac", format!("`{}`: {e}", node.mac.trim()));
                        None
                    }
                }
            };

            if node.role.is_none() {
                self.node_error(i, "role", "missing; choose `server` (control plane) or `agent` (workloads only)");
            }

            if let Err(why) = check_install_disk(&node.install_disk) {
                self.node_error(i, "install_disk", why);
                ok = false;
            } else if looks_like_partition(&node.install_disk) {
                self.node_warning(
                    i,
                    "install_disk",
                    format!("`{}` looks like a partition; Flatcar is installed to a whole disk such as /dev/sda or /dev/nvme0n1", node.install_disk),
                );
            }

            let address = match node.address.as_deref().map(str::trim) {
                None => None,
                Some("") => {
                    self.node_error(
                        i,
                        "address",
                        "empty; remove the field for DHCP, or set an address such as `10.0.0.11/24`",
                    );
                    ok = false;
                    None
                }
                Some(text) => match self.node_address(i, text, subnet, gateway) {
                    Some(net) => {
                        if let Some(other) = addresses.insert(net.addr(), node.name.clone()) {
                            self.node_error(
                                i,
                                "address",
                                format!("{} is already the address of node `{other}`; use a free address", net.addr()),
                            );
                        }
                        Some(net)
                    }
                    None => {
                        ok = false;
                        None
                    }
                },
            };

            if let Some(switch) = &node.switch
                && !switches.contains(switch.as_str())
            {
                self.node_error(
                    i,
                    "switch",
                    format!("there is no switch called `{switch}`; add it under `switches:` or connect the node to an existing one"),
                );
            }

            if let Some(p) = node.position
                && !(p.x.is_finite() && p.y.is_finite())
            {
                self.node_error(i, "position", "the position must be finite numbers; drag the node to place it again");
            }

            out.push(match (ok, mac, node.role) {
                (true, Some(mac), Some(role)) => Some(ValidatedNode {
                    name: node.name.clone(),
                    mac,
                    role,
                    install_disk: node.install_disk.clone(),
                    address,
                }),
                _ => None,
            });
        }
        out
    }

    pub(super) fn node_address(
        &mut self,
        index: usize,
        text: &str,
        subnet: Option<Ipv4Net>,
        gateway: Option<Ipv4Addr>,
    ) -> Option<Ipv4Net> {
        let net = if text.contains('/') {
            match text.parse::<Ipv4Net>() {
                Ok(n) => n,
                Err(_) => {
                    self.node_error(
                        index,
                        "address",
                        format!("`{text}` is not an IPv4 address with prefix length, such as `10.0.0.11/24`"),
                    );
                    return None;
                }
            }
        } else {
            match (text.parse::<Ipv4Addr>(), subnet) {
                (Ok(ip), Some(s)) => Ipv4Net::new(ip, s.prefix_len()).expect("prefix length comes from a valid subnet"),
                (Ok(_), None) => {
                    self.node_error(
                        index,
                        "address",
                        format!("`{text}` has no prefix length; write it with your subnet's prefix, such as `{text}/24`, or set `network.subnet`"),
                    );
                    return None;
                }
                (Err(_), _) => {
                    self.node_error(
                        index,
                        "address",
                        format!("`{text}` is not an IPv4 address, such as `10.0.0.11/24`"),
                    );
                    return None;
                }
            }
        };
        let ip = net.addr();
        let Some(s) = subnet else {
            // The missing subnet is reported once, on `network.subnet`.
            return Some(net);
        };
        if !s.contains(&ip) {
            self.node_error(
                index,
                "address",
                format!("{ip} is outside the subnet {s}; pick an address in it, or fix `network.subnet`"),
            );
            return None;
        }
        if net.prefix_len() != s.prefix_len() {
            self.node_error(
                index,
                "address",
                format!(
                    "prefix /{} differs from the subnet's /{}; write `{ip}/{}`",
                    net.prefix_len(),
                    s.prefix_len(),
                    s.prefix_len()
                ),
            );
            return None;
        }
        if ip == s.network() {
            self.node_error(index, "address", format!("{ip} is the subnet's network address; pick a host address"));
            return None;
        }
        if ip == s.broadcast() {
            self.node_error(index, "address", format!("{ip} is the subnet's broadcast address; pick a host address"));
            return None;
        }
        if Some(ip) == gateway {
            self.node_error(index, "address", format!("{ip} is the gateway's address; pick a free address"));
            return None;
        }
        Some(net)
    }
}

fn check_install_disk(disk: &str) -> Result<(), String> {
    if disk.trim().is_empty() {
        return Err("missing; set the whole disk to install to, such as `/dev/sda` or `/dev/nvme0n1`".into());
    }
    if !disk.starts_with("/dev/") || disk.len() <= "/dev/".len() {
        return Err(format!(
            "`{disk}` is not a device path; write an absolute /dev path such as `/dev/sda` or `/dev/disk/by-id/…`"
        ));
    }
    if disk.split('/').any(|part| part == ".." || part == ".") || disk.contains("//") || disk.ends_with('/') {
        return Err(format!("`{disk}` is not a plain device path; write it without `.`, `..` or empty parts"));
    }
    if !disk.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "`{}` has spaces or unusual characters; write a device path such as `/dev/sda`",
            disk.escape_default()
        ));
    }
    Ok(())
}

/// `/dev/sda1`, `/dev/nvme0n1p2`, `/dev/mmcblk0p1`, `…-part1`.
pub(super) fn looks_like_partition(disk: &str) -> bool {
    let name = disk.rsplit('/').next().unwrap_or(disk);
    if name.contains("-part") {
        return true;
    }
    let trailing_digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if trailing_digits == 0 {
        return false;
    }
    let stem = &name[..name.len() - trailing_digits];
    if disk.starts_with("/dev/disk/") {
        return false;
    }
    if stem.starts_with("nvme") || stem.starts_with("mmcblk") || stem.starts_with("loop") {
        return stem.ends_with('p') && stem.len() > 1 && stem[..stem.len() - 1].ends_with(|c: char| c.is_ascii_digit());
    }
    // sda1, vdb2, hda1, xvda1
    ["sd", "vd", "hd", "xvd"].iter().any(|p| stem.starts_with(p) && stem.len() > p.len())
}
