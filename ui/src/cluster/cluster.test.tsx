import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { clusterStatus, FakeBackend, resetMocks } from "../test/fakeBackend";
import { click, openApp, type } from "../test/app";
import { reachText, upgradeProgress } from "./ClusterView";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("cluster view", () => {
  it("shows each node as the API reports it, beside the plan and the install", async () => {
    await openApp();
    click("tab-cluster");
    await waitFor(() => expect(screen.getByTestId("cluster-reach").dataset.kind).toBe("reachable"));
    expect(screen.getByTestId("cluster-reach").textContent).toContain("Connected at https://10.0.0.11:6443 · Kubernetes v1.32.2+k3s1");
    expect(screen.getByTestId("cluster-node-cp1").dataset.state).toBe("ready");
    expect(screen.getByTestId("cluster-node-cp1").textContent).toContain("4593.2.5");
    expect(screen.getByTestId("cluster-node-worker1").textContent).toContain("Rebooting into a Flatcar update");
    expect(screen.getByTestId("cluster-node-old-cp4").textContent).toContain("Not in the plan");
    expect(screen.getByTestId("api-note").textContent).toContain("10.0.0.11");
    expect(screen.getByTestId("backup-reminder").textContent).toContain("Back up the keys to this cluster");
  });

  it("writes a kubeconfig: merged into ~/.kube/config, or to a chosen file", async () => {
    const fake = new FakeBackend().on("pick_save_file", () => "/home/ada/lab.kubeconfig").install();
    await openApp(fake);
    click("tab-cluster");
    await screen.findByTestId("cluster-node-cp1");
    click("kubeconfig-merge");
    await screen.findByText(/Added context demo-lab \(https:\/\/10.0.0.11:6443\) to \/home\/ada\/.kube\/config/);
    click("kubeconfig-file");
    await screen.findByText(/to \/home\/ada\/lab.kubeconfig \(readable by you only/);
    expect(fake.callsOf("save_kubeconfig")).toEqual([
      { name: "demo-lab", path: null },
      { name: "demo-lab", path: "/home/ada/lab.kubeconfig" },
    ]);
  });

  it("backs up the keys to age recipients, never unencrypted", async () => {
    const fake = new FakeBackend().on("pick_save_file", () => "/media/ada/STICK/demo-lab-secrets.age").install();
    await openApp(fake);
    click("tab-cluster");
    await screen.findByTestId("backup-reminder");
    click("backup-secrets");
    fireEvent.change(await screen.findByTestId("modal-input"), { target: { value: "age1alice age1bob" } });
    click("modal-ok");
    await screen.findByText(/encrypted to 2 recipient\(s\), to \/media\/ada\/STICK\/demo-lab-secrets.age/);
    expect(fake.callsOf("export_secrets")).toEqual([
      { name: "demo-lab", recipients: ["age1alice", "age1bob"], path: "/media/ada/STICK/demo-lab-secrets.age" },
    ]);
  });

  it("starts a K3s upgrade, shows a refusal where it was asked, and follows the progress", async () => {
    const fake = new FakeBackend()
      .on("start_k3s_upgrade", (args) => {
        if (args.version === "v1.34.1+k3s1") throw { code: "upgrade_refused", message: "v1.34.1+k3s1 skips a minor version" };
        return { from: "v1.32.2+k3s1", to: args.version, nodes: 3 };
      })
      .install();
    await openApp(fake);
    click("tab-cluster");
    await screen.findByTestId("cluster-node-cp1");
    type("upgrade-version", "v1.34.1+k3s1");
    click("upgrade-start");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    expect((await screen.findByTestId("upgrade-error")).textContent).toContain("skips a minor version");

    fake.on("cluster_status", () => ({
      ...clusterStatus(),
      upgrade: { to: "v1.33.4+k3s1", done: ["cp1"], remaining: ["worker1", "old-cp4"], saved_revision: null },
    }));
    type("upgrade-version", "v1.33.4+k3s1");
    click("upgrade-start");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    await waitFor(() => expect(screen.getByTestId("upgrade-progress").dataset.done).toBe("1"));
    expect(screen.getByTestId("upgrade-progress").dataset.total).toBe("3");
    expect(fake.callsOf("start_k3s_upgrade").at(-1)).toEqual({ name: "demo-lab", version: "v1.33.4+k3s1", sha256: null, server: null });
  });

  it("reopens the plan when the cluster finished an upgrade and Flatlab saved it", async () => {
    const fake = new FakeBackend().on("cluster_status", () => ({
      ...clusterStatus(),
      upgrade: { to: "v1.33.4+k3s1", done: ["cp1", "worker1"], remaining: [], saved_revision: 2 },
    }));
    fake.install();
    await openApp(fake);
    const before = fake.callsOf("show_plan").length;
    click("tab-cluster");
    await screen.findByTestId("upgrade-saved");
    await waitFor(() => expect(fake.callsOf("show_plan").length).toBeGreaterThan(before));
  });

  it("drains and deletes a node the plan no longer has, after asking", async () => {
    const fake = await openApp();
    click("tab-cluster");
    click((await screen.findByTestId("remove-node-old-cp4")).dataset.testid!);
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    await screen.findByText("old-cp4 is out of the cluster.");
    expect(fake.callsOf("remove_cluster_node")).toEqual([{ name: "demo-lab", node: "old-cp4", server: null }]);
  });

  it("reaches the API at the address the user gives, remembered per plan", async () => {
    const fake = await openApp();
    click("tab-cluster");
    await screen.findByTestId("cluster-node-cp1");
    type("cluster-server", "https://lab.example:16443");
    fireEvent.blur(screen.getByTestId("cluster-server"));
    await waitFor(() => expect(fake.callsOf("cluster_status").at(-1)).toEqual({ name: "demo-lab", server: "https://lab.example:16443" }));
    expect(localStorage.getItem("flatlab.cluster-server.demo-lab")).toBe("https://lab.example:16443");
  });
});

describe("cluster texts", () => {
  it("says why the API cannot be reached", () => {
    expect(reachText({ kind: "unreachable", reason: "connection refused" }, "https://10.0.0.11:6443")).toBe(
      "API unreachable at https://10.0.0.11:6443: connection refused",
    );
    expect(reachText({ kind: "certificate_refused", reason: "bad certificate" }, "")).toContain("refused Flatlab's certificate");
    expect(reachText({ kind: "foreign_ca" }, "")).toContain("installed before Flatlab made its own certificate authorities");
    expect(upgradeProgress(clusterStatus())).toBeNull();
  });

  it("lists the snapshots, takes one now and copies one here", async () => {
    const fake = new FakeBackend();
    await openApp(fake.install());
    click("plan-demo-lab");
    click("tab-cluster");
    const row = await screen.findByTestId("snapshot-etcd-snapshot-cp1-1700000000");
    expect(row.getAttribute("data-state")).toBe("ready");
    expect(screen.getByTestId("snapshot-here-flatlab-before-upgrade-cp1-1699990000").textContent).toContain("SHA-256 aaaaaaaaaaaa");
    click("snapshot-take");
    await waitFor(() => expect(fake.callsOf("take_snapshot")).toEqual([{ name: "demo-lab", server: null }]));
    click("snapshot-download-etcd-snapshot-cp1-1700000000");
    await waitFor(() =>
      expect(fake.callsOf("download_snapshot")).toEqual([{ name: "demo-lab", snapshot: "etcd-snapshot-cp1-1700000000", server: null }]),
    );
    expect((await screen.findByText(/Copied etcd-snapshot-cp1-1700000000/)).textContent).toContain("SHA-256 aaaaaaaaaaaaaaaa");
  });

  it("restores the cluster from a snapshot copied here, after asking, and follows every server", async () => {
    const fake = new FakeBackend();
    await openApp(fake.install());
    click("plan-demo-lab");
    click("tab-cluster");
    const wizard = await screen.findByTestId("restore-wizard");
    expect(wizard.getAttribute("data-active")).toBe("no");
    expect((screen.getByTestId("restore-snapshot") as HTMLSelectElement).value).toBe("flatlab-before-upgrade-cp1-1699990000");
    click("restore-start");
    expect((await screen.findByText("Restore the cluster from this snapshot?")).textContent).toBeTruthy();
    click("modal-ok");
    await waitFor(() =>
      expect(fake.callsOf("restore_cluster")).toEqual([{ name: "demo-lab", snapshot: "flatlab-before-upgrade-cp1-1699990000" }]),
    );
    await waitFor(() => expect(screen.getByTestId("restore-wizard").getAttribute("data-active")).toBe("yes"));
    expect(screen.getByTestId("restore-server-cp2").getAttribute("data-stage")).toBe("armed");
    expect(screen.getByTestId("restore-status").textContent).toContain("waiting for the first server");
  });
});
