import { useCallback, useMemo } from "react";
import type { Finding, Plan, Position } from "../lib/ipc";
import { nodeStage, type BootState } from "../install/boot";
import { Canvas, type Decorations } from "./Canvas";
import { Inspector } from "./Inspector";
import { severityByIndex } from "./findings";
import { addNode, addSwitch, removeItems, type Edit } from "./plan";
import type { Selection } from "./useSelection";
import { versionChoices, type Images } from "../images/useImages";
import { FirstSteps } from "./FirstSteps";

interface Props {
  plan: Plan;
  /** The open plan's name: another plan gets a fresh canvas. */
  planName: string;
  findings: Finding[];
  /** For each node card's install state. */
  boot: BootState;
  edit: Edit;
  selection: Selection;
  /** A palette machine dropped on the canvas. */
  onAddMachine: (mac: string, at?: Position) => void;
  onFinding: (finding: Finding) => void;
  onError: (e: unknown) => void;
  /** What the mirror and the release servers hold: the versions the inspector offers. */
  versions?: Pick<Images, "overview" | "versions" | "generation">;
  /** For an empty plan's first steps: scan the network, and go to another tab. */
  onScan?: () => void;
  onGo?: (tab: "images" | "install") => void;
}

/** The Design tab: the topology canvas and the inspector of what is selected. */
export function DesignView({ plan, planName, findings, boot, edit, selection, onAddMachine, onFinding, onError, versions, onScan, onGo }: Props) {
  const { selected, select } = selection;
  const { channel, arch } = plan.os;
  const overview = versions?.overview ?? null;
  const servers = versions?.versions ?? null;
  const choices = useMemo(
    () => versionChoices({ os: { channel, arch }, kubernetes: null }, { overview, versions: servers }),
    [channel, arch, overview, servers],
  );

  const decorations: Decorations = useMemo(() => {
    const sev = severityByIndex(findings);
    return { nodeFindings: sev.nodes, switchFindings: sev.switches, stages: plan.nodes.map((n) => nodeStage(boot, n) ?? "") };
  }, [findings, boot, plan]);

  /** Adds a node or switch from the toolbar and selects it. */
  const onAdd = useCallback(
    (kind: "server" | "agent" | "switch") => {
      if (kind === "switch") {
        edit((p) => addSwitch(p).plan);
        select([`s${(plan.switches ?? []).length}`]);
      } else {
        edit((p) => addNode(p, kind).plan);
        select([`n${plan.nodes.length}`]);
      }
    },
    [plan, edit, select],
  );

  const removeSelected = useCallback(() => {
    const nodes = selected.filter((id) => id.startsWith("n")).map((id) => Number(id.slice(1)));
    const switches = selected.filter((id) => id.startsWith("s")).map((id) => Number(id.slice(1)));
    edit((p) => removeItems(p, nodes, switches));
    select([]);
  }, [selected, edit, select]);

  return (
    <div className="design">
      <div className="canvas-wrap">
        {plan.nodes.length === 0 && onScan && onGo && (
          <FirstSteps plan={plan} imagesGeneration={versions?.generation ?? 0} onScan={onScan} onAddServer={() => onAdd("server")} onGo={onGo} />
        )}
        <Canvas
          key={planName}
          plan={plan}
          decorations={decorations}
          selected={selected}
          onSelectChanges={selection.onSelectChanges}
          onEdit={edit}
          onDropSighting={onAddMachine}
          onAdd={onAdd}
          onError={onError}
          reveal={selection.focus?.seq ?? 0}
        />
      </div>
      <Inspector
        plan={plan}
        target={selection.target}
        findings={findings}
        onEdit={edit}
        onFinding={onFinding}
        focus={selection.focus}
        onError={onError}
        onRemoveSelected={removeSelected}
        versions={choices}
      />
    </div>
  );
}
