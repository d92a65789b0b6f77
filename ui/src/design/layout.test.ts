import { describe, expect, it } from "vitest";
import type { Plan } from "../lib/ipc";
import { autoLayout } from "./layout";

describe("autoLayout", () => {
  it("puts switches above nodes without overlaps", async () => {
    const plan: Plan = {
      version: 1,
      name: "lab",
      os: { channel: "stable", version: "1.2.3", arch: "amd64" },
      kubernetes: { k3s_version: "v1.32.2+k3s1" },
      ssh_authorized_keys: [],
      switches: [{ name: "a" }, { name: "b" }],
      nodes: [
        { name: "n1", mac: "", install_disk: "/dev/sda", switch: "a" },
        { name: "n2", mac: "", install_disk: "/dev/sda", switch: "a" },
        { name: "n3", mac: "", install_disk: "/dev/sda", switch: "b" },
        { name: "n4", mac: "", install_disk: "/dev/sda" },
      ],
    };
    const layout = await autoLayout(plan);
    expect(layout.switches.size).toBe(2);
    expect(layout.nodes.size).toBe(4);
    const switchBottom = Math.max(...[...layout.switches.values()].map((p) => p.y));
    for (const p of layout.nodes.values()) expect(p.y).toBeGreaterThan(switchBottom);
    const spots = [...layout.nodes.values()].map((p) => `${p.x},${p.y}`);
    expect(new Set(spots).size).toBe(4);
  });
});
