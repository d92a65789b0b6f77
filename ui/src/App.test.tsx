import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { App } from "./App";
import type { Plan } from "./lib/ipc";
import { FakeBackend, resetMocks } from "./test/fakeBackend";

afterEach(() => {
  cleanup();
  resetMocks();
});

const click = (id: string) => fireEvent.click(screen.getByTestId(id));
const type = (id: string, value: string) => {
  const el = screen.getByTestId(id);
  fireEvent.focus(el);
  fireEvent.change(el, { target: { value } });
};

async function openApp(fake = new FakeBackend().install()) {
  render(<App />);
  await screen.findByTestId("node-cp1");
  return fake;
}

/** Waits until the debounced validation has answered for the current draft. */
const settle = () => act(() => new Promise((r) => setTimeout(r, 250)));

describe("App", () => {
  it("shows the stored plans and the first plan's nodes", async () => {
    await openApp();
    expect(screen.getByTestId("plan-demo-lab").className).toContain("active");
    expect(screen.getByTestId("node-worker1").getAttribute("data-severity")).toBe("");
    expect(screen.getByTestId("switch-rack-switch")).toBeTruthy();
    expect(screen.queryByTestId("dirty")).toBeNull();
    expect((screen.getByTestId("save") as HTMLButtonElement).disabled).toBe(true);
  });

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

  it("undoes and redoes edits, typing in one field being one step", async () => {
    await openApp();
    click("add-agent");
    await screen.findByTestId("node-node-1");
    type("field-name", "w");
    fireEvent.change(screen.getByTestId("field-name"), { target: { value: "wo" } });
    fireEvent.change(screen.getByTestId("field-name"), { target: { value: "wok" } });
    await screen.findByTestId("node-wok");
    click("undo");
    await screen.findByTestId("node-node-1");
    fireEvent.keyDown(window, { key: "z", ctrlKey: true });
    await waitFor(() => expect(screen.queryByTestId("node-node-1")).toBeNull());
    expect(screen.queryByTestId("dirty")).toBeNull();
    click("redo");
    await screen.findByTestId("node-node-1");
    fireEvent.keyDown(window, { key: "Z", ctrlKey: true, shiftKey: true });
    await screen.findByTestId("node-wok");
    fireEvent.keyDown(window, { key: "y", ctrlKey: true });
    expect(screen.getByTestId("dirty")).toBeTruthy();
  });

  it("asks before leaving a dirty plan and keeps the draft for later", async () => {
    const fake = new FakeBackend([
      (await import("./test/fakeBackend")).demoPlan(),
      { ...(await import("./test/fakeBackend")).demoPlan(), name: "other" },
    ]).install();
    await openApp(fake);
    click("add-switch");
    await screen.findByTestId("switch-switch-1");
    click("plan-other");
    await screen.findByTestId("unsaved-save");
    click("unsaved-cancel");
    expect(screen.getByTestId("plan-demo-lab").className).toContain("active");
    expect(screen.getByTestId("switch-switch-1")).toBeTruthy();

    click("plan-other");
    click(await screen.findByTestId("unsaved-discard").then((e) => e.getAttribute("data-testid")!));
    await waitFor(() => expect(screen.getByTestId("plan-other").className).toContain("active"));
    expect(fake.callsOf("save_plan")).toHaveLength(0);

    // A dirty draft left behind (as after a crash) is offered back.
    click("add-agent");
    await screen.findByTestId("node-node-1");
    await settle();
    click("plan-demo-lab");
    click(await screen.findByTestId("unsaved-save").then((e) => e.getAttribute("data-testid")!));
    await waitFor(() => expect(screen.getByTestId("plan-demo-lab").className).toContain("active"));
    expect((fake.callsOf("save_plan")[0].plan as Plan).name).toBe("other");
  });

  it("offers to restore a draft kept in localStorage", async () => {
    const { demoPlan } = await import("./test/fakeBackend");
    const draft = { ...demoPlan(), switches: [...demoPlan().switches!, { name: "spare" }] };
    localStorage.setItem("flatlab.draft.demo-lab", JSON.stringify({ plan: draft, revision: 1, savedAt: 0 }));
    new FakeBackend().install();
    render(<App />);
    click((await screen.findByTestId("modal-ok")).getAttribute("data-testid")!);
    await screen.findByTestId("switch-spare");
    expect(screen.getByTestId("dirty")).toBeTruthy();
  });

  it("selects the node and field a finding concerns", async () => {
    const { demoPlan } = await import("./test/fakeBackend");
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

  it("shows backend errors by message", async () => {
    new FakeBackend()
      .on("list_plans", () => {
        throw { code: "corrupt_database", message: "flatlab.db is damaged" };
      })
      .install();
    render(<App />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("flatlab.db is damaged");
    fireEvent.click(within(alert).getByLabelText("Dismiss"));
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
