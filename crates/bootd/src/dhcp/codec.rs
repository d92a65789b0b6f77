//! DHCP packets: decoding what clients send (keeping only the options a boot server reads)
//! and building replies. Pure functions over bytes, tested with packets captured from real
//! firmware (`tests/fixtures/dhcp/`).

use std::net::Ipv4Addr;

pub use dhcproto::v4::MessageType;
use dhcproto::v4::{self, DhcpOption, Message, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use super::leases::Lease;
use crate::mac::Mac;
use crate::policy::BootFile;

/// A client's firmware, from DHCP option 93 (and option 77 for iPXE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    UefiIa32,
    UefiX64,
    UefiArm64,
    /// UEFI HTTP boot (option 60 `HTTPClient`): wants a URL, not a TFTP file name.
    UefiHttp,
    Other(u16),
}

impl Firmware {
    /// How the firmware is shown: `bios`, `uefi-x64`, ..., `arch-N`.
    pub fn as_str(self) -> String {
        match self {
            Firmware::Bios => "bios".into(),
            Firmware::UefiIa32 => "uefi-ia32".into(),
            Firmware::UefiX64 => "uefi-x64".into(),
            Firmware::UefiArm64 => "uefi-arm64".into(),
            Firmware::UefiHttp => "uefi-http".into(),
            Firmware::Other(n) => format!("arch-{n}"),
        }
    }
}

/// A decoded request worth looking at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub message: Message,
    pub mac: Mac,
    pub kind: MessageType,
    /// Option 60 starts with `PXEClient` or `HTTPClient`.
    pub pxe: bool,
    pub ipxe: bool,
    pub firmware: Option<Firmware>,
    /// Option 93 as sent.
    pub arch: Option<u16>,
    pub vendor_class: Option<String>,
}

/// The options a boot server reads, with the lengths they may have. Everything else is dropped
/// before the packet reaches the decoder, which panics on some malformed options it has no
/// business reading here (found by fuzzing: rapid commit with a length, classless routes).
fn option_allowed(code: u8, len: usize) -> bool {
    match code {
        53 => len == 1,                          // message type
        50 | 51 | 54 => len == 4,                // requested address, lease time, server id
        57 => len == 2,                          // maximum message size
        93 => len >= 2 && len.is_multiple_of(2), // client system architecture(s)
        12 | 55 | 60 | 61 | 77 | 97 => len >= 1, // host name, parameters, classes, client ids
        _ => false,
    }
}

/// Copies the fixed header and the allowed options of a BOOTP/DHCP packet into a fresh one.
pub fn sanitize(packet: &[u8]) -> Result<Vec<u8>, String> {
    const OPTIONS: usize = 240;
    if packet.len() < OPTIONS {
        return Err(format!("too short for DHCP ({} bytes)", packet.len()));
    }
    if packet[236..OPTIONS] != [99, 130, 83, 99] {
        return Err("no DHCP magic cookie".into());
    }
    if packet[2] != 6 {
        return Err("not an Ethernet client".into());
    }
    let mut out = packet[..OPTIONS].to_vec();
    let mut i = OPTIONS;
    while i < packet.len() {
        match packet[i] {
            0 => i += 1,
            255 => break,
            code => {
                let len = *packet.get(i + 1).ok_or("option without length")? as usize;
                let data = packet.get(i + 2..i + 2 + len).ok_or("option runs past the packet")?;
                if option_allowed(code, len) {
                    out.push(code);
                    out.push(len as u8);
                    out.extend_from_slice(data);
                }
                i += 2 + len;
            }
        }
    }
    out.push(255);
    Ok(out)
}

/// Decodes a DHCP packet. Errors say why it was dropped.
pub fn decode(packet: &[u8]) -> Result<Request, String> {
    let clean = sanitize(packet)?;
    let message = Message::decode(&mut Decoder::new(&clean)).map_err(|e| format!("not DHCP: {e}"))?;
    if message.opcode() != Opcode::BootRequest {
        return Err("not a request".into());
    }
    // Check the length before reading chaddr: dhcproto slices chaddr by hlen and panics on
    // hlen > 16 (found by fuzzing).
    if message.hlen() != 6 {
        return Err("not an Ethernet client".into());
    }
    let chaddr = message.chaddr();
    let mac = Mac([chaddr[0], chaddr[1], chaddr[2], chaddr[3], chaddr[4], chaddr[5]]);
    let kind = message.opts().msg_type().ok_or("no message type")?;
    let vendor_class = match message.opts().get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(v)) => Some(String::from_utf8_lossy(v).into_owned()),
        _ => None,
    };
    let http = vendor_class.as_deref().is_some_and(|v| v.starts_with("HTTPClient"));
    let pxe = http || vendor_class.as_deref().is_some_and(|v| v.starts_with("PXEClient"));
    let ipxe = match message.opts().get(OptionCode::UserClass) {
        // RFC 3004 wants length-prefixed entries; iPXE sends the bare string "iPXE".
        Some(DhcpOption::UserClass(v)) => v.windows(4).any(|w| w == b"iPXE"),
        _ => false,
    };
    let arch = match message.opts().get(OptionCode::ClientSystemArchitecture) {
        Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
        _ => None,
    };
    let firmware = arch.map(|a| match a {
        _ if http => Firmware::UefiHttp,
        0 => Firmware::Bios,
        6 => Firmware::UefiIa32,
        7 | 9 => Firmware::UefiX64,
        11 => Firmware::UefiArm64,
        16 | 19 => Firmware::UefiHttp,
        n => Firmware::Other(n),
    });
    Ok(Request { message, mac, kind, pxe, ipxe, firmware, arch, vendor_class })
}

