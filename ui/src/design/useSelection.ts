// What is selected on the canvas (cards by id: `n3` is node 3, `s0` switch 0) and which
// inspector field to focus after a finding was chosen.
import { useCallback, useMemo, useState } from "react";
import type { Finding, Plan } from "../lib/ipc";
import { inspectorField } from "./findings";
import type { InspectorTarget } from "./Inspector";

/** A field to focus; `seq` changes on every request, so the same field can be asked for again. */
export interface FieldFocus {
  field: string;
  seq: number;
}

export function useSelection() {
  const [selected, setSelected] = useState<string[]>([]);
  const [focus, setFocus] = useState<FieldFocus | null>(null);

  /** Applies the canvas's selection changes, keeping the same array when nothing changed. */
  const onSelectChanges = useCallback((changes: { id: string; selected: boolean }[]) => {
    setSelected((prev) => {
      const set = new Set(prev);
      for (const c of changes) {
        if (c.selected) set.add(c.id);
        else set.delete(c.id);
      }
      if (set.size === prev.length && prev.every((id) => set.has(id))) return prev;
      return [...set];
    });
  }, []);

  const select = useCallback((ids: string[]) => setSelected(ids), []);

  const clear = useCallback(() => {
    setSelected([]);
    setFocus(null);
  }, []);

  /** Selects the node or switch a finding concerns (nothing for the plan) and focuses its field. */
  const reveal = useCallback((finding: Finding, plan: Plan) => {
    const t = finding.target;
    let field = inspectorField(t);
    if (t.kind === "node") {
      setSelected(t.index < plan.nodes.length ? [`n${t.index}`] : []);
      field = field || "name";
    } else if (t.kind === "switch") {
      setSelected(t.index < (plan.switches ?? []).length ? [`s${t.index}`] : []);
      field = "name";
    } else {
      setSelected([]);
      if (field === "name") field = "plan-name";
    }
    setFocus((f) => ({ field, seq: (f?.seq ?? 0) + 1 }));
  }, []);

  /** What the inspector shows. */
  const target: InspectorTarget = useMemo(() => {
    if (selected.length === 0) return { kind: "cluster" };
    if (selected.length > 1) return { kind: "many", count: selected.length };
    const index = Number(selected[0].slice(1));
    return selected[0].startsWith("n") ? { kind: "node", index } : { kind: "switch", index };
  }, [selected]);

  return { selected, focus, target, onSelectChanges, select, clear, reveal };
}

export type Selection = ReturnType<typeof useSelection>;
