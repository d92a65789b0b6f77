import { describe, expect, it } from "vitest";
import type { Finding } from "../lib/ipc";
import { findingsByField, findingsByNode, inspectorField, severityByIndex } from "./findings";

const node = (index: number, field: string, severity: Finding["severity"] = "error", path = `nodes[${index}].${field}`): Finding => ({
  severity,
  path,
  message: "m",
  target: { kind: "node", index, field },
});
const plan = (field: string, severity: Finding["severity"] = "error"): Finding => ({ severity, path: field, message: "m", target: { kind: "plan", field } });

describe("findingsByNode", () => {
  it("groups node findings by index, whatever the path says", () => {
    // A node named `3` and the unnamed node at index 3 share the path `nodes[3].mac`.
    const grouped = findingsByNode([node(0, "mac", "error", "nodes[3].mac"), node(3, "mac"), node(0, "install_disk", "warning"), plan("network.gateway")]);
    expect([...grouped.keys()]).toEqual([0, 3]);
    expect(grouped.get(0)).toHaveLength(2);
  });
});

describe("inspectorField", () => {
  it("names the field a finding is shown under", () => {
    expect(inspectorField({ kind: "node", index: 0, field: "mac" })).toBe("mac");
    expect(inspectorField({ kind: "node", index: 0, field: "position.x" })).toBe("position");
    expect(inspectorField({ kind: "plan", field: "network.dns[1]" })).toBe("network.dns");
    expect(inspectorField({ kind: "plan", field: "ssh_authorized_keys[0]" })).toBe("ssh_authorized_keys");
    expect(inspectorField({ kind: "plan", field: "kubernetes.api_endpoint" })).toBe("kubernetes.api_endpoint");
  });

  it("groups one item's findings by field", () => {
    const all = [node(1, "mac"), node(1, "mac"), node(2, "mac"), plan("network.dns[0]")];
    expect(findingsByField(all, { kind: "node", index: 1 }).get("mac")).toHaveLength(2);
    expect(findingsByField(all, { kind: "plan" }).get("network.dns")).toHaveLength(1);
  });

  it("sums severities per node and switch", () => {
    const { nodes, switches } = severityByIndex([
      node(0, "mac", "warning"),
      node(0, "name"),
      { severity: "warning", path: "switches[s].name", message: "", target: { kind: "switch", index: 0, field: "name" } },
    ]);
    expect(nodes.get(0)).toEqual({ severity: "error", count: 2 });
    expect(switches.get(0)).toEqual({ severity: "warning", count: 1 });
  });
});
