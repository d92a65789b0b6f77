//! Machine inventories: what a live system posts is kept per plan and read beside the plan's
//! install disks (a real SQLite file).

use flatlab_api::Flatlab;

fn inventory_json(disk: &str, memory_gib: u64, partitions: &str) -> String {
    format!(
        r#"{{"firmware":"uefi","vendor":"QEMU","product":"Standard PC (Q35 + ICH9, 2009)","cpu_model":"QEMU Virtual CPU",
            "cpus":2,"memory_bytes":{},"nics":[{{"name":"enp0s2","mac":"52:54:00:78:00:01","driver":"virtio_net","speed_mbps":null}}],
            "disks":[{{"name":"{disk}","by_id":["/dev/disk/by-id/virtio-flatlab-cp1"],"size_bytes":21474836480,
                      "model":null,"serial":"flatlab-cp1","rotational":false,"removable":false,"partitions":[{partitions}]}},
                     {{"name":"sdb","by_id":["/dev/disk/by-id/usb-SanDisk_Cruzer-0:0"],"size_bytes":16000000000,
                      "model":"Cruzer","serial":"4C53","rotational":false,"removable":true,"partitions":[]}}]}}"#,
        memory_gib << 30
    )
}

#[tokio::test]
async fn a_posted_inventory_is_kept_and_read_beside_the_plan() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = Flatlab::open(&dir.path().join("flatlab.db")).await.expect("opens");
    app.ensure_demo_plan().await.expect("demo plan");
    assert!(app.inventories("demo-lab").await.expect("none yet").is_empty());

    let part = r#"{"name":"vda1","size_bytes":1000000000,"fstype":"ntfs","label":"Windows"}"#;
    app.save_inventory("demo-lab", "52:54:00:78:00:01", "cp2", inventory_json("vda", 2, part).as_bytes())
        .await
        .expect("saved");
    app.save_inventory("demo-lab", "52:54:00:78:00:02", "cp1", inventory_json("vda", 8, "").as_bytes())
        .await
        .expect("saved");
    // A machine posting again replaces what it posted before.
    app.save_inventory("demo-lab", "52:54:00:78:00:02", "cp1", inventory_json("vda", 16, "").as_bytes())
        .await
        .expect("saved");
    let err = app.save_inventory("demo-lab", "52:54:00:78:00:03", "cp3", b"{\"firmware\":\"bios\"}").await;
    assert!(err.expect_err("not an inventory").to_string().contains("not valid"));

    let all = app.inventories("demo-lab").await.expect("read");
    let nodes: Vec<&str> = all.iter().map(|m| m.node.as_str()).collect();
    assert_eq!(nodes, ["cp1", "cp2"], "in the plan's node order");
    let cp1 = &all[0];
    assert_eq!(cp1.inventory.memory_bytes, 16 << 30);
    assert_eq!(
        cp1.suggested_install_disk.as_deref(),
        Some("/dev/disk/by-id/virtio-flatlab-cp1"),
        "the only fixed disk"
    );
    // The demo plan says /dev/sda, which this machine does not have.
    assert_eq!(cp1.warnings, ["this machine has no disk /dev/sda"]);
    let cp2 = &all[1];
    assert!(cp2.warnings.iter().any(|w| w.starts_with("2.1 GB of memory")), "{:?}", cp2.warnings);

    // Reopened, the inventories are still there.
    app.close().await;
    let app = Flatlab::open(&dir.path().join("flatlab.db")).await.expect("reopens");
    assert_eq!(app.inventories("demo-lab").await.expect("read").len(), 2);
}
