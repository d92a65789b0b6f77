//! Any bytes as a connection's first request on the node-facing HTTP port: the listener's own
//! head parser must never panic, a `Range` must never reach past the file, and no path may
//! resolve outside the mirror.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A mirror with one release file, and a secret beside it.
fn mirror() -> &'static PathBuf {
    static MIRROR: OnceLock<PathBuf> = OnceLock::new();
    MIRROR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("flatlab-fuzz-http-{}", std::process::id()));
        let release = dir.join("mirror/stable/amd64-usr/4593.2.5");
        std::fs::create_dir_all(&release).expect("mkdir");
        std::fs::write(release.join("flatcar_production_pxe.vmlinuz"), b"kernel").expect("write");
        std::fs::write(dir.join("secret.txt"), b"secret").expect("write");
        let _ = std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("mirror/stable/escape"));
        dir.join("mirror")
    })
}

fuzz_target!(|data: &[u8]| {
    flatlab_bootd::fuzzing::http_head(data, mirror(), 6);
});
