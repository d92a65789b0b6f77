//! The app's Images view through `api`: settings kept in a real SQLite file, a release stand-in
//! on loopback serving a release signed by a key this test makes with gpg, fetch with progress,
//! cancel and resume, the release servers' versions, verify, prune and a plan's readiness.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use flatlab_api::mirror::{FetchRequest, MirrorSettings, readiness};
use flatlab_api::{ErrorCode, Flatlab, error_code};
use flatlab_kube_standin::release::serve_releases;
use sha2::{Digest, Sha256};

const K3S: &str = "v1.33.1+k3s1";

/// A release tree as the Flatcar and K3s servers lay it out, signed by a fresh key; returns
/// the armored public key's path.
fn release_tree(root: &Path, version: &str, image_bytes: usize) -> std::path::PathBuf {
    let gnupg = root.join(".gnupg");
    std::fs::create_dir_all(&gnupg).expect("gnupg home");
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "", "--homedir"])
            .arg(&gnupg)
            .args(args)
            .output()
            .expect("gpg runs (scripts/setup-debian.sh installs gnupg)");
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    gpg(&["--quick-gen-key", "Flatlab images test <test@flatlab.invalid>", "ed25519", "sign", "never"]);
    let key = root.join("key.asc");
    std::fs::write(&key, gpg(&["--armor", "--export"])).expect("key");
    let board = root.join("stable/amd64-usr");
    std::fs::create_dir_all(board.join("current")).expect("current");
    std::fs::write(board.join("current/version.txt"), format!("FLATCAR_BUILD=1\nFLATCAR_VERSION={version}\n"))
        .expect("version.txt");
    let release = board.join(version);
    std::fs::create_dir_all(&release).expect("release dir");
    for (file, size) in [
        ("flatcar_production_pxe.vmlinuz", 4096),
        ("flatcar_production_pxe_image.cpio.gz", 8192),
        ("flatcar_production_image.bin.bz2", image_bytes),
    ] {
        let path = release.join(file);
        std::fs::write(&path, (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).expect("file");
        let sig = release.join(format!("{file}.sig"));
        gpg(&["--detach-sign", "-o", sig.to_str().expect("utf-8"), path.to_str().expect("utf-8")]);
    }
    let k3s = root.join("k3s").join(K3S);
    std::fs::create_dir_all(&k3s).expect("k3s dir");
    let mut sums = String::new();
    for (file, bytes) in
        [("k3s", b"#!/bin/sh\necho k3s\n".to_vec()), ("k3s-airgap-images-amd64.tar.zst", vec![7u8; 3000])]
    {
        std::fs::write(k3s.join(file), &bytes).expect("k3s file");
        let sum: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        sums.push_str(&format!("{sum}  {file}\n"));
    }
    std::fs::write(k3s.join("sha256sum-amd64.txt"), sums).expect("sums");
    std::fs::write(
        root.join("channels.json"),
        format!(r#"{{"type":"collection","data":[{{"id":"stable","name":"stable","latest":"{K3S}"}},{{"id":"testing","name":"testing"}}]}}"#),
    )
    .expect("channels");
    key
}

fn settings(mirror: &Path, key: &Path, base: &str) -> MirrorSettings {
    MirrorSettings {
        dir: Some(mirror.display().to_string()),
        key: Some(key.display().to_string()),
        flatcar_base_url: Some(format!("{base}/{{channel}}")),
        k3s_base_url: Some(format!("{base}/k3s")),
        k3s_channels_url: Some(format!("{base}/channels.json")),
    }
}

#[tokio::test]
async fn the_images_view_fetches_cancels_resumes_verifies_and_prunes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let served = tmp.path().join("served");
    let key = release_tree(&served, "4593.2.5", 2 << 20);
    // 1 MiB/s: the 2 MiB image takes two seconds, time to cancel it halfway.
    let server =
        serve_releases(served.clone(), "127.0.0.1:0".parse().expect("addr"), Some(1 << 20)).await.expect("serves");
    let app = Flatlab::open(&tmp.path().join("flatlab.db")).await.expect("opens");
    let mirror = tmp.path().join("mirror");

    // Settings are kept; defaults before.
    assert_eq!(app.mirror_settings().await.expect("read"), MirrorSettings::default());
    let bad = MirrorSettings { flatcar_base_url: Some("ftp://x".into()), ..MirrorSettings::default() };
    assert_eq!(error_code(&app.save_mirror_settings(&bad).await.expect_err("refused")), ErrorCode::BadRequest);
    let mine = settings(&mirror, &key, &server.url());
    app.save_mirror_settings(&mine).await.expect("saved");
    assert_eq!(app.mirror_settings().await.expect("read"), mine);

    // The release servers: stable's current release and K3s's channels; the channels the
    // stand-in lacks say why.
    let settings = mine.clone();
    let versions = tokio::task::spawn_blocking(move || flatlab_api::mirror::release_versions(&settings, "amd64"))
        .await
        .expect("looked up");
    assert_eq!(versions.flatcar[0].channel, "stable");
    assert_eq!(versions.flatcar[0].version.as_deref(), Some("4593.2.5"));
    assert!(
        versions.flatcar[1].version.is_none() && versions.flatcar[1].error.as_deref().unwrap_or("").contains("404")
    );
    assert_eq!(versions.k3s.len(), 1, "a channel without a release is left out: {:?}", versions.k3s);
    assert_eq!(versions.k3s[0].latest, K3S);

    // A plan's readiness, before.
    let mut plan = flatlab_model::parse_plan(flatlab_model::DEMO_PLAN).expect("demo").plan;
    plan.os.version = "4593.2.5".into();
    plan.kubernetes.k3s_version = K3S.into();
    let before = readiness(&plan, &mirror);
    assert_eq!(before.flatcar_missing.len(), 3);
    assert!(!before.k3s_mirrored && !before.airgap_mirrored);

    // A fetch cancelled once it has made progress keeps what it got.
    let request = FetchRequest {
        channel: "stable".into(),
        arch: "amd64".into(),
        version: "current".into(),
        k3s: Some(K3S.into()),
        k3s_airgap: true,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let err = app
        .fetch_images(&request, cancel, move |p| {
            if p.file == "flatcar_production_image.bin.bz2" && p.done > 256 << 10 {
                flag.store(true, Ordering::SeqCst);
            }
        })
        .await
        .expect_err("cancelled");
    assert_eq!(error_code(&err), ErrorCode::Cancelled, "{err:#}");
    let part = mirror.join(".partial/stable/amd64-usr/4593.2.5/flatcar_production_image.bin.bz2.part");
    let kept = std::fs::metadata(&part).expect("the partial download is kept").len();
    assert!(kept > 0 && kept < 2 << 20, "kept {kept} bytes");
    assert!(app.mirror_overview().await.expect("overview").releases.iter().all(|r| !r.complete));

    // The next fetch resumes with a Range request and completes; progress reaches the caller.
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let done = app
        .fetch_images(&request, Arc::new(AtomicBool::new(false)), move |p| {
            assert!(p.total.is_some_and(|t| p.done <= t), "{p:?}");
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .expect("fetched");
    assert_eq!(done.version, "4593.2.5");
    assert_eq!(done.files.len(), 3);
    assert!(server.ranged.load(Ordering::SeqCst) >= 1, "the image was resumed, not fetched again");
    assert!(seen.load(Ordering::SeqCst) >= 3, "progress of each file");

    let overview = app.mirror_overview().await.expect("overview");
    assert_eq!(overview.releases.len(), 1);
    assert!(overview.releases[0].complete);
    assert_eq!(overview.k3s.len(), 1);
    assert_eq!(overview.k3s[0].binaries, ["k3s"]);
    assert_eq!(overview.k3s[0].airgap, ["k3s-airgap-images-amd64.tar.zst"]);
    assert_eq!(overview.bytes, 4096 + 8192 + (2 << 20) + 19 + 3000);
    assert!(overview.free_bytes.is_some_and(|f| f > 0));
    let after = readiness(&plan, &mirror);
    assert!(after.flatcar_ready() && after.k3s_mirrored && after.airgap_mirrored, "{after:?}");

    // Verify: every file checks out; a changed byte is named.
    let checks = app.verify_mirror().await.expect("verified");
    assert_eq!(checks.len(), 5, "{checks:?}");
    assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");
    let kernel = mirror.join("stable/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz");
    let mut bytes = std::fs::read(&kernel).expect("kernel");
    bytes[10] ^= 1;
    std::fs::write(&kernel, bytes).expect("tamper");
    let checks = app.verify_mirror().await.expect("verified");
    let bad: Vec<_> = checks.iter().filter(|c| c.problem.is_some()).collect();
    assert_eq!(bad.len(), 1, "{checks:?}");
    assert!(bad[0].file.ends_with("flatcar_production_pxe.vmlinuz"));

    // Prune keeps the newest of a channel; keeping none is refused.
    std::fs::create_dir_all(mirror.join("stable/amd64-usr/4500.0.0")).expect("older");
    assert_eq!(error_code(&app.prune_mirror(0).await.expect_err("refused")), ErrorCode::BadRequest);
    let removed = app.prune_mirror(1).await.expect("pruned");
    assert_eq!(removed.len(), 1);
    assert!(removed[0].ends_with("4500.0.0"), "{removed:?}");
}

#[test]
fn one_fetch_at_a_time_and_cancel_reaches_it() {
    let job = flatlab_api::mirror::FetchJob::default();
    assert!(!job.cancel(), "nothing to cancel");
    let ticket = job.begin().expect("first");
    assert!(job.is_running());
    assert_eq!(error_code(&job.begin().err().expect("a second is refused")), ErrorCode::BadRequest);
    assert!(job.cancel());
    assert!(ticket.cancel.load(Ordering::SeqCst));
    drop(ticket);
    assert!(!job.is_running());
    assert!(job.begin().is_ok(), "a fetch may begin once the last ended");
}
