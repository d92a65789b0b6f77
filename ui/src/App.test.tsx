import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { App } from "./App";
import type { PlanView } from "./lib/ipc";

const view: PlanView = {
  name: "demo-lab",
  revision: 3,
  saved_at: 0,
  plan: {
    version: 1,
    name: "demo-lab",
    os: { channel: "stable", version: "4593.2.5", arch: "amd64" },
    kubernetes: { k3s_version: "v1.32.2+k3s1", disable: [] },
    network: { subnet: "10.0.0.0/24", gateway: "10.0.0.1", dns: [] },
    ssh_authorized_keys: [],
    switches: [{ name: "rack-switch", position: { x: 300, y: 20 } }],
    nodes: [
      { name: "cp1", mac: "52:54:00:00:00:01", role: "server", install_disk: "/dev/sda", switch: "rack-switch" },
      { name: "cp2", mac: "nope", role: "server", install_disk: "/dev/sda" },
    ],
  },
  findings: [{ severity: "error", path: "nodes[cp2].mac", message: "not a MAC" }],
};

beforeEach(() => {
  mockIPC((cmd) => {
    switch (cmd) {
      case "app_info":
        return { version: "0.1.0", db_path: "/tmp/flatlab.db" };
      case "list_plans":
        return [{ name: "demo-lab", revision: 3, created_at: 0, updated_at: 0, nodes: 2, errors: 1, warnings: 0 }];
      case "show_plan":
        return view;
      default:
        throw { code: "internal", message: `unexpected ${cmd}` };
    }
  });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("App", () => {
  it("shows the stored plans and the first plan's nodes", async () => {
    render(<App />);
    expect(await screen.findByTestId("plan-demo-lab")).toBeTruthy();
    expect(await screen.findByTestId("node-cp1")).toBeTruthy();
    expect(screen.getByTestId("node-cp2").className).toContain("error");
  });

  it("selects the node a finding concerns", async () => {
    render(<App />);
    const finding = await screen.findByText("not a MAC");
    fireEvent.click(finding);
    await waitFor(() => expect(screen.getByTestId("node-cp2").className).toContain("highlighted"));
    expect(screen.getByTestId("node-cp1").className).not.toContain("highlighted");
  });

  it("shows backend errors by message", async () => {
    clearMocks();
    mockIPC((cmd) => {
      if (cmd === "list_plans") throw { code: "corrupt_database", message: "flatlab.db is damaged" };
      if (cmd === "app_info") return { version: "0.1.0", db_path: "/tmp/x" };
      return null;
    });
    render(<App />);
    expect((await screen.findByRole("alert")).textContent).toContain("flatlab.db is damaged");
  });
});
