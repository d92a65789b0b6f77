//! The node-facing HTTP listener. Mirror downloads (hundreds of MiB per machine) go out with
//! sendfile(2), straight from the page cache to the socket, as nginx does; everything else is
//! handed to the axum router.
//!
//! The listener reads each connection's first request head itself (parsed with `httparse`). A
//! `GET`/`HEAD` of `/mirror/...` is answered here and the connection closed afterwards (iPXE and
//! curl reconnect); any other request goes to hyper together with the bytes already read, so
//! hyper sees the connection from its first byte. Later requests on a kept-alive connection (iPXE
//! fetches its script, then the kernel, on one connection) go through hyper, so the axum router
//! keeps a streaming mirror route of its own (`http::mirror_file`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::http::{client_ip, decode_path, resolve_mirror_path};
use crate::registry::Registry;

const PROGRESS_STEP: u64 = 16 << 20;
/// A request head larger than this is refused; nodes send a few hundred bytes.
pub(crate) const MAX_HEAD: usize = 16 << 10;
/// How long a client may take to send its request head (all of it: a client that sends one
/// byte at a time gets no longer).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections at once, in all and per client address. A machine opens one or two at a time
/// (iPXE, the live system's curl, `flatcar-install`); more is someone else.
pub const MAX_CONNECTIONS: usize = 512;
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;

/// Raises this process's open-file limit (soft, up to the hard one) to what the connection
/// caps and TFTP's transfers need, with room for the rest.
pub(crate) fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let want = (MAX_CONNECTIONS + crate::tftp::MAX_TRANSFERS + 512) as u64;
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= want {
        return;
    }
    let raised = limit.maximum.map_or(want, |max| want.min(max));
    match setrlimit(Resource::Nofile, rustix::process::Rlimit { current: Some(raised), maximum: limit.maximum }) {
        Ok(()) => tracing::debug!(from = current, to = raised, "raised the open-file limit"),
        Err(e) => {
            tracing::warn!(limit = current, error = %e, "cannot raise the open-file limit; under a flood of connections the boot server may refuse some")
        }
    }
}

/// Accepts connections until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, router: Router, mirror: Option<PathBuf>, registry: Registry) {
    let open = crate::limit::Limiter::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Closed at once when there are too many: the file descriptor is given back now.
        let place = match open.acquire(peer.ip()) {
            Ok(place) => place,
            Err((refused, open)) => {
                if refused.is_power_of_two() {
                    tracing::warn!(peer = %peer, refused, open, "too many HTTP connections (in all, or from this address); closing new ones");
                }
                continue;
            }
        };
        let router = router.clone();
        let mirror = mirror.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            let _place = place;
            connection(stream, peer, router, mirror.as_deref(), &registry).await
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    mirror: Option<&Path>,
    registry: &Registry,
) {
    let (head, buffered) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "dropping an HTTP connection");
            if e.kind() == io::ErrorKind::InvalidData {
                let _ = respond(&mut stream, "400 Bad Request", "", "bad request\n").await;
            }
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %peer, "an HTTP client sent no request head in time");
            return;
        }
    };
    if let (Some(root), true) = (mirror, head.is_mirror()) {
        if let Err(e) = mirror_file(stream, peer, root, &head, registry).await {
            tracing::debug!(peer = %peer, error = %e, "mirror download ended early");
        }
        return;
    }
    let service = tower::ServiceExt::map_request(router, move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let io = TokioIo::new(Rewind { prefix: buffered, pos: 0, inner: stream });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(io, TowerToHyperService::new(service));
    if let Err(e) = conn.await {
        tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
    }
}

/// The parts of a request head the mirror path needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub method: String,
    /// The request target as sent, query included.
    pub target: String,
    pub range: Option<String>,
}

impl Head {
    fn is_mirror(&self) -> bool {
        (self.method == "GET" || self.method == "HEAD") && self.target.starts_with("/mirror/")
    }

