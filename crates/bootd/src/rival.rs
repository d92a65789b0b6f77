//! Other DHCP servers on the LAN that offer boot options (a router's options 66/67, another PXE
//! server): a machine may take their offer and boot from there instead. Their offers go to the
//! clients' port 68, which no socket of ours listens on, so a packet socket on the boot
//! interface watches the link for them (this needs `CAP_NET_RAW`, which `serve` has for binding
//! its interface; without it nothing is watched and a debug line says so).

use std::net::Ipv4Addr;

use crate::mac::Mac;

/// A DHCP offer (or ack) from another server that carries boot options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RivalOffer {
    /// The server that sent it (option 54, else the IP source).
    pub server: Ipv4Addr,
    /// The client it was sent to.
    pub client: Mac,
    /// What it offers to boot: `file` (option 67 or the header's file), with the TFTP server
    /// (option 66 or the header's next-server) when it names one.
    pub boot: String,
}

/// Reads an IPv4 packet (as a packet socket of type `SOCK_DGRAM` gives it): a DHCP offer or ack
/// from UDP port 67 to 68 that offers a boot file. Never panics on any input.
pub fn rival_offer(ip_packet: &[u8]) -> Option<RivalOffer> {
    let version_ihl = *ip_packet.first()?;
    if version_ihl >> 4 != 4 || *ip_packet.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    let source = Ipv4Addr::new(*ip_packet.get(12)?, *ip_packet.get(13)?, *ip_packet.get(14)?, *ip_packet.get(15)?);
    let udp = ip_packet.get(ihl..)?;
    let port = |i: usize| Some(u16::from_be_bytes([*udp.get(i)?, *udp.get(i + 1)?]));
    if port(0)? != 67 || port(2)? != 68 {
        return None;
    }
    let dhcp = udp.get(8..)?;
    // BOOTREPLY from an Ethernet client's exchange, with the DHCP magic cookie.
    if *dhcp.first()? != 2 || *dhcp.get(2)? != 6 || dhcp.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let chaddr = dhcp.get(28..34)?;
    let client = Mac([chaddr[0], chaddr[1], chaddr[2], chaddr[3], chaddr[4], chaddr[5]]);
    let siaddr = Ipv4Addr::new(dhcp[20], dhcp[21], dhcp[22], dhcp[23]);
    let text = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).trim().to_owned()
    };
    let mut file = text(dhcp.get(108..236)?);
    let mut tftp = String::new();
    let mut server = None;
    let mut kind = None;
    let mut i = 240;
    while let Some(&code) = dhcp.get(i) {
        match code {
            0 => i += 1,
            255 => break,
            _ => {
                let len = usize::from(*dhcp.get(i + 1)?);
                let data = dhcp.get(i + 2..i + 2 + len)?;
                match (code, len) {
                    (53, 1) => kind = Some(data[0]),
                    (54, 4) => server = Some(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
                    (66, _) => tftp = text(data),
                    (67, _) => file = text(data),
                    _ => {}
                }
                i += 2 + len;
            }
        }
    }
    // DHCPOFFER (2) or DHCPACK (5), with something to boot.
    if !matches!(kind, Some(2 | 5)) || file.is_empty() {
        return None;
    }
    if tftp.is_empty() && !siaddr.is_unspecified() {
        tftp = siaddr.to_string();
    }
    let boot = if tftp.is_empty() { file } else { format!("{file} from {tftp}") };
    Some(RivalOffer { server: server.unwrap_or(source), client, boot })
}

