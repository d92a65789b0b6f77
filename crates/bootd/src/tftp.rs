//! A read-only TFTP server (RFC 1350) with the blksize (RFC 2348), timeout and tsize (RFC 2349)
//! and windowsize (RFC 7440) options, serving only an allow-list of files held in memory.
//!
//! The allow-list maps request names to bytes read once at start-up, so no request can reach the
//! file system at all: `..`, absolute paths, backslashes, symlinks and NULs have nothing to
//! resolve against.
//!
//! A LAN host that misbehaves cannot tie it up: at most [`MAX_TRANSFERS`] transfers run at once
//! (dnsmasq's default) and [`MAX_TRANSFERS_PER_ADDRESS`] per client address, a client's timeout
//! above [`MAX_TIMEOUT_S`] seconds is not accepted, its window is at most [`MAX_WINDOW`] blocks,
//! a block is sent at most [`RETRIES`] more times without progress, and a transfer ends after
//! [`TRANSFER_DEADLINE`] whatever the client does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

const OP_RRQ: u16 = 1;
const OP_WRQ: u16 = 2;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;

const ERR_NOT_FOUND: u16 = 1;
const ERR_ACCESS: u16 = 2;
const ERR_ILLEGAL: u16 = 4;
const ERR_BAD_OPTION: u16 = 8;

const ERR_UNDEFINED: u16 = 0;

const DEFAULT_BLKSIZE: usize = 512;
const MAX_BLKSIZE: usize = 65464;
/// The largest window a client gets (RFC 7440 lets the server answer with less).
pub const MAX_WINDOW: u16 = 16;
/// A block (or the option acknowledgement) is sent at most this many more times without an
/// acknowledgement that moves the transfer on.
pub const RETRIES: u32 = 5;
/// Transfers at once, in all and per client address.
pub const MAX_TRANSFERS: usize = 50;
pub const MAX_TRANSFERS_PER_ADDRESS: usize = 4;
/// The longest per-packet timeout a client may ask for; a longer one is not acknowledged (the
/// default of 1 s applies).
pub const MAX_TIMEOUT_S: u8 = 5;
/// No transfer runs longer: iPXE's binaries take well under a second on a LAN.
pub const TRANSFER_DEADLINE: Duration = Duration::from_secs(120);

/// The files TFTP may serve, by the name clients ask for.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    files: BTreeMap<String, Arc<[u8]>>,
}

impl AllowList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: &str, bytes: Vec<u8>) {
        self.files.insert(name.to_owned(), bytes.into());
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// The file for a request name. A single leading `/` is ignored (some firmware sends it);
    /// nothing else is interpreted.
    pub fn get(&self, requested: &str) -> Option<Arc<[u8]>> {
        let name = requested.strip_prefix('/').unwrap_or(requested);
        self.files.get(name).cloned()
    }
}

/// A parsed read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub filename: String,
    pub mode: String,
    pub blksize: Option<usize>,
    pub timeout: Option<u8>,
    pub tsize: bool,
    pub windowsize: Option<u16>,
}

