import type { ReactNode } from "react";
import type { PlanListing } from "../lib/ipc";
import type { PlanActions } from "./usePlanActions";

interface Props {
  plans: PlanListing[] | null;
  /** The open plan's name. */
  open: string | null;
  dirty: boolean;
  actions: PlanActions;
  /** Shown under the plan actions (the palette, on the Design tab). */
  children?: ReactNode;
}

/** The stored plans, with the actions on the open one. */
export function PlanSidebar({ plans, open, dirty, actions, children }: Props) {
  return (
    <nav className="sidebar" aria-label="Plans">
      <div className="section-head">
        <h2>Plans</h2>
        <button data-testid="plan-new" onClick={() => void actions.create()} title="Create a plan">
          New
        </button>
        <button data-testid="plan-import" onClick={() => void actions.importFile()} title="Import a plan file">
          Import
        </button>
      </div>
      {plans === null && <p className="muted">Loading…</p>}
      {plans?.length === 0 && <p className="muted">No plans yet. Create a plan or import a plan file.</p>}
      <ul className="plan-list">
        {plans?.map((p) => (
          <li key={p.name}>
            <button className={p.name === open ? "plan active" : "plan"} onClick={() => void actions.open(p.name)} data-testid={`plan-${p.name}`}>
              <span className="plan-name">
                {p.name}
                {p.name === open && dirty && <span className="dirty-dot small">●</span>}
              </span>
              <span className="plan-meta">
                {p.nodes} nodes · rev {p.revision}
                {p.errors > 0 && <span className="badge error">{p.errors}</span>}
                {p.warnings > 0 && <span className="badge warning">{p.warnings}</span>}
              </span>
            </button>
          </li>
        ))}
      </ul>
      <div className="plan-actions" aria-label="Open plan">
        <button data-testid="plan-rename" onClick={() => void actions.rename()} disabled={!open}>
          Rename
        </button>
        <button data-testid="plan-duplicate" onClick={() => void actions.duplicate()} disabled={!open}>
          Duplicate
        </button>
        <button data-testid="plan-history" onClick={() => void actions.history()} disabled={!open}>
          History
        </button>
        <button data-testid="plan-export" onClick={() => void actions.exportFile()} disabled={!open}>
          Export file
        </button>
        <button className="danger" data-testid="plan-delete" onClick={() => void actions.remove()} disabled={!open}>
          Delete
        </button>
      </div>
      {children}
    </nav>
  );
}
