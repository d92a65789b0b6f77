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
async fn check_secret(server: &str, mode: &str, secret: &str) -> anyhow::Result<()> {
    let (user, path) =
        if mode == "server" { ("server", "/v1-k3s/server-bootstrap") } else { ("node", "/v1-k3s/client-kubelet.crt") };
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut child = tokio::process::Command::new("curl")
        .args(["-ks", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "--config", "-", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running curl")?;
    if let Some(mut stdin) = child.stdin.take() {
        // The secret goes on stdin, not the command line.
        stdin.write_all(format!("user = \"{user}:{secret}\"\n").as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    match String::from_utf8_lossy(&out.stdout).trim() {
        "200" => Ok(()),
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
        check_secret(&server, mode, token_secret(&token)).await?;
        say(&format!("{mode} joins {server}: its CA matches the token, and it took the token's secret"));
        ca
    };
    if mode == "server" {
        // What K3s leaves once the node has its etcd member: the unit's wait is skipped next time.
        std::fs::create_dir_all("/var/lib/rancher/k3s/server/db/etcd").ok();
    }
    Ok((bundle, Secrets::of(&config)))
}

/// The secrets a server accepts: its own server token's, and its agent token's.
#[derive(Debug, Clone)]
struct Secrets {
    server: String,
    agent: Option<String>,
}

impl Secrets {
    fn of(config: &BTreeMap<String, serde_yaml_ng::Value>) -> Self {
        let secret = |key: &str| string(config, key).map(|t| token_secret(&t).to_owned());
        Secrets { server: secret("token").unwrap_or_default(), agent: secret("agent-token") }
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
            let bootstrap = |user: &str| -> (&'static str, &'static [u8]) {
                if secrets.accepts(&request, user) {
                    ("200 OK", b"{}\n")
                } else {
                    ("401 Unauthorized", b"Unauthorized\n")
                }
            };
            let (status, body): (&str, &[u8]) = if request.starts_with("GET /cacerts ") {
                ("200 OK", &bundle)
            } else if request.starts_with("GET /v1-k3s/server-bootstrap ") {
                bootstrap("server")
            } else if request.starts_with("GET /v1-k3s/client-kubelet.crt ") {
                bootstrap("node")
            } else {
                ("404 Not Found", b"not here\n")
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.write_all(body).await;
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
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode != "server" && mode != "agent" {
        eprintln!("usage: k3s server|agent");
        std::process::exit(2);
    }
    let config =
        PathBuf::from(std::env::var("FLATLAB_K3S_CONFIG").unwrap_or_else(|_| "/etc/rancher/k3s/config.yaml".into()));
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