/// Why a packet is not a read request we answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Not worth an answer (too short, not a request at all).
    Ignore(&'static str),
    /// Answer with a TFTP error.
    Refuse(u16, &'static str),
}

/// Parses the first packet of a transfer.
pub fn parse_request(packet: &[u8]) -> Result<ReadRequest, RequestError> {
    if packet.len() < 4 {
        return Err(RequestError::Ignore("packet too short"));
    }
    let opcode = u16::from_be_bytes([packet[0], packet[1]]);
    match opcode {
        OP_RRQ => {}
        OP_WRQ => return Err(RequestError::Refuse(ERR_ACCESS, "this server is read-only")),
        _ => return Err(RequestError::Ignore("not a request")),
    }
    let body = &packet[2..];
    if body.last() != Some(&0) {
        return Err(RequestError::Refuse(ERR_ILLEGAL, "malformed request"));
    }
    let mut fields = body[..body.len() - 1].split(|b| *b == 0);
    let filename = fields.next().ok_or(RequestError::Refuse(ERR_ILLEGAL, "no file name"))?;
    let mode = fields.next().ok_or(RequestError::Refuse(ERR_ILLEGAL, "no mode"))?;
    let filename = std::str::from_utf8(filename).map_err(|_| RequestError::Refuse(ERR_NOT_FOUND, "file not found"))?;
    let mode =
        std::str::from_utf8(mode).map_err(|_| RequestError::Refuse(ERR_ILLEGAL, "bad mode"))?.to_ascii_lowercase();
    if filename.is_empty() {
        return Err(RequestError::Refuse(ERR_NOT_FOUND, "file not found"));
    }
    if mode != "octet" && mode != "netascii" {
        return Err(RequestError::Refuse(ERR_ILLEGAL, "only octet and netascii modes are served"));
    }
    let mut req = ReadRequest {
        filename: filename.to_owned(),
        mode,
        blksize: None,
        timeout: None,
        tsize: false,
        windowsize: None,
    };
    while let Some(name) = fields.next() {
        let Some(value) = fields.next() else {
            return Err(RequestError::Refuse(ERR_BAD_OPTION, "option without value"));
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
        // Unknown or unparsable options are ignored, as RFC 2347 asks.
        match (name.as_str(), value) {
            ("blksize", Some(v)) if v >= 8 => req.blksize = Some((v as usize).min(MAX_BLKSIZE)),
            ("timeout", Some(v)) if (1..=u64::from(MAX_TIMEOUT_S)).contains(&v) => req.timeout = Some(v as u8),
            ("tsize", Some(_)) => req.tsize = true,
            ("windowsize", Some(v)) if v >= 1 => req.windowsize = Some(v.min(u64::from(MAX_WINDOW)) as u16),
            _ => {}
        }
    }
    Ok(req)
}

fn error_packet(code: u16, message: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(5 + message.len());
    p.extend_from_slice(&OP_ERROR.to_be_bytes());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(message.as_bytes());
    p.push(0);
    p
}

/// Called with (peer, file name, file size) when a transfer starts.
pub type OnTransfer = Arc<dyn Fn(SocketAddr, &str, usize) + Send + Sync>;

/// Serves TFTP read requests for `files` on `socket` until the task is dropped. Never stops for
/// a bad packet. `on_transfer` hears of each transfer as it begins, `on_done` once the client
/// acknowledged its last block.
pub async fn serve(socket: UdpSocket, files: Arc<AllowList>, on_transfer: OnTransfer, on_done: OnTransfer) {
    let local_ip = socket.local_addr().map(|a| a.ip()).ok();
    let mut buf = vec![0u8; 2048];
    let running = crate::limit::Limiter::new(MAX_TRANSFERS, MAX_TRANSFERS_PER_ADDRESS);
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "TFTP receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let req = match parse_request(&buf[..len]) {
            Ok(r) => r,
            Err(RequestError::Ignore(why)) => {
                tracing::debug!(peer = %peer, why, "ignoring TFTP packet");
                continue;
            }
            Err(RequestError::Refuse(code, why)) => {
                tracing::warn!(peer = %peer, why, "refusing TFTP request");
                let _ = socket.send_to(&error_packet(code, why), peer).await;
                continue;
            }
        };
        let Some(data) = files.get(&req.filename) else {
            tracing::warn!(peer = %peer, file = %req.filename.escape_debug(), "TFTP request for a file not on the allow-list");
            let _ = socket.send_to(&error_packet(ERR_NOT_FOUND, "file not found"), peer).await;
            continue;
        };
        let slot = match running.acquire(peer.ip()) {
            Ok(slot) => slot,
            Err((refused, running)) => {
                if refused.is_power_of_two() {
                    tracing::warn!(peer = %peer, refused, running, "TFTP busy: too many transfers at once (in all, or from this address); refused");
                }
                let _ = socket.send_to(&error_packet(ERR_UNDEFINED, "server busy, try again"), peer).await;
                continue;
            }
        };
        on_transfer(peer, &req.filename, data.len());
        let bind = SocketAddr::new(local_ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)), 0);
        let on_done = on_done.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(TRANSFER_DEADLINE, transfer(bind, peer, &req, &data)).await {
                Ok(Ok(())) => {
                    tracing::debug!(peer = %peer, file = %req.filename, "TFTP transfer done");
                    on_done(peer, &req.filename, data.len());
                }
                Ok(Err(why)) => tracing::info!(peer = %peer, file = %req.filename, why = %why, "TFTP transfer failed"),
                Err(_) => tracing::info!(peer = %peer, file = %req.filename, "TFTP transfer took too long; ended"),
            }
        });
    }
}

