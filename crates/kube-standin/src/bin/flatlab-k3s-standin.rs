//! `/opt/bin/k3s` on the Debian-built test nodes (tests/netboot/debian.sh): stands in for the K3s
//! binary, which cannot be downloaded here, and checks what the real one would need from the
//! node Flatlab's configs made.
//!
//! `flatlab-k3s-standin server|agent` reads `/etc/rancher/k3s/config.yaml` and checks it:
//! - the token's form (`K10<sha256>::server:` for servers, `::node:` for agents);
//! - a server that starts the cluster (`cluster-init: true`) has all 11 CA files K3s reads, keys
//!   0600, and its token pins the exact `server-ca.crt` bytes;
//! - a joining server or agent reaches `server:`'s `/cacerts` and its token pins those bytes,
//!   as K3s checks them; a joiner holds no CA private key of its own;
//! - the token's secret is the cluster's: as K3s's bootstrap does, a joiner asks the server it
//!   joins (`/v1-k3s/server-bootstrap` with `server:<secret>`, an agent
//!   `/v1-k3s/client-kubelet.crt` with `node:<secret>`), which answers 401 unless the secret is
//!   its own server (or agent) token's;
//! - `node-ip` is an address of this machine.
//!
//! Then it does what the units and report scripts wait for: `:6443/cacerts` over TLS (so the
//! next servers' wait ends), `127.0.0.1:10248/healthz`, and for a server READY=1 to systemd
//! (`Type=notify`). Every finding goes to stderr and to `/dev/kmsg`, which the serial console
//! shows. Exits 1 when a check fails (systemd restarts it, as it would K3s).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CA_FILES: [&str; 11] = [
    "server-ca.crt",
    "server-ca.key",
    "client-ca.crt",
    "client-ca.key",
    "request-header-ca.crt",
    "request-header-ca.key",
    "etcd/peer-ca.crt",
    "etcd/peer-ca.key",
    "etcd/server-ca.crt",
    "etcd/server-ca.key",
    "service.key",
];