    /// Parses a complete request head; None while it is incomplete, an error when it is not HTTP.
    pub(crate) fn parse(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let range = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("range"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .map(|v| v.trim().to_owned());
                let head = Head {
                    method: req.method.unwrap_or_default().to_owned(),
                    target: req.path.unwrap_or_default().to_owned(),
                    range,
                };
                Ok(Some((head, len)))
            }
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"))
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Reads until the first request head is complete. Returns it with every byte read so far
/// (the head and whatever followed it), for hyper to read again.
async fn read_head(stream: &mut TcpStream) -> io::Result<(Head, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the request head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((head, _)) = Head::parse(&buf)? {
            return Ok((head, buf));
        }
    }
}

/// A stream that first yields bytes already read from it.
struct Rewind {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(out.remaining());
            out.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.shutdown().await
}

/// Serves one mirror file with sendfile(2), with Range support.
async fn mirror_file(
    mut stream: TcpStream,
    peer: SocketAddr,
    root: &Path,
    head: &Head,
    registry: &Registry,
) -> io::Result<()> {
    let path = head.target.split('?').next().unwrap_or("").strip_prefix("/mirror/").unwrap_or("");
    let Some(path) = decode_path(path) else {
        return respond(&mut stream, "400 Bad Request", "", "bad request\n").await;
    };
    let Some(file) = resolve_mirror_path(root, &path) else {
        tracing::warn!(peer = %peer, path = %path.escape_debug(), "refused a mirror request");
        return respond(&mut stream, "404 Not Found", "", "not found\n").await;
    };

    let f = std::fs::File::open(&file)?;
    let len = f.metadata()?.len();
    let (status, start, end) = match head.range.as_deref().and_then(|r| byte_range(r, len)) {
        Some(Ok((a, b))) => ("206 Partial Content", a, b),
        Some(Err(())) => {
            return respond(&mut stream, "416 Range Not Satisfiable", &format!("Content-Range: bytes */{len}\r\n"), "")
                .await;
        }
        None => ("200 OK", 0, len),
    };
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ip = client_ip(peer);
    registry.saw_download(ip, &name).await;

    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
        end - start
    );
    if status.starts_with("206") {
        out.push_str(&format!("Content-Range: bytes {start}-{}/{len}\r\n", end.saturating_sub(1)));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    if head.method == "HEAD" {
        return stream.shutdown().await;
    }

    let mut offset = start;
    let mut reported = start;
    while offset < end {
        stream.writable().await?;
        let want = usize::try_from((end - offset).min(1 << 30)).unwrap_or(1 << 30);
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream.as_fd(), &f, Some(&mut offset), want).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while being sent")),
            Ok(_) => {
                if len >= PROGRESS_STEP && (offset - reported >= PROGRESS_STEP || offset == end) {
                    reported = offset;
                    registry.progress(ip, &name, offset, len);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    stream.shutdown().await
}

/// A `Range` header as a half-open range within `len` (`http-range-header` parses it). None:
/// serve the whole file (a header that does not parse, or several ranges); Err: not satisfiable.
pub(crate) fn byte_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let parsed = http_range_header::parse_range_header(header).ok()?;
    match parsed.validate(len) {
        Ok(ranges) => match ranges.as_slice() {
            [one] => Some(Ok((*one.start(), one.end() + 1))),
            _ => None,
        },
        Err(_) => Some(Err(())),
    }
}

/// Request heads as nodes send them (fuzzing seeds, and what the tests parse): iPXE's, curl's
/// and Ignition's (Go's `net/http`), written by hand; `tests/fixtures/http` has iPXE's and
/// curl's as recorded.
#[cfg(test)]
pub(crate) const SEED_HEADS: [&[u8]; 6] = [
    b"GET /boot.ipxe HTTP/1.1\r\nConnection: keep-alive\r\nUser-Agent: iPXE/1.21.1+ (g988d2)\r\nHost: 10.77.0.2:8080\r\n\r\n",
    b"GET /mirror/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz HTTP/1.1\r\nConnection: keep-alive\r\nUser-Agent: iPXE/1.21.1+ (g988d2)\r\nHost: 10.77.0.2:8080\r\n\r\n",
    b"GET /v1/ignition/Tok3nForTheTestMachine0123456789 HTTP/1.1\r\nHost: 10.77.0.2:8080\r\nUser-Agent: Ignition/2.14.0\r\nAccept: application/vnd.coreos.ignition+json;version=3.4.0, */*;q=0.1\r\nAccept-Encoding: identity\r\n\r\n",
    b"GET /mirror/stable/amd64-usr/4593.2.5/flatcar_production_image.bin.bz2 HTTP/1.1\r\nHost: 10.77.0.2:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nRange: bytes=1048576-\r\n\r\n",
    b"POST /v1/report/Tok3nForTheTestMachine0123456789?stage=installing HTTP/1.1\r\nHost: 10.77.0.2:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: 7\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nreason=",
    b"HEAD /mirror/k3s/v1.32.2%2Bk3s1/k3s HTTP/1.1\r\nHost: 10.77.0.2:8080\r\nRange: bytes=0-99\r\n\r\n",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzzing_entry_point_resolves_only_inside_the_mirror() {
        let dir = tempfile::tempdir().expect("tmp");
        let release = dir.path().join("mirror/stable/amd64-usr/4593.2.5");
        std::fs::create_dir_all(&release).expect("mkdir");
        std::fs::write(release.join("flatcar_production_pxe.vmlinuz"), b"kernel").expect("write");
        let mirror = dir.path().join("mirror");
        assert!(crate::fuzzing::http_head(SEED_HEADS[1], &mirror, 6));
        assert!(!crate::fuzzing::http_head(SEED_HEADS[0], &mirror, 6));
        assert!(!crate::fuzzing::http_head(b"GET /mirror/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n", &mirror, 6));
        assert!(!crate::fuzzing::http_head(b"GET /mirror/stable HTTP/1.1\r\nRange: bytes=5-1\r\n\r\n", &mirror, 6));
        for head in SEED_HEADS {
            assert!(Head::parse(head).expect("HTTP").is_some(), "{}", String::from_utf8_lossy(head));
        }
        // What iPXE and curl really sent (tests/fixtures/http).
        let captured = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http");
        let mut parsed = 0;
        for entry in std::fs::read_dir(&captured).expect("the captured heads").flatten() {
            if entry.path().extension().is_some_and(|e| e == "txt") {
                let bytes = std::fs::read(entry.path()).expect("read");
                let (head, used) = Head::parse(&bytes).expect("HTTP").expect("complete");
                assert_eq!(used, bytes.len());
                assert!(head.target.starts_with('/'), "{head:?}");
                parsed += 1;
            }
        }
        assert!(parsed >= 9, "{parsed} captured heads");
    }

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some(Ok((0, 100))));
        assert_eq!(byte_range("bytes=900-", 1000), Some(Ok((900, 1000))));
        assert_eq!(byte_range("bytes=-100", 1000), Some(Ok((900, 1000))));
        assert_eq!(byte_range("bytes=990-5000", 1000), Some(Ok((990, 1000))));
        assert_eq!(byte_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=5-1", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
        assert_eq!(byte_range("bytes=x-1", 1000), None);
    }

    #[test]
    fn request_heads() {
        let (head, len) = Head::parse(b"GET /mirror/a/b HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\nrest")
            .expect("http")
            .expect("complete");
        assert_eq!(
            (head.method.as_str(), head.target.as_str(), head.range.as_deref()),
            ("GET", "/mirror/a/b", Some("bytes=0-9"))
        );
        assert_eq!(len, 55);
        assert!(head.is_mirror());
        assert_eq!(Head::parse(b"GET /mirror/a HTTP/1.1\r\nHost").expect("http"), None);
        assert!(Head::parse(b"\x16\x03\x01 not http\r\n\r\n").is_err());
        assert!(Head::parse(&vec![b'a'; MAX_HEAD]).is_err());
        let (post, _) = Head::parse(b"POST /mirror/x HTTP/1.1\r\n\r\n").expect("http").expect("complete");
        assert!(!post.is_mirror());
    }
}
