// Auto-layout with ELK: layered, top to bottom, switches in the first layer above the nodes.
import type { Plan, Position } from "../lib/ipc";
import { CARD_H, CARD_W } from "./plan";

// Loaded on first use: ELK is large and only the auto-layout button needs it.
let elk: Promise<{ layout: (graph: ElkGraph) => Promise<ElkGraph> }> | null = null;
type ElkGraph = import("elkjs/lib/elk-api").ElkNode;
function engine() {
  elk ??= import("elkjs/lib/elk.bundled.js").then((m) => new m.default());
  return elk;
}

export interface Layout {
  nodes: Map<number, Position>;
  switches: Map<number, Position>;
}

export async function autoLayout(plan: Plan): Promise<Layout> {
  const switches = plan.switches ?? [];
  const switchIndex = new Map<string, number>();
  switches.forEach((s, i) => {
    if (!switchIndex.has(s.name)) switchIndex.set(s.name, i);
  });
  const children = [
    ...switches.map((_, i) => ({
      id: `s${i}`,
      width: CARD_W,
      height: CARD_H * 0.6,
      layoutOptions: { "elk.partitioning.partition": "0" },
    })),
    ...plan.nodes.map((_, i) => ({
      id: `n${i}`,
      width: CARD_W,
      height: CARD_H,
      layoutOptions: { "elk.partitioning.partition": "1" },
    })),
  ];
  const edges = plan.nodes.flatMap((n, i) => {
    const s = n.switch !== undefined ? switchIndex.get(n.switch) : undefined;
    return s === undefined ? [] : [{ id: `e${i}`, sources: [`s${s}`], targets: [`n${i}`] }];
  });
  const graph = await (await engine()).layout({
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.partitioning.activate": "true",
      "elk.separateConnectedComponents": "false",
      "elk.spacing.nodeNode": "30",
      "elk.layered.spacing.nodeNodeBetweenLayers": "80",
      "elk.padding": "[top=40,left=40,bottom=40,right=40]",
    },
    children,
    edges,
  });
  const out: Layout = { nodes: new Map(), switches: new Map() };
  for (const c of graph.children ?? []) {
    const p = { x: Math.round(c.x ?? 0), y: Math.round(c.y ?? 0) };
    const i = Number(c.id.slice(1));
    if (c.id.startsWith("s")) out.switches.set(i, p);
    else out.nodes.set(i, p);
  }
  return out;
}
