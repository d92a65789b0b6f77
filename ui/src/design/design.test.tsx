import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import type { Plan } from "../lib/ipc";
import { demoPlan, FakeBackend, resetMocks, sendBootMessage } from "../test/fakeBackend";
import { click, openApp, settle, type } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("design", () => {
  it("creates a plan, builds a cluster, fixes its errors and saves it", async () => {
    const fake = await openApp();
    click("plan-new");
    type("modal-input", "garage");
    click("modal-ok");
    await waitFor(() => expect(screen.getByTestId("plan-garage").className).toContain("active"));
    for (let i = 0; i < 3; i++) click("add-server");
    for (let i = 0; i < 2; i++) click("add-agent");
    click("add-switch");
    await screen.findByTestId("node-node-5");
    expect(screen.getByTestId("switch-switch-1")).toBeTruthy();
    expect(screen.getByTestId("dirty")).toBeTruthy();
    await settle();
    await waitFor(() => expect(screen.getByTestId("node-node-1").getAttribute("data-severity")).toBe("error"));
    const macErrors = () => screen.queryAllByTestId("finding").filter((f) => f.getAttribute("data-path")?.endsWith(".mac"));
    expect(macErrors()).toHaveLength(5);

    // Fill in every MAC through the inspector, and hang every node off the switch.
    for (let i = 1; i <= 5; i++) {
      fireEvent.click(macErrors()[0]);
      await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("field-mac")));
      expect(screen.getByTestId("field-error-mac").textContent).toContain("missing");
      type("field-mac", `52:54:00:00:01:0${i}`);
      fireEvent.change(screen.getByTestId("field-switch"), { target: { value: "switch-1" } });
      await settle();
    }
    expect(macErrors()).toHaveLength(0);
    expect(screen.getByTestId("node-node-3").getAttribute("data-severity")).toBe("");

    click("save");
    await waitFor(() => expect(screen.queryByTestId("dirty")).toBeNull());
    const saved = fake.callsOf("save_plan").at(-1)!;
    const plan = saved.plan as Plan;
    expect(saved.message).toBe("edited in the app");
    expect(plan.name).toBe("garage");
    expect(plan.nodes.map((n) => [n.name, n.role, n.mac, n.switch, n.install_disk])).toEqual([
      ["node-1", "server", "52:54:00:00:01:01", "switch-1", "/dev/sda"],
      ["node-2", "server", "52:54:00:00:01:02", "switch-1", "/dev/sda"],
      ["node-3", "server", "52:54:00:00:01:03", "switch-1", "/dev/sda"],
      ["node-4", "agent", "52:54:00:00:01:04", "switch-1", "/dev/sda"],
      ["node-5", "agent", "52:54:00:00:01:05", "switch-1", "/dev/sda"],
    ]);
    expect(plan.switches?.map((s) => s.name)).toEqual(["switch-1"]);
    expect(screen.getByTestId("revision").textContent).toContain("2");
  });

  it("shows the hardware a machine reported and installs to the disk chosen from it", async () => {
    const fake = new FakeBackend();
    fake.inventories = [
      {
        mac: "52:54:00:00:00:01",
        node: "cp1",
        at: 1_700_000_000_000,
        inventory: {
          firmware: "uefi",
          vendor: "Intel(R) Client Systems",
          product: "NUC8i5BEH",
          cpu_model: "Intel(R) Core(TM) i5-8259U CPU @ 2.30GHz",
          cpus: 8,
          memory_bytes: 16 * 1024 ** 3,
          nics: [{ name: "eno1", mac: "52:54:00:00:00:01", driver: "e1000e", speed_mbps: 1000 }],
          disks: [
            {
              name: "nvme0n1",
              by_id: ["/dev/disk/by-id/nvme-eui.0025388b91b0a1c2", "/dev/disk/by-id/nvme-Samsung_SSD_970_EVO_500GB_S466NX0K123456"],
              size_bytes: 500_107_862_016,
              model: "Samsung SSD 970 EVO 500GB",
              serial: "S466NX0K123456",
              rotational: false,
              removable: false,
              partitions: [{ name: "nvme0n1p1", size_bytes: 500_000_000_000, fstype: "ntfs", label: "Windows" }],
            },
            { name: "sda", by_id: ["/dev/disk/by-id/usb-SanDisk_Ultra-0:0"], size_bytes: 32_000_000_000, model: "Ultra", serial: null, rotational: false, removable: true, partitions: [] },
          ],
        },
        suggested_install_disk: "/dev/disk/by-id/nvme-Samsung_SSD_970_EVO_500GB_S466NX0K123456",
        warnings: ["this machine has no disk /dev/sda"],
      },
    ];
    await openApp(fake.install());
    fireEvent.click(screen.getByTestId("node-cp1"));
    const hardware = await screen.findByTestId("hardware");
    expect(hardware.textContent).toContain("Intel(R) Client Systems NUC8i5BEH, UEFI");
    expect(hardware.textContent).toContain("17 GB memory");
    expect(screen.getByTestId("disk-nvme0n1").textContent).toContain("Samsung SSD 970 EVO 500GB · 500 GB · 1 partition · suggested");
    expect(hardware.textContent).toContain("this machine has no disk /dev/sda");
    fireEvent.click(screen.getByTestId("disk-nvme0n1").querySelector("button")!);
    await waitFor(() =>
      expect((screen.getByTestId("field-install_disk") as HTMLInputElement).value).toBe(
        "/dev/disk/by-id/nvme-Samsung_SSD_970_EVO_500GB_S466NX0K123456",
      ),
    );
    expect(screen.getByTestId("disk-nvme0n1").textContent).toContain("install disk");
    // A machine that has reported nothing says when it will.
    fireEvent.click(screen.getByTestId("node-worker1"));
    await waitFor(() => expect(screen.getByTestId("hardware").textContent).toContain("Not reported yet"));
  });

  it("selects the node and field a finding concerns", async () => {
    const plan = demoPlan();
    plan.nodes[1] = { ...plan.nodes[1], mac: "nope" };
    await openApp(new FakeBackend([plan]).install());
    await waitFor(() => expect(screen.getByTestId("node-worker1").getAttribute("data-severity")).toBe("error"));
    const finding = screen.getAllByTestId("finding").find((f) => f.getAttribute("data-path") === "nodes[worker1].mac")!;
    expect(finding.getAttribute("data-severity")).toBe("error");
    fireEvent.click(finding);
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("field-mac")));
    expect((screen.getByTestId("field-name") as HTMLInputElement).value).toBe("worker1");
    expect(screen.getByTestId("field-error-mac").textContent).toContain("not a MAC");
    expect(screen.getByTestId("node-worker1").className).toContain("selected");
  });

  it("edits cluster settings with nothing selected", async () => {
    await openApp();
    expect((screen.getByTestId("field-os.channel") as HTMLSelectElement).value).toBe("stable");
    fireEvent.change(screen.getByTestId("field-os.channel"), { target: { value: "beta" } });
    type("field-kubernetes.api_endpoint", "");
    fireEvent.click(screen.getByText("Add from ~/.ssh"));
    fireEvent.click(await screen.findByTestId("ssh-key-add-id_ed25519.pub"));
    await waitFor(() => expect((screen.getByTestId("field-ssh_authorized_keys") as HTMLTextAreaElement).value).toContain("ada@laptop"));
    expect(screen.getByTestId("dirty")).toBeTruthy();
  });
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
