//! The boot server on loopback: real sockets, a hand-written HTTP client, a TFTP client and DHCP
//! packets, including bad ones.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder};
#[path = "support/booter.rs"]
mod booter;

use booter::TestBooter;
use flatlab_bootd::dhcp::client_packet;
use flatlab_bootd::{AllowList, BootServer, Config, DhcpMode, HistoryEntry, Mac, MachineSpec, PrivateFile, Stage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const TOKEN: &str = "Tok3nForTheTestMachine0123456789";
const MAC: Mac = Mac([0x52, 0x54, 0, 0, 0, 1]);

struct Fixture {
    server: BootServer,
    _dir: tempfile::TempDir,
    ipxe_efi: Vec<u8>,
    booter: Arc<TestBooter>,
}

async fn start(dhcp: DhcpMode, broadcast_to: Option<SocketAddr>) -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let mirror = dir.path().join("mirror");
    let release = mirror.join("stable/amd64-usr/4593.2.5");
    std::fs::create_dir_all(&release).expect("mkdir");
    let kernel: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(release.join("flatcar_production_pxe.vmlinuz"), &kernel).expect("kernel");
    std::fs::write(dir.path().join("secret.txt"), "secret").expect("secret");
    let snapshot: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("snapshot.bin"), &snapshot).expect("snapshot");

    let mut binaries = AllowList::new();
    let ipxe_efi: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    binaries.insert("ipxe.efi", ipxe_efi.clone());
    binaries.insert("undionly.kpxe", vec![0xAB; 70_000]);

    let mut config = Config::new(Ipv4Addr::LOCALHOST);
    config.http_port = 0;
    config.tftp_port = 0;
    config.admin = SocketAddr::from(([127, 0, 0, 1], 0));
    config.dhcp = dhcp;
    config.dhcp_bind = Ipv4Addr::LOCALHOST;
    config.dhcp_port = 0;
    config.pxe_port = 0;
    if let Some(b) = broadcast_to {
        config.dhcp_broadcast = b;
    }
    config.mirror = Some(mirror);
    config.binaries = binaries;
    let spec = MachineSpec {
        mac: MAC,
        node: "cp1".into(),
        token: TOKEN.into(),
        stage: Stage::Armed,
        history: vec![],
        ip: None,
        ipxe_script: format!("#!ipxe\necho install cp1 {TOKEN}\n"),
        install_ignition: format!("{{\"ignition\":{{\"version\":\"3.3.0\"}},\"install\":true,\"report\":\"{TOKEN}\"}}"),
        final_ignition: "{\"ignition\":{\"version\":\"3.3.0\"},\"final\":true}".into(),
        install_script: "#!/bin/bash\necho install\n".into(),
        attempt: None,
        files: vec![PrivateFile { name: "etcd-snapshot-cp1-1765000000".into(), path: dir.path().join("snapshot.bin") }],
    };
    let booter = Arc::new(TestBooter::default());
    let server = BootServer::start(config, vec![spec], Arc::new(|| 42), booter.clone()).await.expect("starts");
    Fixture { server, _dir: dir, ipxe_efi, booter }
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 client: sends `request` as written (so odd paths reach the server as-is).
async fn http(addr: SocketAddr, request: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let mut body = raw[split + 4..].to_vec();
    if headers.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    out
}

/// A client whose transfer is cut: it reads the head and half the body, then closes.
async fn get_half(addr: SocketAddr, path: &str) -> (u16, usize, usize) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 1];
    // One byte at a time: nothing past the half is taken from the socket.
    loop {
        if s.read(&mut buf).await.expect("read") == 0 {
            break;
        }
        raw.push(buf[0]);
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length: usize = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if raw.len() - (split + 4) >= length / 2 {
                let status = headers.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
                return (status, raw.len() - (split + 4), length);
            }
        }
    }
    panic!("the connection ended before half the body: {}", String::from_utf8_lossy(&raw));
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

fn stage(f: &Fixture) -> Option<Stage> {
    f.server.registry().machines().iter().find(|m| m.mac == MAC.to_string()).and_then(|m| m.stage)
}

