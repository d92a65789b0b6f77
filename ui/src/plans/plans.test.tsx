import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { App } from "../App";
import { FakeBackend, resetMocks } from "../test/fakeBackend";
import { click, openApp } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("plans sidebar", () => {
  it("shows the stored plans and the first plan's nodes", async () => {
    await openApp();
    expect(screen.getByTestId("plan-demo-lab").className).toContain("active");
    expect(screen.getByTestId("node-worker1").getAttribute("data-severity")).toBe("");
    expect(screen.getByTestId("switch-rack-switch")).toBeTruthy();
    expect(screen.queryByTestId("dirty")).toBeNull();
    expect((screen.getByTestId("save") as HTMLButtonElement).disabled).toBe(true);
  });

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
});
