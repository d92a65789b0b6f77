import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { App } from "./App";
import type { Plan, SidecarMessage } from "./lib/ipc";
import { demoPlan, FakeBackend, resetMocks, sendBootMessage, sendBootStopped, sendExportProgress } from "./test/fakeBackend";

afterEach(() => {
  cleanup();
  resetMocks();
});

const click = (id: string) => fireEvent.click(screen.getByTestId(id));

async function openApp(fake: FakeBackend = new FakeBackend().install()) {
  render(<App />);
  await screen.findByTestId("node-cp1");
  return fake;
}

const stage = (at: number, mac: string, node: string | null, s: string, detail: string | null = null): SidecarMessage => ({
  type: "event",
  event: { at, mac, node, type: "stage", stage: s as never, detail },
});

describe("palette", () => {
  it("adds a machine the boot server saw, with its MAC", async () => {
    const fake = await openApp();
    fake.on("discover", () => [
      { name: "box7.local", addresses: ["10.0.0.77"], mac: "aa:bb:cc:dd:ee:07", services: [], flatlab: null, firmware: null, sources: ["mdns"], plan: null, node: null },
      { name: "cp1", addresses: [], mac: "52:54:00:00:00:01", services: [], flatlab: null, firmware: null, sources: ["mdns"], plan: "demo-lab", node: "cp1" },
    ]);
    await act(() =>
      sendBootMessage({ type: "event", event: { at: 5, mac: "aa:bb:cc:dd:ee:01", node: null, type: "discovered", firmware: "uefi-x64", vendor_class: null } }),
    );
    const item = await screen.findByTestId("sighting-aa:bb:cc:dd:ee:01");
    expect(item.textContent).toContain("uefi-x64");
    click("scan-network");
    await screen.findByTestId("sighting-aa:bb:cc:dd:ee:07");
    expect(screen.queryByTestId("sighting-52:54:00:00:00:01")).toBeNull();
    expect(fake.callsOf("discover")).toEqual([{ seconds: 3 }]);

    click("sighting-add-aa:bb:cc:dd:ee:01");
    await screen.findByTestId("node-node-1");
    expect((screen.getByTestId("field-mac") as HTMLInputElement).value).toBe("aa:bb:cc:dd:ee:01");
    expect(screen.queryByTestId("sighting-aa:bb:cc:dd:ee:01")).toBeNull();
    click("sighting-add-aa:bb:cc:dd:ee:07");
    const box = await screen.findByTestId("node-box7");
    expect(box.textContent).toContain("aa:bb:cc:dd:ee:07");
    expect((screen.getByTestId("field-role") as HTMLSelectElement).value).toBe("agent");
  });
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
    await waitFor(() => expect(fake.callsOf("boot_arm")).toEqual([{ plan: "demo-lab", node: "cp1" }]));

    // The card on the canvas shows the install state too.
    click("tab-design");
    await waitFor(() => expect(screen.getByTestId("node-cp1").getAttribute("data-state")).toBe("kernel"));
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
});

describe("generate view", () => {
  it("renders highlighted files and the validators' verdicts", async () => {
    await openApp();
    click("tab-generate");
    await screen.findByTestId("preview-node-cp1");
    click("preview-node-worker1");
    click("preview-file-config.ign");
    const code = screen.getByTestId("preview-code");
    expect(code.querySelector(".tok-key")?.textContent).toBe('"ignition"');
    expect(code.querySelector(".tok-string")?.textContent).toBe('"3.3.0"');
    expect(screen.getByTestId("verdict-ignition-config").getAttribute("data-ok")).toBe("true");
    expect(screen.getByTestId("verdict-ignition-validate").getAttribute("data-ok")).toBe("false");
    expect(screen.getByTestId("verdict-ignition-validate").textContent).toContain("unused key");
    expect(screen.getByText("/etc/hostname")).toBeTruthy();
    expect(screen.getByText(/Secrets such as the K3s token are shown as stand-ins/)).toBeTruthy();
    click("preview-file-boot.ipxe");
    expect(screen.getByTestId("preview-code").querySelector(".tok-keyword")?.textContent).toBe("kernel");
    click("preview-file-plan.yaml");
    expect(screen.getByTestId("preview-code").textContent).toContain("name: demo-lab");
  });

  it("shows why an invalid plan cannot render, with its findings", async () => {
    const plan = demoPlan();
    plan.nodes[0] = { ...plan.nodes[0], mac: "" };
    await openApp(new FakeBackend([plan]).install());
    click("tab-generate");
    expect((await screen.findByTestId("preview-error")).textContent).toContain("errors");
    const finding = screen.getAllByTestId("finding").find((f) => f.dataset.path === "nodes[cp1].mac")!;
    fireEvent.click(finding);
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("field-mac")));
  });
});

