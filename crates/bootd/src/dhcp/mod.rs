//! DHCP for network boot: proxy mode (the home router keeps handing out addresses; we only add
//! boot information for PXE clients) and full mode (an isolated switch: we hand out addresses
//! too, with leases kept on disk).
//!
//! [`codec`] decodes and answers packets as pure functions over bytes; [`leases`] keeps full
//! mode's addresses; the [`DhcpServer`] here runs the socket loops, asks the
//! [`Booter`](crate::Booter) what each client should load, and logs and drops anything it cannot
//! use.

pub mod codec;
pub mod leases;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, OptionCode};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use ts_rs::TS;

pub use codec::{Firmware, MessageType, Request, client_packet, decode, encode, reply, sanitize};
pub use leases::{FullDhcp, Lease, Leases};

use crate::policy::BootClient;
use crate::registry::Registry;

/// How the boot server takes part in DHCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum DhcpMode {
    /// No DHCP at all: the router's options 66/67 point machines here.
    Off,
    /// Boot information only, next to the router's DHCP (the default).
    #[default]
    Proxy,
    /// Addresses and boot information, for a switch with no other DHCP server.
    Full,
}

impl DhcpMode {
    pub const ALL: [DhcpMode; 3] = [DhcpMode::Proxy, DhcpMode::Full, DhcpMode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            DhcpMode::Off => "off",
            DhcpMode::Proxy => "proxy",
            DhcpMode::Full => "full",
        }
    }
}

impl std::fmt::Display for DhcpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a DHCP mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a DHCP mode; choose proxy, full or off")]
pub struct ParseDhcpModeError(pub String);

impl FromStr for DhcpMode {
    type Err = ParseDhcpModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DhcpMode::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| ParseDhcpModeError(s.to_owned()))
    }
}

/// The DHCP side of a running boot server: one per server, shared by its sockets.
pub(crate) struct DhcpServer {
    pub mode: DhcpMode,
    /// Full mode's address settings; present exactly when `mode` is full.
    pub full: Option<FullDhcp>,
    /// This server's address: the server identifier and `siaddr` of every reply.
    pub address: Ipv4Addr,
    pub registry: Registry,
    pub leases: Mutex<Leases>,
    /// Where broadcast replies go (255.255.255.255:68).
    pub broadcast_to: SocketAddr,
    /// Where this server's HTTP listens, for the boot files' URLs.
    pub http_base: String,
}

impl DhcpServer {
    /// Serves DHCP on `socket` (port 67, or 4011 when `pxe_port`) until the task is dropped.
    pub async fn serve(self: Arc<Self>, socket: UdpSocket, pxe_port: bool) {
        let mut buf = vec![0u8; 1500];
        loop {
            let (len, peer) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "DHCP receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Defence in depth: a panic in a decoder must cost one packet, never the server.
            let decoded =
                std::panic::catch_unwind(|| decode(&buf[..len])).unwrap_or_else(|_| Err("decoder panicked".into()));
            let req = match decoded {
                Ok(r) => r,
                Err(why) => {
                    tracing::debug!(peer = %peer, why = %why, "dropping DHCP packet");
                    continue;
                }
            };
            let Some((reply, to)) = self.answer(&req, pxe_port, peer).await else { continue };
            match encode(&reply) {
                Ok(bytes) => {
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::warn!(mac = %req.mac, to = %to, error = %e, "cannot send DHCP reply");
                    }
                }
                Err(e) => tracing::warn!(mac = %req.mac, error = %e, "cannot encode DHCP reply"),
            }
        }
    }

    /// The reply to a request and where it goes; None when it gets none.
    async fn answer(&self, req: &Request, from_4011: bool, peer: SocketAddr) -> Option<(Message, SocketAddr)> {
        let firmware = req.firmware.map(Firmware::as_str);
        let ciaddr = req.message.ciaddr();
        // Replies go back where a unicast request came from, else to the broadcast address.
        let to = if from_4011 {
            peer
        } else if !ciaddr.is_unspecified() {
            SocketAddr::V4(SocketAddrV4::new(ciaddr, 68))
        } else {
            self.broadcast_to
        };
        let server_id = match req.message.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
            _ => None,
        };
        let client = BootClient {
            mac: req.mac,
            firmware: req.firmware,
            arch: req.arch,
            ipxe: req.ipxe,
            planned: self.registry.is_planned(req.mac),
        };
        let boot = if req.pxe || req.ipxe { self.registry.booter().boot_file(&client, &self.http_base) } else { None };
        match (self.mode, &self.full) {
            (DhcpMode::Off, _) => None,
            (DhcpMode::Proxy, _) => {
                if !(req.pxe || req.ipxe) {
                    return None;
                }
                let ip = (!ciaddr.is_unspecified()).then_some(ciaddr);
                self.registry.saw_dhcp(req.mac, firmware.as_deref(), req.vendor_class.as_deref(), ip).await;
                match req.kind {
                    MessageType::Discover if !from_4011 => {
                        Some((reply(req, MessageType::Offer, self.address, boot.as_ref(), None), to))
                    }
                    MessageType::Request if from_4011 || server_id == Some(self.address) => {
                        Some((reply(req, MessageType::Ack, self.address, boot.as_ref(), None), to))
                    }
                    _ => None,
                }
            }
            (DhcpMode::Full, None) => None,
            (DhcpMode::Full, Some(config)) => {
                let now = self.registry.now();
                let answer = {
                    let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
                    match req.kind {
                        MessageType::Discover => {
                            let ip = leases.offer(req.mac, config, now)?;
                            let lease = Lease { ip, config };
                            Some((
                                ip,
                                reply(req, MessageType::Offer, self.address, boot.as_ref(), Some(&lease)),
                                self.broadcast_to,
                            ))
                        }
                        MessageType::Request if server_id.is_none() || server_id == Some(self.address) => {
                            let ip = leases.acknowledge(req.mac, config, now)?;
                            let requested = match req.message.opts().get(OptionCode::RequestedIpAddress) {
                                Some(DhcpOption::RequestedIpAddress(r)) => Some(*r),
                                _ => (!ciaddr.is_unspecified()).then_some(ciaddr),
                            };
                            if requested.is_some_and(|r| r != ip) {
                                let mut nak = reply(req, MessageType::Nak, self.address, None, None);
                                nak.set_fname_str("");
                                return Some((nak, self.broadcast_to));
                            }
                            let lease = Lease { ip, config };
                            Some((ip, reply(req, MessageType::Ack, self.address, boot.as_ref(), Some(&lease)), to))
                        }
                        _ => None,
                    }
                };
                let (ip, message, to) = answer?;
                self.registry.saw_dhcp(req.mac, firmware.as_deref(), req.vendor_class.as_deref(), Some(ip)).await;
                Some((message, to))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_as_the_cli_and_the_app_write_them() {
        for mode in DhcpMode::ALL {
            assert_eq!(mode.as_str().parse::<DhcpMode>(), Ok(mode));
            assert_eq!(serde_json::to_value(mode).expect("json"), serde_json::json!(mode.as_str()));
        }
        assert!("Proxy".parse::<DhcpMode>().is_err());
        assert_eq!(DhcpMode::default(), DhcpMode::Proxy);
    }
}
