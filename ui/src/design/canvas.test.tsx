import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { App } from "../App";
import type { Plan } from "../lib/ipc";
import { demoPlan, FakeBackend, resetMocks, sendBootMessage } from "../test/fakeBackend";
import { click } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("canvas", () => {
  it("selects a card by click and deletes the selection with the Delete key", async () => {
    const fake = new FakeBackend().install();
    render(<App />);
    await screen.findByTestId("node-cp1");
    click("switch-rack-switch");
    await waitFor(() => expect(screen.getByTestId("switch-rack-switch").className).toContain("selected"));
    expect((screen.getByTestId("field-name") as HTMLInputElement).value).toBe("rack-switch");
    fireEvent.keyDown(document.body, { key: "Delete", code: "Delete" });
    await waitFor(() => expect(screen.queryByTestId("switch-rack-switch")).toBeNull());
    click("save");
    await waitFor(() => expect(fake.callsOf("save_plan")).toHaveLength(1));
    const plan = fake.callsOf("save_plan")[0].plan as Plan;
    expect(plan.switches).toEqual([]);
    expect(plan.nodes.map((n) => n.switch)).toEqual([undefined, undefined]);
  });

  it("multi-selects with Shift and removes the selection from the inspector", async () => {
    new FakeBackend().install();
    render(<App />);
    await screen.findByTestId("node-cp1");
    click("node-cp1");
    fireEvent.keyDown(document, { key: "Shift", code: "ShiftLeft" });
    click("node-worker1");
    fireEvent.keyUp(document, { key: "Shift", code: "ShiftLeft" });
    await waitFor(() => expect(screen.getByTestId("delete-selected").textContent).toBe("Remove 2 items"));
    click("delete-selected");
    await waitFor(() => expect(screen.queryByTestId("node-cp1")).toBeNull());
    expect(screen.queryByTestId("node-worker1")).toBeNull();
    expect(screen.getByTestId("field-os.version")).toBeTruthy();
    click("undo");
    await screen.findByTestId("node-worker1");
  });

  it("deletes an edge to unhang a node from its switch", async () => {
    const fake = new FakeBackend().install();
    const { container } = render(<App />);
    await screen.findByTestId("node-cp1");
    const edge = await waitFor(() => {
      const e = container.querySelector('.react-flow__edge[data-id="e1"]');
      if (!e) throw new Error("no edge yet");
      return e;
    });
    fireEvent.click(edge);
    await waitFor(() => expect(container.querySelector('.react-flow__edge[data-id="e1"]')?.classList.contains("selected")).toBe(true));
    fireEvent.keyDown(document.body, { key: "Delete", code: "Delete" });
    await waitFor(() => expect(container.querySelector('.react-flow__edge[data-id="e1"]')).toBeNull());
    click("save");
    await waitFor(() => expect(fake.callsOf("save_plan")).toHaveLength(1));
    const plan = fake.callsOf("save_plan")[0].plan as Plan;
    expect(plan.nodes.map((n) => n.switch)).toEqual(["rack-switch", undefined]);
  });

  it("adds a palette machine dropped on the canvas where it was dropped", async () => {
    new FakeBackend().install();
    render(<App />);
    await screen.findByTestId("node-cp1");
    await act(() =>
      sendBootMessage({ type: "event", event: { at: 1, mac: "aa:bb:cc:00:00:09", node: null, type: "discovered", firmware: null, vendor_class: null } }),
    );
    const item = await screen.findByTestId("sighting-aa:bb:cc:00:00:09");
    const data = new Map<string, string>();
    const dataTransfer = {
      setData: (k: string, v: string) => data.set(k, v),
      getData: (k: string) => data.get(k) ?? "",
      get types() {
        return [...data.keys()];
      },
      effectAllowed: "",
      dropEffect: "",
    };
    fireEvent.dragStart(item, { dataTransfer });
    const canvas = screen.getByTestId("canvas");
    fireEvent.dragOver(canvas, { dataTransfer, clientX: 500, clientY: 400 });
    fireEvent.drop(canvas, { dataTransfer, clientX: 500, clientY: 400 });
    const node = await screen.findByTestId("node-node-1");
    expect(node.textContent).toContain("aa:bb:cc:00:00:09");
    expect((screen.getByTestId("field-mac") as HTMLInputElement).value).toBe("aa:bb:cc:00:00:09");
  });

  it("connects a node to a switch from the inspector and renames the switch with its nodes", async () => {
    const fake = new FakeBackend().install();
    render(<App />);
    await screen.findByTestId("node-cp1");
    click("add-switch");
    await screen.findByTestId("switch-switch-1");
    fireEvent.focus(screen.getByTestId("field-name"));
    fireEvent.change(screen.getByTestId("field-name"), { target: { value: "top" } });
    await screen.findByTestId("switch-top");
    click("node-cp1");
    await waitFor(() => expect((screen.getByTestId("field-name") as HTMLInputElement).value).toBe("cp1"));
    fireEvent.change(screen.getByTestId("field-switch"), { target: { value: "top" } });
    fireEvent.change(screen.getByTestId("field-switch"), { target: { value: "" } });
    fireEvent.change(screen.getByTestId("field-switch"), { target: { value: "top" } });
    fireEvent.change(screen.getByTestId("field-address"), { target: { value: "" } });
    expect(screen.getByTestId("node-cp1").textContent).toContain("DHCP");
    fireEvent.keyDown(window, { key: "s", ctrlKey: true });
    await waitFor(() => expect(fake.callsOf("save_plan")).toHaveLength(1));
    const plan = fake.callsOf("save_plan")[0].plan as Plan;
    expect(plan.nodes[0].switch).toBe("top");
    expect("address" in plan.nodes[0]).toBe(false);
    expect(plan.switches?.map((s) => s.name)).toEqual(["rack-switch", "top"]);
  });

  it("lays out 200 nodes and keeps editing responsive", async () => {
    const plan = demoPlan();
    plan.nodes = Array.from({ length: 200 }, (_, i) => ({
      name: `n${i}`,
      mac: `52:54:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
      role: i < 3 ? "server" : "agent",
      install_disk: "/dev/sda",
      switch: "rack-switch",
      position: { x: (i % 20) * 200, y: 200 + Math.floor(i / 20) * 120 },
    }));
    new FakeBackend([plan]).install();
    render(<App />);
    await screen.findByTestId("canvas");
    click("add-agent");
    await waitFor(() => expect(screen.getByTestId("field-name")).toBeTruthy());
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) {
      act(() => {
        fireEvent.change(screen.getByTestId("field-mac"), { target: { value: `aa:bb:cc:dd:ee:${i}` } });
      });
    }
    expect(performance.now() - t0).toBeLessThan(3000);
    click("auto-layout");
    await waitFor(() => expect(screen.getByTestId("auto-layout").textContent).toBe("Auto-layout"), { timeout: 10000 });
    expect(screen.getByTestId("dirty")).toBeTruthy();
  }, 20000);
});