fn say(line: &str) {
    eprintln!("k3s-standin: {line}");
    // The test reads the serial console. The kernel rate-limits writes to /dev/kmsg, so each
    // line also goes to ttyS0 itself, opened per line (a getty's vhangup() ends older handles).
    for console in ["/dev/ttyS0", "/dev/kmsg"] {
        if let Ok(mut out) = std::fs::OpenOptions::new().write(true).open(console) {
            let _ = writeln!(out, "k3s-standin: {line}");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret of a `K10<hash>::<kind>:<secret>` token (or a plain token).
fn token_secret(token: &str) -> &str {
    match token.split_once("::") {
        Some((_, tail)) => tail.split_once(':').map(|(_, s)| s).unwrap_or(tail),
        None => token,
    }
}

/// Asks `server` for what K3s's bootstrap asks with the token: `server:<secret>` for a server,
/// `node:<secret>` for an agent. The server answers 401 to a secret that is not the cluster's.
async fn check_secret(server: &str, mode: &str, secret: &str) -> anyhow::Result<String> {
    let (user, path) =
        if mode == "server" { ("server", "/v1-k3s/server-bootstrap") } else { ("node", "/v1-k3s/client-kubelet.crt") };
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut child = tokio::process::Command::new("curl")
        .args(["-ks", "--max-time", "10", "-w", "\n%{http_code}", "--config", "-", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running curl")?;
    if let Some(mut stdin) = child.stdin.take() {
        // The secret goes on stdin, not the command line.
        stdin.write_all(format!("user = \"{user}:{secret}\"\n").as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    match code.trim() {
        "200" => Ok(body.to_owned()),
        "401" => bail!("{url} refused the token's secret (401): it is not this cluster's token"),
        other => bail!("{url} answered {other}"),
    }
}

/// `K10<hash>::<kind>:<secret>` into its hash.
fn token_hash<'a>(token: &'a str, kind: &str) -> anyhow::Result<&'a str> {
    let rest = token.strip_prefix("K10").context("the token is not a full K10 token")?;
    let (hash, tail) = rest.split_once("::").context("the token has no ::")?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the token's CA hash is not a SHA-256");
    }
    let (who, secret) = tail.split_once(':').context("the token has no user")?;
    if who != kind {
        bail!("the token is for `{who}`, this node needs one for `{kind}`");
    }
    if secret.len() < 16 {
        bail!("the token's secret is short ({} characters)", secret.len());
    }
    Ok(hash)
}

fn string(config: &BTreeMap<String, serde_yaml_ng::Value>, key: &str) -> Option<String> {
    config.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

/// The CA bundle at `server`'s `/cacerts`, without verifying the certificate (as K3s does before
/// it checks the bundle against the token's hash).
async fn fetch_cacerts(server: &str) -> anyhow::Result<Vec<u8>> {
    let url = format!("{}/cacerts", server.trim_end_matches('/'));
    let out = tokio::process::Command::new("curl")
        .args(["-ksf", "--max-time", "10", &url])
        .output()
        .await
        .context("running curl")?;
    if !out.status.success() {
        bail!("cannot fetch {url}: curl exited {}", out.status);
    }
    Ok(out.stdout)
}

fn local_addresses() -> Vec<IpAddr> {
    let out = std::process::Command::new("ip").args(["-o", "addr", "show"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// `config.yaml`, then the drop-ins of `config.yaml.d/*.yaml` in name order, a later key
/// replacing an earlier one, as K3s reads them.
fn read_config(config_path: &Path) -> anyhow::Result<BTreeMap<String, serde_yaml_ng::Value>> {
    let read = |path: &Path| -> anyhow::Result<BTreeMap<String, serde_yaml_ng::Value>> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let map: Option<BTreeMap<String, serde_yaml_ng::Value>> =
            serde_yaml_ng::from_str(&text).with_context(|| format!("{} is not YAML", path.display()))?;
        Ok(map.unwrap_or_default())
    };
    let mut config = read(config_path)?;
    let dir = PathBuf::from(format!("{}.d", config_path.display()));
    let mut dropins: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yaml")).collect()
        })
        .unwrap_or_default();
    dropins.sort();
    for path in dropins {
        for (key, value) in read(&path)? {
            say(&format!("{} sets {key}", path.display()));
            config.insert(key, value);
        }
    }
    Ok(config)
}

/// Checks the node's K3s configuration; returns the CA bundle this node serves at `/cacerts`.
async fn check(mode: &str, config_path: &Path, tls: &Path) -> anyhow::Result<(Vec<u8>, Secrets)> {
    let config = read_config(config_path)?;
    let token = string(&config, "token").context("config.yaml has no token")?;
    let kind = if mode == "server" { "server" } else { "node" };
    let hash = token_hash(&token, kind)?;
    if let Some(ip) = string(&config, "node-ip") {
        let ip: IpAddr = ip.parse().with_context(|| format!("node-ip {ip} is not an address"))?;
        let have = local_addresses();
        if !have.contains(&ip) {
            bail!("node-ip {ip} is not an address of this machine (it has {have:?})");
        }
    }
    let cluster_init = config.get("cluster-init").and_then(|v| v.as_bool()).unwrap_or(false);
    let server = string(&config, "server");
    let bundle = if mode == "server" && cluster_init {
        if server.is_some() {
            bail!("cluster-init and server: together");
        }
        for f in CA_FILES {
            let path = tls.join(f);
            let meta = std::fs::metadata(&path)
                .with_context(|| format!("{} is missing: K3s would make a mixed PKI", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            if f.ends_with(".key") && meta.permissions().mode() & 0o077 != 0 {
                bail!("{} is readable by others (mode {:o})", path.display(), meta.permissions().mode() & 0o777);
            }
        }
        let ca = std::fs::read(tls.join("server-ca.crt"))?;
        if hex(&Sha256::digest(&ca)) != hash.to_ascii_lowercase() {
            bail!("the token does not pin server-ca.crt (sha256 {})", hex(&Sha256::digest(&ca)));
        }
        let agent = string(&config, "agent-token").context("a first server without agent-token")?;
        token_hash(&agent, "node")?;
        say("first server: 11 CA files, token pins server-ca.crt");
        match std::fs::read_to_string(IDENTITY_FILE) {
            Ok(id) => say(&format!("cluster {} from its datastore", id.trim())),
            Err(_) => {
                let id = new_identity();
                std::fs::create_dir_all(ETCD_DIR).context("making the datastore")?;
                std::fs::write(IDENTITY_FILE, &id).context("writing the datastore")?;
                std::fs::write(ETCD_CLUSTER_FILE, new_identity()).context("writing the datastore")?;
                say(&format!("started a new cluster {id}"));
            }
        }
        if Path::new(RESET_FLAG).exists() {
            std::fs::remove_file(RESET_FLAG).ok();
            say("the reset flag is cleared (the restored cluster starts normally)");
        }
        ca
    } else {
        let server = server.context("a node that joins has no server:")?;
        if mode == "server" {
            for f in CA_FILES.iter().filter(|f| f.ends_with(".key")) {
                if tls.join(f).exists() {
                    bail!("a joining server holds {f} of its own");
                }
            }
        }
        // K3s gives up on a server that does not answer, and systemd starts it again (with the
        // join step before it, which finds another).
        let mut tries = 0;
        let ca = loop {
            match fetch_cacerts(&server).await {
                Ok(ca) => break ca,
                Err(e) if tries < 3 => say(&format!("{e:#}; trying again in 5 s")),
                Err(e) => bail!("{server} does not answer, not joining through it: {e:#}"),
            }
            tries += 1;
            tokio::time::sleep(Duration::from_secs(5)).await;
        };
        if hex(&Sha256::digest(&ca)) != hash.to_ascii_lowercase() {
            bail!("{server}/cacerts does not match the token's hash: another cluster, or a wrong token");
        }
        let bootstrap = check_secret(&server, mode, token_secret(&token)).await?;
        say(&format!("{mode} joins {server}: its CA matches the token, and it took the token's secret"));
        if mode == "server" {
            // The cluster's datastore, as the bootstrap hands it over: a server whose own
            // datastore is another cluster's must have it wiped first (K3s docs: remove
            // server/db on the other servers before they rejoin a restored cluster).
            let data = serde_json::from_str::<serde_json::Value>(&bootstrap).unwrap_or_default();
            let theirs = data["identity"].as_str().context("the server's bootstrap data has no cluster identity")?;
            let etcd = data["etcd"].as_str().unwrap_or_default();
            // etcd's own cluster ID is new after a reset: a member of the cluster before it
            // cannot rejoin with its old data.
            match std::fs::read_to_string(ETCD_CLUSTER_FILE) {
                Ok(ours) if ours.trim() != etcd => bail!(
                    "this server's datastore is of an etcd cluster ({}) other than the one it joins ({etcd}, of cluster {theirs}): remove /var/lib/rancher/k3s/server/db first",
                    ours.trim()
                ),
                Ok(_) => say(&format!("cluster {theirs}: this server's datastore is its own")),
                Err(_) => {
                    std::fs::create_dir_all(ETCD_DIR).context("making the datastore")?;
                    std::fs::write(IDENTITY_FILE, theirs).context("writing the datastore")?;
                    std::fs::write(ETCD_CLUSTER_FILE, etcd).context("writing the datastore")?;
                    say(&format!("joined cluster {theirs} with an empty datastore"));
                }
            }
        }
        ca
    };
    if mode == "server" {
        // What K3s leaves once the node has its etcd member: the unit's wait is skipped next time.
        std::fs::create_dir_all("/var/lib/rancher/k3s/server/db/etcd").ok();
    }
    let read = |f: &str| std::fs::read_to_string(f).map(|s| s.trim().to_owned()).unwrap_or_default();
    Ok((bundle, Secrets { identity: read(IDENTITY_FILE), etcd: read(ETCD_CLUSTER_FILE), ..Secrets::of(&config) }))
}

/// The stand-in's datastore: the cluster's identity, in K3s's etcd folder.
const ETCD_DIR: &str = "/var/lib/rancher/k3s/server/db/etcd";
const IDENTITY_FILE: &str = "/var/lib/rancher/k3s/server/db/etcd/flatlab-standin-identity";
/// etcd's cluster ID: new when a cluster starts, and again when it is reset.
const ETCD_CLUSTER_FILE: &str = "/var/lib/rancher/k3s/server/db/etcd/flatlab-standin-etcd-cluster";
/// What K3s leaves after a cluster reset.
const RESET_FLAG: &str = "/var/lib/rancher/k3s/server/db/reset-flag";

/// A new cluster's identity (as K3s's new kube-system namespace gets a new UID).
fn new_identity() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    let h = hex(&b);
    format!("{}-{}-4{}-{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[16..20], &h[20..32])
}

/// `k3s server --cluster-reset --cluster-reset-restore-path=FILE`, as K3s checks and does it:
/// no `server:` set, the file an etcd snapshot whose bootstrap data the node's token opens;
/// then the datastore is the snapshot's (the cluster's identity kept), the reset flag left,
/// and the process ends.
fn restore(config_path: &Path, restore_path: Option<&str>) -> anyhow::Result<()> {
    let config = read_config(config_path)?;
    if string(&config, "server").is_some() {
        bail!(
            "cannot perform cluster-reset while server URL is set - remove server from configuration before resetting"
        );
    }
    let Some(path) = restore_path else {
        bail!("the stand-in restores snapshots only: --cluster-reset without --cluster-reset-restore-path");
    };
    let token = string(&config, "token").context("config.yaml has no token: a restore needs the original token")?;
    let bytes = std::fs::read(path).with_context(|| format!("reading the snapshot {path}"))?;
    let header =
        flatlab_kube_standin::etcd::read_header(&bytes).with_context(|| format!("{path} is not an etcd snapshot"))?;
    if header.token_hash != flatlab_kube_standin::etcd::token_hash(token_secret(&token)) {
        bail!("bootstrap data already found and encrypted with different token");
    }
    std::fs::create_dir_all(ETCD_DIR).context("making the datastore")?;
    std::fs::write(IDENTITY_FILE, &header.identity).context("writing the datastore")?;
    std::fs::write(ETCD_CLUSTER_FILE, new_identity()).context("writing the datastore")?;
    std::fs::write(RESET_FLAG, b"").context("writing the reset flag")?;
    say(&format!(
        "restored snapshot {} (sha256 {}, {} bytes, taken by {}) of cluster {}: reset done, the token opens it",
        Path::new(path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        hex(&Sha256::digest(&bytes)),
        bytes.len(),
        header.node,
        header.identity
    ));
    Ok(())
}

/// The secrets a server accepts: its own server token's, and its agent token's.
#[derive(Debug, Clone)]
struct Secrets {
    server: String,
    agent: Option<String>,
    /// The cluster's identity and etcd cluster ID, handed to servers that join with the token.
    identity: String,
    etcd: String,
}

impl Secrets {
    fn of(config: &BTreeMap<String, serde_yaml_ng::Value>) -> Self {
        let secret = |key: &str| string(config, key).map(|t| token_secret(&t).to_owned());
        Secrets {
            server: secret("token").unwrap_or_default(),
            agent: secret("agent-token"),
            identity: String::new(),
            etcd: String::new(),
        }
    }

    /// Whether a request's `Authorization: Basic` header carries `user:<secret>` with the right
    /// secret for `user` (a server token for `server`, the agent token for `node`).
    fn accepts(&self, request: &str, user: &str) -> bool {
        use base64::Engine;
        let Some(value) = request.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("authorization").then(|| value.trim().to_owned())
        }) else {
            return false;
        };
        let Some(encoded) = value.strip_prefix("Basic ") else { return false };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
        let decoded = String::from_utf8_lossy(&decoded);
        let Some((who, secret)) = decoded.split_once(':') else { return false };
        let want = match user {
            "server" => Some(&self.server),
            _ => self.agent.as_ref().or(Some(&self.server)),
        };
        who == user && want.is_some_and(|w| !w.is_empty() && w == secret)
    }
}

async fn serve_cacerts(bundle: Arc<Vec<u8>>, secrets: Secrets) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["k3s".to_owned()])?;
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).map_err(anyhow::Error::msg)?;
    let config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert.cert.der().clone()], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("0.0.0.0:6443").await.context("listening on :6443")?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, bundle, secrets) = (acceptor.clone(), bundle.clone(), secrets.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else { return };
            let mut buf = vec![0u8; 4096];
            let n = tls.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let answer = format!("{{\"identity\":\"{}\",\"etcd\":\"{}\"}}\n", secrets.identity, secrets.etcd);
            let bootstrap = |user: &str| -> (&'static str, Vec<u8>) {
                if secrets.accepts(&request, user) {
                    ("200 OK", answer.clone().into_bytes())
                } else {
                    ("401 Unauthorized", b"Unauthorized\n".to_vec())
                }
            };
            let (status, body): (&str, Vec<u8>) = if request.starts_with("GET /cacerts ") {
                ("200 OK", bundle.to_vec())
            } else if request.starts_with("GET /v1-k3s/server-bootstrap ") {
                bootstrap("server")
            } else if request.starts_with("GET /v1-k3s/client-kubelet.crt ") {
                bootstrap("node")
            } else {
                ("404 Not Found", b"not here\n".to_vec())
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.write_all(&body).await;
            let _ = tls.shutdown().await;
        });
    }
}

