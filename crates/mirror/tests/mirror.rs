//! A release server on loopback, with files signed by a key this test generates (gpg).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flatlab_mirror::{
    Error, FLATCAR_KEY, FLATCAR_KEY_FINGERPRINT, Fetcher, Keyring, Release, fetch_k3s, fetch_release, list, prune,
    resolve_version, verify_all,
};

/// Serves `files` (path -> bytes) over HTTP/1.1 with Range support. `cut_after` makes the first
/// full-file response stop after that many bytes (an interrupted download).
struct Server {
    base: String,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    ranged: Arc<AtomicUsize>,
}

fn serve(files: BTreeMap<String, Vec<u8>>, cut_after: Option<usize>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let files = Arc::new(Mutex::new(files));
    let ranged = Arc::new(AtomicUsize::new(0));
    let (f, r) = (files.clone(), ranged.clone());
    let cut = Arc::new(Mutex::new(cut_after));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut range_from = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range_from = v.trim().trim_end_matches('-').parse::<usize>().ok();
                }
            }
            let body = f.lock().expect("lock").get(&path).cloned();
            let Some(body) = body else {
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            };
            let (status, slice) = match range_from {
                Some(from) if from < body.len() => {
                    r.fetch_add(1, Ordering::SeqCst);
                    ("206 Partial Content", &body[from..])
                }
                Some(_) => ("416 Range Not Satisfiable", &body[0..0]),
                None => ("200 OK", &body[..]),
            };
            let header = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", slice.len());
            let _ = stream.write_all(header.as_bytes());
            let mut cut = cut.lock().expect("lock");
            match (*cut, range_from) {
                (Some(n), None) if slice.len() > n => {
                    let _ = stream.write_all(&slice[..n]);
                    *cut = None; // only the first time
                }
                _ => {
                    let _ = stream.write_all(slice);
                }
            }
        }
    });
    Server { base, files, ranged }
}

/// A throwaway signing key in its own GnuPG home.
struct TestKey {
    home: tempfile::TempDir,
}

impl TestKey {
    fn new() -> Self {
        let home = tempfile::tempdir().expect("gnupg home");
        let ok = Command::new("gpg")
            .args(["--batch", "--homedir"])
            .arg(home.path())
            .args([
                "--passphrase",
                "",
                "--quick-gen-key",
                "Flatlab Test <test@flatlab.invalid>",
                "ed25519",
                "sign",
                "never",
            ])
            .output()
            .expect("gpg runs (apt-get install gnupg)");
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
        TestKey { home }
    }

    /// A certify-only primary key with a signing subkey, as Flatcar's key is made.
    fn with_signing_subkey(expires: &str) -> Self {
        let home = tempfile::tempdir().expect("gnupg home");
        let gpg = |args: &[&str]| {
            let out = Command::new("gpg")
                .args(["--batch", "--homedir"])
                .arg(home.path())
                .args(["--passphrase", ""])
                .args(args)
                .output()
                .expect("gpg");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        };
        gpg(&["--quick-gen-key", "Flatlab Test Builds <builds@flatlab.invalid>", "rsa3072", "cert", "never"]);
        let listing = String::from_utf8(gpg(&["--with-colons", "--list-keys"])).expect("utf8");
        let fpr = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| f.len() == 40))
            .expect("fingerprint")
            .to_owned();
        gpg(&["--quick-add-key", &fpr, "rsa3072", "sign", expires]);
        TestKey { home }
    }

    fn public(&self) -> String {
        let out = Command::new("gpg")
            .args(["--batch", "--homedir"])
            .arg(self.home.path())
            .args(["--armor", "--export"])
            .output()
            .expect("gpg");
        String::from_utf8(out.stdout).expect("armored")
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("data");
        std::fs::write(&file, data).expect("write");
        let out = Command::new("gpg")
            .args(["--batch", "--homedir"])
            .arg(self.home.path())
            .args(["--detach-sign", "--output", "-"])
            .arg(&file)
            .output()
            .expect("gpg");
        assert!(out.status.success());
        out.stdout
    }
}

fn release_files(key: &TestKey, version: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for (name, size) in [
        ("flatcar_production_pxe.vmlinuz", 300_000),
        ("flatcar_production_pxe_image.cpio.gz", 2_500_000),
        ("flatcar_production_image.bin.bz2", 5_000_000),
    ] {
        let data: Vec<u8> = (0..size).map(|i| ((i * 31 + name.len()) % 256) as u8).collect();
        files.insert(format!("/amd64-usr/{version}/{name}.sig"), key.sign(&data));
        files.insert(format!("/amd64-usr/{version}/{name}"), data);
    }
    files.insert(
        "/amd64-usr/current/version.txt".into(),
        format!("FLATCAR_BUILD=1\nFLATCAR_VERSION={version}\n").into_bytes(),
    );
    files
}

