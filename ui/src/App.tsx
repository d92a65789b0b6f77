import { useCallback, useEffect, useMemo, useState } from "react";
import { backend, IpcError, type AppInfo, type PlanListing, type PlanView } from "./lib/ipc";
import { findingsByNode, nodeKey, parseFindingPath } from "./lib/findings";
import { Topology } from "./components/Topology";
import { FindingList } from "./components/FindingList";

export function App() {
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [plans, setPlans] = useState<PlanListing[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [view, setView] = useState<PlanView | null>(null);
  const [focus, setFocus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const report = useCallback((e: unknown) => {
    setError(e instanceof IpcError ? e.message : String(e));
  }, []);

  useEffect(() => {
    backend.appInfo().then(setInfo).catch(report);
    backend
      .listPlans()
      .then((list) => {
        setPlans(list);
        setSelected((current) => current ?? list[0]?.name ?? null);
      })
      .catch(report);
  }, [report]);

  useEffect(() => {
    if (!selected) return;
    let live = true;
    backend
      .showPlan(selected)
      .then((v) => {
        if (live) {
          setView(v);
          setFocus(null);
        }
      })
      .catch(report);
    return () => {
      live = false;
    };
  }, [selected, report]);

  const byNode = useMemo(() => findingsByNode(view?.findings ?? []), [view]);
  const focusedNode = focus ? parseFindingPath(focus) : null;

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">Flatlab</span>
        {view && (
          <span className="subtitle">
            {view.name} · revision {view.revision} · Flatcar {view.plan.os.channel} {view.plan.os.version} ·
            K3s {view.plan.kubernetes.k3s_version}
          </span>
        )}
        <span className="spacer" />
        {info && <span className="muted">v{info.version}</span>}
      </header>

      {error && (
        <div className="banner error" role="alert">
          {error}
          <button onClick={() => setError(null)} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}

      <div className="body">
        <nav className="sidebar" aria-label="Plans">
          <h2>Plans</h2>
          {plans === null && <p className="muted">Loading…</p>}
          {plans?.length === 0 && (
            <p className="muted">No plans yet. Import a plan file with <code>flatlab plan import FILE</code>.</p>
          )}
          <ul>
            {plans?.map((p) => (
              <li key={p.name}>
                <button
                  className={p.name === selected ? "plan active" : "plan"}
                  onClick={() => setSelected(p.name)}
                  data-testid={`plan-${p.name}`}
                >
                  <span className="plan-name">{p.name}</span>
                  <span className="plan-meta">
                    {p.nodes} nodes · rev {p.revision}
                    {p.errors > 0 && <span className="badge error">{p.errors}</span>}
                    {p.warnings > 0 && <span className="badge warning">{p.warnings}</span>}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </nav>

        <main className="canvas-area">
          {view ? (
            <Topology
              plan={view.plan}
              findingsByNode={byNode}
              highlighted={focusedNode?.list === "nodes" ? focusedNode.key : null}
              onSelectNode={(i) => setFocus(`nodes[${nodeKey(view.plan, i)}]`)}
            />
          ) : (
            <p className="empty muted">{plans?.length ? "Choose a plan on the left." : ""}</p>
          )}
        </main>

        <aside className="inspector" aria-label="Findings">
          <h2>Findings</h2>
          {view && <FindingList findings={view.findings} focused={focus} onSelect={setFocus} />}
          {info && <p className="muted small db-path">Database: {info.db_path}</p>}
        </aside>
      </div>
    </div>
  );
}