/// Builds a reply to `req` of type `kind`, with boot information when the client network-boots.
/// `lease` is the address handed out (full mode); none in proxy mode. `boot` is what the
/// booter said the client should load.
pub fn reply(
    req: &Request,
    kind: MessageType,
    server: Ipv4Addr,
    boot: Option<&BootFile>,
    lease: Option<&Lease<'_>>,
) -> Message {
    let m = &req.message;
    let mut out = Message::default();
    out.set_opcode(Opcode::BootReply)
        .set_xid(m.xid())
        .set_flags(m.flags())
        .set_chaddr(&req.mac.0)
        .set_giaddr(m.giaddr())
        .set_ciaddr(m.ciaddr())
        .set_siaddr(server);
    let opts = out.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(server));
    if let Some(lease) = lease {
        out.set_yiaddr(lease.ip);
        let opts = out.opts_mut();
        opts.insert(DhcpOption::SubnetMask(lease.config.netmask));
        opts.insert(DhcpOption::AddressLeaseTime(lease.config.lease_secs));
        if let Some(r) = lease.config.router {
            opts.insert(DhcpOption::Router(vec![r]));
        }
        if !lease.config.dns.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(lease.config.dns.clone()));
        }
    }
    if (req.pxe || req.ipxe)
        && let Some(file) = boot
    {
        {
            let file = match file {
                BootFile::Tftp(name) | BootFile::Url(name) => name.clone(),
            };
            out.set_fname_str(&file);
            let opts = out.opts_mut();
            opts.insert(DhcpOption::BootfileName(file.into_bytes()));
            let class: &[u8] = if req.firmware == Some(Firmware::UefiHttp) { b"HTTPClient" } else { b"PXEClient" };
            opts.insert(DhcpOption::ClassIdentifier(class.to_vec()));
            // PXE discovery control: no boot server discovery, boot the file named here.
            opts.insert(DhcpOption::VendorExtensions(vec![6, 1, 8, 255]));
            if let Some(DhcpOption::ClientMachineIdentifier(uuid)) = m.opts().get(OptionCode::ClientMachineIdentifier) {
                opts.insert(DhcpOption::ClientMachineIdentifier(uuid.clone()));
            }
        }
    }
    out
}

pub fn encode(m: &Message) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(576);
    m.encode(&mut Encoder::new(&mut buf)).map_err(|e| e.to_string())?;
    // Some firmware ignores replies shorter than a BOOTP packet.
    if buf.len() < 300 {
        buf.resize(300, 0);
    }
    Ok(buf)
}

