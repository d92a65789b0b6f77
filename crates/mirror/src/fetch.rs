//! HTTP downloads that stream to disk, resume, and report progress.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How a download is going.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub url: String,
    pub done: u64,
    /// None when the server does not say.
    pub total: Option<u64>,
    /// Bytes per second since this run of the download started.
    pub rate: f64,
    pub eta: Option<Duration>,
}

/// An HTTP(S) client.
pub struct Fetcher {
    agent: ureq::Agent,
    cancel: Option<Arc<AtomicBool>>,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetcher {
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(None)
            .http_status_as_error(false)
            .user_agent(concat!("flatlab/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { agent: config.into(), cancel: None }
    }

    /// A fetcher whose downloads stop with [`Error::Cancelled`] once `cancel` is set; what they
    /// wrote stays in its `.part` file, so the next download resumes from there.
    pub fn with_cancel(cancel: Arc<AtomicBool>) -> Self {
        Self { cancel: Some(cancel), ..Self::new() }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn get(&self, url: &str, from: u64) -> Result<ureq::http::Response<ureq::Body>> {
        let mut req = self.agent.get(url);
        if from > 0 {
            req = req.header("Range", &format!("bytes={from}-"));
        }
        let resp = req.call().map_err(|e| Error::Download { url: url.into(), reason: e.to_string() })?;
        match resp.status().as_u16() {
            200 | 206 => Ok(resp),
            404 => Err(Error::NotFound { url: url.into(), hint: String::new() }),
            416 if from > 0 => Ok(resp),
            code => Err(Error::Download { url: url.into(), reason: format!("HTTP {code}") }),
        }
    }

    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>> {
        if self.cancelled() {
            return Err(Error::Cancelled);
        }
        let mut resp = self.get(url, 0)?;
        resp.body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|e| Error::Download { url: url.into(), reason: e.to_string() })
    }

    pub fn get_text(&self, url: &str) -> Result<String> {
        String::from_utf8(self.get_bytes(url)?)
            .map_err(|_| Error::Download { url: url.into(), reason: "not text".into() })
    }

    /// Downloads `url` into `part`, continuing from what `part` already holds when the server
    /// supports ranges.
    pub fn download(&self, url: &str, part: &Path, progress: &mut dyn FnMut(Progress)) -> Result<()> {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut resp = self.get(url, have)?;
        let status = resp.status().as_u16();
        if status == 416 {
            // Already complete.
            return Ok(());
        }
        let resumed = status == 206 && have > 0;
        let start = if resumed { have } else { 0 };
        let length: Option<u64> =
            resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let total = length.map(|l| l + start);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed)
            .truncate(!resumed)
            .open(part)
            .map_err(Error::io(part))?;
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 1 << 20];
        let began = Instant::now();
        let mut done = start;
        let mut last = Instant::now() - Duration::from_secs(1);
        loop {
            if self.cancelled() {
                // What is written is whole: the next run asks for the rest with a Range.
                file.sync_all().map_err(Error::io(part))?;
                return Err(Error::Cancelled);
            }
            let n = reader.read(&mut buf).map_err(|e| Error::Download { url: url.into(), reason: e.to_string() })?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(Error::io(part))?;
            done += n as u64;
            if last.elapsed() >= Duration::from_millis(200) {
                last = Instant::now();
                progress(progress_of(url, done, start, total, began));
            }
        }
        file.sync_all().map_err(Error::io(part))?;
        progress(progress_of(url, done, start, total, began));
        if let Some(t) = total
            && done != t
        {
            return Err(Error::Download { url: url.into(), reason: format!("got {done} of {t} bytes") });
        }
        Ok(())
    }
}

fn progress_of(url: &str, done: u64, start: u64, total: Option<u64>, began: Instant) -> Progress {
    let secs = began.elapsed().as_secs_f64().max(0.001);
    let rate = (done - start) as f64 / secs;
    let eta = total.filter(|_| rate > 0.0).map(|t| Duration::from_secs_f64(t.saturating_sub(done) as f64 / rate));
    Progress { url: url.to_owned(), done, total, rate, eta }
}
