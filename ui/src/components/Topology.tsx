import type { Finding, Plan } from "../lib/ipc";
import { nodeKey } from "../lib/findings";

interface Props {
  plan: Plan;
  findingsByNode: Map<string, Finding[]>;
  highlighted: string | null;
  onSelectNode: (index: number) => void;
}

const CARD_W = 170;
const CARD_H = 96;

/** Nodes and switches at their saved positions, with a line from each node to its switch. */
export function Topology({ plan, findingsByNode, highlighted, onSelectNode }: Props) {
  const pos = (p: { x: number; y: number } | undefined, i: number) => p ?? { x: 40 + (i % 5) * 200, y: 220 + Math.floor(i / 5) * 140 };
  const switches = (plan.switches ?? []).map((s, i) => ({ ...s, at: pos(s.position, i) }));
  const nodes = plan.nodes.map((n, i) => ({ ...n, at: pos(n.position, i), key: nodeKey(plan, i) }));
  const width = Math.max(800, ...nodes.map((n) => n.at.x + CARD_W + 40), ...switches.map((s) => s.at.x + CARD_W + 40));
  const height = Math.max(500, ...nodes.map((n) => n.at.y + CARD_H + 40));

  return (
    <div className="topology" style={{ width, height }} data-testid="topology">
      <svg className="links" width={width} height={height} aria-hidden>
        {nodes.map((n) => {
          const s = switches.find((sw) => sw.name === n.switch);
          if (!s) return null;
          return (
            <line
              key={n.key}
              x1={n.at.x + CARD_W / 2}
              y1={n.at.y}
              x2={s.at.x + CARD_W / 2}
              y2={s.at.y + 44}
            />
          );
        })}
      </svg>
      {switches.map((s) => (
        <div key={s.name} className="card switch" style={{ left: s.at.x, top: s.at.y }}>
          <span className="kind">switch</span>
          <strong>{s.name}</strong>
        </div>
      ))}
      {nodes.map((n, i) => {
        const problems = findingsByNode.get(n.key) ?? [];
        const worst = problems.some((f) => f.severity === "error") ? "error" : problems.length ? "warning" : "";
        return (
          <button
            key={`${n.key}-${i}`}
            className={`card node ${n.role ?? "norole"} ${worst} ${highlighted === n.key ? "highlighted" : ""}`}
            style={{ left: n.at.x, top: n.at.y, width: CARD_W, height: CARD_H }}
            onClick={() => onSelectNode(i)}
            data-testid={`node-${n.key}`}
            title={problems.map((f) => `${f.path}: ${f.message}`).join("\n")}
          >
            <span className="kind">{n.role ?? "no role"}</span>
            <strong>{n.name || "(unnamed)"}</strong>
            <span className="detail">{n.address ?? "DHCP"}</span>
            <span className="detail mono">{n.mac || "no MAC"}</span>
            {problems.length > 0 && <span className={`badge ${worst}`}>{problems.length}</span>}
          </button>
        );
      })}
    </div>
  );
}
