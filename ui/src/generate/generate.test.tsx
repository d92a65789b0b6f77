import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { demoPlan, FakeBackend, resetMocks } from "../test/fakeBackend";
import { click, openApp } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
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
