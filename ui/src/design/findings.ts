import type { Finding, Target } from "../lib/ipc";

/** The inspector field a target belongs to: `mac` for a node's `mac`, `network.dns` for `network.dns[1]`. */
export function inspectorField(target: Target): string {
  if (target.kind !== "plan") return target.field.split(/[.[]/)[0];
  return target.field.replace(/\[\d+\].*$/, "");
}

/** Findings grouped by node index, for badges on the canvas. */
export function findingsByNode(findings: Finding[]): Map<number, Finding[]> {
  const out = new Map<number, Finding[]>();
  for (const f of findings) {
    if (f.target.kind !== "node") continue;
    out.set(f.target.index, [...(out.get(f.target.index) ?? []), f]);
  }
  return out;
}

/** Findings grouped by the inspector field they concern, for one node, one switch, or the plan. */
export function findingsByField(findings: Finding[], item: { kind: "plan" } | { kind: "node" | "switch"; index: number }): Map<string, Finding[]> {
  const out = new Map<string, Finding[]>();
  for (const f of findings) {
    const t = f.target;
    if (t.kind !== item.kind || ("index" in item && "index" in t && t.index !== item.index)) continue;
    const name = inspectorField(t);
    out.set(name, [...(out.get(name) ?? []), f]);
  }
  return out;
}

export interface Tally {
  severity: "error" | "warning";
  count: number;
}

/** Worst severity and count of findings per node index and per switch index, for the canvas. */
export function severityByIndex(findings: Finding[]): { nodes: Map<number, Tally>; switches: Map<number, Tally> } {
  const nodes = new Map<number, Tally>();
  const switches = new Map<number, Tally>();
  for (const f of findings) {
    const t = f.target;
    if (t.kind === "plan") continue;
    const map = t.kind === "node" ? nodes : switches;
    const old = map.get(t.index);
    map.set(t.index, {
      severity: old?.severity === "error" || f.severity === "error" ? "error" : "warning",
      count: (old?.count ?? 0) + 1,
    });
  }
  return { nodes, switches };
}
