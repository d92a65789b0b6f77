import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { emit } from "@tauri-apps/api/event";
import { App } from "../App";
import type { Plan } from "../lib/ipc";
import { demoPlan, FakeBackend, resetMocks } from "../test/fakeBackend";
import { click, openApp, settle, type } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("plan editor", () => {
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
    const fake = new FakeBackend([demoPlan(), { ...demoPlan(), name: "other" }]).install();
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
    const draft = { ...demoPlan(), switches: [...demoPlan().switches!, { name: "spare" }] };
    localStorage.setItem("flatlab.draft.demo-lab", JSON.stringify({ plan: draft, revision: 1, savedAt: 0 }));
    new FakeBackend().install();
    render(<App />);
    click((await screen.findByTestId("modal-ok")).getAttribute("data-testid")!);
    await screen.findByTestId("switch-spare");
    expect(screen.getByTestId("dirty")).toBeTruthy();
  });

  it("asks before the window closes with unsaved changes", async () => {
    await openApp();
    click("add-agent");
    await screen.findByTestId("node-node-1");
    await act(() => emit("tauri://close-requested", {}));
    expect(await screen.findByTestId("unsaved-cancel")).toBeTruthy();
    click("unsaved-cancel");
    await waitFor(() => expect(screen.queryByTestId("unsaved-cancel")).toBeNull());
    expect(screen.getByTestId("dirty")).toBeTruthy();
  });
});