/// One transfer, from its own socket (the transfer ID), with a sliding window.
async fn transfer(bind: SocketAddr, peer: SocketAddr, req: &ReadRequest, data: &[u8]) -> Result<(), String> {
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(peer).await.map_err(|e| e.to_string())?;
    let blksize = req.blksize.unwrap_or(DEFAULT_BLKSIZE);
    let window = req.windowsize.unwrap_or(1).max(1) as u64;
    let timeout = Duration::from_secs(u64::from(req.timeout.unwrap_or(1)));
    let mut buf = vec![0u8; 1024];

    // Option acknowledgement: the client ACKs block 0.
    let mut oack = Vec::new();
    if let Some(b) = req.blksize {
        push_option(&mut oack, "blksize", b as u64);
    }
    if let Some(t) = req.timeout {
        push_option(&mut oack, "timeout", u64::from(t));
    }
    if req.tsize {
        push_option(&mut oack, "tsize", data.len() as u64);
    }
    if let Some(w) = req.windowsize {
        push_option(&mut oack, "windowsize", u64::from(w));
    }
    if !oack.is_empty() {
        let mut packet = OP_OACK.to_be_bytes().to_vec();
        packet.extend_from_slice(&oack);
        let mut acked = false;
        for _ in 0..=RETRIES {
            socket.send(&packet).await.map_err(|e| e.to_string())?;
            match recv_ack(&socket, &mut buf, timeout).await {
                Ok(Some(0)) => {
                    acked = true;
                    break;
                }
                Ok(_) => continue,
                // The usual size probe (UEFI PXE clients): ask for tsize, read it, abort.
                Err(why) if req.tsize && why.starts_with("client aborted") => {
                    tracing::debug!(peer = %peer, file = %req.filename, "TFTP size probe answered");
                    return Ok(());
                }
                Err(why) => return Err(why),
            }
        }
        if !acked {
            return Err("no acknowledgement of the options".into());
        }
    }

    // Blocks are numbered from 1; the last one is shorter than blksize (possibly empty).
    let blocks = data.len() as u64 / blksize as u64 + 1;
    let mut acked: u64 = 0; // blocks the client has confirmed
    let mut retries = 0;
    // One buffer for every DATA packet of the transfer.
    let mut packet = Vec::with_capacity(4 + blksize);
    while acked < blocks {
        let end = (acked + window).min(blocks);
        for n in acked + 1..=end {
            let start = ((n - 1) * blksize as u64) as usize;
            let stop = (start + blksize).min(data.len());
            packet.clear();
            packet.extend_from_slice(&OP_DATA.to_be_bytes());
            packet.extend_from_slice(&((n & 0xffff) as u16).to_be_bytes());
            packet.extend_from_slice(&data[start..stop]);
            socket.send(&packet).await.map_err(|e| e.to_string())?;
        }
        match recv_ack(&socket, &mut buf, timeout).await? {
            Some(block) => {
                // Block numbers wrap at 65536; map the ACK into the window just sent.
                let base = acked & !0xffff;
                let mut full = base | u64::from(block);
                if full < acked {
                    full += 0x1_0000;
                }
                if full > acked && full <= end {
                    acked = full;
                    retries = 0;
                } else {
                    // A stale or made-up acknowledgement moves nothing: it counts as a retry.
                    retries += 1;
                    if retries > RETRIES {
                        return Err(format!("no progress past block {}", acked + 1));
                    }
                }
            }
            None => {
                retries += 1;
                if retries > RETRIES {
                    return Err(format!("client stopped answering at block {}", acked + 1));
                }
            }
        }
    }
    Ok(())
}

fn push_option(out: &mut Vec<u8>, name: &str, value: u64) {
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.extend_from_slice(value.to_string().as_bytes());
    out.push(0);
}

