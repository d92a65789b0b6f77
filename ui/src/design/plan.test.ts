import { describe, expect, it } from "vitest";
import type { Plan } from "../lib/ipc";
import {
  addNode,
  addSwitch,
  hostnameToNodeName,
  isLabel,
  moveItems,
  removeItems,
  setClusterField,
  uniqueName,
  updateNode,
  updateSwitch,
} from "./plan";

const base: Plan = {
  version: 1,
  name: "lab",
  os: { channel: "stable", version: "4593.2.5", arch: "amd64" },
  kubernetes: { k3s_version: "v1.32.2+k3s1" },
  ssh_authorized_keys: [],
  switches: [{ name: "sw", position: { x: 40, y: 40 } }],
  nodes: [
    { name: "cp1", mac: "52:54:00:00:00:01", role: "server", install_disk: "/dev/sda", switch: "sw", position: { x: 40, y: 200 } },
  ],
};

describe("plan edits", () => {
  it("names new items uniquely", () => {
    expect(uniqueName("node", ["node-1", "node-3"])).toBe("node-2");
    let plan = base;
    for (let i = 0; i < 3; i++) plan = addNode(plan, "server").plan;
    plan = addNode(plan, "agent").plan;
    expect(plan.nodes.map((n) => n.name)).toEqual(["cp1", "node-1", "node-2", "node-3", "node-4"]);
    expect(plan.nodes[4]).toMatchObject({ role: "agent", mac: "", install_disk: "/dev/sda" });
    expect(addSwitch(plan).plan.switches?.map((s) => s.name)).toEqual(["sw", "switch-1"]);
  });

  it("puts new cards in free space", () => {
    let plan = base;
    for (let i = 0; i < 12; i++) plan = addNode(plan, "agent").plan;
    const spots = plan.nodes.map((n) => `${n.position?.x},${n.position?.y}`);
    expect(new Set(spots).size).toBe(spots.length);
  });

  it("shares untouched nodes", () => {
    const plan = addNode(base, "agent").plan;
    const edited = updateNode(plan, 1, { mac: "aa:bb:cc:dd:ee:ff" });
    expect(edited.nodes[0]).toBe(plan.nodes[0]);
    expect(edited.nodes[1].mac).toBe("aa:bb:cc:dd:ee:ff");
    expect(plan.nodes[1].mac).toBe("");
  });

  it("removes optional fields set empty", () => {
    const edited = updateNode(base, 0, { switch: "", address: "" });
    expect("switch" in edited.nodes[0]).toBe(false);
    expect("address" in edited.nodes[0]).toBe(false);
  });

  it("renames a switch with its nodes and clears references to a removed one", () => {
    const renamed = updateSwitch(base, 0, { name: "rack" });
    expect(renamed.nodes[0].switch).toBe("rack");
    const removed = removeItems(renamed, [], [0]);
    expect(removed.switches).toEqual([]);
    expect(removed.nodes[0].switch).toBeUndefined();
    expect(removeItems(base, [0], []).nodes).toEqual([]);
  });

  it("moves items in one edit", () => {
    const moved = moveItems(base, new Map([[0, { x: 10.4, y: 20.6 }]]), new Map([[0, { x: 1, y: 2 }]]));
    expect(moved.nodes[0].position).toEqual({ x: 10, y: 21 });
    expect(moved.switches?.[0].position).toEqual({ x: 1, y: 2 });
    expect(moveItems(base, new Map([[0, { x: NaN, y: 1 }]]), new Map()).nodes[0].position).toEqual({ x: 40, y: 200 });
  });

  it("sets cluster fields and drops empty optional ones", () => {
    let plan = setClusterField(base, "kubernetes.api_endpoint", "10.0.0.11");
    expect(plan.kubernetes.api_endpoint).toBe("10.0.0.11");
    plan = setClusterField(plan, "kubernetes.api_endpoint", "");
    expect("api_endpoint" in plan.kubernetes).toBe(false);
    plan = setClusterField(plan, "network.subnet", "10.0.0.0/24");
    expect(plan.network).toEqual({ subnet: "10.0.0.0/24" });
    expect(setClusterField(plan, "network.subnet", "").network).toBeUndefined();
    expect(setClusterField(plan, "os.version", "").os.version).toBe("");
  });

  it("accepts labels and host names", () => {
    expect(isLabel("cp1")).toBe(true);
    expect(isLabel("-x")).toBe(false);
    expect(hostnameToNodeName("Worker-3.local.")).toBe("worker-3");
    expect(hostnameToNodeName("bad_name")).toBeNull();
    expect(hostnameToNodeName(null)).toBeNull();
  });
});
