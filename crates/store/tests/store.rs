//! The store against real SQLite files in temporary folders.

use std::path::Path;

use flatlab_model::{DEMO_PLAN, Plan, parse_plan};
use flatlab_store::{Error, Store};

fn demo() -> Plan {
    parse_plan(DEMO_PLAN).expect("demo parses").plan
}

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("flatlab.db")).await.expect("opens")
}

#[tokio::test]
async fn creates_the_database_and_its_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/deeper/flatlab.db");
    let store = Store::open(&path).await.expect("opens");
    assert!(store.list_plans().await.expect("lists").is_empty());
    assert!(path.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the database holds secrets: owner only");
    }
    store.close().await;
    // Reopening an existing database works and keeps it.
    Store::open(&path).await.expect("reopens");
}

#[tokio::test]
async fn every_save_is_a_revision_and_unchanged_saves_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let mut plan = demo();
    let s1 = store.save_plan(&plan, "imported", 1_000).await.expect("save 1");
    assert_eq!((s1.revision, s1.changed), (1, true));
    let again = store.save_plan(&plan, "imported again", 2_000).await.expect("save same");
    assert_eq!((again.revision, again.changed), (1, false));

    plan.nodes[0].install_disk = "/dev/vda".into();
    let s2 = store.save_plan(&plan, "changed cp1's disk", 3_000).await.expect("save 2");
    assert_eq!((s2.revision, s2.changed), (2, true));

    let newest = store.load_plan("demo-lab").await.expect("loads");
    assert_eq!(newest.revision, 2);
    assert_eq!(newest.plan, plan);
    assert_eq!(newest.saved_at, 3_000);
    let first = store.load_revision("demo-lab", 1).await.expect("loads rev 1");
    assert_eq!(first.plan, demo());

    let history = store.history("demo-lab").await.expect("history");
    let entries: Vec<(i64, &str, i64)> =
        history.iter().map(|h| (h.revision, h.message.as_str(), h.created_at)).collect();
    assert_eq!(entries, [(2, "changed cp1's disk", 3_000), (1, "imported", 1_000)]);

    let list = store.list_plans().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].revision, list[0].created_at, list[0].updated_at), (2, 1_000, 3_000));
}

#[tokio::test]
async fn revert_saves_an_old_revision_as_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let mut plan = demo();
    store.save_plan(&plan, "v1", 1).await.expect("save");
    plan.nodes.pop();
    store.save_plan(&plan, "v2", 2).await.expect("save");
    let saved = store.revert("demo-lab", 1, 3).await.expect("revert");
    assert_eq!(saved.revision, 3);
    assert_eq!(store.load_plan("demo-lab").await.expect("load").plan, demo());
    assert_eq!(store.history("demo-lab").await.expect("history")[0].message, "reverted to revision 1");
    assert!(matches!(store.revert("demo-lab", 9, 4).await, Err(Error::RevisionNotFound { revision: 9, .. })));
}

#[tokio::test]
async fn rename_keeps_history_and_secrets_duplicate_gets_neither() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    store.save_plan(&demo(), "imported", 1).await.expect("save");
    let token = store.ensure_secret("demo-lab", "k3s-token", 2, || "s3cret".into()).await.expect("secret");

    let renamed = store.rename_plan("demo-lab", "garage", 3).await.expect("rename");
    assert_eq!(renamed.revision, 2);
    let loaded = store.load_plan("garage").await.expect("load");
    assert_eq!(loaded.plan.name, "garage", "the plan file carries the new name");
    assert_eq!(store.history("garage").await.expect("history").len(), 2);
    assert_eq!(store.ensure_secret("garage", "k3s-token", 4, || "other".into()).await.expect("secret"), token);
    assert!(matches!(store.load_plan("demo-lab").await, Err(Error::PlanNotFound { .. })));

    let copy = store.duplicate_plan("garage", "garage-2", 5).await.expect("duplicate");
    assert_eq!(copy.revision, 1);
    assert!(store.secret_names("garage-2").await.expect("names").is_empty());
    assert!(matches!(store.rename_plan("garage", "garage-2", 6).await, Err(Error::NameTaken { .. })));
    assert!(matches!(store.duplicate_plan("garage", "garage-2", 6).await, Err(Error::NameTaken { .. })));
}