async fn serve_healthz() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:10248").await.context("listening on :10248")?;
    loop {
        let (mut tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
        });
    }
}

fn notify_ready() {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let socket = socket.to_string_lossy().into_owned();
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else { return };
    let sent = if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| sock.send_to_addr(b"READY=1", &addr))
    } else {
        sock.send_to(b"READY=1", &socket)
    };
    if let Err(e) = sent {
        say(&format!("cannot notify systemd: {e}"));
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    if mode == "snapshot" {
        std::process::exit(match make_snapshot(&args[1..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("k3s-standin snapshot: {e:#}");
                1
            }
        });
    }
    if mode != "server" && mode != "agent" {
        eprintln!("usage: k3s server|agent [--cluster-reset --cluster-reset-restore-path=FILE] | snapshot ...");
        std::process::exit(2);
    }
    let config =
        PathBuf::from(std::env::var("FLATLAB_K3S_CONFIG").unwrap_or_else(|_| "/etc/rancher/k3s/config.yaml".into()));
    if args.iter().any(|a| a == "--cluster-reset") {
        let path = args.iter().find_map(|a| a.strip_prefix("--cluster-reset-restore-path="));
        match restore(&config, path) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                say(&format!("server --cluster-reset: FAILED: {e:#}"));
                std::process::exit(1);
            }
        }
    }
    let tls =
        PathBuf::from(std::env::var("FLATLAB_K3S_TLS").unwrap_or_else(|_| "/var/lib/rancher/k3s/server/tls".into()));
    let (bundle, secrets) = match check(&mode, &config, &tls).await {
        Ok(b) => b,
        Err(e) => {
            say(&format!("{mode}: FAILED: {e:#}"));
            std::process::exit(1);
        }
    };
    // As K3s does at its start: import the air-gap image tarballs that are there.
    let images = std::env::var("FLATLAB_K3S_IMAGES").unwrap_or_else(|_| "/var/lib/rancher/k3s/agent/images".into());
    if let Ok(entries) = std::fs::read_dir(&images) {
        for e in entries.flatten() {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            say(&format!("air-gap images: {} ({size} bytes)", e.file_name().to_string_lossy()));
        }
    }
    // Servers answer the next servers' and the agents' `/cacerts`; agents serve no API.
    let cacerts = if mode == "server" {
        tokio::spawn(serve_cacerts(Arc::new(bundle), secrets))
    } else {
        tokio::spawn(std::future::pending())
    };
    let healthz = tokio::spawn(serve_healthz());
    tokio::time::sleep(Duration::from_millis(200)).await;
    notify_ready();
    say(&format!("{mode} ready"));
    let result = tokio::select! {
        r = cacerts => r,
        r = healthz => r,
    };
    say(&format!("stopped: {result:?}"));
    std::process::exit(1);
}

