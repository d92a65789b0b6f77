import { describe, expect, it } from "vitest";
import type { SidecarLine, SidecarMessage } from "../lib/ipc";
import { failure, foldMessages, machineForNode, mergeSightings, nodeStage, sightingFromBoot, sightingsFromMessages, startCursor, strangers, unseen } from "./boot";

const stage = (at: number, mac: string, node: string | null, s: string, detail: string | null = null): SidecarMessage => ({
  type: "event",
  event: { at, mac, node, type: "stage", stage: s as never, detail },
});

describe("boot message folding", () => {
  it("builds a timeline per machine", () => {
    const state = foldMessages([
      { type: "ready", plan: "lab", interface: "eth0", http: "http://10.0.0.2:8080", tftp: null, admin: "x", warnings: [] },
      { type: "armed", node: "cp1" },
      stage(1, "52:54:00:00:00:01", "cp1", "dhcp"),
      stage(2, "52-54-00-00-00-01", "cp1", "ipxe"),
      stage(3, "52:54:00:00:00:01", "cp1", "kernel"),
      { type: "event", event: { at: 4, mac: "52:54:00:00:00:01", node: "cp1", type: "progress", file: "vmlinuz", sent: 50, total: 100 } },
      stage(5, "52:54:00:00:00:02", "cp2", "dhcp"),
      stage(6, "52:54:00:00:00:02", "cp2", "failed", "no disk /dev/sda"),
      { type: "event", event: { at: 7, mac: "aa:bb:cc:dd:ee:ff", node: null, type: "discovered", firmware: "uefi-x64", vendor_class: null } },
    ]);
    const cp1 = machineForNode(state, { name: "cp1", mac: "52:54:00:00:00:01" });
    expect(cp1?.stage).toBe("kernel");
    expect(cp1?.history.map((h) => h.stage)).toEqual(["dhcp", "ipxe", "kernel"]);
    expect(cp1?.progress).toEqual({ file: "vmlinuz", sent: 50, total: 100 });
    const cp2 = machineForNode(state, { name: "cp2", mac: "52:54:00:00:00:02" })!;
    expect(failure(cp2)).toBe("no disk /dev/sda");
    expect(nodeStage(state, { name: "cp3", mac: "" })).toBeNull();
    expect(state.armed).toEqual(["cp1"]);
    const plan = { nodes: [{ name: "cp1", mac: "52:54:00:00:00:01" }, { name: "cp2", mac: "52:54:00:00:00:02" }] };
    expect(strangers(state, plan).map((m) => [m.mac, m.firmware])).toEqual([["aa:bb:cc:dd:ee:ff", "uefi-x64"]]);
  });

  it("keeps alerts about a machine on it and alerts about no machine apart", () => {
    const state = foldMessages([
      stage(1, "52:54:00:00:00:01", "cp1", "ipxe"),
      { type: "event", event: { at: 2, mac: "52:54:00:00:00:01", node: "cp1", type: "alert", alert: "repeated-fetch", message: "10.0.0.66 asked for cp1's install config a second time", from: "10.0.0.66" } },
      { type: "event", event: { at: 3, mac: "", node: null, type: "alert", alert: "wrong-tokens", message: "10.0.0.66 sent more than 20 wrong tokens", from: "10.0.0.66" } },
    ]);
    const cp1 = machineForNode(state, { name: "cp1", mac: "52:54:00:00:00:01" })!;
    expect(cp1.notices.map((n) => [n.code, n.from])).toEqual([["repeated-fetch", "10.0.0.66"]]);
    expect(state.alerts.map((a) => a.code)).toEqual(["wrong-tokens"]);
    expect(Object.keys(state.machines)).toEqual(["52:54:00:00:00:01"]);
  });

  it("takes machine snapshots", () => {
    const state = foldMessages([
      {
        type: "machines",
        machines: [
          { mac: "52:54:00:00:00:01", node: "cp1", stage: "installed", ip: "10.0.0.11", firmware: "bios", vendor_class: null, inspecting: false, history: [{ kind: "stage", stage: "dhcp", at: 1 }, { kind: "stage", stage: "installed", at: 9 }] },
        ],
      },
    ]);
    expect(nodeStage(state, { name: "cp1", mac: "52:54:00:00:00:01" })).toBe("installed");
    expect(state.machines["52:54:00:00:00:01"].ip).toBe("10.0.0.11");
  });
});

describe("sightings", () => {
  it("merges by MAC", () => {
    const a = sightingFromBoot("AA-BB-CC-DD-EE-FF", "bios");
    const b = { ...sightingFromBoot("aa:bb:cc:dd:ee:ff", null), name: "box", sources: ["mdns"], addresses: ["10.0.0.9"] };
    const merged = mergeSightings([a], [b, sightingFromBoot("11:22:33:44:55:66", null)]);
    expect(merged).toHaveLength(2);
    expect(merged[0]).toMatchObject({ name: "box", firmware: "bios", sources: ["network-boot", "mdns"], addresses: ["10.0.0.9"] });
    expect(
      sightingsFromMessages([{ type: "event", event: { at: 1, mac: "11:22:33:44:55:66", node: null, type: "discovered", firmware: "uefi-x64", vendor_class: null } }]),
    ).toHaveLength(1);
  });
});

describe("unseen", () => {
  const line = (run: string, seq: number): SidecarLine => ({ run, seq, type: "armed", node: `n${seq}` });
  const heard = (lines: SidecarLine[]) => lines.map((l) => `${l.run}#${l.seq}`);

  it("drops lines already heard", () => {
    const [first, cursor] = unseen(startCursor, [line("a", 1), line("a", 2)]);
    expect(heard(first)).toEqual(["a#1", "a#2"]);
    expect(cursor).toEqual({ run: "a", seq: 2, retired: [] });
    const [again, after] = unseen(cursor, [line("a", 2), line("a", 1), line("a", 3), line("a", 3)]);
    expect(heard(again)).toEqual(["a#3"]);
    expect(after).toEqual({ run: "a", seq: 3, retired: [] });
  });

  it("starts over when the boot server was restarted", () => {
    const [, cursor] = unseen(startCursor, [line("a", 1), line("a", 2), line("a", 3)]);
    const [fresh, after] = unseen(cursor, [line("b", 1), line("b", 2), line("b", 2)]);
    expect(heard(fresh)).toEqual(["b#1", "b#2"]);
    expect(after).toEqual({ run: "b", seq: 2, retired: ["a"] });
  });

  it("drops a late line of a run that has ended", () => {
    const [, cursor] = unseen(startCursor, [line("a", 1), line("b", 1)]);
    const [late, after] = unseen(cursor, [line("a", 2), line("b", 1), line("b", 2)]);
    expect(heard(late)).toEqual(["b#2"]);
    expect(after).toEqual({ run: "b", seq: 2, retired: ["a"] });
  });

  it("applies lines that arrived while the status was loading once", () => {
    // The status holds lines 1 and 2; lines 2 and 3 came live before it arrived.
    const [fromStatus, cursor] = unseen(startCursor, [line("a", 1), line("a", 2)]);
    const [buffered, after] = unseen(cursor, [line("a", 2), line("a", 3)]);
    expect(heard([...fromStatus, ...buffered])).toEqual(["a#1", "a#2", "a#3"]);
    expect(after).toEqual({ run: "a", seq: 3, retired: [] });
  });
});
