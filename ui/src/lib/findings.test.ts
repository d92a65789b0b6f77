import { describe, expect, it } from "vitest";
import { findingsByNode, inspectorField, parseFindingPath, severityByKey } from "./findings";

describe("parseFindingPath", () => {
  it("splits node and switch paths", () => {
    expect(parseFindingPath("nodes[cp2].mac")).toEqual({ list: "nodes", key: "cp2", field: "mac" });
    expect(parseFindingPath("switches[rack-switch].name")).toEqual({ list: "switches", key: "rack-switch", field: "name" });
    expect(parseFindingPath("nodes[3]")).toEqual({ list: "nodes", key: "3", field: "" });
  });

  it("leaves plan-level paths as fields", () => {
    expect(parseFindingPath("network.subnet")).toEqual({ list: null, key: null, field: "network.subnet" });
    expect(parseFindingPath("nodes")).toEqual({ list: null, key: null, field: "nodes" });
  });
});

describe("findingsByNode", () => {
  it("groups node findings by key", () => {
    const grouped = findingsByNode([
      { severity: "error", path: "nodes[cp1].mac", message: "a" },
      { severity: "warning", path: "nodes[cp1].install_disk", message: "b" },
      { severity: "error", path: "network.gateway", message: "c" },
    ]);
    expect([...grouped.keys()]).toEqual(["cp1"]);
    expect(grouped.get("cp1")).toHaveLength(2);
  });
});

describe("inspectorField", () => {
  it("names the field a finding is shown under", () => {
    expect(inspectorField(parseFindingPath("nodes[cp1].mac"))).toBe("mac");
    expect(inspectorField(parseFindingPath("nodes[cp1].position.x"))).toBe("position");
    expect(inspectorField(parseFindingPath("network.dns[1]"))).toBe("network.dns");
    expect(inspectorField(parseFindingPath("ssh_authorized_keys[0]"))).toBe("ssh_authorized_keys");
    expect(inspectorField(parseFindingPath("kubernetes.api_endpoint"))).toBe("kubernetes.api_endpoint");
  });

  it("sums severities per node and switch", () => {
    const { nodes, switches } = severityByKey([
      { severity: "warning", path: "nodes[a].mac", message: "" },
      { severity: "error", path: "nodes[a].name", message: "" },
      { severity: "warning", path: "switches[s].name", message: "" },
    ]);
    expect(nodes.get("a")).toEqual({ severity: "error", count: 2 });
    expect(switches.get("s")).toEqual({ severity: "warning", count: 1 });
  });
});