/// `snapshot --config-ign CONFIG.ign --identity UID --node NAME --taken UNIX --out DIR [--k3s V]`:
/// writes the stand-in etcd snapshot a server of that cluster would have taken (made with the
/// token of the rendered first server's `config.ign`), and the `.flatlab.json` a download
/// writes beside it.
fn make_snapshot(args: &[String]) -> anyhow::Result<()> {
    let arg = |name: &str| -> anyhow::Result<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .with_context(|| format!("{name} is missing"))
    };
    let config = std::fs::read_to_string(arg("--config-ign")?).context("reading the config")?;
    let k3s = flatlab_kube_standin::file_of(&config, flatlab_kube_standin::K3S_CONFIG)?;
    let k3s: BTreeMap<String, serde_yaml_ng::Value> = serde_yaml_ng::from_str(&k3s)?;
    let token = string(&k3s, "token").context("config.yaml has no token")?;
    let node = arg("--node")?;
    let taken: i64 = arg("--taken")?.parse().context("--taken is not a Unix time")?;
    let identity = arg("--identity")?;
    let snapshot = flatlab_kube_standin::etcd::Snapshot::new(
        "etcd-snapshot",
        flatlab_kube_standin::etcd::Header {
            format: flatlab_kube_standin::etcd::FORMAT.into(),
            identity: identity.clone(),
            token_hash: flatlab_kube_standin::etcd::token_hash(token_secret(&token)),
            node: node.clone(),
            taken_unix: taken,
            nodes: vec![node.clone()],
        },
    );
    let dir = PathBuf::from(arg("--out")?);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(&snapshot.file);
    std::fs::write(&path, &snapshot.bytes)?;
    let meta = serde_json::json!({
        "name": snapshot.file, "node": node, "path": path, "sha256": hex(&Sha256::digest(&snapshot.bytes)),
        "size_bytes": snapshot.bytes.len(), "created_at": taken * 1000, "downloaded_at": taken * 1000,
        "identity": identity, "k3s_version": arg("--k3s").ok(), "token_hash": snapshot.header.token_hash,
    });
    std::fs::write(dir.join(format!("{}.flatlab.json", snapshot.file)), serde_json::to_vec_pretty(&meta)?)?;
    println!("{}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(user: &str, secret: &str) -> String {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        format!("GET /v1-k3s/server-bootstrap HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n")
    }

    #[test]
    fn only_the_clusters_own_secrets_are_taken() {
        let config: BTreeMap<String, serde_yaml_ng::Value> = serde_yaml_ng::from_str(
            "token: K10abc::server:ServerSecret0123456789\nagent-token: K10abc::node:AgentSecret0123456789\n",
        )
        .expect("yaml");
        let s = Secrets::of(&config);
        assert!(s.accepts(&request("server", "ServerSecret0123456789"), "server"));
        assert!(!s.accepts(&request("server", "OtherSecret0123456789"), "server"), "another cluster's secret");
        assert!(!s.accepts(&request("node", "AgentSecret0123456789"), "server"), "an agent's token is no server's");
        assert!(s.accepts(&request("node", "AgentSecret0123456789"), "node"));
        assert!(!s.accepts(&request("node", "ServerSecret0123456789"), "node"));
        assert!(!s.accepts("GET /v1-k3s/server-bootstrap HTTP/1.1\r\n\r\n", "server"), "no credentials");
        assert_eq!(token_secret("K10abc::server:xyz"), "xyz");
        assert_eq!(token_secret("plain"), "plain");
    }
}