#[tokio::test]
async fn a_machine_installs_through_http_and_is_then_sent_to_its_disk() {
    let f = start(DhcpMode::Off, None).await;
    let http_addr = f.server.http_addr();

    let first = get(http_addr, "/boot.ipxe").await;
    assert_eq!(first.status, 200);
    let text = String::from_utf8_lossy(&first.body);
    assert!(text.starts_with("#!ipxe"));
    assert!(text.contains(&format!(
        "chain --autofree http://127.0.0.1:{}/v1/boot/${{net0/mac:hexhyp}}.ipxe",
        http_addr.port()
    )));

    // Ignition is refused before the machine has booted with its script.
    assert_eq!(get(http_addr, &format!("/v1/ignition/{TOKEN}")).await.status, 403);

    // The script is this boot attempt's: its own token in place of the machine's.
    let script = get(http_addr, "/v1/boot/52-54-00-00-00-01.ipxe?uuid=x&arch=x86_64&platform=pcbios").await;
    let text = String::from_utf8_lossy(&script.body).into_owned();
    assert_eq!(script.status, 200);
    let attempt = text.strip_prefix("#!ipxe\necho install cp1 ").and_then(|t| t.strip_suffix('\n')).expect("a token");
    assert!(attempt.len() == 32 && attempt != TOKEN, "{text}");
    let token = attempt.to_owned();
    assert_eq!(stage(&f), Some(Stage::Ipxe));

    let kernel = get(http_addr, "/mirror/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz").await;
    assert_eq!(kernel.status, 200);
    assert_eq!(kernel.body.len(), 20 << 20);
    assert!(kernel.headers.to_ascii_lowercase().contains(&format!("content-length: {}", 20u32 << 20)));
    assert_eq!(stage(&f), Some(Stage::Kernel));

    let install = get(http_addr, &format!("/v1/ignition/{token}")).await;
    assert_eq!(install.status, 200);
    let install_text = String::from_utf8_lossy(&install.body);
    assert!(install_text.contains("\"install\":true") && install_text.contains(&token), "{install_text}");
    // A transfer cut halfway: the machine (same address, same attempt, no stage reported since)
    // fetches it again, whole.
    let (status, got, length) = get_half(http_addr, &format!("/v1/ignition/{token}")).await;
    assert_eq!((status, length), (200, install.body.len()));
    assert!(got < length, "cut: {got} of {length} bytes");
    let retried = get(http_addr, &format!("/v1/ignition/{token}")).await;
    assert_eq!((retried.status, &retried.body), (200, &install.body), "the retry gets it whole");
    assert_eq!(get(http_addr, &format!("/v1/ignition/{TOKEN}")).await.status, 403, "the machine's own token");
    assert_eq!(get(http_addr, "/v1/ignition/WrongTokenWrongTokenWrongToken00").await.status, 403);
    assert_eq!(stage(&f), Some(Stage::Ignition));

    assert_eq!(post(http_addr, &format!("/v1/report/{token}?stage=installing"), "").await.status, 204);
    // Once it reported its next stage, a fetch of that config is refused, with an alert on the
    // machine's timeline.
    assert_eq!(get(http_addr, &format!("/v1/ignition/{token}")).await.status, 403);
    // The live system posts its hardware: kept through the booter, refused when not understood,
    // too large, or sent with a token that is not a machine's.
    let inventory = r#"{"firmware":"bios","cpus":1,"memory_bytes":1073741824}"#;
    assert_eq!(post(http_addr, &format!("/v1/inventory/{token}"), inventory).await.status, 204);
    assert_eq!(post(http_addr, &format!("/v1/inventory/{token}"), "not json").await.status, 400);
    let huge = "x".repeat(flatlab_bootd::MAX_INVENTORY_BYTES + 1);
    assert_eq!(post(http_addr, &format!("/v1/inventory/{token}"), &huge).await.status, 413);
    assert_eq!(post(http_addr, "/v1/inventory/nope", inventory).await.status, 403);
    assert_eq!(*f.booter.inventories.lock().expect("lock"), vec![("cp1".to_owned(), inventory.as_bytes().to_vec())]);
    let fin = get(http_addr, &format!("/v1/ignition/{token}/final")).await;
    assert!(String::from_utf8_lossy(&fin.body).contains("\"final\":true"));
    assert_eq!(post(http_addr, &format!("/v1/report/{token}?stage=installed"), "").await.status, 204);
    assert_eq!(stage(&f), Some(Stage::Installed));

    // The install has ended: no more configs, and the machine is told to boot from disk.
    assert_eq!(get(http_addr, &format!("/v1/ignition/{token}/final")).await.status, 403);
    // Its first boot fetches its private file (a snapshot to restore): with this attempt's
    // token only, by its name only, as often as it needs to, with ranges.
    let file = format!("/v1/file/{token}/etcd-snapshot-cp1-1765000000");
    let snapshot = get(http_addr, &file).await;
    assert_eq!(snapshot.status, 200);
    assert_eq!(snapshot.body, (0..3_000_000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    assert_eq!(get(http_addr, &file).await.status, 200, "again, as Ignition retries");
    let part =
        http(http_addr, &format!("GET {file} HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\nConnection: close\r\n\r\n"))
            .await;
    assert_eq!((part.status, part.body.as_slice()), (206, &[10u8, 11, 12, 13, 14, 15, 16, 17, 18, 19][..]));
    assert_eq!(
        get(http_addr, &format!("/v1/file/{TOKEN}/etcd-snapshot-cp1-1765000000")).await.status,
        403,
        "the machine's token"
    );
    assert_eq!(get(http_addr, &format!("/v1/file/{token}/secret.txt")).await.status, 403, "only its own files");
    assert_eq!(get(http_addr, &format!("/v1/file/{token}/..%2Fsecret.txt")).await.status, 403);
    let again = String::from_utf8_lossy(&get(http_addr, "/v1/boot/52-54-00-00-00-01.ipxe").await.body).into_owned();
    assert!(again.contains("boot from disk"), "{again}");

    // The installed system still reports its last stages.
    assert_eq!(post(http_addr, &format!("/v1/report/{token}?stage=booted"), "").await.status, 204);
    assert_eq!(post(http_addr, &format!("/v1/report/{token}?stage=k3s-ready"), "").await.status, 204);
    assert_eq!(stage(&f), Some(Stage::K3sReady));
    assert_eq!(get(http_addr, &file).await.status, 403, "not once K3s runs");
    assert_eq!(post(http_addr, &format!("/v1/report/{token}?stage=rebooting"), "").await.status, 400);
    assert_eq!(post(http_addr, "/v1/report/nope?stage=booted", "").await.status, 403);

    // The admin API shows the whole history.
    let machines = get(f.server.admin_addr(), "/api/v1/machines").await;
    let json: serde_json::Value = serde_json::from_slice(&machines.body).expect("json");
    assert_eq!(json[0]["node"], "cp1");
    assert_eq!(json[0]["stage"], "k3s-ready");
    let stages: Vec<&str> =
        json[0]["history"].as_array().expect("history").iter().filter_map(|h| h["stage"].as_str()).collect();
    assert_eq!(stages, ["ipxe", "kernel", "ignition", "installing", "installed", "booted", "k3s-ready"]);
    let alerts: Vec<&str> =
        json[0]["history"].as_array().expect("history").iter().filter_map(|h| h["alert"].as_str()).collect();
    assert_eq!(alerts, ["repeated-fetch"]);
    // Every step was saved, in order, before its answer went out.
    // (An alert and each config served once are saved too, at the stage the machine is at.)
    let mut saved: Vec<Stage> = f.booter.saved.lock().expect("lock").iter().map(|r| r.stage).collect();
    saved.dedup();
    assert_eq!(
        saved,
        [
            Stage::Ipxe,
            Stage::Kernel,
            Stage::Ignition,
            Stage::Installing,
            Stage::Installed,
            Stage::Booted,
            Stage::K3sReady
        ]
    );
    f.server.shutdown().await;
}

#[tokio::test]
async fn failures_are_reported_with_their_reason() {
    let f = start(DhcpMode::Off, None).await;
    let http_addr = f.server.http_addr();
    let script = get(http_addr, "/v1/boot/52-54-00-00-00-01.ipxe").await;
    let script = String::from_utf8_lossy(&script.body).into_owned();
    let token = script.split_whitespace().last().expect("the attempt's token");
    let r =
        post(http_addr, &format!("/v1/report/{token}?stage=failed"), "reason=install+disk+%2Fdev%2Fsda+does+not+exist")
            .await;
    assert_eq!(r.status, 204);
    let m = &f.server.registry().machines()[0];
    assert_eq!(m.stage, Some(Stage::Failed));
    assert!(
        matches!(m.history.last(), Some(HistoryEntry::Stage { detail: Some(d), .. }) if d == "install disk /dev/sda does not exist"),
        "{:?}",
        m.history
    );
}

#[tokio::test]
async fn unknown_machines_get_a_friendly_script_and_are_listed() {
    let f = start(DhcpMode::Off, None).await;
    let r = get(f.server.http_addr(), "/v1/boot/aa-bb-cc-00-00-01.ipxe").await;
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("is not in the plan") && text.contains("exit"), "{text}");
    let listed = f.server.registry().machines();
    assert!(listed.iter().any(|m| m.mac == "aa:bb:cc:00:00:01" && m.node.is_none()));
    assert_eq!(get(f.server.http_addr(), "/v1/boot/not-a-mac.ipxe").await.status, 404);
}

#[tokio::test]
async fn mirror_files_support_ranges_and_nothing_escapes_the_mirror() {
    let f = start(DhcpMode::Off, None).await;
    let addr = f.server.http_addr();
    let r = http(
        addr,
        "GET /mirror/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1099\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, (1000u32..1100).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    for evil in [
        "/mirror/../secret.txt",
        "/mirror/%2e%2e/secret.txt",
        "/mirror/stable/%2e%2e/%2e%2e/secret.txt",
        "/mirror/..%2fsecret.txt",
        "/mirror/%2fetc%2fpasswd",
        "/mirror//etc/passwd",
        "/mirror/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz%00",
        "/mirror/stable%5c..%5c..%5csecret.txt",
        "/../../../../etc/passwd",
        "/ipxe/..%2f..%2fsecret.txt",
    ] {
        let r = get(addr, evil).await;
        assert!(r.status == 404 || r.status == 400, "{evil}: {}", r.status);
        assert!(!String::from_utf8_lossy(&r.body).contains("secret"), "{evil}");
    }
    // UEFI HTTP boot gets the allow-listed binary, and only that.
    let efi = get(addr, "/ipxe/ipxe.efi").await;
    assert_eq!((efi.status, efi.body.len()), (200, f.ipxe_efi.len()));
    assert_eq!(get(addr, "/ipxe/flatlab.db").await.status, 404);
}

#[tokio::test]
async fn garbage_http_requests_do_not_stop_the_server() {
    let f = start(DhcpMode::Off, None).await;
    let addr = f.server.http_addr();
    for junk in ["\0\0\0\0", "GET\r\n\r\n", "BREW /coffee HTCPCP/1.0\r\n\r\n", &"A".repeat(100_000)] {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let _ = s.write_all(junk.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    }
    assert_eq!(get(addr, "/boot.ipxe").await.status, 200);
}

// --- TFTP ---------------------------------------------------------------------------------

fn rrq(name: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(name);
    p.push(0);
    p.extend_from_slice(b"octet\0");
    for (k, v) in options {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

/// Downloads a file the way iPXE does (with options), ACKing each window.
async fn tftp_get(server: SocketAddr, name: &str, blksize: usize, window: usize) -> Result<Vec<u8>, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let bs = blksize.to_string();
    let ws = window.to_string();
    sock.send_to(&rrq(name.as_bytes(), &[("blksize", &bs), ("tsize", "0"), ("windowsize", &ws)]), server)
        .await
        .expect("send");
    let mut buf = vec![0u8; 70_000];
    let mut out = Vec::new();
    let mut expected: u16 = 1;
    let mut since_ack = 0;
    loop {
        let (len, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        match op {
            5 => return Err(String::from_utf8_lossy(&buf[4..len]).trim_end_matches('\0').to_owned()),
            6 => {
                sock.send_to(&[0, 4, 0, 0], from).await.expect("ack oack");
            }
            3 => {
                let block = u16::from_be_bytes([buf[2], buf[3]]);
                if block != expected {
                    continue;
                }
                out.extend_from_slice(&buf[4..len]);
                expected = expected.wrapping_add(1);
                since_ack += 1;
                let last = len - 4 < blksize;
                if since_ack == window || last {
                    sock.send_to(&[0, 4, buf[2], buf[3]], from).await.expect("ack");
                    since_ack = 0;
                }
                if last {
                    return Ok(out);
                }
            }
            _ => return Err(format!("unexpected opcode {op}")),
        }
    }
}

#[tokio::test]
async fn tftp_serves_allow_listed_files_with_options() {
    let f = start(DhcpMode::Off, None).await;
    let tftp = f.server.tftp_addr().expect("tftp");
    assert_eq!(tftp_get(tftp, "ipxe.efi", 1432, 8).await.expect("download"), f.ipxe_efi);
    assert_eq!(tftp_get(tftp, "/ipxe.efi", 512, 1).await.expect("download"), f.ipxe_efi);
    assert_eq!(tftp_get(tftp, "undionly.kpxe", 8192, 4).await.expect("download"), vec![0xAB; 70_000]);
}

#[tokio::test]
async fn tftp_refuses_everything_else_and_survives_bad_packets() {
    let f = start(DhcpMode::Off, None).await;
    let tftp = f.server.tftp_addr().expect("tftp");
    for evil in [
        "../../../etc/passwd",
        "/etc/passwd",
        "..\\..\\secret.txt",
        "ipxe.efi/../../secret.txt",
        "flatlab.db",
        "IPXE.EFI",
    ] {
        let e = tftp_get(tftp, evil, 512, 1).await.expect_err(evil);
        assert_eq!(e, "file not found", "{evil}");
    }
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0, 1],
        vec![0, 1, b'x'],
        vec![0, 2, b'f', 0, b'o', b'c', b't', b'e', b't', 0],
        vec![0, 9, 9, 9],
        rrq(b"ipxe.efi\0../../secret.txt", &[]),
        rrq(&[0xff, 0xfe, 0xfd], &[]),
        rrq(b"ipxe.efi", &[("blksize", "99999999999999999999"), ("windowsize", "-1")]),
        vec![0xff; 1500],
    ];
    for p in &junk {
        sock.send_to(p, tftp).await.expect("send");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(tftp_get(tftp, "ipxe.efi", 1024, 2).await.expect("still serving"), f.ipxe_efi);
}

#[tokio::test]
async fn tftp_gives_one_address_only_a_few_transfers_at_once() {
    let f = start(DhcpMode::Off, None).await;
    let tftp = f.server.tftp_addr().expect("tftp");
    // Read requests that are never acknowledged hold a transfer each (until their retries end).
    let mut held = Vec::new();
    for _ in 0..flatlab_bootd::tftp::MAX_TRANSFERS_PER_ADDRESS {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        sock.send_to(&rrq(b"ipxe.efi", &[]), tftp).await.expect("send");
        held.push(sock);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    sock.send_to(&rrq(b"ipxe.efi", &[]), tftp).await.expect("send");
    let mut buf = [0u8; 600];
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await.expect("an answer").expect("recv");
    assert_eq!(&buf[..2], &[0, 5], "an error packet");
    assert!(String::from_utf8_lossy(&buf[4..n]).contains("server busy"));
    // Another address is served meanwhile.
    let other = UdpSocket::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
    other.send_to(&rrq(b"undionly.kpxe", &[]), tftp).await.expect("send");
    let (_, from) =
        tokio::time::timeout(Duration::from_secs(2), other.recv_from(&mut buf)).await.expect("data").expect("recv");
    assert_eq!(&buf[..4], &[0, 3, 0, 1], "its first block");
    assert_ne!(from, tftp, "from the transfer's own port");
}

#[tokio::test]
async fn http_gives_one_address_only_so_many_connections_and_others_are_still_served() {
    let f = start(DhcpMode::Off, None).await;
    let http_addr = f.server.http_addr();
    // Idle connections that never send a request, from one address.
    let mut idle = Vec::new();
    for _ in 0..flatlab_bootd::MAX_HTTP_CONNECTIONS_PER_ADDRESS {
        idle.push(TcpStream::connect(http_addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // One more from the same address is closed at once.
    let mut extra = TcpStream::connect(http_addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // Another address is served.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.2:0".parse().expect("addr")).expect("bind 127.0.0.2");
    let mut other = socket.connect(http_addr).await.expect("connect");
    other.write_all(b"GET /boot.ipxe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut reply = Vec::new();
    other.read_to_end(&mut reply).await.expect("read");
    assert!(reply.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&reply));
    drop(idle);
}

// --- DHCP ---------------------------------------------------------------------------------

#[tokio::test]
async fn proxy_dhcp_answers_pxe_clients_and_survives_garbage() {
    let listener = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let f = start(DhcpMode::Proxy, Some(listener.local_addr().expect("addr"))).await;
    let [dhcp, pxe] = f.server.dhcp_addrs() else { panic!("two DHCP sockets") };
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");

    for junk in [&[][..], &[1, 2, 3], &[0u8; 240][..], &[0xffu8; 1400][..]] {
        client.send_to(junk, *dhcp).await.expect("send");
        client.send_to(junk, *pxe).await.expect("send");
    }
    // A plain (non-PXE) DHCP client is the router's business, not ours.
    client
        .send_to(&client_packet(MAC.0, MessageType::Discover, None, false, "android-dhcp-14"), *dhcp)
        .await
        .expect("send");

    // A BIOS PXE DISCOVER: the offer is broadcast, carrying the TFTP file and no address.
    client
        .send_to(
            &client_packet(MAC.0, MessageType::Discover, Some(0), false, "PXEClient:Arch:00000:UNDI:002001"),
            *dhcp,
        )
        .await
        .expect("send");
    let mut buf = vec![0u8; 1500];
    let (len, _) =
        tokio::time::timeout(Duration::from_secs(2), listener.recv_from(&mut buf)).await.expect("offer").expect("recv");
    let offer = Message::decode(&mut Decoder::new(&buf[..len])).expect("decodes");
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(offer.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(offer.fname_str().and_then(Result::ok).map(|f| f.trim_end_matches('\0')), Some("undionly.kpxe"));
    assert!(
        matches!(offer.opts().get(OptionCode::ServerIdentifier), Some(DhcpOption::ServerIdentifier(ip)) if *ip == Ipv4Addr::LOCALHOST)
    );
    assert_eq!(stage(&f), Some(Stage::Dhcp));

    // iPXE asks again on port 4011 and is answered there with the script URL.
    client
        .send_to(&client_packet(MAC.0, MessageType::Request, Some(7), true, "PXEClient:Arch:00007:UNDI:003010"), *pxe)
        .await
        .expect("send");
    let (len, _) =
        tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf)).await.expect("ack").expect("recv");
    let ack = Message::decode(&mut Decoder::new(&buf[..len])).expect("decodes");
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    let url = format!("http://127.0.0.1:{}/boot.ipxe", f.server.http_addr().port());
    assert_eq!(ack.fname_str().and_then(Result::ok).map(|f| f.trim_end_matches('\0')), Some(url.as_str()));

    // An unplanned machine is discovered with its firmware.
    client
        .send_to(
            &client_packet([0xaa, 0, 0, 0, 0, 9], MessageType::Discover, Some(7), false, "PXEClient:Arch:00007"),
            *dhcp,
        )
        .await
        .expect("send");
    let _ = tokio::time::timeout(Duration::from_secs(2), listener.recv_from(&mut buf)).await.expect("offer");
    let found = f.server.registry().machines();
    let unknown = found.iter().find(|m| m.mac == "aa:00:00:00:00:09").expect("discovered");
    assert_eq!(unknown.firmware.as_deref(), Some("uefi-x64"));
}

#[tokio::test]
async fn the_admin_api_refuses_to_listen_beyond_loopback() {
    let mut config = Config::new(Ipv4Addr::LOCALHOST);
    config.admin = SocketAddr::from(([0, 0, 0, 0], 7070));
    config.dhcp = DhcpMode::Off;
    let e = BootServer::start(config, vec![], Arc::new(|| 0), Arc::new(TestBooter::default()))
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("must listen on loopback"), "{e}");
}

#[tokio::test]
async fn live_events_stream_over_sse() {
    let f = start(DhcpMode::Off, None).await;
    let mut s = TcpStream::connect(f.server.admin_addr()).await.expect("connect");
    s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    get(f.server.http_addr(), "/v1/boot/52-54-00-00-00-01.ipxe").await;
    let mut seen = String::new();
    let mut buf = vec![0u8; 4096];
    while !seen.contains("\"stage\":\"ipxe\"") {
        let n =
            tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.expect("event in time").expect("read");
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("event: machine"));
    assert!(seen.contains("\"node\":\"cp1\""));
}

#[tokio::test]
async fn a_mirror_file_asked_for_on_a_kept_alive_connection_is_served() {
    // iPXE fetches its script and then the kernel over one connection: the second request is
    // not the connection's first, so it is served by the router, not the sendfile path.
    let f = start(DhcpMode::Off, None).await;
    let mut s = TcpStream::connect(f.server.http_addr()).await.expect("connect");
    s.write_all(
        b"GET /v1/boot/52-54-00-00-00-01.ipxe HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /mirror/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{}", &text[..text.len().min(400)]);
    assert!(raw.len() > 20 << 20, "the whole kernel came back");
    assert_eq!(stage(&f), Some(Stage::Kernel));
}
