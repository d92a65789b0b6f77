//! DHCP on the wire, with packets real firmware sent (`tests/fixtures/dhcp/`, recorded by
//! `tests/netboot/capture-dhcp.sh`: SeaBIOS's iPXE ROM, OVMF's own PXE client, Debian's
//! `ipxe.efi` under OVMF, OVMF's UEFI HTTP boot): each decodes to what the firmware meant, and
//! the proxy's answer to it, from a real server on loopback, is compared with a golden reply.

#[path = "support/booter.rs"]
mod booter;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use booter::TestBooter;
use dhcproto::v4::{DhcpOption, Message, OptionCode};
use dhcproto::{Decodable, Decoder};
use flatlab_bootd::dhcp::{Firmware, MessageType, decode};
use flatlab_bootd::{BootServer, Config, DhcpMode, Mac, MachineSpec, Stage};
use tokio::net::UdpSocket;

const FIXTURES: [&str; 8] = [
    "seabios-ipxe-1-discover",
    "seabios-ipxe-2-request",
    "ovmf-pxe-1-discover",
    "ovmf-pxe-2-request",
    "ovmf-ipxe-1-discover",
    "ovmf-ipxe-2-request",
    "ovmf-http-1-discover",
    "ovmf-http-2-request",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dhcp").join(format!("{name}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn real_firmware_packets_decode_to_what_the_firmware_meant() {
    type Want = (MessageType, [u8; 6], Option<Firmware>, Option<u16>, bool, &'static str);
    let want: [Want; 8] = [
        (
            MessageType::Discover,
            [0x52, 0x54, 0, 0x77, 1, 1],
            Some(Firmware::Bios),
            Some(0),
            true,
            "PXEClient:Arch:00000:UNDI:002001",
        ),
        (
            MessageType::Request,
            [0x52, 0x54, 0, 0x77, 1, 1],
            Some(Firmware::Bios),
            Some(0),
            true,
            "PXEClient:Arch:00000:UNDI:002001",
        ),
        (
            MessageType::Discover,
            [0x52, 0x54, 0, 0x77, 1, 2],
            Some(Firmware::UefiX64),
            Some(7),
            false,
            "PXEClient:Arch:00007:UNDI:003000",
        ),
        (
            MessageType::Request,
            [0x52, 0x54, 0, 0x77, 1, 2],
            Some(Firmware::UefiX64),
            Some(7),
            false,
            "PXEClient:Arch:00007:UNDI:003000",
        ),
        (
            MessageType::Discover,
            [0x52, 0x54, 0, 0x77, 1, 2],
            Some(Firmware::UefiX64),
            Some(7),
            true,
            "PXEClient:Arch:00007:UNDI:003010",
        ),
        (
            MessageType::Request,
            [0x52, 0x54, 0, 0x77, 1, 2],
            Some(Firmware::UefiX64),
            Some(7),
            true,
            "PXEClient:Arch:00007:UNDI:003010",
        ),
        (
            MessageType::Discover,
            [0x52, 0x54, 0, 0x77, 1, 3],
            Some(Firmware::UefiHttp),
            Some(16),
            false,
            "HTTPClient:Arch:00016:UNDI:003000",
        ),
        (
            MessageType::Request,
            [0x52, 0x54, 0, 0x77, 1, 3],
            Some(Firmware::UefiHttp),
            Some(16),
            false,
            "HTTPClient:Arch:00016:UNDI:003000",
        ),
    ];
    for (name, (kind, mac, firmware, arch, ipxe, vendor)) in FIXTURES.iter().zip(want) {
        let req = decode(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (req.kind, req.mac, req.firmware, req.arch, req.ipxe, req.pxe, req.vendor_class.as_deref()),
            (kind, Mac(mac), firmware, arch, ipxe, true, Some(vendor)),
            "{name}"
        );
        // The UUID (option 97) is kept, to be echoed.
        assert!(req.message.opts().get(OptionCode::ClientMachineIdentifier).is_some(), "{name}");
    }
}

/// A readable account of a reply, for the golden files.
fn describe(reply: &Message, len: usize) -> String {
    let mut out = format!(
        "{} bytes, op {:?}, xid {:08x}, flags {:04x}\nciaddr {} yiaddr {} siaddr {} giaddr {}\nchaddr {}\nfile {:?}\n",
        len,
        reply.opcode(),
        reply.xid(),
        u16::from(reply.flags()),
        reply.ciaddr(),
        reply.yiaddr(),
        reply.siaddr(),
        reply.giaddr(),
        reply.chaddr().iter().take(6).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
        reply.fname_str().and_then(Result::ok).map(|f| f.trim_end_matches('\0').to_owned()).unwrap_or_default(),
    );
    let mut options: Vec<(u8, String)> = reply
        .opts()
        .iter()
        .map(|(code, opt)| {
            let text = match opt {
                DhcpOption::MessageType(t) => format!("{t:?}"),
                DhcpOption::ServerIdentifier(ip) => ip.to_string(),
                DhcpOption::ClassIdentifier(v) | DhcpOption::BootfileName(v) => String::from_utf8_lossy(v).into_owned(),
                DhcpOption::ClientMachineIdentifier(v) | DhcpOption::VendorExtensions(v) => {
                    v.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
                }
                other => format!("{other:?}"),
            };
            (u8::from(*code), text)
        })
        .collect();
    options.sort();
    for (code, text) in options {
        out.push_str(&format!("option {code}: {text}\n"));
    }
    out
}

#[tokio::test]
async fn the_proxy_answers_real_firmware_as_the_golden_replies_say() {
    let listener = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut config = Config::new(Ipv4Addr::LOCALHOST);
    config.http_port = 0;
    config.tftp_port = 0;
    config.admin = SocketAddr::from(([127, 0, 0, 1], 0));
    config.dhcp = DhcpMode::Proxy;
    config.dhcp_bind = Ipv4Addr::LOCALHOST;
    config.dhcp_port = 0;
    config.pxe_port = 0;
    config.dhcp_broadcast = listener.local_addr().expect("addr");
    // The SeaBIOS and OVMF machines are planned; the HTTP-boot one is a stranger.
    let spec = |mac: u8| MachineSpec {
        mac: Mac([0x52, 0x54, 0, 0x77, 1, mac]),
        node: format!("n{mac}"),
        token: format!("Tok3nForTheTestMachine0123456{mac:03}"),
        stage: Stage::Armed,
        history: vec![],
        ip: None,
        ipxe_script: "#!ipxe\n".into(),
        install_ignition: "{}".into(),
        final_ignition: "{}".into(),
        install_script: String::new(),
        attempt: None,
        files: Vec::new(),
    };
    let server = BootServer::start(config, vec![spec(1), spec(2)], Arc::new(|| 7), Arc::new(TestBooter::default()))
        .await
        .expect("starts");
    let [dhcp, _] = server.dhcp_addrs() else { panic!("two DHCP sockets") };
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let http_port = server.http_addr().port();
    let mut buf = vec![0u8; 1500];
    for name in FIXTURES {
        client.send_to(&fixture(name), *dhcp).await.expect("send");
        let answer = match tokio::time::timeout(Duration::from_millis(700), listener.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) => {
                let reply = Message::decode(&mut Decoder::new(&buf[..len])).expect("a reply decodes");
                describe(&reply, len)
            }
            Ok(Err(e)) => panic!("{name}: {e}"),
            // A REQUEST to the router's server identifier is the router's to answer.
            Err(_) => "no reply\n".to_owned(),
        };
        let answer = answer.replace(&format!(":{http_port}/"), ":HTTP-PORT/");
        insta::assert_snapshot!(name, answer);
    }
    let machines = server.registry().machines();
    let stranger = machines.iter().find(|m| m.mac == "52:54:00:77:01:03").expect("the HTTP-boot client is seen");
    assert_eq!((stranger.node.as_deref(), stranger.firmware.as_deref()), (None, Some("uefi-http")));
    server.shutdown().await;
}