describe("export view", () => {
  it("commits to a Git repository and shows the commit", async () => {
    const fake = new FakeBackend().on("pick_folder", () => "/home/ada/lab-config");
    await openApp(fake.install());
    click("tab-export");
    click("git-pick");
    await waitFor(() => expect((screen.getByTestId("git-repo") as HTMLInputElement).value).toBe("/home/ada/lab-config"));
    fireEvent.change(screen.getByTestId("git-branch"), { target: { value: "main" } });
    fireEvent.change(screen.getByTestId("git-recipients"), { target: { value: "age1abc\n\nage1def\n" } });
    click("git-export");
    await act(() => sendExportProgress(1, 3, "rendering"));
    const result = await screen.findByTestId("export-result");
    expect(result.textContent).toContain("Committed 0123456789ab");
    expect(result.textContent).toContain("demo-lab/plan.yaml");
    expect(fake.callsOf("export_git")).toEqual([
      { options: { name: "demo-lab", repo: "/home/ada/lab-config", branch: "main", push: null, encryptTo: ["age1abc", "age1def"] } },
    ]);

    fake.on("export_git", () => ({ commit: null, pushed: false, changed: [] }));
    click("git-export");
    await waitFor(() => expect(screen.getByTestId("export-result").textContent).toContain("unchanged: no new commit"));
  });

  it("writes to a USB drive", async () => {
    const fake = await openApp();
    click("tab-export");
    await waitFor(() => expect((screen.getByTestId("usb-drives") as HTMLSelectElement).value).toBe("/media/ada/STICK"));
    expect(screen.getByTestId("usb-drives").textContent).toContain("STICK (SanDisk Ultra) · /dev/sdb1 at /media/ada/STICK · 16.0 GiB vfat");
    const unmounted = screen.getByText(/BIG \(Kingston DataTraveler\)/) as HTMLOptionElement;
    expect(unmounted.textContent).toContain("not mounted");
    click("usb-export");
    expect((await screen.findByTestId("export-result")).textContent).toContain("/media/ada/STICK/flatlab/demo-lab");
    expect(fake.callsOf("export_usb")).toEqual([{ name: "demo-lab", mountpoint: "/media/ada/STICK" }]);

    // Safe eject after the write.
    click("usb-eject");
    await waitFor(() => expect(screen.getByTestId("export-result").textContent).toContain("powered off: you can unplug it"));
    expect(fake.callsOf("eject_drive")).toEqual([{ target: "/media/ada/STICK" }]);

    // An unmounted drive is mounted first.
    fireEvent.change(screen.getByTestId("usb-drives"), { target: { value: "unmounted:/dev/sdc1" } });
    click("usb-export");
    await waitFor(() => expect(screen.getByTestId("export-result").textContent).toContain("/media/ada/BIG/flatlab/demo-lab"));
    expect(fake.callsOf("mount_drive")).toEqual([{ device: "/dev/sdc1" }]);
  });
});

describe("plans sidebar", () => {
  it("renames, duplicates, reverts and deletes plans", async () => {
    const fake = await openApp();
    click("plan-rename");
    const input = await screen.findByTestId("modal-input");
    fireEvent.change(input, { target: { value: "home-lab" } });
    click("modal-ok");
    await waitFor(() => expect(screen.getByTestId("plan-home-lab").className).toContain("active"));
    expect(screen.queryByTestId("plan-demo-lab")).toBeNull();

    click("plan-duplicate");
    fireEvent.change(await screen.findByTestId("modal-input"), { target: { value: "copy" } });
    click("modal-ok");
    await waitFor(() => expect(screen.getByTestId("plan-copy").className).toContain("active"));

    click("plan-history");
    await screen.findByText("duplicated from home-lab");
    click("modal-cancel");
    await waitFor(() => expect(screen.queryByTestId("modal-cancel")).toBeNull());

    click("plan-home-lab");
    await waitFor(() => expect(screen.getByTestId("plan-home-lab").className).toContain("active"));
    click("plan-history");
    click((await screen.findByTestId("revert-1")).dataset.testid!);
    await waitFor(() => expect(fake.callsOf("revert_plan")).toEqual([{ name: "home-lab", revision: 1 }]));

    click("plan-delete");
    click((await screen.findByTestId("modal-ok")).dataset.testid!);
    await waitFor(() => expect(screen.queryByTestId("plan-home-lab")).toBeNull());
    await waitFor(() => expect(screen.getByTestId("plan-copy").className).toContain("active"));
  });

  it("says what to do when there are no plans", async () => {
    new FakeBackend([]).install();
    render(<App />);
    expect(await screen.findByText("Create a plan or import a plan file")).toBeTruthy();
  });

  it("asks before the window closes with unsaved changes", async () => {
    await openApp();
    click("add-agent");
    await screen.findByTestId("node-node-1");
    const { emit } = await import("@tauri-apps/api/event");
    await act(() => emit("tauri://close-requested", {}));
    expect(await screen.findByTestId("unsaved-cancel")).toBeTruthy();
    click("unsaved-cancel");
    await waitFor(() => expect(screen.queryByTestId("unsaved-cancel")).toBeNull());
    expect(screen.getByTestId("dirty")).toBeTruthy();
  });
});
