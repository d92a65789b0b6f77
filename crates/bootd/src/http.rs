//! HTTP: what nodes fetch (iPXE scripts, Ignition configs, mirror files, HTTP-boot binaries),
//! where they report, and the loopback-only admin API with live events.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tower_http::services::ServeFile;

use crate::mac::Mac;
use crate::registry::{Config, Registry, ServeGuard};
use crate::stage::Stage;
use crate::tftp::AllowList;

#[derive(Clone)]
pub(crate) struct NodeApi {
    pub registry: Registry,
    pub http_base: String,
    pub mirror: Option<PathBuf>,
    pub binaries: Arc<AllowList>,
}

pub(crate) fn node_router(api: NodeApi) -> Router {
    Router::new()
        .route("/boot.ipxe", get(first_stage))
        .route("/v1/boot/{file}", get(machine_script))
        .route("/v1/ignition/{token}", get(install_ignition))
        .route("/v1/ignition/{token}/final", get(final_ignition))
        .route("/v1/report/{token}", post(report))
        .route("/v1/file/{token}/{name}", get(private_file))
        .route(
            "/v1/inventory/{token}",
            post(inventory).layer(axum::extract::DefaultBodyLimit::max(crate::MAX_INVENTORY_BYTES)),
        )
        .route("/v1/inspect/{token}", get(inspect_ignition))
        .route("/v1/inspect/{token}/next", get(inspect_next))
        .route("/mirror/{*path}", get(mirror_file))
        .route("/ipxe/{name}", get(ipxe_binary))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(api)
}

