import { memo, useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import {
  applyNodeChanges,
  Background,
  Controls,
  Handle,
  MiniMap,
  Panel,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type Node as FlowNode,
  type NodeChange,
  type NodeProps,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import type { Plan, Position as XY, Role, Stage } from "../lib/ipc";
import { moveItems, removeItems, updateNode, type Edit } from "./plan";
import type { Tally } from "./findings";
import { autoLayout } from "./layout";

export type Severity = "error" | "warning" | "";

export interface NodeCardData extends Record<string, unknown> {
  name: string;
  role: Role | "";
  address: string;
  mac: string;
  severity: Severity;
  count: number;
  stage: string;
}

export interface SwitchCardData extends Record<string, unknown> {
  name: string;
  severity: Severity;
  count: number;
  nodes: number;
}

type MachineNode = FlowNode<NodeCardData, "machine">;
type SwitchNode = FlowNode<SwitchCardData, "switch">;
type AnyNode = MachineNode | SwitchNode;

export interface Decorations {
  /** Per node index: worst severity and count of findings. */
  nodeFindings: Map<number, Tally>;
  /** Per switch index: worst severity and count of findings. */
  switchFindings: Map<number, Tally>;
  /** Per node index: install stage, or "". */
  stages: (Stage | "")[];
}

export interface CanvasProps {
  plan: Plan;
  decorations: Decorations;
  selected: string[];
  onSelectChanges: (changes: { id: string; selected: boolean }[]) => void;
  onEdit: Edit;
  /** Something from the palette was dropped at this canvas position. */
  onDropSighting: (mac: string, at?: XY) => void;
  onAdd: (kind: "server" | "agent" | "switch") => void;
  onError: (e: unknown) => void;
  /** Changes when the view should pan to the selected card (after a finding was chosen). */
  reveal: number;
}

const shallowEqual = (a: Record<string, unknown>, b: Record<string, unknown>) => {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.is(a[k], b[k]));
};

const NodeCard = memo(
  function NodeCard({ data, selected }: NodeProps<MachineNode>) {
    return (
      <div
        className={`card node ${data.role || "norole"} ${data.severity}${selected ? " selected" : ""}`}
        data-testid={`node-${data.name}`}
        data-state={data.stage}
        data-severity={data.severity}
      >
        <Handle type="source" position={Position.Top} className="handle" />
        <div className="card-head">
          <strong className="card-name">{data.name || "(unnamed)"}</strong>
          {data.role ? <span className={`role ${data.role}`}>{data.role}</span> : <span className="role none">no role</span>}
        </div>
        <span className="detail">{data.address || "DHCP"}</span>
        <span className="detail mono">{data.mac || "no MAC"}</span>
        {data.stage && <span className={`stage ${data.stage}`}>{data.stage}</span>}
        {data.count > 0 && (
          <span className={`badge corner ${data.severity}`} title={`${data.count} finding(s)`}>
            {data.count}
          </span>
        )}
      </div>
    );
  },
  (a, b) => a.selected === b.selected && shallowEqual(a.data, b.data),
);

const SwitchCard = memo(
  function SwitchCard({ data, selected }: NodeProps<SwitchNode>) {
    return (
      <div className={`card switch ${data.severity}${selected ? " selected" : ""}`} data-testid={`switch-${data.name}`} data-severity={data.severity}>
        <div className="card-head">
          <strong className="card-name">{data.name || "(unnamed)"}</strong>
          <span className="role switch">switch</span>
        </div>
        <span className="detail">{data.nodes} node{data.nodes === 1 ? "" : "s"}</span>
        {data.count > 0 && <span className={`badge corner ${data.severity}`}>{data.count}</span>}
        <Handle type="target" position={Position.Bottom} className="handle" />
      </div>
    );
  },
  (a, b) => a.selected === b.selected && shallowEqual(a.data, b.data),
);

const nodeTypes = { machine: NodeCard, switch: SwitchCard };

const fallback = (i: number, y: number): XY => ({ x: 40 + (i % 6) * 210, y: y + Math.floor(i / 6) * 140 });

interface Descriptor {
  id: string;
  type: "machine" | "switch";
  position: XY;
  data: NodeCardData | SwitchCardData;
}

function describe(plan: Plan, deco: Decorations): Descriptor[] {
  const out: Descriptor[] = [];
  const switches = plan.switches ?? [];
  const counts = new Map<string, number>();
  for (const n of plan.nodes) if (n.switch) counts.set(n.switch, (counts.get(n.switch) ?? 0) + 1);
  switches.forEach((s, i) => {
    const f = deco.switchFindings.get(i);
    out.push({
      id: `s${i}`,
      type: "switch",
      position: s.position ?? fallback(i, 40),
      data: { name: s.name, severity: f?.severity ?? "", count: f?.count ?? 0, nodes: counts.get(s.name) ?? 0 },
    });
  });
  plan.nodes.forEach((n, i) => {
    const f = deco.nodeFindings.get(i);
    out.push({
      id: `n${i}`,
      type: "machine",
      position: n.position ?? fallback(i, 220),
      data: {
        name: n.name,
        role: n.role ?? "",
        address: n.address ?? "",
        mac: n.mac,
        severity: f?.severity ?? "",
        count: f?.count ?? 0,
        stage: deco.stages[i] ?? "",
      },
    });
  });
  return out;
}

/** Keeps the previous node objects where nothing changed, so their cards do not re-render. */
function merge(prev: AnyNode[], descriptors: Descriptor[], selected: Set<string>): AnyNode[] {
  const byId = new Map(prev.map((n) => [n.id, n]));
  return descriptors.map((d) => {
    const p = byId.get(d.id);
    const isSelected = selected.has(d.id);
    const sameData = p !== undefined && p.type === d.type && shallowEqual(p.data, d.data);
    const position = p?.dragging ? p.position : d.position;
    if (p && sameData && p.selected === isSelected && p.position.x === position.x && p.position.y === position.y) return p;
    return {
      ...(p ?? {}),
      id: d.id,
      type: d.type,
      position,
      data: sameData ? p!.data : d.data,
      selected: isSelected,
    } as AnyNode;
  });
}

function CanvasInner({ plan, decorations, selected, onSelectChanges, onEdit, onDropSighting, onAdd, onError, reveal }: CanvasProps) {
  const flow = useReactFlow();
  const revealed = useRef(reveal);
  useEffect(() => {
    if (revealed.current === reveal) return;
    revealed.current = reveal;
    const node = selected.length === 1 ? flow.getNode(selected[0]) : undefined;
    if (node) {
      void flow.setCenter(node.position.x + 90, node.position.y + 50, { zoom: Math.max(flow.getZoom(), 0.9), duration: 250 });
    }
  }, [reveal, selected, flow]);
  const [laying, setLaying] = useState(false);
  const layout = useCallback(() => {
    setLaying(true);
    autoLayout(plan)
      .then((l) => {
        onEdit((p) => moveItems(p, l.nodes, l.switches));
        window.setTimeout(() => flow.fitView({ padding: 0.15, maxZoom: 1.2, duration: 200 }), 50);
      })
      .catch(onError)
      .finally(() => setLaying(false));
  }, [plan, onEdit, flow, onError]);
  const descriptors = useMemo(() => describe(plan, decorations), [plan, decorations]);
  const [state, setState] = useState<{ src: Descriptor[] | null; sel: string[] | null; nodes: AnyNode[] }>({
    src: null,
    sel: null,
    nodes: [],
  });
  if (state.src !== descriptors || state.sel !== selected) {
    setState({ src: descriptors, sel: selected, nodes: merge(state.nodes, descriptors, new Set(selected)) });
  }
  const [edgeSelection, setEdgeSelection] = useState<Set<string>>(new Set());

  const edges = useMemo<Edge[]>(() => {
    const index = new Map<string, number>();
    (plan.switches ?? []).forEach((s, i) => {
      if (!index.has(s.name)) index.set(s.name, i);
    });
    const out: Edge[] = [];
    plan.nodes.forEach((n, i) => {
      const s = n.switch !== undefined ? index.get(n.switch) : undefined;
      if (s === undefined) return;
      const id = `e${i}`;
      out.push({ id, source: `n${i}`, target: `s${s}`, selected: edgeSelection.has(id) });
    });
    return out;
  }, [plan, edgeSelection]);

  const onNodesChange = useCallback(
    (changes: NodeChange<AnyNode>[]) => {
      const select: { id: string; selected: boolean }[] = [];
      const rest: NodeChange<AnyNode>[] = [];
      for (const c of changes) {
        if (c.type === "select") select.push({ id: c.id, selected: c.selected });
        else if (c.type === "position" || c.type === "dimensions") rest.push(c);
      }
      if (rest.length) setState((s) => ({ ...s, nodes: applyNodeChanges(rest, s.nodes) }));
      if (select.length) onSelectChanges(select);
      // A drag ended, or arrow keys moved the selection: one edit of the plan.
      const moved = changes.filter((c) => c.type === "position" && c.position && c.dragging === false);
      if (moved.length) {
        const nodes = new Map<number, XY>();
        const switches = new Map<number, XY>();
        for (const c of moved) {
          if (c.type !== "position" || !c.position) continue;
          (c.id.startsWith("n") ? nodes : switches).set(Number(c.id.slice(1)), c.position);
        }
        onEdit((p) => moveItems(p, nodes, switches));
      }
    },
    [onSelectChanges, onEdit],
  );

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    const select = changes.filter((c) => c.type === "select");
    if (!select.length) return;
    setEdgeSelection((prev) => {
      const next = new Set(prev);
      for (const c of select) {
        if (c.selected) next.add(c.id);
        else next.delete(c.id);
      }
      return next;
    });
  }, []);

  const onConnect = useCallback(
    (c: Connection) => {
      let node = c.source;
      let sw = c.target;
      if (node.startsWith("s")) [node, sw] = [sw, node];
      if (!node.startsWith("n") || !sw.startsWith("s")) return;
      const i = Number(node.slice(1));
      const j = Number(sw.slice(1));
      onEdit((p) => {
        const name = p.switches?.[j]?.name;
        return name === undefined ? p : updateNode(p, i, { switch: name });
      });
    },
    [onEdit],
  );

  const onDelete = useCallback(
    ({ nodes, edges: gone }: { nodes: AnyNode[]; edges: Edge[] }) => {
      const nodeIdx = nodes.filter((n) => n.id.startsWith("n")).map((n) => Number(n.id.slice(1)));
      const switchIdx = nodes.filter((n) => n.id.startsWith("s")).map((n) => Number(n.id.slice(1)));
      const unlink = gone.map((e) => Number(e.source.slice(1))).filter((i) => !nodeIdx.includes(i));
      if (!nodeIdx.length && !switchIdx.length && !unlink.length) return;
      onEdit((p) => {
        let next = p;
        for (const i of unlink) next = updateNode(next, i, { switch: undefined });
        return removeItems(next, nodeIdx, switchIdx);
      });
      setEdgeSelection(new Set());
      if (nodes.length) onSelectChanges(nodes.map((n) => ({ id: n.id, selected: false })));
    },
    [onEdit, onSelectChanges],
  );

  const onDragOver = useCallback((e: DragEvent) => {
    if (e.dataTransfer.types.includes("application/x-flatlab-mac")) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    }
  }, []);

  const onDrop = useCallback(
    (e: DragEvent) => {
      const mac = e.dataTransfer.getData("application/x-flatlab-mac");
      if (!mac) return;
      e.preventDefault();
      const at = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
      const ok = Number.isFinite(at.x) && Number.isFinite(at.y);
      onDropSighting(mac, ok ? { x: Math.round(at.x - 90), y: Math.round(at.y - 30) } : undefined);
    },
    [flow, onDropSighting],
  );

  return (
    <ReactFlow<AnyNode, Edge>
      data-testid="canvas"
      nodes={state.nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      onNodesChange={onNodesChange}
      onEdgesChange={onEdgesChange}
      onConnect={onConnect}
      isValidConnection={(c) => c.source.startsWith("n") && c.target.startsWith("s")}
      onDelete={onDelete}
      onDragOver={onDragOver}
      onDrop={onDrop}
      deleteKeyCode={["Delete", "Backspace"]}
      multiSelectionKeyCode={["Shift", "Meta", "Control"]}
      onlyRenderVisibleElements={plan.nodes.length > 80}
      fitView
      fitViewOptions={{ maxZoom: 1.2, padding: 0.15 }}
      minZoom={0.1}
      proOptions={{ hideAttribution: true }}
      colorMode="system"
    >
      <Panel position="top-left" className="canvas-toolbar">
        <button data-testid="add-server" onClick={() => onAdd("server")}>
          Add server
        </button>
        <button data-testid="add-agent" onClick={() => onAdd("agent")}>
          Add agent
        </button>
        <button data-testid="add-switch" onClick={() => onAdd("switch")}>
          Add switch
        </button>
        <button data-testid="auto-layout" onClick={layout} disabled={laying}>
          {laying ? "Laying out…" : "Auto-layout"}
        </button>
      </Panel>
      <Background gap={20} />
      <Controls />
      <MiniMap pannable zoomable nodeClassName={(n) => (n.type === "switch" ? "mini-switch" : `mini-node ${(n.data as NodeCardData).severity}`)} />
    </ReactFlow>
  );
}

/** The topology canvas: nodes and switches as cards, a line from each node to its switch. */
export function Canvas(props: CanvasProps) {
  return (
    <ReactFlowProvider>
      <CanvasInner {...props} />
    </ReactFlowProvider>
  );
}

