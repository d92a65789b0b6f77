import type { Finding, Plan } from "./ipc";

/** Where a finding points: a node or switch (by name or index) and a field, or the plan itself. */
export interface FindingTarget {
  list: "nodes" | "switches" | null;
  key: string | null;
  field: string;
}

/** Splits a finding path such as `nodes[cp2].mac` or `network.subnet`. */
export function parseFindingPath(path: string): FindingTarget {
  const m = /^(nodes|switches)\[([^\]]*)\](?:\.(.*))?$/.exec(path);
  if (m) return { list: m[1] as "nodes" | "switches", key: m[2], field: m[3] ?? "" };
  return { list: null, key: null, field: path };
}

/** The key a node has in finding paths: its name, or its index while it has none. */
export function nodeKey(plan: Plan, index: number): string {
  const name = plan.nodes[index]?.name.trim();
  return name ? name : String(index);
}

/** Findings grouped by node key, for badges on the canvas. */
export function findingsByNode(findings: Finding[]): Map<string, Finding[]> {
  const out = new Map<string, Finding[]>();
  for (const f of findings) {
    const t = parseFindingPath(f.path);
    if (t.list !== "nodes" || t.key === null) continue;
    out.set(t.key, [...(out.get(t.key) ?? []), f]);
  }
  return out;
}

/** The inspector field a finding belongs to: `mac` for `nodes[cp1].mac`, `network.dns` for `network.dns[1]`. */
export function inspectorField(target: FindingTarget): string {
  if (target.list) return target.field.split(/[.[]/)[0];
  return target.field.replace(/\[\d+\].*$/, "");
}

/** Worst severity and count of findings per node key and per switch key, for the canvas. */
export function severityByKey(findings: Finding[]) {
  const nodes = new Map<string, { severity: "error" | "warning"; count: number }>();
  const switches = new Map<string, { severity: "error" | "warning"; count: number }>();
  for (const f of findings) {
    const t = parseFindingPath(f.path);
    if (t.list === null || t.key === null) continue;
    const map = t.list === "nodes" ? nodes : switches;
    const old = map.get(t.key);
    map.set(t.key, {
      severity: old?.severity === "error" || f.severity === "error" ? "error" : "warning",
      count: (old?.count ?? 0) + 1,
    });
  }
  return { nodes, switches };
}
