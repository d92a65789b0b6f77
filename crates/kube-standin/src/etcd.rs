//! K3s's etcd snapshots as the stand-ins play them. A stand-in snapshot is a file that begins
//! with one JSON line saying whose it is (the cluster's identity, the hash K3s would put on it of
//! the server token's secret, the server that took it, the nodes the datastore held) followed
//! by filler, so that its size and hash are a real file's. The API stand-in makes them (K3s's
//! `/db/snapshot`, the fixture's scheduled ones) and lists them as `ETCDSnapshotFile`s; the K3s
//! stand-in on the Debian-built nodes restores one (`--cluster-reset-restore-path`) only when
//! it is such a file and the node's token is the one it was made with.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const FORMAT: &str = "flatlab-standin-etcd-snapshot";
/// Where K3s keeps local snapshots.
pub const SNAPSHOT_DIR: &str = "/var/lib/rancher/k3s/server/db/snapshots";
/// The annotation K3s puts on an `ETCDSnapshotFile`: the first 12 hex digits of the SHA-256 of
/// the server token's secret.
pub const TOKEN_HASH: &str = "etcd.k3s.cattle.io/snapshot-token-hash";

/// What a stand-in snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub identity: String,
    pub token_hash: String,
    pub node: String,
    pub taken_unix: i64,
    pub nodes: Vec<String>,
}

/// K3s's token hash of a server token's secret.
pub fn token_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))[..12].to_owned()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret of a `K10<hash>::server:<secret>` token (or a plain one).
pub fn token_secret(token: &str) -> &str {
    match token.split_once("::") {
        Some((_, tail)) => tail.split_once(':').map(|(_, s)| s).unwrap_or(tail),
        None => token,
    }
}

/// The file's bytes: the header line and 192 KiB of filler that depends on it.
pub fn snapshot_bytes(header: &Header) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).expect("a header always serializes");
    out.push(b'\n');
    let mut block: [u8; 32] = Sha256::digest(&out).into();
    while out.len() < 192 * 1024 {
        out.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    out
}

/// The header of a stand-in snapshot; none for any other file.
pub fn read_header(bytes: &[u8]) -> Option<Header> {
    let line = bytes.split(|b| *b == b'\n').next()?;
    let header: Header = serde_json::from_slice(line).ok()?;
    (header.format == FORMAT).then_some(header)
}

/// A snapshot one server holds.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The file name, `<name>-<node>-<unix seconds>`, as K3s names it.
    pub file: String,
    pub header: Header,
    pub bytes: Vec<u8>,
}

impl Snapshot {
    pub fn new(name: &str, header: Header) -> Self {
        let file = format!("{name}-{}-{}", header.node, header.taken_unix);
        let bytes = snapshot_bytes(&header);
        Snapshot { file, header, bytes }
    }

    pub fn path(&self) -> String {
        format!("{SNAPSHOT_DIR}/{}", self.file)
    }

    /// As K3s lists it: an `ETCDSnapshotFile` named `local-<file>-<6 hex>`.
    pub fn resource(&self) -> Value {
        let location = format!("file://{}", self.path());
        let digest = hex(&Sha256::digest(format!("{}{location}", self.header.node)));
        let created = time_text(self.header.taken_unix);
        json!({
            "apiVersion": "k3s.cattle.io/v1", "kind": "ETCDSnapshotFile",
            "metadata": {
                "name": format!("local-{}-{}", self.file, &digest[..6]),
                "labels": { "etcd.k3s.cattle.io/snapshot-storage-node": self.header.node },
                "annotations": { TOKEN_HASH: self.header.token_hash },
                "creationTimestamp": created,
            },
            "spec": { "snapshotName": self.file, "nodeName": self.header.node, "location": location },
            "status": { "size": self.bytes.len().to_string(), "creationTime": created, "readyToUse": true },
        })
    }
}

/// RFC 3339 of a Unix time, as the API writes it.
pub fn time_text(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_says_whose_it_is_and_other_files_are_none() {
        let h = Header {
            format: FORMAT.into(),
            identity: "u".into(),
            token_hash: token_hash("s3cret"),
            node: "cp1".into(),
            taken_unix: 1_764_993_600,
            nodes: vec!["cp1".into()],
        };
        let s = Snapshot::new("etcd-snapshot", h.clone());
        assert_eq!(s.file, "etcd-snapshot-cp1-1764993600");
        assert_eq!(read_header(&s.bytes), Some(h));
        assert!(s.bytes.len() >= 192 * 1024);
        assert_eq!(read_header(b"not a snapshot\n"), None);
        assert_eq!(time_text(1_764_993_600), "2025-12-06T04:00:00Z");
        assert_eq!(token_secret("K10ab::server:xyz"), "xyz");
    }
}
