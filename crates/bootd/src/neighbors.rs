//! Which MAC address the LAN gives an IP address: the kernel's neighbour (ARP) table.
//!
//! A machine's install is bound to the address it had when iPXE fetched its script. Its live
//! system may then get another address: Flatcar's network configuration asks DHCP with a DUID
//! client identifier, where iPXE sent its MAC, and a router that keys leases by client
//! identifier (dnsmasq does) hands out a second lease. A request from an address the install is
//! not bound to is that machine's when the neighbour table says the address is at the machine's
//! MAC: the boot server shares the machines' LAN, and answering a TCP connection made the kernel
//! resolve the peer. That check is no weaker than the address binding itself (both are what the
//! LAN says), and the install follows the machine to its new address.

use std::net::Ipv4Addr;

use crate::mac::Mac;

/// Looks up the MAC address of a neighbour on the LAN.
pub trait Neighbors: Send + Sync {
    fn mac_of(&self, ip: Ipv4Addr) -> Option<Mac>;

    /// Where `ip` is from this machine: its own, on one of its links, or beyond a router.
    fn link_of(&self, ip: Ipv4Addr) -> Link {
        kernel_link_of(ip)
    }
}

/// Where an address is, seen from this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// One of this machine's own addresses (loopback too): a request from here is no machine's.
    Local,
    /// On a link this machine is on: the neighbour table knows its MAC.
    OnLink,
    /// Behind a router or DHCP relay: its MAC cannot be known here.
    OffLink,
}

/// `ip`'s link from the kernel: local when an interface of this machine has it, on the link
/// when a route without a gateway covers it (`/proc/net/route`, this network namespace's), else
/// off it. (Not "a socket can bind it": with `net.ipv4.ip_nonlocal_bind` any address binds.)
pub fn kernel_link_of(ip: Ipv4Addr) -> Link {
    let own = || if_addrs::get_if_addrs().is_ok_and(|all| all.iter().any(|i| i.ip() == std::net::IpAddr::V4(ip)));
    if ip.is_loopback() || ip.is_unspecified() || own() {
        return Link::Local;
    }
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    if connected_route(&routes, ip) { Link::OnLink } else { Link::OffLink }
}

/// Whether `/proc/net/route` text has a route without a gateway that covers `ip` (its
/// addresses are hexadecimal in host byte order, as the kernel writes them).
pub(crate) fn connected_route(table: &str, ip: Ipv4Addr) -> bool {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_iface, dest, _gateway, flags, _, _, _, mask, ..] = fields[..] else { return false };
        let (Some(dest), Some(flags), Some(mask)) = (hex(dest), u32::from_str_radix(flags, 16).ok(), hex(mask)) else {
            return false;
        };
        let ip = u32::from(ip);
        flags & RTF_UP != 0 && flags & RTF_GATEWAY == 0 && mask != 0 && ip & mask == dest & mask
    })
}

/// The kernel's table, from `/proc/net/arp` (of this network namespace).
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelNeighbors;

/// `ATF_COM`: the entry is complete (resolved).
const COMPLETE: u32 = 0x2;

impl Neighbors for KernelNeighbors {
    fn mac_of(&self, ip: Ipv4Addr) -> Option<Mac> {
        let table = std::fs::read_to_string("/proc/net/arp").ok()?;
        parse_arp(&table, ip)
    }
}

/// Which of `ips` some host on the LAN answers for: a datagram to each (UDP discard port) makes
/// the kernel resolve the on-link ones; after `wait`, the neighbour table says who answered.
/// Addresses off the link are never resolved, so never reported.
pub async fn probe(ips: &[Ipv4Addr], wait: std::time::Duration) -> Vec<(Ipv4Addr, Mac)> {
    let Ok(socket) = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else { return Vec::new() };
    let mut sent = false;
    for ip in ips {
        sent |= socket.send_to(&[0], (*ip, 9)).await.is_ok();
    }
    if !sent {
        return Vec::new();
    }
    tokio::time::sleep(wait).await;
    let table = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    ips.iter().filter_map(|ip| parse_arp(&table, *ip).map(|mac| (*ip, mac))).collect()
}

/// The complete entry for `ip` in `/proc/net/arp` text.
pub(crate) fn parse_arp(table: &str, ip: Ipv4Addr) -> Option<Mac> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [addr, _hw_type, flags, mac, ..] = fields[..] else { return None };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        (addr.parse::<Ipv4Addr>().ok()? == ip && flags & COMPLETE != 0).then(|| mac.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.77.0.101      0x1         0x2         52:54:00:77:00:01     *        b-eth
10.77.0.102      0x1         0x0         00:00:00:00:00:00     *        b-eth
10.77.0.1        0x1         0x2         3a:1e:5c:00:00:01     *        b-eth
";

    #[test]
    fn connected_routes_put_an_address_on_the_link() {
        // `ip route`: default via 10.77.0.1 dev b-eth; 10.77.0.0/24 dev b-eth; 192.168.5.0/24 via 10.77.0.1.
        let table = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
b-eth\t00000000\t01004D0A\t0003\t0\t0\t0\t00000000\t0\t0\t0
b-eth\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
b-eth\t0005A8C0\t01004D0A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        assert!(connected_route(table, ip("10.77.0.101")));
        assert!(!connected_route(table, ip("10.77.1.5")), "only through the default route");
        assert!(!connected_route(table, ip("192.168.5.9")), "through a gateway");
        assert!(!connected_route("garbage", ip("10.77.0.101")));
        assert_eq!(kernel_link_of(ip("127.0.0.1")), Link::Local);
    }

    #[test]
    fn only_complete_entries_name_a_mac() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        assert_eq!(parse_arp(TABLE, ip("10.77.0.101")), Some("52:54:00:77:00:01".parse().expect("mac")));
        assert_eq!(parse_arp(TABLE, ip("10.77.0.102")), None, "incomplete");
        assert_eq!(parse_arp(TABLE, ip("10.77.0.9")), None, "absent");
        assert_eq!(parse_arp("", ip("10.77.0.1")), None);
        assert_eq!(parse_arp("garbage\nmore garbage here x y\n", ip("10.77.0.1")), None);
    }
}
