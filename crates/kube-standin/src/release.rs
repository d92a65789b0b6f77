//! A stand-in of the Flatcar and K3s release servers, for tests and the app's end-to-end run:
//! serves a folder over HTTP/1.1 with `Range` (so a cancelled fetch resumes), optionally at a
//! bounded rate (so that a fetch's progress can be watched). Names with a `..` segment, and
//! anything that is not a file, are 404.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running release stand-in; stops when dropped.
pub struct ReleaseServer {
    pub addr: SocketAddr,
    /// How many requests asked for a range (resumed downloads).
    pub ranged: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReleaseServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serves `root` at `listen`, sending at most `rate` bytes a second per response when given.
pub async fn serve_releases(root: PathBuf, listen: SocketAddr, rate: Option<u64>) -> anyhow::Result<ReleaseServer> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let ranged = Arc::new(AtomicUsize::new(0));
    let counter = ranged.clone();
    let root = Arc::new(root);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (root, counter) = (root.clone(), counter.clone());
            tokio::spawn(async move {
                let _ = answer(stream, &root, rate, &counter).await;
            });
        }
    });
    Ok(ReleaseServer { addr, ranged, task })
}

async fn answer(mut stream: TcpStream, root: &Path, rate: Option<u64>, ranged: &AtomicUsize) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 << 10 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let path = percent_encoding::percent_decode_str(path.split('?').next().unwrap_or("/")).decode_utf8_lossy();
    let from: Option<u64> = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let value = value.trim().strip_prefix("bytes=")?;
        (name.eq_ignore_ascii_case("range")).then(|| value.trim_end_matches('-').parse().ok())?
    });
    let safe = !path.split('/').any(|s| s == "..");
    let file = root.join(path.trim_start_matches('/'));
    let len = match tokio::fs::metadata(&file).await {
        Ok(m) if m.is_file() && safe => m.len(),
        _ => {
            return stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
        }
    };
    let start = match from {
        Some(f) if f >= len => {
            let reply = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return stream.write_all(reply.as_bytes()).await;
        }
        Some(f) => {
            ranged.fetch_add(1, Ordering::SeqCst);
            f
        }
        None => 0,
    };
    let status = if from.is_some() {
        format!("206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}", len - 1)
    } else {
        "200 OK".to_owned()
    };
    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", len - start);
    stream.write_all(reply.as_bytes()).await?;
    let mut f = tokio::fs::File::open(&file).await?;
    f.seek(std::io::SeekFrom::Start(start)).await?;
    // 64 KiB a chunk, or a tenth of a second's worth at the rate.
    let chunk = rate.map(|r| (r / 10).clamp(1024, 64 << 10)).unwrap_or(64 << 10) as usize;
    let mut data = vec![0u8; chunk];
    loop {
        let n = f.read(&mut data).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&data[..n]).await?;
        if let Some(r) = rate {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / r as f64)).await;
        }
    }
    stream.shutdown().await
}
