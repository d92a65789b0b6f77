import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import type { Plan, SidecarMessage } from "../lib/ipc";
import { FakeBackend, resetMocks, sendBootMessage, sendBootStopped } from "../test/fakeBackend";
import { click, openApp } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

const stage = (at: number, mac: string, node: string | null, s: string, detail: string | null = null): SidecarMessage => ({
  type: "event",
  event: { at, mac, node, type: "stage", stage: s as never, detail },
});

describe("install view", () => {
  it("folds the boot server's messages into a timeline per machine", async () => {
    const fake = new FakeBackend();
    fake.bootRunning = true;
    fake.bootMessages = [
      { type: "ready", plan: "demo-lab", interface: "eth0", http: "http://192.168.1.20:8080", tftp: "192.168.1.20:69", admin: "x", warnings: [] },
      { type: "armed", node: "cp1" },
      stage(1_000, "52:54:00:00:00:01", "cp1", "dhcp"),
      stage(2_000, "52:54:00:00:00:01", "cp1", "ipxe"),
    ];
    await openApp(fake.install());
    click("tab-install");
    const cp1 = await screen.findByTestId("machine-cp1");
    expect(cp1.getAttribute("data-stage")).toBe("ipxe");
    expect(cp1.querySelector(".timeline .current")?.textContent).toContain("ipxe");
    expect(screen.getByTestId("machine-worker1").getAttribute("data-stage")).toBe("");

    await act(async () => {
      await sendBootMessage(stage(3_000, "52:54:00:00:00:01", "cp1", "kernel"));
      await sendBootMessage({ type: "event", event: { at: 3_100, mac: "52:54:00:00:00:01", node: "cp1", type: "progress", file: "flatcar_production_pxe.vmlinuz", sent: 512, total: 1024 } });
      await sendBootMessage(stage(4_000, "52:54:00:00:00:04", "worker1", "dhcp"));
      await sendBootMessage(stage(5_000, "52:54:00:00:00:04", "worker1", "failed", "install disk /dev/nvme0n1 not found"));
      await sendBootMessage({ type: "event", event: { at: 6_000, mac: "de:ad:be:ef:00:01", node: null, type: "discovered", firmware: "bios", vendor_class: null } });
    });
    await waitFor(() => expect(screen.getByTestId("machine-cp1").getAttribute("data-stage")).toBe("kernel"));
    expect(screen.getByTestId("machine-cp1").querySelector("progress")?.getAttribute("value")).toBe("512");
    const worker = screen.getByTestId("machine-worker1");
    expect(worker.getAttribute("data-stage")).toBe("failed");
    expect(worker.textContent).toContain("install disk /dev/nvme0n1 not found");
    expect(worker.querySelector(".timeline .failed")?.textContent).toContain("dhcp");
    expect(screen.getByTestId("stranger-de:ad:be:ef:00:01")).toBeTruthy();

    // Re-arm asks first.
    click("rearm-cp1");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    await waitFor(() => expect(fake.callsOf("boot_arm")).toEqual([{ plan: "demo-lab", node: "cp1", newCluster: false }]));

    // The card on the canvas shows the install state too.
    click("tab-design");
    await waitFor(() => expect(screen.getByTestId("node-cp1").getAttribute("data-state")).toBe("kernel"));
  });

  it("powers machines on by Wake-on-LAN: one node, and at Start those not seen yet", async () => {
    const fake = new FakeBackend();
    fake.bootRunning = true;
    fake.bootMessages = [
      { type: "ready", plan: "demo-lab", interface: "eth0", http: "http://192.168.1.20:8080", tftp: "192.168.1.20:69", admin: "x", warnings: [] },
      { type: "armed", node: "worker1" },
      stage(1_000, "52:54:00:00:00:01", "cp1", "dhcp"),
    ];
    await openApp(fake.install());
    click("tab-install");
    await screen.findByTestId("machine-worker1");
    click("power-on-cp1");
    await waitFor(() => expect(fake.callsOf("power_on")).toEqual([{ plan: "demo-lab", node: "cp1", interface: "eth0" }]));
    expect((await screen.findByTestId("power-on-result")).textContent).toContain("Sent 3 magic packets each to cp1 (52:54:00:00:00:01) on 192.168.1.255:9");
    // cp1 is on the network (it asked for DHCP): only worker1, armed and not seen, gets its packets.
    click("power-on-all");
    await waitFor(() => expect(screen.getByTestId("power-on-result").textContent).toContain("worker1 (52:54:00:00:00:04)"));
    expect(fake.callsOf("power_on").slice(1)).toEqual([{ plan: "demo-lab", node: "worker1", interface: "eth0" }]);
  });

  it("asks how to go on when the cluster ran and no server answers, and starts a new one only when told", async () => {
    const fake = new FakeBackend();
    fake.bootRunning = true;
    fake.bootMessages = [{ type: "ready", plan: "demo-lab", interface: "eth0", http: "http://192.168.1.20:8080", tftp: "192.168.1.20:69", admin: "x", warnings: [] }];
    const refusal = "not arming cp1: plan demo-lab's cluster has run, and no server of the cluster answers (https://10.0.0.11:6443: no answer (timed out))";
    fake.on("boot_arm", (args) => {
      if (!args.newCluster) throw { code: "cluster_lost", message: refusal };
      return null;
    });
    await openApp(fake.install());
    click("tab-install");
    await screen.findByTestId("machine-cp1");

    // Waiting arms nothing.
    click("rearm-cp1");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    expect((await screen.findByTestId("cluster-lost-message")).textContent).toBe(refusal);
    click("modal-cancel");
    await waitFor(() => expect(screen.queryByTestId("cluster-lost-message")).toBeNull());
    expect(fake.callsOf("boot_arm")).toEqual([{ plan: "demo-lab", node: "cp1", newCluster: false }]);

    // Restore from a snapshot: the Cluster tab, with its Restore wizard.
    click("rearm-cp1");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    click((await screen.findByTestId("modal-choice-restore")).dataset.testid!);
    expect(await screen.findByTestId("restore-wizard")).toBeTruthy();
    expect(fake.callsOf("boot_arm")).toHaveLength(2);
    click("tab-install");

    // A new cluster, confirmed.
    click("rearm-cp1");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    click((await screen.findByTestId("modal-choice-new")).dataset.testid!);
    expect((await screen.findByText("Start a new cluster?")).textContent).toBe("Start a new cluster?");
    click("modal-ok");
    await waitFor(() => expect(fake.callsOf("boot_arm")).toHaveLength(4));
    expect(fake.callsOf("boot_arm")[3]).toEqual({ plan: "demo-lab", node: "cp1", newCluster: true });
  });

  it("folds messages that arrive while the status is loading once", async () => {
    const fake = new FakeBackend();
    const early = stage(1_000, "52:54:00:00:00:01", "cp1", "dhcp");
    const later = stage(2_000, "52:54:00:00:00:01", "cp1", "ipxe");
    let answer: (v: unknown) => void = () => {};
    fake.bootMessages = [early];
    fake.on("boot_status", () => new Promise((r) => (answer = r)));
    await openApp(fake.install());
    await act(async () => {
      await sendBootMessage(early);
      await sendBootMessage(later);
    });
    await act(async () => answer({ running: true, messages: [early], error: null, sidecar: "flatlab" }));
    click("tab-install");
    const cp1 = await screen.findByTestId("machine-cp1");
    expect(cp1.getAttribute("data-stage")).toBe("ipxe");
    expect(cp1.querySelectorAll(".timeline .done")).toHaveLength(2);
  });

  it("explains a missing port privilege and grants it", async () => {
    let starts = 0;
    const fake = new FakeBackend().on("boot_start", () => {
      starts += 1;
      if (starts === 1) throw { code: "needs_privilege", message: "binding port 67: permission denied" };
      return null;
    });
    await openApp(fake.install());
    click("tab-install");
    await waitFor(() => expect((screen.getByTestId("boot-interface") as HTMLSelectElement).value).toBe("eth0"));
    expect(screen.getByTestId("boot-interface").textContent).toContain("192.168.1.20/24");
    fireEvent.change(screen.getByTestId("boot-dhcp"), { target: { value: "full" } });
    click("boot-start");
    const err = await screen.findByTestId("boot-error");
    expect(err.textContent).toContain("ports 67 and 69");
    click("grant-privilege");
    await waitFor(() => expect(starts).toBe(2));
    expect(fake.callsOf("grant_boot_privilege")).toHaveLength(1);
    expect(fake.callsOf("boot_start").at(-1)).toEqual({ options: { plan: "demo-lab", interface: "eth0", dhcp: "full", mirror: null } });
    await waitFor(() => expect(screen.queryByTestId("boot-error")).toBeNull());
    await waitFor(() => expect((screen.getByTestId("boot-stop") as HTMLButtonElement).disabled).toBe(false));

    await act(() => sendBootStopped({ code: "address_in_use", message: "port 67 is in use" }));
    expect((await screen.findByTestId("boot-error")).textContent).toContain("Another DHCP or TFTP server");
    expect((screen.getByTestId("boot-start") as HTMLButtonElement).disabled).toBe(false);
  });

  it("names the disks an install would erase and asks once before starting", async () => {
    const fake = new FakeBackend();
    const inventory = (node: string, mac: string, warnings: string[]) => ({
      mac,
      node,
      at: 1_700_000_000_000,
      inventory: { firmware: "uefi" as const, vendor: null, product: null, cpu_model: null, cpus: 4, memory_bytes: 8 * 1024 ** 3, nics: [], disks: [] },
      suggested_install_disk: null,
      warnings,
    });
    fake.inventories = [
      inventory("cp1", "52:54:00:00:00:01", ["installing erases Samsung SSD 970 EVO 500GB (nvme0n1, 500 GB) with 1 partition: nvme0n1p1 500 GB Windows ntfs"]),
      inventory("worker1", "52:54:00:00:00:04", ["2.1 GB of memory: the Flatcar live system runs from memory and needs about 3 GB"]),
      inventory("gone", "52:54:00:00:00:09", ["installing erases a disk of a node the plan no longer has"]),
    ];
    await openApp(fake.install());
    click("tab-install");
    await waitFor(() => expect((screen.getByTestId("boot-start") as HTMLButtonElement).disabled).toBe(false));
    click("boot-start");
    const list = await screen.findByTestId("erase-list");
    expect(list.textContent).toContain("cp1: installing erases Samsung SSD 970 EVO 500GB (nvme0n1, 500 GB) with 1 partition");
    expect(list.querySelectorAll("li")).toHaveLength(1);
    click("modal-cancel");
    await waitFor(() => expect(screen.queryByTestId("erase-list")).toBeNull());
    expect(fake.callsOf("boot_start")).toHaveLength(0);
    click("boot-start");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    await waitFor(() => expect(fake.callsOf("boot_start")).toHaveLength(1));
  });

  it("asks the LAN about static addresses at Start and shows a taken one on its node", async () => {
    const fake = new FakeBackend();
    fake.takenOnLan.add("10.0.0.11");
    await openApp(fake.install());
    click("tab-install");
    await waitFor(() => expect((screen.getByTestId("boot-start") as HTMLButtonElement).disabled).toBe(false));
    click("boot-start");
    const list = await screen.findByTestId("taken-list");
    expect(list.textContent).toContain("cp1's address 10.0.0.11 is taken on the LAN");
    click("modal-cancel");
    // "Fix the plan": the Design view, with the finding on cp1.
    await waitFor(() => expect(screen.getByTestId("node-cp1").getAttribute("data-severity")).toBe("warning"));
    expect(fake.callsOf("boot_start")).toHaveLength(0);
    // Another address clears it.
    fake.takenOnLan.clear();
    click("tab-install");
    await waitFor(() => expect((screen.getByTestId("boot-start") as HTMLButtonElement).disabled).toBe(false));
    click("boot-start");
    await waitFor(() => expect(fake.callsOf("boot_start")).toHaveLength(1));
  });

  it("asks to save a dirty draft before serving it", async () => {
    const fake = await openApp();
    click("add-switch");
    await screen.findByTestId("switch-switch-1");
    click("tab-install");
    await waitFor(() => expect((screen.getByTestId("boot-start") as HTMLButtonElement).disabled).toBe(false));
    click("boot-start");
    click((await screen.findByTestId("unsaved-save")).dataset.testid!);
    await waitFor(() => expect(fake.callsOf("boot_start")).toHaveLength(1));
    expect((fake.callsOf("save_plan")[0].plan as Plan).switches).toHaveLength(2);
  });

  it("inspects a node before its install, then installs it from there", async () => {
    const fake = new FakeBackend();
    fake.bootRunning = true;
    fake.bootMessages = [{ type: "ready", plan: "demo-lab", interface: "eth0", http: "http://192.168.1.20:8080", tftp: "192.168.1.20:69", admin: "x", warnings: [] }];
    await openApp(fake.install());
    click("tab-install");
    click((await screen.findByTestId("inspect-cp1")).dataset.testid!);
    await screen.findByTestId("inspecting-cp1");
    expect(fake.callsOf("inspect_machine")).toEqual([{ plan: "demo-lab", node: "cp1", mac: null }]);
    // The inspection is the store's: it is still there after another tab.
    click("tab-design");
    click("tab-install");
    await screen.findByTestId("inspecting-cp1");
    expect(screen.getByTestId("rearm-cp1").textContent).toBe("Install now");
    click("rearm-cp1");
    expect((await screen.findByRole("dialog")).textContent).toContain("Install cp1 now?");
    click("modal-ok");
    await waitFor(() => expect(fake.callsOf("boot_arm")).toEqual([{ plan: "demo-lab", node: "cp1", newCluster: false }]));
    await waitFor(() => expect(screen.getByTestId("rearm-cp1").textContent).toBe("Re-arm"));
  });

  it("inspects a machine the plan does not have", async () => {
    const fake = new FakeBackend();
    fake.bootRunning = true;
    fake.bootMessages = [{ type: "event", event: { at: 6_000, mac: "de:ad:be:ef:00:01", node: null, type: "discovered", firmware: "bios", vendor_class: null } }];
    await openApp(fake.install());
    click("tab-install");
    click((await screen.findByTestId("stranger-inspect-de:ad:be:ef:00:01")).dataset.testid!);
    await screen.findByTestId("stranger-inspecting-de:ad:be:ef:00:01");
    expect(fake.callsOf("inspect_machine")).toEqual([{ plan: "demo-lab", node: null, mac: "de:ad:be:ef:00:01" }]);
  });

  it("shows why a machine may be stuck, once per cause", async () => {
    const fake = new FakeBackend();
    fake.bootRunning = true;
    const diagnosis = (at: number): SidecarMessage => ({
      type: "event",
      event: { at, mac: "52:54:00:00:00:01", node: "cp1", type: "diagnosis", diagnosis: "secure-boot", message: "loaded iPXE (snponly.efi) over TFTP 61 s ago but never came back as iPXE: Secure Boot is probably on" },
    });
    fake.bootMessages = [diagnosis(1_000), diagnosis(2_000)];
    await openApp(fake.install());
    click("tab-install");
    const shown = await screen.findAllByTestId("diagnosis-cp1");
    expect(shown).toHaveLength(1);
    expect(shown[0].textContent).toContain("cp1 loaded iPXE (snponly.efi) over TFTP 61 s ago");
    expect(shown[0].dataset.code).toBe("secure-boot");
  });
});
