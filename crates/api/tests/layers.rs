//! The crates keep the layering of docs/architecture.md: both front ends (the CLI and the
//! desktop shell) go through `api` for everything, and the protocol crates know nothing of plans.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The names under `[dependencies]` (not dev- or build-dependencies) of a Cargo.toml.
fn dependencies(crate_dir: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join(crate_dir).join("Cargo.toml")).expect("Cargo.toml");
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && let Some((name, _)) = line.split_once(['=', '.']) {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                out.push(name.to_owned());
            }
        }
    }
    assert!(!out.is_empty(), "{crate_dir}/Cargo.toml lists no dependencies: the check reads the wrong file");
    out
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).expect("source")));
        }
    }
}

#[test]
fn front_ends_reach_the_store_mirror_export_and_validation_only_through_api() {
    let below_api =
        ["flatlab-store", "flatlab-mirror", "flatlab-export", "flatlab-render", "flatlab-bootd", "flatlab-discovery"];
    for front_end in ["crates/cli", "src-tauri"] {
        let deps = dependencies(front_end);
        assert!(deps.iter().any(|d| d == "flatlab-api"), "{front_end} should depend on flatlab-api: {deps:?}");
        for d in below_api {
            assert!(!deps.iter().any(|x| x == d), "{front_end} depends on {d}: call flatlab-api instead");
        }
        let mut files = Vec::new();
        sources(&workspace().join(front_end).join("src"), &mut files);
        assert!(!files.is_empty(), "no sources found under {front_end}/src");
        for (path, text) in files {
            for forbidden in
                ["flatlab_store", "flatlab_mirror", "flatlab_export", "flatlab_model::validate", "validate_parsed"]
            {
                assert!(!text.contains(forbidden), "{} uses {forbidden}: call flatlab-api instead", path.display());
            }
            assert!(
                !text.lines().any(|l| l.trim_start().starts_with("use flatlab_model::") && l.contains("validate")),
                "{} imports validation from the model: call flatlab-api instead",
                path.display()
            );
        }
    }
}

#[test]
fn protocol_crates_know_nothing_of_plans() {
    for protocol in ["crates/bootd", "crates/discovery", "crates/mirror", "crates/export"] {
        let deps = dependencies(protocol);
        for d in ["flatlab-model", "flatlab-store", "flatlab-render", "flatlab-api"] {
            assert!(!deps.iter().any(|x| x == d), "{protocol} depends on {d}: api translates between them");
        }
    }
    assert!(!dependencies("crates/model").iter().any(|d| d == "tokio"), "model does no IO and no async");
    for c in [
        "crates/model",
        "crates/store",
        "crates/render",
        "crates/bootd",
        "crates/discovery",
        "crates/mirror",
        "crates/export",
        "crates/api",
        "crates/cli",
    ] {
        assert!(!dependencies(c).iter().any(|d| d == "tauri"), "only src-tauri depends on tauri, not {c}");
    }
}

/// What `cargo build -p flatlab-cli` compiles, through any crate in between: no Tauri, no WebKit.
/// A Raspberry Pi or NAS builds the CLI without them.
#[test]
fn the_cli_builds_without_tauri_or_webkit() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform"])
        .arg("x86_64-unknown-linux-gnu")
        .current_dir(workspace())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let nodes = meta["resolve"]["nodes"].as_array().expect("a resolved graph");
    let name_of = |id: &str| -> String {
        let package = meta["packages"].as_array().expect("packages").iter().find(|p| p["id"] == id);
        package.and_then(|p| p["name"].as_str()).unwrap_or(id).to_owned()
    };
    let cli = meta["packages"].as_array().expect("packages").iter().find(|p| p["name"] == "flatlab-cli");
    let cli = cli.and_then(|p| p["id"].as_str()).expect("flatlab-cli in the workspace").to_owned();
    // Normal and build dependencies (not dev-dependencies: they build for tests only).
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![cli];
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let node = nodes.iter().find(|n| n["id"] == id.as_str()).expect("every package is resolved");
        for dep in node["deps"].as_array().into_iter().flatten() {
            let kinds = dep["dep_kinds"].as_array().into_iter().flatten();
            if kinds.clone().any(|k| k["kind"] != "dev") {
                todo.push(dep["pkg"].as_str().expect("an id").to_owned());
            }
        }
    }
    let names: Vec<String> = seen.iter().map(|id| name_of(id)).collect();
    assert!(names.iter().any(|n| n == "flatlab-api"), "the walk reached flatlab-api: {names:?}");
    for name in &names {
        assert!(
            !(name.starts_with("tauri") || name.starts_with("webkit2gtk") || name.starts_with("wry") || name == "gtk"),
            "flatlab-cli's build pulls {name}"
        );
    }
}
