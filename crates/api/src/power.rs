//! Power on: Wake-on-LAN. Every node's `config.ign` arms its planned NIC (a systemd `.link` with
//! `WakeOnLan=magic`, as Flatcar boots with it disarmed); a magic packet on the boot interface's
//! LAN then starts a machine that is off and still has power. Magic packets are UDP datagrams
//! (six `0xff` bytes, then the MAC sixteen times, made by the `wol` crate) sent to the
//! interface's subnet broadcast address, port 9: every NIC on that LAN sees them, and sending
//! them needs no privilege.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use anyhow::{Context, bail};
use serde::Serialize;
use ts_rs::TS;
use wol::SendMagicPacket;

use crate::Flatlab;

/// Magic packets sent to each machine: a datagram can be lost, and a sleeping NIC asks for no
/// retransmission.
pub const PACKETS_PER_MACHINE: usize = 3;

/// Magic packets that went out for one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct PoweredOn {
    pub node: String,
    pub mac: String,
    /// Where they went: the boot interface's broadcast address, port 9.
    pub to: String,
    pub packets: usize,
}

/// The interface's IPv4 address and its subnet's broadcast address.
pub fn wake_route(interface: &str) -> anyhow::Result<(Ipv4Addr, Ipv4Addr)> {
    let all = if_addrs::get_if_addrs().context("listing network interfaces")?;
    crate::boot::require_interface(&all, interface)?;
    all.iter()
        .find_map(|i| match &i.addr {
            // From the netmask, not the interface's broadcast field: an address added without
            // `brd` reports none, or its own address.
            if_addrs::IfAddr::V4(v4) if i.name == interface => Some((v4.ip, broadcast_of(v4.ip, v4.netmask))),
            _ => None,
        })
        .with_context(|| {
            format!("interface `{interface}` has no IPv4 address: magic packets go to its subnet's broadcast address")
        })
}

/// The first interface (by name) with an IPv4 address inside `subnet`.
pub fn interface_on(subnet: ipnet::Ipv4Net) -> anyhow::Result<Option<String>> {
    let mut found: Vec<String> = if_addrs::get_if_addrs()
        .context("listing network interfaces")?
        .into_iter()
        .filter(|i| matches!(&i.addr, if_addrs::IfAddr::V4(v4) if subnet.contains(&v4.ip)))
        .map(|i| i.name)
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

fn broadcast_of(ip: Ipv4Addr, netmask: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) | !u32::from(netmask))
}

impl Flatlab {
    /// Sends magic packets to one node of the plan, or to every node (one that is on ignores
    /// them), on `interface`'s LAN.
    ///
    /// With no interface given: the one with an address on the plan's subnet.
    pub async fn power_on(
        &self,
        name: &str,
        node: Option<&str>,
        interface: Option<&str>,
    ) -> anyhow::Result<Vec<PoweredOn>> {
        let plan =
            self.validated_plan(name, "fix the plan's errors first: a magic packet carries the node's MAC").await?;
        let interface = match interface {
            Some(i) => i.to_owned(),
            None => {
                let Some(subnet) = plan.subnet() else {
                    bail!("plan {name} names no subnet: give the interface its machines are on with --interface")
                };
                interface_on(subnet)?.with_context(|| {
                    format!("no network interface of this computer has an address on plan {name}'s subnet {subnet}: give the one its machines are on with --interface")
                })?
            }
        };
        let interface = interface.as_str();
        let targets: Vec<_> = match node {
            Some(n) => match plan.nodes().iter().find(|x| x.name == n) {
                Some(found) => vec![found],
                None => bail!(
                    "plan {name} has no node called `{n}`; its nodes: {}",
                    plan.nodes().iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            },
            None => plan.nodes().iter().collect(),
        };
        let (from, broadcast) = wake_route(interface)?;
        let socket =
            UdpSocket::bind((from, 0)).with_context(|| format!("binding a UDP socket to {from} ({interface})"))?;
        socket.set_broadcast(true).context("allowing broadcasts on the socket")?;
        let to = SocketAddrV4::new(broadcast, 9);
        let mut sent = Vec::with_capacity(targets.len());
        for n in targets {
            for _ in 0..PACKETS_PER_MACHINE {
                socket
                    .send_magic_packet(wol::MacAddress::new(n.mac.0), None, to)
                    .with_context(|| format!("sending {}'s magic packet to {to} on {interface}", n.name))?;
            }
            tracing::info!(plan = name, node = n.name, mac = %n.mac, %to, "magic packets sent");
            sent.push(PoweredOn {
                node: n.name.clone(),
                mac: n.mac.to_string(),
                to: to.to_string(),
                packets: PACKETS_PER_MACHINE,
            });
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broadcast_address_is_the_subnet_s() {
        assert_eq!(
            broadcast_of(Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(255, 255, 255, 0)),
            Ipv4Addr::new(10, 77, 0, 255)
        );
        assert_eq!(
            broadcast_of(Ipv4Addr::new(192, 168, 1, 20), Ipv4Addr::new(255, 255, 254, 0)),
            Ipv4Addr::new(192, 168, 1, 255)
        );
        assert!(
            format!("{:#}", wake_route("no-such-if0").expect_err("none"))
                .contains("no network interface called `no-such-if0`")
        );
    }
}