#[tokio::test]
async fn secrets_are_generated_once_and_never_in_the_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    store.save_plan(&demo(), "imported", 1).await.expect("save");
    let a = store.ensure_secret("demo-lab", "k3s-token", 2, || "first".into()).await.expect("secret");
    let b =
        store.ensure_secret("demo-lab", "k3s-token", 3, || panic!("must not generate twice")).await.expect("secret");
    assert_eq!((a.as_str(), b.as_str()), ("first", "first"));
    assert_eq!(store.secret_names("demo-lab").await.expect("names"), ["k3s-token"]);
    let yaml = flatlab_model::to_yaml(&store.load_plan("demo-lab").await.expect("load").plan);
    assert!(!yaml.contains("first"));
    assert!(matches!(
        store.ensure_secret("nope", "k3s-token", 1, || "x".into()).await,
        Err(Error::PlanNotFound { .. })
    ));
}

#[tokio::test]
async fn delete_removes_plan_history_and_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let mut plan = demo();
    store.save_plan(&plan, "1", 1).await.expect("save");
    plan.nodes.pop();
    store.save_plan(&plan, "2", 2).await.expect("save");
    store.ensure_secret("demo-lab", "k3s-token", 3, || "t".into()).await.expect("secret");
    assert_eq!(store.delete_plan("demo-lab").await.expect("delete"), 2);
    assert!(store.list_plans().await.expect("list").is_empty());
    assert!(matches!(store.delete_plan("demo-lab").await, Err(Error::PlanNotFound { .. })));
    // A new plan of the same name starts afresh, without the old secret.
    store.save_plan(&demo(), "again", 4).await.expect("save");
    assert_eq!(store.load_plan("demo-lab").await.expect("load").revision, 1);
    assert!(store.secret_names("demo-lab").await.expect("names").is_empty());
}

#[tokio::test]
async fn unknown_plans_and_revisions_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let e = store.load_plan("ghost").await.expect_err("missing");
    assert_eq!(e.to_string(), "no plan called `ghost`; `flatlab plan list` shows the stored plans");
    assert!(matches!(store.history("ghost").await, Err(Error::PlanNotFound { .. })));
    assert!(matches!(store.load_revision("ghost", 1).await, Err(Error::PlanNotFound { .. })));
}

#[tokio::test]
async fn concurrent_saves_from_two_handles_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flatlab.db");
    let a = Store::open(&path).await.expect("a");
    let b = Store::open(&path).await.expect("b");
    a.save_plan(&demo(), "start", 0).await.expect("save");
    let mut tasks = Vec::new();
    for i in 0..20i64 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut plan = demo();
            plan.nodes[0].install_disk = format!("/dev/vd{}", (b'a' + i as u8) as char);
            store.save_plan(&plan, &format!("save {i}"), i + 1).await.expect("save")
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let history = a.history("demo-lab").await.expect("history");
    let mut revisions: Vec<i64> = history.iter().map(|h| h.revision).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=21).collect::<Vec<_>>(), "no revision lost or duplicated");
}

// --- refusing files that are not ours, damaged, or newer -------------------------------------

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.db");
    std::fs::write(&path, b"these are my notes, not a database\n".repeat(100)).expect("write");
    let before = bytes(&path);
    let e = Store::open(&path).await.expect_err("refused");
    assert!(matches!(e, Error::NotFlatlab { .. }), "{e:?}");
    assert!(e.to_string().contains("left untouched"), "{e}");
    assert_eq!(bytes(&path), before);
}

#[tokio::test]
async fn another_programs_sqlite_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("other.db");
    let status = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');")
        .status()
        .expect("sqlite3 runs");
    assert!(status.success());
    let before = bytes(&path);
    let e = Store::open(&path).await.expect_err("refused");
    assert!(matches!(e, Error::NotFlatlab { .. }), "{e:?}");
    assert_eq!(bytes(&path), before);
    assert!(!dir.path().join("other.db-wal").exists(), "not even switched to WAL");
}

