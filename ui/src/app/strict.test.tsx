import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { StrictMode } from "react";
import { App } from "../App";
import { demoPlan, FakeBackend, resetMocks, sendBootMessage } from "../test/fakeBackend";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("under StrictMode (as in main.tsx)", () => {
  it("opens the first plan once, offers a kept draft once, and hears boot messages once", async () => {
    const draft = { ...demoPlan(), switches: [...demoPlan().switches!, { name: "spare" }] };
    localStorage.setItem("flatlab.draft.demo-lab", JSON.stringify({ plan: draft, revision: 1, savedAt: 0 }));
    const fake = new FakeBackend().install();
    render(
      <StrictMode>
        <App />
      </StrictMode>,
    );
    fireEvent.click(await screen.findByTestId("modal-ok"));
    await screen.findByTestId("switch-spare");
    expect(screen.queryByTestId("modal-ok")).toBeNull();
    expect(fake.callsOf("show_plan")).toHaveLength(1);
    await act(() =>
      sendBootMessage({ type: "event", event: { at: 1, mac: "52:54:00:00:00:01", node: "cp1", type: "stage", stage: "dhcp", detail: null } }),
    );
    fireEvent.click(screen.getByTestId("tab-install"));
    const cp1 = await screen.findByTestId("machine-cp1");
    await waitFor(() => expect(cp1.getAttribute("data-stage")).toBe("dhcp"));
    expect(cp1.querySelectorAll(".stage-time")).toHaveLength(1);
  });
});
