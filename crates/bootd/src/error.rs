use std::net::SocketAddr;

/// Why the boot server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", privilege_message(what, addr, source))]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error(
        "cannot bind to interface {device}: {source}{}",
        if source.kind() == std::io::ErrorKind::PermissionDenied { " (needs CAP_NET_RAW: sudo setcap cap_net_bind_service,cap_net_raw+ep $(command -v flatlab))" } else { "" }
    )]
    Device { device: String, source: std::io::Error },
    #[error("full DHCP needs its address settings (and only full DHCP has them)")]
    FullDhcpSettings,
    #[error("the admin API must listen on loopback (such as 127.0.0.1:7070), not {addr}: it has no authentication")]
    AdminNotLoopback { addr: SocketAddr },
}

impl Error {
    pub(crate) fn bind(what: &'static str, addr: SocketAddr, source: std::io::Error) -> Self {
        Error::Bind { what, addr, source }
    }
}

fn privilege_message(what: &str, addr: &SocketAddr, source: &std::io::Error) -> String {
    match source.kind() {
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => format!(
            "{what} needs port {} and this process may not bind it: grant the privilege once with `sudo setcap cap_net_bind_service,cap_net_raw+ep $(command -v flatlab)`, or run as root",
            addr.port()
        ),
        std::io::ErrorKind::AddrInUse => format!(
            "{what}: {addr} is already in use (another DHCP/TFTP/HTTP server, or Flatlab running twice?): {source}"
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!(
                "{what}: {} is not an address of this machine; pass the interface's address with --address",
                addr.ip()
            )
        }
        _ => format!("{what}: cannot listen on {addr}: {source}"),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
