//! Use cases over a real database file, with a fixed clock.

use std::sync::Arc;

use flatlab_api::{Clock, ErrorCode, Flatlab, ImportPolicy, error_code};
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Fixed(i64);
impl Clock for Fixed {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

async fn app(dir: &tempfile::TempDir) -> Flatlab {
    Flatlab::with_clock(&dir.path().join("flatlab.db"), Arc::new(Fixed(1_700_000_000_000))).await.expect("opens")
}

#[tokio::test]
async fn first_start_gets_the_demo_plan_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir).await;
    let saved = app.ensure_demo_plan().await.expect("demo").expect("created");
    assert_eq!(saved.name, "demo-lab");
    assert!(app.ensure_demo_plan().await.expect("demo").is_none(), "not again");
    app.delete_plan("demo-lab").await.expect("delete");
    // With no plans left the demo comes back on next start: the app is never empty by surprise.
    assert!(app.ensure_demo_plan().await.expect("demo").is_some());
    let view = app.show_plan("demo-lab", None).await.expect("show");
    assert_eq!(view.saved_at, 1_700_000_000_000);
    assert_eq!(view.plan.nodes.len(), 5);
    assert_eq!(view.findings.len(), 1, "only the missing-SSH-key warning");
}

#[tokio::test]
async fn the_k3s_token_is_generated_once_per_plan_and_not_in_the_plan_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir).await;
    app.ensure_demo_plan().await.expect("demo");
    let a = app.k3s_token("demo-lab", &mut StdRng::seed_from_u64(1)).await.expect("token");
    let b = app.k3s_token("demo-lab", &mut StdRng::seed_from_u64(2)).await.expect("token");
    assert_eq!(a, b, "the stored token is reused");
    assert_eq!(a.len(), 48);
    let text = app.export_text("demo-lab", None).await.expect("export");
    assert!(!text.contains(&a));
    app.duplicate_plan("demo-lab", "copy").await.expect("copy");
    let c = app.k3s_token("copy", &mut StdRng::seed_from_u64(2)).await.expect("token");
    assert_ne!(a, c, "a copy is another cluster");
}

#[tokio::test]
async fn errors_carry_stable_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir).await;
    let e = app.show_plan("ghost", None).await.expect_err("missing");
    assert_eq!(error_code(&e), ErrorCode::PlanNotFound);
    let e = app.import_text("version: 1\nname: [", "t.yaml", ImportPolicy::Strict).await.expect_err("bad yaml");
    assert_eq!(error_code(&e), ErrorCode::ParseError);
    let e = app
        .import_text("version: 1\nname: x\nbogus: 1\n", "t.yaml", ImportPolicy::KeepErrors)
        .await
        .expect_err("unknown");
    assert_eq!(error_code(&e), ErrorCode::InvalidPlan);
    app.ensure_demo_plan().await.expect("demo");
    app.duplicate_plan("demo-lab", "b").await.expect("copy");
    let e = app.rename_plan("demo-lab", "b").await.expect_err("taken");
    assert_eq!(error_code(&e), ErrorCode::NameTaken);
    let e = app.import_file(&dir.path().join("none.yaml"), ImportPolicy::Strict).await.expect_err("no file");
    assert_eq!(error_code(&e), ErrorCode::Io);
}

#[tokio::test]
async fn a_plan_without_a_valid_name_is_never_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir).await;
    let e = app
        .import_text("version: 1\nname: Not Valid\n", "t.yaml", ImportPolicy::KeepErrors)
        .await
        .expect_err("refused");
    assert_eq!(error_code(&e), ErrorCode::InvalidPlan);
    assert!(app.list_plans().await.expect("list").is_empty());
}

#[tokio::test]
async fn a_plan_with_errors_can_be_kept_for_fixing_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir).await;
    let outcome = app
        .import_text("version: 1\nname: draft\nnodes:\n- name: n1\n", "draft.yaml", ImportPolicy::KeepErrors)
        .await
        .expect("kept");
    assert!(outcome.findings.iter().any(|f| f.path == "nodes[n1].mac"));
    let listed = app.list_plans().await.expect("list");
    assert_eq!((listed[0].summary.name.as_str(), listed[0].nodes), ("draft", 1));
    assert!(listed[0].errors >= 3);
}

#[tokio::test]
async fn a_new_plan_starts_empty_and_its_name_must_be_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir).await;
    let outcome = app.create_plan("garage").await.expect("created");
    assert_eq!(outcome.saved.revision, 1);
    let view = app.show_plan("garage", None).await.expect("show");
    assert!(view.plan.nodes.is_empty() && view.plan.switches.is_empty());
    assert!(view.findings.iter().any(|f| f.severity == flatlab_model::Severity::Error), "{:?}", view.findings);
    // Its network section is the workstation's LAN (empty where there is no default route).
    let lan = flatlab_api::local_network();
    assert_eq!(view.plan.network.subnet, lan.as_ref().map(|l| l.subnet.clone()).unwrap_or_default());
    assert_eq!(view.plan.network.gateway, lan.as_ref().map(|l| l.gateway.clone()).unwrap_or_default());
    assert!(!view.plan.network.dns.iter().any(|d| d.starts_with("127.")), "never the local DNS stub");
    let err = app.create_plan("garage").await.expect_err("taken");
    assert_eq!(error_code(&err), ErrorCode::NameTaken);
    let err = app.create_plan("Not A Name").await.expect_err("bad name");
    assert_eq!(error_code(&err), ErrorCode::InvalidPlan);
}

/// The stages rendered scripts report (`?stage=...` in the report units, `report STAGE` in the
/// installer) are stages the boot server accepts from a node: the renderer and bootd speak one
/// vocabulary across the wire.
#[tokio::test]
async fn rendered_reports_name_stages_the_boot_server_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(&dir).await;
    app.ensure_demo_plan().await.expect("demo");
    let bundle =
        app.render_plan("demo-lab", "http://10.0.0.2:8080", &mut StdRng::seed_from_u64(1)).await.expect("renders");
    let mut reported = std::collections::BTreeSet::new();
    for (path, file) in bundle.files() {
        if !path.ends_with(".ign") {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(file.contents).expect("json");
        let mut texts: Vec<String> = Vec::new();
        for f in json.pointer("/storage/files").and_then(|f| f.as_array()).into_iter().flatten() {
            if let Some(text) =
                f.pointer("/contents/source").and_then(|s| s.as_str()).and_then(flatlab_render::data_url_decode)
            {
                texts.push(text);
            }
        }
        for u in json.pointer("/systemd/units").and_then(|u| u.as_array()).into_iter().flatten() {
            texts.extend(u.get("contents").and_then(|c| c.as_str()).map(str::to_owned));
        }
        for text in texts {
            for part in text.split("?stage=").skip(1) {
                let stage: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                if !stage.is_empty() {
                    reported.insert(stage);
                }
            }
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("report ") {
                    reported.insert(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        }
    }
    assert!(reported.len() >= 5, "found {reported:?}");
    for name in &reported {
        let stage = flatlab_api::Stage::parse(name);
        assert!(
            stage.is_some_and(|s| s.is_reported()),
            "rendered configs report `{name}`, which the boot server refuses"
        );
    }
}