/// Waits for an ACK; `None` on timeout. An ERROR from the client ends the transfer.
async fn recv_ack(socket: &UdpSocket, buf: &mut [u8], timeout: Duration) -> Result<Option<u16>, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let len = match tokio::time::timeout_at(deadline, socket.recv(buf)).await {
            Err(_) => return Ok(None),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(len)) => len,
        };
        if len < 4 {
            continue;
        }
        match u16::from_be_bytes([buf[0], buf[1]]) {
            OP_ACK => return Ok(Some(u16::from_be_bytes([buf[2], buf[3]]))),
            OP_ERROR => {
                return Err(format!(
                    "client aborted: {}",
                    String::from_utf8_lossy(&buf[4..len]).trim_end_matches('\0')
                ));
            }
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(parts: &[&str]) -> Vec<u8> {
        let mut p = OP_RRQ.to_be_bytes().to_vec();
        for part in parts {
            p.extend_from_slice(part.as_bytes());
            p.push(0);
        }
        p
    }

    #[test]
    fn parses_requests_with_options() {
        let r = parse_request(&rrq(&[
            "undionly.kpxe",
            "octet",
            "blksize",
            "1432",
            "tsize",
            "0",
            "windowsize",
            "8",
            "timeout",
            "3",
        ]))
        .expect("parses");
        assert_eq!(r.filename, "undionly.kpxe");
        assert_eq!((r.blksize, r.tsize, r.windowsize, r.timeout), (Some(1432), true, Some(8), Some(3)));
    }

    #[test]
    fn clamps_and_ignores_odd_options() {
        let r = parse_request(&rrq(&[
            "f",
            "OCTET",
            "blksize",
            "999999",
            "windowsize",
            "9999",
            "colour",
            "blue",
            "timeout",
            "0",
        ]))
        .expect("parses");
        assert_eq!((r.blksize, r.windowsize, r.timeout), (Some(MAX_BLKSIZE), Some(MAX_WINDOW), None));
        // A client's long timeout is not accepted (it would hold a transfer for minutes).
        assert_eq!(parse_request(&rrq(&["f", "octet", "timeout", "255"])).expect("parses").timeout, None);
        assert_eq!(parse_request(&rrq(&["f", "octet", "timeout", "5"])).expect("parses").timeout, Some(5));
        assert_eq!(parse_request(&rrq(&["f", "octet", "blksize", "4"])).expect("parses").blksize, None);
    }

    #[test]
    fn refuses_or_ignores_bad_packets() {
        assert_eq!(parse_request(&[]), Err(RequestError::Ignore("packet too short")));
        assert_eq!(parse_request(&[0, 3, 0, 1, 1, 2]), Err(RequestError::Ignore("not a request")));
        let mut wrq = rrq(&["f", "octet"]);
        wrq[1] = 2;
        assert!(matches!(parse_request(&wrq), Err(RequestError::Refuse(ERR_ACCESS, _))));
        assert!(matches!(parse_request(&[0, 1, b'f', 0, b'o']), Err(RequestError::Refuse(ERR_ILLEGAL, _))));
        assert!(matches!(parse_request(&rrq(&["f", "mail"])), Err(RequestError::Refuse(ERR_ILLEGAL, _))));
        assert!(matches!(parse_request(&rrq(&["", "octet"])), Err(RequestError::Refuse(ERR_NOT_FOUND, _))));
        assert!(matches!(
            parse_request(&rrq(&["f", "octet", "blksize"])),
            Err(RequestError::Refuse(ERR_BAD_OPTION, _))
        ));
    }

    #[test]
    fn the_allow_list_interprets_nothing() {
        let mut files = AllowList::new();
        files.insert("ipxe.efi", b"EFI".to_vec());
        assert!(files.get("ipxe.efi").is_some());
        assert!(files.get("/ipxe.efi").is_some());
        for evil in [
            "../ipxe.efi",
            "//ipxe.efi",
            "./ipxe.efi",
            "\\ipxe.efi",
            "ipxe.efi\0",
            "IPXE.EFI",
            "/etc/passwd",
            "ipxe.efi/",
            "ipxe.efi/..",
        ] {
            assert!(files.get(evil).is_none(), "{evil:?}");
        }
    }
}
