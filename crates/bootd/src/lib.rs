//! Flatlab's boot server: carries bare machines from their firmware to an installed Flatcar
//! node. Proxy or full DHCP, TFTP for the iPXE binaries, HTTP for scripts, Ignition configs and
//! the image mirror, and the install state of every machine, with live events.
//!
//! Policy stays outside, behind the [`Booter`] trait (as pixiecore's): the caller (`api`) says
//! which boot file a firmware gets, what each iPXE script says, which download is which stage,
//! and keeps each machine's state durable; it renders each machine's files and hands them over
//! as [`MachineSpec`]s, and arms machines again. This crate holds the protocols and the install
//! state machine, and knows nothing of plans, the store or rendering.

pub mod dhcp;
mod error;
mod http;
mod limit;
mod mac;
mod neighbors;
mod policy;
mod registry;
pub mod rival;
mod stage;
pub mod tftp;
mod zerocopy;

/// What `scripts/fuzz-bootd.sh` drives: the HTTP listener's own request-head parsing, as a
/// node's first request on a connection reaches it. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    /// Parses `bytes` as the listener does a connection's first bytes, and for a complete head
    /// of a mirror request resolves its path inside `mirror` and its `Range` against a file of
    /// `len` bytes. Returns whether the path resolved.
    pub fn http_head(bytes: &[u8], mirror: &Path, len: u64) -> bool {
        let Ok(Some((head, used))) = crate::zerocopy::Head::parse(bytes) else { return false };
        assert!(used <= bytes.len());
        let path = head.target.split('?').next().unwrap_or("").strip_prefix("/mirror/").unwrap_or("");
        let Some(path) = crate::http::decode_path(path) else { return false };
        if let Some(range) = head.range.as_deref()
            && let Some(Ok((start, end))) = crate::zerocopy::byte_range(range, len)
        {
            assert!(start < end && end <= len, "{range}: {start}..{end} of {len}");
        }
        match crate::http::resolve_mirror_path(mirror, &path) {
            Some(file) => {
                let root = mirror.canonicalize().expect("the mirror exists");
                assert!(file.starts_with(&root), "{path:?} resolved outside the mirror: {}", file.display());
                true
            }
            None => false,
        }
    }
}

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub use dhcp::{DhcpMode, Firmware, FullDhcp, ParseDhcpModeError};
pub use error::{Error, Result};
pub use mac::{Mac, ParseMacError};
pub use neighbors::{KernelNeighbors, Link, Neighbors, probe as probe_neighbors};
pub use policy::{BootClient, BootFile, Booter, SaveFuture, Script, ScriptRequest};
pub use registry::Registry;
pub use stage::{
    Alert, Attempt, Clock, Diagnosis, Event, EventKind, HistoryEntry, InspectSpec, MachineRecord, MachineSpec,
    MachineStatus, Millis, PrivateFile, Served, Stage, StrangerRecord,
};
pub use tftp::AllowList;
pub use zerocopy::{
    MAX_CONNECTIONS as MAX_HTTP_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS as MAX_HTTP_CONNECTIONS_PER_ADDRESS,
};

/// The most a machine may post as its hardware inventory (`POST /v1/inventory/<token>`).
pub const MAX_INVENTORY_BYTES: usize = 64 * 1024;

/// Where the boot server listens and what it serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network interface machines boot on; DHCP sockets are bound to it.
    pub interface: Option<String>,
    /// This server's address on that interface: put in DHCP replies and URLs.
    pub address: Ipv4Addr,
    pub http_port: u16,
    pub tftp_port: u16,
    pub dhcp: DhcpMode,
    /// Full DHCP's address settings: needed exactly when `dhcp` is full.
    pub full_dhcp: Option<FullDhcp>,
    /// DHCP server port (67) and PXE port (4011), on `dhcp_bind` (0.0.0.0); others for tests.
    pub dhcp_bind: Ipv4Addr,
    pub dhcp_port: u16,
    pub pxe_port: u16,
    /// Where DHCP broadcasts go (255.255.255.255:68).
    pub dhcp_broadcast: SocketAddr,
    /// The admin API: loopback only.
    pub admin: SocketAddr,
    /// A folder laid out like the release server: `<channel>/<board>/<version>/<file>`.
    pub mirror: Option<PathBuf>,
    /// The iPXE binaries, served by TFTP (and HTTP for UEFI HTTP boot).
    pub binaries: AllowList,
    /// How long an armed machine may go without network-booting before its timeline says how
    /// to make it (default 5 minutes).
    pub no_boot_after: std::time::Duration,
}

