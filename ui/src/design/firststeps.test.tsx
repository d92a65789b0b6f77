import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import { App } from "../App";
import { demoPlan, FakeBackend, resetMocks } from "../test/fakeBackend";
import { click } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("an empty plan", () => {
  it("shows the steps in order with what is done and what is next", async () => {
    const fake = new FakeBackend([{ ...demoPlan(), name: "empty", nodes: [], switches: [] }]);
    fake.mirror = { ...fake.mirror, releases: [], k3s: [] };
    fake.install();
    render(<App />);
    const steps = await screen.findByTestId("first-steps");
    expect(steps).toBeTruthy();
    expect(screen.getByTestId("step-network").dataset.state).toBe("done");
    expect(screen.getByTestId("step-network").textContent).toContain("10.0.0.0/24");
    expect(screen.getByTestId("step-machines").dataset.state).toBe("next");
    await waitFor(() => expect(screen.getByTestId("step-images").dataset.state).toBe("todo"));
    click("first-scan");
    await waitFor(() => expect(fake.callsOf("discover")).toHaveLength(1));
    // Adding a server ends the list: the canvas is the plan's now.
    click("first-add");
    await waitFor(() => expect(screen.queryByTestId("first-steps")).toBeNull());
  });

  it("leads to the Images view", async () => {
    const fake = new FakeBackend([{ ...demoPlan(), name: "empty", nodes: [], switches: [] }]);
    fake.mirror = { ...fake.mirror, releases: [], k3s: [] };
    fake.install();
    render(<App />);
    await screen.findByTestId("first-steps");
    click((await screen.findByText("Open Images")).dataset.testid!);
    await screen.findByTestId("need-flatcar");
  });
});