#[tokio::test]
async fn a_damaged_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flatlab.db");
    {
        let store = Store::open(&path).await.expect("opens");
        for i in 0..30 {
            let mut plan = demo();
            plan.name = format!("plan-{i}");
            store.save_plan(&plan, "x", i).await.expect("save");
        }
        store.close().await;
    }
    let mut damaged = bytes(&path);
    assert!(damaged.len() > 3 * 4096, "database spans several pages");
    // Scribble over the second page (a b-tree page), keeping the header intact.
    for b in &mut damaged[4096..4096 + 512] {
        *b = 0xA5;
    }
    std::fs::write(&path, &damaged).expect("write");
    let e = Store::open(&path).await.expect_err("refused");
    assert!(matches!(e, Error::Corrupt { .. } | Error::NotFlatlab { .. }), "{e:?}");
    assert!(e.to_string().contains("left untouched"), "{e}");
    assert_eq!(bytes(&path), damaged);
}

#[tokio::test]
async fn a_truncated_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flatlab.db");
    {
        let store = Store::open(&path).await.expect("opens");
        store.save_plan(&demo(), "x", 1).await.expect("save");
        store.close().await;
    }
    let mut truncated = bytes(&path);
    truncated.truncate(10);
    std::fs::write(&path, &truncated).expect("write");
    let e = Store::open(&path).await.expect_err("refused");
    assert!(matches!(e, Error::NotFlatlab { .. }), "{e:?}");
    assert_eq!(bytes(&path), truncated);
}

#[tokio::test]
async fn a_database_from_a_newer_flatlab_is_refused_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flatlab.db");
    {
        let store = Store::open(&path).await.expect("opens");
        store.save_plan(&demo(), "x", 1).await.expect("save");
        store.close().await;
    }
    let status = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99990101, 'from the future', 1, x'00', 0);")
        .status()
        .expect("sqlite3 runs");
    assert!(status.success());
    let before = bytes(&path);
    let e = Store::open(&path).await.expect_err("refused");
    match &e {
        Error::NewerSchema { found, .. } => assert_eq!(*found, 99990101),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(e.to_string().contains("Upgrade Flatlab"), "{e}");
    assert_eq!(bytes(&path), before);
}

#[tokio::test]
async fn machine_state_and_discovered_machines_are_kept() {
    use flatlab_store::MachineRow;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    store.save_plan(&demo(), "x", 1).await.expect("save");
    let mut row = MachineRow {
        mac: "52:54:00:00:00:01".into(),
        node: "cp1".into(),
        stage: "armed".into(),
        token: "t1".into(),
        history: "[]".into(),
        ip: None,
        attempt: None,
        updated_at: 5,
    };
    store.save_machine("demo-lab", &row).await.expect("save machine");
    row.stage = "installed".into();
    row.ip = Some("10.0.0.50".into());
    row.attempt = Some(r#"{"token":"a"}"#.into());
    row.updated_at = 6;
    store.save_machine("demo-lab", &row).await.expect("update machine");
    assert_eq!(store.machines("demo-lab").await.expect("machines"), [row.clone()]);
    assert!(store.forget_machine("demo-lab", &row.mac).await.expect("forget"));
    assert!(store.machines("demo-lab").await.expect("machines").is_empty());

    store.record_discovered("aa:00:00:00:00:01", Some("bios"), Some("PXEClient"), 10).await.expect("seen");
    store.record_discovered("aa:00:00:00:00:01", None, None, 20).await.expect("seen again");
    let seen = store.discovered().await.expect("discovered");
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].firmware.as_deref(), seen[0].first_seen, seen[0].last_seen), (Some("bios"), 10, 20));
    // A flood of made-up MACs: the table keeps the ones seen most recently.
    for i in 0..(flatlab_store::MAX_DISCOVERED + 5) {
        store
            .record_discovered(&format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256), None, None, 100 + i)
            .await
            .expect("seen");
    }
    let seen = store.discovered().await.expect("discovered");
    assert_eq!(seen.len() as i64, flatlab_store::MAX_DISCOVERED);
    assert!(!seen.iter().any(|s| s.mac == "aa:00:00:00:00:01"), "the oldest went first");

    // Machines go with their plan.
    store.save_machine("demo-lab", &row).await.expect("save machine");
    store.delete_plan("demo-lab").await.expect("delete");
    store.save_plan(&demo(), "again", 30).await.expect("save");
    assert!(store.machines("demo-lab").await.expect("machines").is_empty());
}