impl Config {
    /// Defaults for `address`: HTTP 8080, TFTP 69, proxy DHCP, admin on 127.0.0.1:7070.
    pub fn new(address: Ipv4Addr) -> Self {
        Self {
            interface: None,
            address,
            http_port: 8080,
            tftp_port: 69,
            dhcp: DhcpMode::Proxy,
            full_dhcp: None,
            dhcp_bind: Ipv4Addr::UNSPECIFIED,
            dhcp_port: 67,
            pxe_port: 4011,
            dhcp_broadcast: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)),
            admin: SocketAddr::from(([127, 0, 0, 1], 7070)),
            mirror: None,
            binaries: AllowList::new(),
            no_boot_after: std::time::Duration::from_secs(300),
        }
    }

    pub fn http_base(&self) -> String {
        format!("http://{}:{}", self.address, self.http_port)
    }
}

/// A running boot server. Dropping it stops nothing; call [`BootServer::shutdown`].
pub struct BootServer {
    registry: Registry,
    tasks: Vec<JoinHandle<()>>,
    http: SocketAddr,
    admin: SocketAddr,
    tftp: Option<SocketAddr>,
    dhcp: Vec<SocketAddr>,
}

impl BootServer {
    /// Binds every socket (failing with a clear message if one cannot be had), then serves,
    /// asking `booter` what to answer.
    pub async fn start(
        config: Config,
        machines: Vec<MachineSpec>,
        clock: Clock,
        booter: Arc<dyn Booter>,
    ) -> Result<BootServer> {
        if !config.admin.ip().is_loopback() {
            return Err(Error::AdminNotLoopback { addr: config.admin });
        }
        if (config.dhcp == DhcpMode::Full) != config.full_dhcp.is_some() {
            return Err(Error::FullDhcpSettings);
        }
        zerocopy::raise_open_file_limit();
        let registry = Registry::new(machines, clock, booter);
        let binaries = Arc::new(config.binaries.clone());
        let mut tasks = Vec::new();

        let http_addr = SocketAddr::from((config.address, config.http_port));
        let http_listener = bind_tcp(http_addr, "HTTP").await?;
        let admin_listener = bind_tcp(config.admin, "admin API").await?;
        let http = http_listener.local_addr().map_err(|e| Error::bind("HTTP", http_addr, e))?;
        let admin = admin_listener.local_addr().map_err(|e| Error::bind("admin API", config.admin, e))?;
        let http_base = format!("http://{}:{}", config.address, http.port());

        // Bind every socket before starting any task, so that a failure leaves nothing running.
        let tftp_socket = if config.tftp_port == 0 && binaries.names().next().is_none() {
            None
        } else {
            let addr = SocketAddr::from((config.address, config.tftp_port));
            Some(bind_udp(addr, None, false, "TFTP")?)
        };
        let mut dhcp_sockets = Vec::new();
        if config.dhcp != DhcpMode::Off {
            for (port, pxe_port) in [(config.dhcp_port, false), (config.pxe_port, true)] {
                let addr = SocketAddr::from((config.dhcp_bind, port));
                dhcp_sockets.push((bind_udp(addr, config.interface.as_deref(), true, "DHCP")?, pxe_port, addr));
            }
        }

        let tftp = match tftp_socket {
            Some(socket) => {
                let local = socket
                    .local_addr()
                    .map_err(|e| Error::bind("TFTP", SocketAddr::from((config.address, config.tftp_port)), e))?;
                let on_transfer: tftp::OnTransfer = Arc::new(|peer, file, size| {
                    tracing::info!(peer = %peer, file, size, "TFTP transfer");
                });
                let sent_to = registry.clone();
                let on_done: tftp::OnTransfer = Arc::new(move |peer, file, _| {
                    if let std::net::IpAddr::V4(ip) = peer.ip() {
                        sent_to.tftp_sent(ip, file);
                    }
                });
                tasks.push(tokio::spawn(tftp::serve(socket, binaries.clone(), on_transfer, on_done)));
                Some(local)
            }
            None => None,
        };
        let mut dhcp_addrs = Vec::new();
        if !dhcp_sockets.is_empty() {
            let leases = match &config.full_dhcp {
                Some(full) => dhcp::Leases::load(full),
                None => dhcp::Leases::default(),
            };
            let server = Arc::new(dhcp::DhcpServer {
                mode: config.dhcp,
                full: config.full_dhcp.clone(),
                address: config.address,
                registry: registry.clone(),
                leases: Mutex::new(leases),
                broadcast_to: config.dhcp_broadcast,
                http_base: http_base.clone(),
            });
            for (socket, pxe_port, addr) in dhcp_sockets {
                dhcp_addrs.push(socket.local_addr().map_err(|e| Error::bind("DHCP", addr, e))?);
                tasks.push(tokio::spawn(server.clone().serve(socket, pxe_port)));
            }
        }

        let node = http::node_router(http::NodeApi {
            registry: registry.clone(),
            http_base,
            mirror: config.mirror.clone(),
            binaries,
        });
        tasks.push(tokio::spawn(zerocopy::serve(http_listener, node, config.mirror.clone(), registry.clone())));
        // Other DHCP servers offering boot options on the link.
        if config.dhcp != DhcpMode::Off {
            let (watching, interface, own) = (registry.clone(), config.interface.clone(), config.address);
            tasks.push(tokio::spawn(rival::watch(interface, own, move |offer| {
                let registry = watching.clone();
                tokio::spawn(async move { registry.saw_rival_offer(offer).await });
            })));
        }
        // Machines that seem stuck get a diagnosis on their timeline.
        let (diagnosing, no_boot_after) = (registry.clone(), config.no_boot_after);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                diagnosing.diagnose(no_boot_after).await;
            }
        }));
        let admin_router = http::admin_router(registry.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(admin_listener, admin_router).await {
                tracing::error!(error = %e, "admin API stopped");
            }
        }));
        tracing::info!(http = %http, admin = %admin, tftp = ?tftp, dhcp = ?config.dhcp, "boot server running");
        Ok(BootServer { registry, tasks, http, admin, tftp, dhcp: dhcp_addrs })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn tftp_addr(&self) -> Option<SocketAddr> {
        self.tftp
    }

    /// The DHCP sockets: the server port (67), then the PXE port (4011).
    pub fn dhcp_addrs(&self) -> &[SocketAddr] {
        &self.dhcp
    }

    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn bind_tcp(addr: SocketAddr, what: &'static str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| Error::bind(what, addr, e))
}

fn bind_udp(addr: SocketAddr, device: Option<&str>, broadcast: bool, what: &'static str) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let err = |e| Error::bind(what, addr, e);
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    // No SO_REUSEADDR: a second DHCP/TFTP server on the same port must be an error, not a
    // silent split of the traffic.
    if broadcast {
        socket.set_broadcast(true).map_err(err)?;
    }
    if let Some(dev) = device {
        socket.bind_device(Some(dev.as_bytes())).map_err(|e| Error::Device { device: dev.to_owned(), source: e })?;
    }
    socket.bind(&addr.into()).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    UdpSocket::from_std(socket.into()).map_err(err)
}
