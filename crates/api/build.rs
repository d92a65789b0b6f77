//! Records the git revision for `flatlab --version` and the app's About box.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLATLAB_GIT_REVISION");
    let revision = std::env::var("FLATLAB_GIT_REVISION").ok().filter(|r| !r.is_empty()).unwrap_or_else(|| {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        match git(&["rev-parse", "--short=12", "HEAD"]) {
            Some(hash) if !hash.is_empty() => hash,
            _ => "unknown".to_owned(),
        }
    });
    // Rebuild when HEAD moves (a commit or a checkout), so the revision stays true.
    if let Some(dir) = Command::new("git")
        .args(["rev-parse", "--absolute-git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rustc-env=FLATLAB_GIT_REVISION={revision}");
}