/// Watches `interface` for other servers' boot offers and hands each to `seen`. Returns at
/// once (with a debug line) when the packet socket cannot be had.
pub(crate) async fn watch(interface: Option<String>, own: Ipv4Addr, seen: impl Fn(RivalOffer) + Send + 'static) {
    use socket2::{Domain, Protocol, Socket, Type};
    const ETH_P_IP: u16 = 0x0800;
    let socket = match Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(i32::from(ETH_P_IP.to_be())))) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "not watching for other DHCP servers' boot offers (no packet socket)");
            return;
        }
    };
    // Only UDP from port 67 to 68, unfragmented, reaches this process: not the images it serves.
    const ONLY_DHCP_REPLIES: [socket2::SockFilter; 11] = [
        socket2::SockFilter::new(0x30, 0, 0, 9),      // ldb [9]: IP protocol
        socket2::SockFilter::new(0x15, 0, 8, 17),     // UDP, else drop
        socket2::SockFilter::new(0x28, 0, 0, 6),      // ldh [6]: flags and fragment offset
        socket2::SockFilter::new(0x45, 6, 0, 0x1fff), // a fragment: drop
        socket2::SockFilter::new(0xb1, 0, 0, 0),      // ldxb 4*([0]&0xf): IP header length
        socket2::SockFilter::new(0x48, 0, 0, 0),      // ldh [x+0]: source port
        socket2::SockFilter::new(0x15, 0, 3, 67),     // 67, else drop
        socket2::SockFilter::new(0x48, 0, 0, 2),      // ldh [x+2]: destination port
        socket2::SockFilter::new(0x15, 0, 1, 68),     // 68, else drop
        socket2::SockFilter::new(0x06, 0, 0, 0xffff), // accept
        socket2::SockFilter::new(0x06, 0, 0, 0),      // drop
    ];
    if let Err(e) = socket.attach_filter(&ONLY_DHCP_REPLIES) {
        tracing::debug!(error = %e, "not watching for other DHCP servers' boot offers (no filter)");
        return;
    }
    if let Some(dev) = &interface
        && let Err(e) = socket.bind_device(Some(dev.as_bytes()))
    {
        tracing::debug!(error = %e, "not watching for other DHCP servers' boot offers");
        return;
    }
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    // A datagram socket as far as receiving goes: recv(2) gives one IP packet at a time.
    let Ok(socket) = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket)) else { return };
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok(n) = socket.recv(&mut buf).await else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        if let Some(offer) = rival_offer(&buf[..n])
            && offer.server != own
        {
            seen(offer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/UDP packet from `server`:67 to 68 carrying a BOOTREPLY with `options`.
    fn packet(server: [u8; 4], file_field: &[u8], options: &[u8]) -> Vec<u8> {
        let mut dhcp = vec![0u8; 240];
        dhcp[0] = 2;
        dhcp[1] = 1;
        dhcp[2] = 6;
        dhcp[28..34].copy_from_slice(&[0x52, 0x54, 0, 0x5b, 0, 1]);
        dhcp[108..108 + file_field.len()].copy_from_slice(file_field);
        dhcp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        dhcp.extend_from_slice(options);
        dhcp.push(255);
        let mut udp = vec![0, 67, 0, 68, 0, 0, 0, 0];
        udp.extend_from_slice(&dhcp);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&server);
        ip.extend_from_slice(&[255, 255, 255, 255]);
        ip.extend_from_slice(&udp);
        ip
    }

    #[test]
    fn an_offer_with_a_boot_file_names_its_server_and_file() {
        let p = packet(
            [10, 0, 0, 1],
            b"",
            &[
                53, 1, 2, 54, 4, 10, 0, 0, 1, 66, 8, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'1', 67, 10, b'p',
                b'x', b'e', b'l', b'i', b'n', b'u', b'x', b'.', b'0',
            ],
        );
        let offer = rival_offer(&p).expect("an offer");
        assert_eq!(offer.server, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(offer.client, Mac([0x52, 0x54, 0, 0x5b, 0, 1]));
        assert_eq!(offer.boot, "pxelinux.0 from 10.0.0.1");
        // The header's file field counts too.
        let p = packet([10, 0, 0, 7], b"undionly.kpxe", &[53, 1, 5]);
        assert_eq!(rival_offer(&p).expect("an ack").boot, "undionly.kpxe");
    }

    #[test]
    fn offers_without_boot_options_and_other_packets_are_not_rivals() {
        assert_eq!(rival_offer(&packet([10, 0, 0, 1], b"", &[53, 1, 2, 54, 4, 10, 0, 0, 1])), None);
        // A request (from a client) is not an offer.
        let mut p = packet([10, 0, 0, 1], b"x.efi", &[53, 1, 2]);
        p[28] = 1;
        assert_eq!(rival_offer(&p), None);
        for len in 0..p.len() {
            let _ = rival_offer(&p[..len]);
        }
        // Option lengths that run past the end are refused, never read.
        assert_eq!(rival_offer(&packet([10, 0, 0, 1], b"", &[53, 1, 2, 67, 200, b'x'])), None);
    }
}