fn release(version: &str) -> Release {
    Release { channel: "stable".into(), board: "amd64-usr".into(), version: version.into() }
}

fn no_progress() -> impl FnMut(flatlab_mirror::Progress) {
    |_| {}
}

#[test]
fn a_good_release_is_mirrored_and_verified() {
    let key = TestKey::new();
    let server = serve(release_files(&key, "4593.2.5"), None);
    let keyring = Keyring::from_armored(&key.public()).expect("key");
    let mirror = tempfile::tempdir().expect("tmp");
    let fetcher = Fetcher::new();
    let version = resolve_version(&fetcher, &server.base, "amd64-usr", "current").expect("resolves");
    assert_eq!(version, "4593.2.5");
    let mut updates = 0;
    let files =
        fetch_release(&fetcher, &keyring, &server.base, mirror.path(), &release(&version), &mut |_| updates += 1)
            .expect("mirrors");
    assert_eq!(files.len(), 3);
    assert!(updates >= 3, "progress was reported");
    let dir = mirror.path().join("stable/amd64-usr/4593.2.5");
    for f in ["flatcar_production_pxe.vmlinuz", "flatcar_production_image.bin.bz2.sig"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let listed = list(mirror.path()).expect("list");
    assert_eq!((listed.len(), listed[0].complete), (1, true));
    assert!(verify_all(mirror.path(), &keyring).expect("verify").iter().all(|(_, r)| r.is_ok()));

    // Tampering on disk afterwards is caught by `mirror verify`.
    let img = dir.join("flatcar_production_image.bin.bz2");
    let mut bytes = std::fs::read(&img).expect("read");
    bytes[1000] ^= 0xff;
    std::fs::write(&img, bytes).expect("write");
    let report = verify_all(mirror.path(), &keyring).expect("verify");
    let bad: Vec<&PathBuf> = report.iter().filter(|(_, r)| r.is_err()).map(|(p, _)| p).collect();
    assert_eq!(bad, [&img]);
}

#[test]
fn a_tampered_file_is_refused_and_nothing_is_left_to_serve() {
    let key = TestKey::new();
    let mut files = release_files(&key, "4593.2.5");
    let path = "/amd64-usr/4593.2.5/flatcar_production_pxe_image.cpio.gz".to_owned();
    files.get_mut(&path).expect("initrd")[42] ^= 1;
    let server = serve(files, None);
    let keyring = Keyring::from_armored(&key.public()).expect("key");
    let mirror = tempfile::tempdir().expect("tmp");
    let e =
        fetch_release(&Fetcher::new(), &keyring, &server.base, mirror.path(), &release("4593.2.5"), &mut no_progress())
            .expect_err("refused");
    assert!(matches!(e, Error::Refused { .. }), "{e}");
    assert!(e.to_string().starts_with("flatcar_production_pxe_image.cpio.gz: refused, bad signature"), "{e}");
    let dir = mirror.path().join("stable/amd64-usr/4593.2.5");
    assert!(!dir.join("flatcar_production_pxe_image.cpio.gz").exists());
    assert!(!dir.join("flatcar_production_pxe_image.cpio.gz.sig").exists());
    let leftovers: Vec<PathBuf> = walk(&mirror.path().join(".partial"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_file_signed_by_another_key_is_refused() {
    let key = TestKey::new();
    let other = TestKey::new();
    let server = serve(release_files(&other, "4593.2.5"), None);
    let keyring = Keyring::from_armored(&key.public()).expect("key");
    let mirror = tempfile::tempdir().expect("tmp");
    let e =
        fetch_release(&Fetcher::new(), &keyring, &server.base, mirror.path(), &release("4593.2.5"), &mut no_progress())
            .expect_err("refused");
    assert!(e.to_string().contains("not in the keyring"), "{e}");
}

#[test]
fn an_interrupted_download_resumes() {
    let key = TestKey::new();
    let server = serve(release_files(&key, "4593.2.5"), Some(1_000_000));
    let keyring = Keyring::from_armored(&key.public()).expect("key");
    let mirror = tempfile::tempdir().expect("tmp");
    let fetcher = Fetcher::new();
    // The first run is cut off in the middle of a file.
    let first =
        fetch_release(&fetcher, &keyring, &server.base, mirror.path(), &release("4593.2.5"), &mut no_progress());
    assert!(first.is_err(), "the cut-off download fails");
    let part_size: u64 =
        walk(&mirror.path().join(".partial")).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    assert!(part_size >= 1_000_000, "the partial file is kept for resuming ({part_size})");
    // The second run continues from where it stopped, with a Range request.
    fetch_release(&fetcher, &keyring, &server.base, mirror.path(), &release("4593.2.5"), &mut no_progress())
        .expect("resumes");
    assert!(server.ranged.load(Ordering::SeqCst) >= 1, "a Range request was made");
    assert!(verify_all(mirror.path(), &keyring).expect("verify").iter().all(|(_, r)| r.is_ok()));
}

#[test]
fn a_missing_file_says_which() {
    let key = TestKey::new();
    let mut files = release_files(&key, "4593.2.5");
    files.remove("/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz");
    let server = serve(files, None);
    let keyring = Keyring::from_armored(&key.public()).expect("key");
    let mirror = tempfile::tempdir().expect("tmp");
    let e =
        fetch_release(&Fetcher::new(), &keyring, &server.base, mirror.path(), &release("4593.2.5"), &mut no_progress())
            .expect_err("missing");
    assert!(e.to_string().contains("flatcar_production_pxe.vmlinuz is not there"), "{e}");
    drop(server.files);
}

#[test]
fn k3s_is_checked_against_the_published_sums() {
    let mut files = BTreeMap::new();
    let binary: Vec<u8> = (0..400_000u32).map(|i| (i % 13) as u8).collect();
    let sum = sha256_of(&binary);
    files.insert("/v1.32.2%2Bk3s1/k3s".to_owned(), binary.clone());
    let airgap = b"zstd tarball of images".to_vec();
    let airgap_sum = sha256_of(&airgap);
    files.insert("/v1.32.2%2Bk3s1/k3s-airgap-images-amd64.tar.zst".to_owned(), airgap.clone());
    files.insert(
        "/v1.32.2%2Bk3s1/sha256sum-amd64.txt".to_owned(),
        format!("{sum}  k3s\n{airgap_sum}  k3s-airgap-images-amd64.tar.zst\n").into_bytes(),
    );
    let server = serve(files, None);
    let mirror = tempfile::tempdir().expect("tmp");
    let path = fetch_k3s(&Fetcher::new(), &server.base, mirror.path(), "v1.32.2+k3s1", "amd64", &mut no_progress())
        .expect("k3s");
    assert_eq!(std::fs::read(&path).expect("read"), binary);
    assert!(std::fs::read_to_string(mirror.path().join("k3s/v1.32.2+k3s1/k3s.sha256")).expect("sum").starts_with(&sum));
    let name = flatlab_mirror::k3s_airgap_name("amd64");
    let images = flatlab_mirror::fetch_k3s_asset(
        &Fetcher::new(),
        &server.base,
        mirror.path(),
        "v1.32.2+k3s1",
        "amd64",
        &name,
        &mut no_progress(),
    )
    .expect("airgap images");
    assert_eq!(std::fs::read(images).expect("read"), airgap);

    let mut bad = binary.clone();
    bad[0] ^= 1;
    server.files.lock().expect("lock").insert("/v1.32.2%2Bk3s1/k3s".into(), bad);
    let other = tempfile::tempdir().expect("tmp");
    let e = fetch_k3s(&Fetcher::new(), &server.base, other.path(), "v1.32.2+k3s1", "amd64", &mut no_progress())
        .expect_err("bad");
    assert!(e.to_string().contains("is not the published"), "{e}");
    assert!(!other.path().join("k3s/v1.32.2+k3s1/k3s").exists());
}

#[test]
fn prune_keeps_the_newest_releases() {
    let mirror = tempfile::tempdir().expect("tmp");
    for v in ["4459.2.1", "4593.2.5", "4081.3.6", "4593.10.0"] {
        std::fs::create_dir_all(mirror.path().join("stable/amd64-usr").join(v)).expect("mkdir");
    }
    let removed = prune(mirror.path(), 2).expect("prune");
    let mut left: Vec<String> = list(mirror.path()).expect("list").into_iter().map(|r| r.version).collect();
    left.sort();
    assert_eq!(left, ["4593.10.0", "4593.2.5"]);
    assert_eq!(removed.len(), 2);
}

#[test]
fn the_shipped_flatcar_key_has_the_published_fingerprint() {
    let keyring = Keyring::from_armored(FLATCAR_KEY).expect("the shipped key parses and its bindings verify");
    assert_eq!(keyring.fingerprints(), [FLATCAR_KEY_FINGERPRINT]);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn signatures_by_a_signing_subkey_verify() {
    let key = TestKey::with_signing_subkey("1y");
    let keyring = Keyring::from_armored(&key.public()).expect("key");
    let data = b"flatcar image bytes".repeat(1000);
    let good = key.sign(&data);
    let verified = keyring.verify(&good, &data[..]).expect("a subkey signature verifies");
    assert_ne!(verified.signer, verified.primary, "made by the subkey");
    assert!(keyring.verify(&good, &b"other bytes"[..]).is_err(), "over other data it does not");
}

fn sha256_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("data");
    std::fs::write(&p, bytes).expect("write");
    flatlab_mirror::sha256_file(&p).expect("sum")
}
