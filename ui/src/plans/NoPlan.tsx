import type { PlanListing } from "../lib/ipc";
import type { PlanActions } from "./usePlanActions";

interface Props {
  plans: PlanListing[] | null;
  /** The plan being opened, if any. */
  loading: string | null;
  actions: PlanActions;
}

/** The main area while no plan is open: loading, or what to do when there are none. */
export function NoPlan({ plans, loading, actions }: Props) {
  return (
    <div className="empty">
      {loading ? (
        <p className="muted">Opening {loading}…</p>
      ) : plans?.length === 0 ? (
        <>
          <h1>Create a plan or import a plan file</h1>
          <p className="muted">A plan describes your cluster: the machines, their roles and disks, and the network they sit on.</p>
          <div className="buttons">
            <button className="primary" onClick={() => void actions.create()}>
              Create a plan
            </button>
            <button onClick={() => void actions.importFile()}>Import a plan file</button>
          </div>
        </>
      ) : (
        <p className="muted">{plans === null ? "Loading…" : "Choose a plan on the left."}</p>
      )}
    </div>
  );
}
