// Pure edits of a plan draft. Every function returns a new plan and leaves its input alone,
// sharing untouched nodes and switches so that memoized canvas cards stay as they are.
import type { Node, Plan, Position, Role, Switch } from "../lib/ipc";

/** Applies a pure edit to the draft; edits with the same `coalesce` key in a row are one undo step. */
export type Edit = (fn: (plan: Plan) => Plan, coalesce?: string) => void;

/** An RFC 1123 label, as plan, node and switch names must be. */
export function isLabel(name: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name);
}

/** A host name usable as a node name: the first label of an mDNS name, lowercased, when valid. */
export function hostnameToNodeName(name: string | null | undefined): string | null {
  if (!name) return null;
  const first = name.replace(/\.local\.?$/i, "").split(".")[0].toLowerCase();
  return isLabel(first) ? first : null;
}

/** `base-1`, `base-2`, ...: the first that is not in `taken`. */
export function uniqueName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  for (let i = 1; ; i++) {
    const name = `${base}-${i}`;
    if (!used.has(name)) return name;
  }
}

export const CARD_W = 180;
export const CARD_H = 100;
const GAP_X = 30;
const GAP_Y = 40;

function allPositions(plan: Plan): Position[] {
  const out: Position[] = [];
  for (const n of plan.nodes) if (n.position) out.push(n.position);
  for (const s of plan.switches ?? []) if (s.position) out.push(s.position);
  return out;
}

function overlaps(a: Position, b: Position): boolean {
  return Math.abs(a.x - b.x) < CARD_W + GAP_X && Math.abs(a.y - b.y) < CARD_H + GAP_Y / 2;
}

/** A spot on the canvas that no card covers: switches in a row on top, nodes in rows below. */
export function freePosition(plan: Plan, kind: "node" | "switch"): Position {
  const taken = allPositions(plan);
  const top = kind === "switch" ? 40 : 200;
  for (let row = 0; row < 1000; row++) {
    for (let col = 0; col < 8; col++) {
      const p = { x: 40 + col * (CARD_W + GAP_X), y: top + row * (CARD_H + GAP_Y) };
      if (!taken.some((t) => overlaps(t, p))) return p;
    }
  }
  return { x: 40, y: top };
}

/** Adds a node with a unique default name, an empty MAC and /dev/sda. Returns the plan and its index. */
export function addNode(plan: Plan, role: Role, patch: Partial<Node> = {}): { plan: Plan; index: number } {
  const taken = plan.nodes.map((n) => n.name);
  const name = patch.name && !taken.includes(patch.name) ? patch.name : uniqueName("node", taken);
  const node: Node = {
    mac: "",
    install_disk: "/dev/sda",
    ...patch,
    name,
    role,
    position: patch.position ?? freePosition(plan, "node"),
  };
  return { plan: { ...plan, nodes: [...plan.nodes, node] }, index: plan.nodes.length };
}

export function addSwitch(plan: Plan): { plan: Plan; index: number } {
  const switches = plan.switches ?? [];
  const sw: Switch = {
    name: uniqueName("switch", switches.map((s) => s.name)),
    position: freePosition(plan, "switch"),
  };
  return { plan: { ...plan, switches: [...switches, sw] }, index: switches.length };
}

/** Sets (or, with undefined/empty values, removes) fields of one node. */
export function updateNode(plan: Plan, index: number, patch: Partial<Node>): Plan {
  const old = plan.nodes[index];
  if (!old) return plan;
  const node: Node = { ...old };
  for (const [k, v] of Object.entries(patch) as [keyof Node, unknown][]) {
    if (v === undefined || (v === "" && (k === "address" || k === "switch" || k === "role"))) {
      delete node[k];
    } else {
      (node as Record<string, unknown>)[k] = v;
    }
  }
  const nodes = plan.nodes.slice();
  nodes[index] = node;
  return { ...plan, nodes };
}

/** Renames a switch (and the nodes that hang off it) or moves it. */
export function updateSwitch(plan: Plan, index: number, patch: Partial<Switch>): Plan {
  const switches = (plan.switches ?? []).slice();
  const old = switches[index];
  if (!old) return plan;
  switches[index] = { ...old, ...patch };
  let nodes = plan.nodes;
  if (patch.name !== undefined && patch.name !== old.name && old.name) {
    const stillThere = switches.some((s, i) => i !== index && s.name === old.name);
    if (!stillThere) {
      nodes = plan.nodes.map((n) => (n.switch === old.name ? { ...n, switch: patch.name } : n));
    }
  }
  return { ...plan, switches, nodes };
}

/** Moves nodes and switches (by index) to new positions, in one edit. */
export function moveItems(
  plan: Plan,
  nodes: Map<number, Position>,
  switches: Map<number, Position>,
): Plan {
  const round = (p: Position) => ({ x: Math.round(p.x), y: Math.round(p.y) });
  const finite = (m: Map<number, Position>) => new Map([...m].filter(([, p]) => Number.isFinite(p.x) && Number.isFinite(p.y)));
  nodes = finite(nodes);
  switches = finite(switches);
  return {
    ...plan,
    nodes: nodes.size ? plan.nodes.map((n, i) => (nodes.has(i) ? { ...n, position: round(nodes.get(i)!) } : n)) : plan.nodes,
    switches:
      switches.size && plan.switches
        ? plan.switches.map((s, i) => (switches.has(i) ? { ...s, position: round(switches.get(i)!) } : s))
        : plan.switches,
  };
}

/** Removes nodes and switches (by index); nodes that hung off a removed switch hang off none. */
export function removeItems(plan: Plan, nodeIndexes: Iterable<number>, switchIndexes: Iterable<number>): Plan {
  const dropNodes = new Set(nodeIndexes);
  const dropSwitches = new Set(switchIndexes);
  const switches = (plan.switches ?? []).filter((_, i) => !dropSwitches.has(i));
  const gone = new Set(
    (plan.switches ?? []).filter((_, i) => dropSwitches.has(i)).map((s) => s.name),
  );
  for (const s of switches) gone.delete(s.name);
  const nodes = plan.nodes
    .filter((_, i) => !dropNodes.has(i))
    .map((n) => {
      if (n.switch === undefined || !gone.has(n.switch)) return n;
      const copy = { ...n };
      delete copy.switch;
      return copy;
    });
  const out: Plan = { ...plan, nodes };
  if (plan.switches !== undefined) out.switches = switches;
  return out;
}

/** Normalizes a MAC for comparison: lowercase with colons. */
export function normalizeMac(mac: string): string {
  return mac.trim().toLowerCase().replace(/-/g, ":");
}

export function planMacs(plan: Plan): Set<string> {
  return new Set(plan.nodes.map((n) => normalizeMac(n.mac)).filter(Boolean));
}

/** Sets a dotted cluster field such as `os.version` or `network.subnet` (empty removes optional ones). */
export function setClusterField(plan: Plan, path: string, value: unknown): Plan {
  const [section, field] = path.split(".") as [string, string | undefined];
  const empty = value === "" || (Array.isArray(value) && value.length === 0);
  if (!field) return { ...plan, [section]: value };
  const current = ((plan as Record<string, unknown>)[section] ?? {}) as Record<string, unknown>;
  const next = { ...current };
  const required = path === "os.version" || path === "os.channel" || path === "os.arch" || path === "kubernetes.k3s_version";
  if (empty && !required) delete next[field];
  else next[field] = value;
  const out = { ...plan, [section]: next } as Plan;
  if (section === "network" && Object.keys(next).length === 0) delete out.network;
  return out;
}
