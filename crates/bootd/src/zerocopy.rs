//! The node-facing HTTP listener. Mirror downloads (hundreds of MiB per machine) go out with
//! sendfile(2), straight from the page cache to the socket, as nginx does; everything else is
//! handed to the axum router.
//!
//! A connection is routed by peeking at its first request line. Later requests on a kept-alive
//! connection (iPXE fetches its script, then the kernel, on one connection) go through hyper, so
//! the axum router keeps a streaming mirror route of its own (`http::mirror_file`).
//!
//! A connection is routed by peeking at its request line. Mirror responses close the connection
//! afterwards (iPXE and curl reconnect), which keeps this path a few dozen lines of HTTP/1.1.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};

use crate::http::{client_ip, percent_decode, resolve_mirror_path};
use crate::state::Registry;

const PROGRESS_STEP: u64 = 16 << 20;

/// Accepts connections until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, router: Router, mirror: Option<PathBuf>, registry: Registry) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let router = router.clone();
        let mirror = mirror.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            match request_target(&stream).await {
                Some(Target::Mirror) if mirror.is_some() => {
                    let root = mirror.expect("checked above");
                    if let Err(e) = mirror_file(stream, peer, &root, &registry).await {
                        tracing::debug!(peer = %peer, error = %e, "mirror download ended early");
                    }
                }
                Some(_) => {
                    let service = tower::ServiceExt::map_request(
                        router,
                        move |mut req: hyper::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(ConnectInfo(peer));
                            req
                        },
                    );
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                    if let Err(e) = conn.await {
                        tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
                    }
                }
                None => {}
            }
        });
    }
}

enum Target {
    Mirror,
    Other,
}

/// Peeks at the request line without consuming it. None: the client sent nothing usable.
async fn request_target(stream: &TcpStream) -> Option<Target> {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        let seen = &buf[..n];
        let is_mirror = seen.starts_with(b"GET /mirror/") || seen.starts_with(b"HEAD /mirror/");
        if seen.contains(&b'\n') || n == buf.len() || is_mirror {
            return Some(if is_mirror { Target::Mirror } else { Target::Other });
        }
        if tokio::time::Instant::now() >= deadline {
            return Some(Target::Other);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Reads the request head (at most 16 KiB).
async fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head timed out"))??;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the request head ended"));
        }
        head.extend_from_slice(&byte[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return String::from_utf8(head).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"));
        }
        if head.len() > 16 << 10 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
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
    root: &std::path::Path,
    registry: &Registry,
) -> io::Result<()> {
    let head = read_head(&mut stream).await?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("").strip_prefix("/mirror/").unwrap_or("");
    let Some(path) = percent_decode(path) else {
        return respond(&mut stream, "400 Bad Request", "", "bad request\n").await;
    };
    let Some(file) = resolve_mirror_path(root, &path) else {
        tracing::warn!(peer = %peer, path = %path.escape_debug(), "refused a mirror request");
        return respond(&mut stream, "404 Not Found", "", "not found\n").await;
    };
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_owned());

    let f = std::fs::File::open(&file)?;
    let len = f.metadata()?.len();
    let (status, start, end) = match range.as_deref().and_then(|r| parse_range(r, len)) {
        Some(Ok((a, b))) => ("206 Partial Content", a, b),
        Some(Err(())) => {
            return respond(&mut stream, "416 Range Not Satisfiable", &format!("Content-Range: bytes */{len}\r\n"), "")
                .await;
        }
        None => ("200 OK", 0, len),
    };
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ip = client_ip(peer);
    registry.saw_download(ip, &name);

    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
        end - start
    );
    if status.starts_with("206") {
        head.push_str(&format!("Content-Range: bytes {start}-{}/{len}\r\n", end.saturating_sub(1)));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if method == "HEAD" {
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

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` as a half-open range within `len`. None: ignore the
/// header (several ranges, other units); Err: not satisfiable.
fn parse_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len)
        }
        (false, _) => {
            let start: u64 = a.parse().ok()?;
            let end = if b.is_empty() { len } else { b.parse::<u64>().ok()?.saturating_add(1).min(len) };
            if start >= len || start >= end {
                return Some(Err(()));
            }
            (start, end)
        }
        (true, true) => return None,
    };
    Some(Ok(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some(Ok((0, 100))));
        assert_eq!(parse_range("bytes=900-", 1000), Some(Ok((900, 1000))));
        assert_eq!(parse_range("bytes=-100", 1000), Some(Ok((900, 1000))));
        assert_eq!(parse_range("bytes=990-5000", 1000), Some(Ok((990, 1000))));
        assert_eq!(parse_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-1", 1000), None);
    }
}