/// Builds a request as a PXE client would send it; for tests and fuzz seeds.
pub fn client_packet(mac: [u8; 6], kind: MessageType, arch: Option<u16>, ipxe: bool, vendor: &str) -> Vec<u8> {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest).set_xid(0x1234_5678).set_chaddr(&mac);
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ClassIdentifier(vendor.as_bytes().to_vec()));
    if let Some(a) = arch {
        opts.insert(DhcpOption::ClientSystemArchitecture(v4::Architecture::from(a)));
    }
    if ipxe {
        opts.insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    }
    opts.insert(DhcpOption::ClientMachineIdentifier(vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]));
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).expect("a request always encodes");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

    /// Writes seed inputs for the fuzz targets (scripts/fuzz-bootd.sh runs this).
    #[test]
    #[ignore = "run by scripts/fuzz-bootd.sh to seed the fuzz corpus"]
    fn write_fuzz_seeds() {
        let Ok(dir) = std::env::var("FLATLAB_FUZZ_SEEDS") else { return };
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir.join("dhcp")).expect("mkdir");
        std::fs::create_dir_all(dir.join("tftp")).expect("mkdir");
        let seeds = [
            client_packet(MAC, MessageType::Discover, Some(0), false, "PXEClient:Arch:00000:UNDI:002001"),
            client_packet(MAC, MessageType::Request, Some(7), true, "PXEClient:Arch:00007:UNDI:003010"),
            client_packet(MAC, MessageType::Discover, Some(16), false, "HTTPClient:Arch:00016"),
            client_packet(MAC, MessageType::Discover, None, false, "android-dhcp-14"),
        ];
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("dhcp/seed{i}")), s).expect("write");
        }
        // And what real firmware sent (tests/fixtures/dhcp/).
        let captured = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dhcp");
        for entry in std::fs::read_dir(&captured).expect("the captured packets").flatten() {
            if entry.path().extension().is_some_and(|e| e == "bin") {
                std::fs::copy(entry.path(), dir.join("dhcp").join(entry.file_name())).expect("copy");
            }
        }
        let tftp: [&[u8]; 3] = [
            b"\x00\x01undionly.kpxe\x00octet\x00",
            b"\x00\x01ipxe.efi\x00octet\x00blksize\x001432\x00tsize\x000\x00windowsize\x008\x00",
            b"\x00\x01../../etc/passwd\x00netascii\x00",
        ];
        for (i, s) in tftp.iter().enumerate() {
            std::fs::write(dir.join(format!("tftp/seed{i}")), s).expect("write");
        }
        // Request heads as the nodes' clients send them: iPXE, curl (install.sh,
        // flatcar-install) and Ignition (Go's net/http).
        std::fs::create_dir_all(dir.join("http")).expect("mkdir");
        for (i, s) in crate::zerocopy::SEED_HEADS.iter().enumerate() {
            std::fs::write(dir.join(format!("http/seed{i}")), s).expect("write");
        }
        // And what iPXE and curl sent (tests/fixtures/http/).
        let captured = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http");
        for entry in std::fs::read_dir(&captured).expect("the captured heads").flatten() {
            if entry.path().extension().is_some_and(|e| e == "txt") {
                std::fs::copy(entry.path(), dir.join("http").join(entry.file_name())).expect("copy");
            }
        }
    }

    #[test]
    fn proxy_offers_carry_boot_information_but_no_address() {
        let req = decode(&client_packet(MAC, MessageType::Discover, Some(0), false, "PXEClient:Arch:00000"))
            .expect("decodes");
        let server = Ipv4Addr::new(10, 0, 0, 2);
        let offer = reply(&req, MessageType::Offer, server, Some(&BootFile::Tftp("undionly.kpxe".into())), None);
        let wire = encode(&offer).expect("encodes");
        let back = Message::decode(&mut Decoder::new(&wire)).expect("re-decodes");
        assert_eq!(back.opcode(), Opcode::BootReply);
        assert_eq!(back.xid(), 0x1234_5678);
        assert_eq!(back.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(back.siaddr(), server);
        assert_eq!(back.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(back.fname_str().and_then(Result::ok).map(|f| f.trim_end_matches('\0')), Some("undionly.kpxe"));
        assert_eq!(
            back.opts().get(OptionCode::ClassIdentifier),
            Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
        );
        assert!(back.opts().get(OptionCode::ClientMachineIdentifier).is_some(), "the UUID is echoed");
        assert!(wire.len() >= 300);
    }

    #[test]
    fn undecodable_packets_are_errors_not_panics() {
        for bad in [&[][..], &[1, 2, 3], &[0u8; 300][..], &[2u8; 600][..]] {
            assert!(decode(bad).is_err());
        }
        // Options that crashed the decoder when fuzzed: rapid commit with a length, a classless
        // route with a prefix over 32, an option running past the end.
        let good = client_packet(MAC, MessageType::Discover, Some(0), false, "PXEClient");
        let end = good.iter().rposition(|b| *b == 255).expect("end option");
        for extra in [&[80u8, 2, 1, 1][..], &[121, 5, 40, 1, 2, 3, 4], &[60, 200, b'x']] {
            let mut p = good[..end].to_vec();
            p.extend_from_slice(extra);
            p.push(255);
            let _ = decode(&p);
        }
        let mut reply_packet = client_packet(MAC, MessageType::Discover, Some(0), false, "PXEClient");
        reply_packet[0] = 2; // BootReply
        assert_eq!(decode(&reply_packet).err().as_deref(), Some("not a request"));
    }

    #[test]
    fn a_hardware_address_length_over_16_is_dropped_not_a_panic() {
        // Found by the dhcp fuzz target: hlen 48 made dhcproto's chaddr() slice out of bounds.
        let mut packet = client_packet(MAC, MessageType::Discover, Some(0), false, "PXEClient");
        packet[2] = 48;
        assert_eq!(decode(&packet).err().as_deref(), Some("not an Ethernet client"));
        packet[2] = 255;
        assert!(decode(&packet).is_err());
    }
}
