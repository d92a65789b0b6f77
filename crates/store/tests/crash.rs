//! A process killed in the middle of saving leaves the last good revision readable.
//!
//! The test runs this same test binary again as a child that saves revisions as fast as it can,
//! kills it with SIGKILL at an arbitrary moment, and checks the database, several times over.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flatlab_model::{DEMO_PLAN, Plan, parse_plan};
use flatlab_store::Store;

const DB_ENV: &str = "FLATLAB_TEST_CRASH_DB";

/// A large plan (so that each save takes a while), recognisable by its node count.
fn plan_with(nodes: usize) -> Plan {
    let mut plan = parse_plan(DEMO_PLAN).expect("demo parses").plan;
    let template = plan.nodes[4].clone();
    plan.nodes.truncate(4);
    for i in 0..nodes {
        let mut n = template.clone();
        n.name = format!("worker-{i}");
        n.mac = format!("52:54:00:01:{:02x}:{:02x}", i / 256, i % 256);
        plan.nodes.push(n);
    }
    plan
}

#[tokio::test]
#[ignore = "helper process for killed_in_the_middle_of_saving_keeps_the_last_good_revision"]
async fn child_saves_forever() {
    let Ok(path) = std::env::var(DB_ENV) else { return };
    let store = Store::open(path.as_ref()).await.expect("child opens");
    let mut i = 0usize;
    loop {
        let plan = plan_with(100 + i % 50);
        store.save_plan(&plan, &format!("child save {i}"), i as i64).await.expect("child saves");
        i += 1;
    }
}

#[tokio::test]
async fn killed_in_the_middle_of_saving_keeps_the_last_good_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flatlab.db");
    {
        let store = Store::open(&path).await.expect("opens");
        store.save_plan(&plan_with(100), "seed", 0).await.expect("seed");
        store.close().await;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut last_revision = 1;
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "child_saves_forever", "--nocapture"])
            .env(DB_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        // Let it get some saves in, then kill it at a moment that varies from round to round.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::time::sleep(Duration::from_millis(20 + round * 7)).await;
            let store = Store::open(&path).await.expect("opens while child writes");
            let newest = store.load_plan(&plan_with(0).name).await.expect("readable while child writes");
            store.close().await;
            if newest.revision >= last_revision + 3 || Instant::now() > deadline {
                break;
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");

        let store = Store::open(&path).await.expect("reopens after the kill");
        let newest = store.load_plan("demo-lab").await.expect("newest revision readable");
        assert!(newest.revision > last_revision, "round {round}: the child saved something");
        let workers = newest.plan.nodes.len() - 4;
        assert!((100..150).contains(&workers), "round {round}: a whole plan, not a torn one ({workers} workers)");
        let history = store.history("demo-lab").await.expect("history");
        let revisions: Vec<i64> = history.iter().rev().map(|h| h.revision).collect();
        assert_eq!(revisions, (1..=newest.revision).collect::<Vec<_>>(), "round {round}: contiguous history");
        last_revision = newest.revision;
        store.close().await;
    }
}
