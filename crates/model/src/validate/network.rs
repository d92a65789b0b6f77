//! The LAN: subnet, gateway, DNS servers.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::Validator;
use super::names::check_dns_name;

impl Validator<'_> {
    pub(super) fn network(&mut self) -> (Option<Ipv4Net>, Option<Ipv4Addr>, Vec<IpAddr>) {
        let net = &self.plan.network;
        let any_static = self.plan.nodes.iter().any(|n| n.address.as_deref().is_some_and(|a| !a.trim().is_empty()));

        let subnet = if net.subnet.trim().is_empty() {
            if any_static {
                self.error(
                    "network.subnet",
                    "missing; nodes with a static address need the subnet, such as `10.0.0.0/24`",
                );
            }
            None
        } else {
            match net.subnet.trim().parse::<Ipv4Net>() {
                Ok(s) if s.network() != s.addr() => {
                    self.error(
                        "network.subnet",
                        format!("`{s}` has host bits set; write the network address: `{}`", s.trunc()),
                    );
                    Some(s.trunc())
                }
                Ok(s) if s.prefix_len() > 30 => {
                    self.error(
                        "network.subnet",
                        format!("`{s}` has no room for nodes; use a prefix of /30 or shorter"),
                    );
                    None
                }
                Ok(s) => Some(s),
                Err(_) => {
                    self.error(
                        "network.subnet",
                        format!(
                            "`{}` is not an IPv4 subnet; write it as address/prefix, such as `10.0.0.0/24`",
                            net.subnet.trim()
                        ),
                    );
                    None
                }
            }
        };

        let gateway = if net.gateway.trim().is_empty() {
            if any_static {
                self.error(
                    "network.gateway",
                    "missing; nodes with a static address need the router's address, such as `10.0.0.1`",
                );
            }
            None
        } else {
            match net.gateway.trim().parse::<Ipv4Addr>() {
                Ok(gw) => {
                    if let Some(s) = subnet {
                        if !s.contains(&gw) {
                            self.error(
                                "network.gateway",
                                format!("`{gw}` is outside the subnet {s}; use the router's address in it"),
                            );
                        } else if gw == s.network() || gw == s.broadcast() {
                            self.error(
                                "network.gateway",
                                format!(
                                    "`{gw}` is the subnet's network or broadcast address; use the router's address"
                                ),
                            );
                        }
                    }
                    Some(gw)
                }
                Err(_) => {
                    self.error(
                        "network.gateway",
                        format!("`{}` is not an IPv4 address, such as `10.0.0.1`", net.gateway.trim()),
                    );
                    None
                }
            }
        };

        let mut dns = Vec::new();
        for (i, server) in net.dns.iter().enumerate() {
            match server.trim().parse::<IpAddr>() {
                Ok(ip) => dns.push(ip),
                Err(_) => self.error(
                    format!("network.dns[{i}]"),
                    format!(
                        "`{}` is not an IP address; DNS servers are given by address, such as `10.0.0.1`",
                        server.trim()
                    ),
                ),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, server) in net.ntp.iter().enumerate() {
            let server = server.trim();
            let path = format!("network.ntp[{i}]");
            if server.parse::<IpAddr>().is_err() && check_dns_name(server).is_err() {
                self.error(
                    path,
                    format!("`{server}` is not a host name or IP address; name a time server such as `ntp.example.org` or `10.0.0.1`"),
                );
            } else if !seen.insert(server) {
                self.warning(path, format!("`{server}` is listed twice; remove one"));
            }
        }
        if any_static && net.dns.is_empty() {
            self.warning("network.dns", "no DNS server: nodes with a static address will not resolve names; add your router, such as `[10.0.0.1]`");
        }
        (subnet, gateway, dns)
    }
}