fn ipxe(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

pub(crate) fn client_ip(addr: SocketAddr) -> Ipv4Addr {
    match addr.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

/// The first-stage script: the booter's, the same for every machine.
async fn first_stage(State(api): State<NodeApi>) -> Response {
    ipxe(api.registry.booter().first_stage(&api.http_base))
}

/// A machine's own script: what the booter says for it (its install, "boot from disk", or what
/// a machine that is not planned should do).
#[derive(serde::Deserialize)]
struct ScriptQuery {
    /// How many times a waiting machine has asked in a row.
    #[serde(default)]
    round: u32,
}

async fn machine_script(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(file): UrlPath<String>,
    Query(query): Query<ScriptQuery>,
) -> Response {
    let Some(mac) = file.strip_suffix(".ipxe").and_then(|m| m.parse::<Mac>().ok()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match api.registry.script(mac, client_ip(peer), query.round, &api.http_base).await {
        Ok(script) => ipxe(script),
        // An iPXE script that says why, should a person be looking at the screen.
        Err(refusal) => {
            (StatusCode::FORBIDDEN, format!("#!ipxe\necho Flatlab: refused: {}\nexit 1\n", refusal.message))
                .into_response()
        }
    }
}

/// The inspection live system's Ignition config: `/v1/inspect/<token>.ign`.
async fn inspect_ignition(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(file): UrlPath<String>,
) -> Response {
    let Some(token) = file.strip_suffix(".ign") else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match api.registry.inspect_ignition(token, client_ip(peer)) {
        Ok(config) => ([(header::CONTENT_TYPE, "application/vnd.coreos.ignition+json")], config).into_response(),
        Err(why) => {
            tracing::warn!(peer = %peer, why = why.as_str(), "refused an inspection config");
            (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    }
}

/// What an inspected machine does next: 204 to wait, 200 with the install script once armed.
async fn inspect_next(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    match api.registry.inspect_next(&token, client_ip(peer)).await {
        Ok(Some(script)) => ([(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")], script).into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => {
            tracing::warn!(peer = %peer, why = why.as_str(), "refused an inspection's request");
            (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    }
}

async fn install_ignition(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    ignition(&api, &token, client_ip(peer), Config::Install).await
}

async fn final_ignition(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    ignition(&api, &token, client_ip(peer), Config::Final).await
}

/// A config, served once per boot attempt: its guard marks it served when hyper takes the body
/// to send, and releases it if the response is dropped before that (the client went away).
async fn ignition(api: &NodeApi, token: &str, ip: Ipv4Addr, config: Config) -> Response {
    match api.registry.ignition(token, ip, config).await {
        Ok((text, guard)) => {
            let length = text.len().to_string();
            let body =
                Body::from_stream(OnceThenFinish { bytes: Some(axum::body::Bytes::from(text)), guard: Some(guard) });
            (
                [
                    (header::CONTENT_TYPE, "application/vnd.coreos.ignition+json".to_owned()),
                    (header::CONTENT_LENGTH, length),
                ],
                body,
            )
                .into_response()
        }
        Err(why) => {
            tracing::warn!(peer = %ip, why = why.as_str(), "refused an Ignition request");
            (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    }
}

/// A config's body: one chunk, handed to hyper whole, at which the guard is finished. hyper
/// asks for it once the response head went out; a client gone before that never gets it, and
/// the guard, dropped with the body, lets the config be asked for again.
struct OnceThenFinish {
    bytes: Option<axum::body::Bytes>,
    guard: Option<ServeGuard>,
}

impl Stream for OnceThenFinish {
    type Item = Result<axum::body::Bytes, Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let bytes = self.bytes.take();
        if bytes.is_some()
            && let Some(guard) = self.guard.take()
        {
            guard.finish();
        }
        std::task::Poll::Ready(bytes.map(Ok))
    }
}

/// A machine's private file (a snapshot its first boot restores), from disk, with ranges.
async fn private_file(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath((token, name)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    match api.registry.private_file(&token, client_ip(peer), &name).await {
        Ok(path) => {
            tracing::info!(peer = %peer, file = %name, "serving a machine's private file");
            serve_file(path, request).await
        }
        Err(why) => {
            tracing::warn!(peer = %peer, why = why.as_str(), "refused a private file");
            (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    }
}

#[derive(serde::Deserialize)]
struct ReportQuery {
    stage: String,
}

async fn report(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(token): UrlPath<String>,
    Query(q): Query<ReportQuery>,
    body: axum::body::Bytes,
) -> Response {
    let Some(stage) = Stage::parse(&q.stage).filter(|s| s.is_reported()) else {
        return (StatusCode::BAD_REQUEST, "unknown stage\n").into_response();
    };
    let reason = report_reason(&body);
    match api.registry.report(&token, client_ip(peer), stage, reason).await {
        Ok(()) => (StatusCode::NO_CONTENT, "").into_response(),
        Err(why) => {
            tracing::warn!(peer = %peer, why = why.as_str(), "refused a report");
            (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    }
}

/// A machine's hardware, as JSON (`crate::Booter::save_inventory`).
async fn inventory(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(token): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    match api.registry.inventory(&token, client_ip(peer), body.to_vec()).await {
        Ok(Ok(())) => (StatusCode::NO_CONTENT, "").into_response(),
        Ok(Err(why)) => (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
        Err(why) => {
            tracing::warn!(peer = %peer, why = why.as_str(), "refused an inventory");
            (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    }
}

/// The optional body of a report: `reason=...`, form-encoded (curl --data-urlencode).
#[derive(serde::Deserialize)]
struct ReportForm {
    reason: Option<String>,
}

fn report_reason(body: &[u8]) -> Option<String> {
    let form: ReportForm = serde_urlencoded::from_bytes(body).ok()?;
    form.reason.filter(|r| !r.is_empty()).map(|r| r.chars().take(500).collect())
}

/// Decodes the `%XX` escapes of a URL path. None when the result is not UTF-8; a malformed
/// escape stays as written, and the mirror's name rules refuse its `%`.
pub(crate) fn decode_path(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|p| p.into_owned())
}

/// A mirror path is plain names only: no `.`/`..`, no empty parts, no backslashes or NULs,
/// and the resolved file must stay inside the mirror (symlinks included).
pub(crate) fn resolve_mirror_path(root: &Path, requested: &str) -> Option<PathBuf> {
    if requested.is_empty() || requested.len() > 512 {
        return None;
    }
    let ok_part = |p: &str| {
        // Names starting with a dot are never served: `.partial/` holds unverified downloads.
        !p.is_empty() && !p.starts_with('.') && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    };
    if !requested.split('/').all(ok_part) {
        return None;
    }
    let joined = root.join(requested);
    if joined.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let real = joined.canonicalize().ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

/// Mirror files for requests that reach axum: follow-up requests on a kept-alive connection
/// (a connection's first request for `/mirror/` is sent with sendfile by `zerocopy`).
async fn mirror_file(
    State(api): State<NodeApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(path): UrlPath<String>,
    request: Request,
) -> Response {
    let Some(root) = &api.mirror else {
        return (StatusCode::NOT_FOUND, "this boot server has no mirror (start it with --mirror DIR)\n")
            .into_response();
    };
    let Some(file) = resolve_mirror_path(root, &path) else {
        tracing::warn!(peer = %peer, path = %path.escape_debug(), "refused a mirror request");
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ip = client_ip(peer);
    api.registry.saw_download(ip, &name).await;
    let response = serve_file(file, request).await;
    with_progress(response, api.registry.clone(), ip, name)
}

/// Reports the progress of large downloads (every 16 MiB and at the end) as events.
fn with_progress(response: Response, registry: Registry, ip: Ipv4Addr, file: String) -> Response {
    const STEP: u64 = 16 << 20;
    let total: u64 = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if total < STEP {
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut sent = 0u64;
    let mut reported = 0u64;
    let stream = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            sent += bytes.len() as u64;
            if sent - reported >= STEP || sent == total {
                reported = sent;
                registry.progress(ip, &file, sent, total);
            }
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

async fn serve_file(file: PathBuf, request: Request) -> Response {
    // ServeFile streams from disk and answers Range requests with Content-Length. Chunks of
    // 4 MiB (not the default 64 KiB) cut the per-chunk overhead on multi-hundred-MiB images.
    match tower::ServiceExt::oneshot(ServeFile::new(file).with_buf_chunk_size(4 << 20), request).await {
        Ok(r) => r.map(Body::new),
        Err(e) => match e {},
    }
}

async fn ipxe_binary(State(api): State<NodeApi>, UrlPath(name): UrlPath<String>) -> Response {
    match api.binaries.get(&name) {
        Some(bytes) => {
            let mut r = Body::from(bytes.to_vec()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/efi"));
            r
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

pub(crate) fn admin_router(registry: Registry) -> Router {
    Router::new()
        .route("/api/v1/machines", get(machines))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/events", get(events))
        .with_state(registry)
}

/// Alerts about no machine in particular (an address guessing tokens), as events.
async fn alerts(State(registry): State<Registry>) -> Response {
    axum::Json(registry.server_alerts()).into_response()
}

async fn machines(State(registry): State<Registry>) -> Response {
    axum::Json(registry.machines()).into_response()
}

async fn events(State(registry): State<Registry>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = BroadcastStream::new(registry.subscribe()).filter_map(|e| {
        let e = e.ok()?;
        Some(Ok(SseEvent::default().event("machine").data(serde_json::to_string(&e).ok()?)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_paths_stay_inside_the_mirror() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("mirror");
        std::fs::create_dir_all(root.join("stable/amd64-usr/4593.2.5")).expect("mkdir");
        std::fs::write(root.join("stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz"), b"kernel").expect("w");
        std::fs::write(dir.path().join("secret.txt"), b"secret").expect("w");
        std::fs::create_dir_all(root.join(".partial/stable/amd64-usr/4593.2.5")).expect("mkdir");
        std::fs::write(root.join(".partial/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz.part"), b"half")
            .expect("w");
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("stable/escape")).expect("symlink");

        assert!(resolve_mirror_path(&root, "stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz").is_some());
        for evil in [
            "../secret.txt",
            "stable/../../secret.txt",
            "stable/escape",
            "/etc/passwd",
            "stable//amd64-usr",
            "stable/amd64-usr/4593.2.5/",
            "stable\\..\\..\\secret.txt",
            "stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz\0",
            "stable/amd64-usr",
            ".",
            "",
            ".partial/stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz.part",
        ] {
            assert!(resolve_mirror_path(&root, evil).is_none(), "{evil:?}");
        }
    }

    #[test]
    fn report_reasons_are_decoded() {
        assert_eq!(report_reason(b"reason=disk+%2Fdev%2Fsda+missing").as_deref(), Some("disk /dev/sda missing"));
        assert_eq!(report_reason(b"other=1"), None);
        assert_eq!(report_reason(b"reason="), None);
        assert_eq!(report_reason(&[0xff, 0xfe]), None);
        assert_eq!(report_reason(b"reason=%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(report_reason(format!("reason={}", "x".repeat(900)).as_bytes()).map(|r| r.len()), Some(500));
    }

    #[test]
    fn paths_are_decoded_and_odd_escapes_cannot_reach_the_mirror() {
        assert_eq!(decode_path("k3s/v1.32.2%2Bk3s1/k3s").as_deref(), Some("k3s/v1.32.2+k3s1/k3s"));
        assert_eq!(decode_path("%2e%2e/x").as_deref(), Some("../x"));
        assert_eq!(decode_path("%ff"), None);
        let dir = tempfile::tempdir().expect("tmp");
        for odd in ["%zz", "a%2", "%"] {
            let decoded = decode_path(odd).expect("UTF-8");
            assert!(resolve_mirror_path(dir.path(), &decoded).is_none(), "{odd}");
        }
    }
}
