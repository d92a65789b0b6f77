import type { ReactNode } from "react";
import type { AppInfo } from "../lib/ipc";
import type { PlanEditor } from "../plans/usePlanEditor";

export type Tab = "design" | "generate" | "images" | "install" | "cluster" | "export";

const TABS: [Tab, string][] = [
  ["design", "Design"],
  ["generate", "Generate"],
  ["images", "Images"],
  ["install", "Install"],
  ["cluster", "Cluster"],
  ["export", "Export"],
];

interface Props {
  editor: PlanEditor;
  tab: Tab;
  onTab: (tab: Tab) => void;
  bootRunning: boolean;
  info: AppInfo | null;
  inform: (title: string, body: ReactNode) => Promise<null>;
}

/** The open plan with its revision and dirty mark, undo/redo/save, the tabs and About. */
export function TopBar({ editor, tab, onTab, bootRunning, info, inform }: Props) {
  const { current, dirty, loading, saving } = editor;
  return (
    <header className="topbar">
      <span className="brand">Flatlab</span>
      {current && (
        <span className="title">
          <strong data-testid="plan-title">{current.name}</strong>
          <span className="muted small" data-testid="revision">
            rev {current.revision}
          </span>
          {dirty && (
            <span className="dirty-dot" data-testid="dirty" title="Unsaved changes" aria-label="Unsaved changes">
              ●
            </span>
          )}
        </span>
      )}
      {loading && current && <span className="muted small">Opening {loading}…</span>}
      <div className="toolbar">
        <button data-testid="undo" onClick={editor.undo} disabled={!editor.canUndo} title="Undo (Ctrl+Z)">
          ↶ Undo
        </button>
        <button data-testid="redo" onClick={editor.redo} disabled={!editor.canRedo} title="Redo (Ctrl+Shift+Z)">
          ↷ Redo
        </button>
        <button className="primary" data-testid="save" onClick={() => void editor.save()} disabled={!dirty || saving} title="Save (Ctrl+S)">
          {saving ? "Saving…" : "Save"}
        </button>
      </div>
      <nav className="tabs" role="tablist" aria-label="Views">
        {TABS.map(([id, label]) => (
          <button key={id} role="tab" aria-selected={tab === id} className={tab === id ? "tab active" : "tab"} data-testid={`tab-${id}`} onClick={() => onTab(id)}>
            {label}
            {id === "install" && bootRunning && <span className="status-dot on" title="Boot server running" />}
          </button>
        ))}
      </nav>
      <span className="spacer" />
      <button className="link" data-testid="about" onClick={() => void inform("About Flatlab", <About info={info} />)}>
        About{info ? ` · v${info.version}` : ""}
      </button>
    </header>
  );
}

function About({ info }: { info: AppInfo | null }) {
  if (!info) return <p>Loading…</p>;
  return (
    <dl className="about">
      <dt>Version</dt>
      <dd data-testid="about-version">{info.version}</dd>
      <dt>Revision</dt>
      <dd className="mono">{info.revision}</dd>
      <dt>Database</dt>
      <dd className="mono">{info.db_path}</dd>
    </dl>
  );
}
