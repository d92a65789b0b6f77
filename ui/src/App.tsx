import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import {
  appWindow,
  backend,
  dialogs,
  events,
  IpcError,
  type AppInfo,
  type ErrorBody,
  type Finding,
  type Plan,
  type PlanListing,
  type Position,
  type RevisionInfo,
  type Sighting,
  type SidecarLine,
} from "./lib/ipc";
import { inspectorField, severityByIndex } from "./lib/findings";
import { canRedo, canUndo, createHistory, push, redo, undo, type History } from "./lib/history";
import { addNode, addSwitch, hostnameToNodeName, normalizeMac, planMacs, removeItems } from "./lib/plan";
import { emptyBoot, foldMessage, foldMessages, mergeSightings, nodeStage, sightingFromBoot, sightingsFromMessages, startCursor, unseen, type BootState, type MachineView } from "./lib/boot";
import { clearDraft, loadDraft, samePlan, storeDraft } from "./lib/drafts";
import { Canvas, type Decorations } from "./components/Canvas";
import { Inspector, type InspectorTarget } from "./components/Inspector";
import { Palette } from "./components/Palette";
import { Modal, formatTime, type ModalSpec } from "./components/Modal";
import { GenerateView } from "./views/GenerateView";
import { InstallView } from "./views/InstallView";
import { ExportView } from "./views/ExportView";

type Tab = "design" | "generate" | "install" | "export";

const TABS: [Tab, string][] = [
  ["design", "Design"],
  ["generate", "Generate"],
  ["install", "Install"],
  ["export", "Export"],
];

interface Editor {
  name: string;
  revision: number;
  /** The newest saved revision; the draft is dirty when it differs. */
  saved: Plan;
  hist: History<Plan>;
}

type Edit = (fn: (plan: Plan) => Plan, coalesce?: string) => void;

const SAVE_MESSAGE = "edited in the app";

const message = (e: unknown) => (e instanceof IpcError ? e.message : e instanceof Error ? e.message : String(e));

export function App() {
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [plans, setPlans] = useState<PlanListing[] | null>(null);
  const [editor, setEditor] = useState<Editor | null>(null);
  const [findings, setFindings] = useState<Finding[]>([]);
  const [selected, setSelected] = useState<string[]>([]);
  const [focus, setFocus] = useState<{ field: string; seq: number } | null>(null);
  const [tab, setTab] = useState<Tab>("design");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [modal, setModal] = useState<{ id: number; spec: ModalSpec } | null>(null);
  const [boot, setBoot] = useState<BootState>(emptyBoot);
  const [bootRunning, setBootRunning] = useState(false);
  const [bootError, setBootError] = useState<ErrorBody | null>(null);
  const [sightings, setSightings] = useState<Sighting[]>([]);
  const [scanning, setScanning] = useState(false);
  const [saving, setSaving] = useState(false);
  const [loadingPlan, setLoadingPlan] = useState<string | null>(null);

  const plan = editor?.hist.present ?? null;
  const dirty = useMemo(() => (editor ? !samePlan(editor.hist.present, editor.saved) : false), [editor]);

  // The newest state for async flows and window-level handlers.
  const latest = useRef({ editor, dirty, modalOpen: false });
  useEffect(() => {
    latest.current = { editor, dirty, modalOpen: modal !== null };
  });

  const report = useCallback((e: unknown) => setError(message(e)), []);

  // In-app dialogs, each a promise of the user's answer.
  const modalSeq = useRef(0);
  const open = useCallback(<T,>(make: (resolve: (value: T) => void) => ModalSpec) => {
    return new Promise<T>((resolve) => {
      modalSeq.current += 1;
      const id = modalSeq.current;
      setModal({
        id,
        spec: make((value: T) => {
          setModal((m) => (m?.id === id ? null : m));
          resolve(value);
        }),
      });
    });
  }, []);
  const prompt = useCallback(
    (title: string, label: string, initial: string, ok: string) =>
      open<string | null>((resolve) => ({ kind: "prompt", title, label, initial, ok, resolve })),
    [open],
  );
  const confirm = useCallback(
    (title: string, body: ReactNode, ok: string, opts: { danger?: boolean; cancel?: string } = {}) =>
      open<boolean>((resolve) => ({ kind: "confirm", title, message: body, ok, ...opts, resolve })),
    [open],
  );

  const refreshPlans = useCallback(
    () =>
      backend
        .listPlans()
        .then((list) => {
          setPlans(list);
          return list;
        })
        .catch((e) => {
          report(e);
          return null;
        }),
    [report],
  );

  const save = useCallback(async (): Promise<boolean> => {
    const ed = latest.current.editor;
    if (!ed) return false;
    const draft = ed.hist.present;
    setSaving(true);
    try {
      const out = await backend.savePlan(draft, SAVE_MESSAGE);
      setEditor((cur) => (cur && cur.name === ed.name ? { ...cur, saved: draft, revision: out.saved.revision } : cur));
      clearDraft(ed.name);
      void refreshPlans();
      return true;
    } catch (e) {
      report(e);
      return false;
    } finally {
      setSaving(false);
    }
  }, [refreshPlans, report]);

  const discard = useCallback(() => {
    const ed = latest.current.editor;
    if (ed) clearDraft(ed.name);
    setEditor((cur) => (cur ? { ...cur, hist: push(cur.hist, cur.saved) } : cur));
  }, []);

  /** Asks to save a dirty draft: true when the caller may go on. */
  const settleDraft = useCallback(
    async (why: string): Promise<boolean> => {
      const { editor: ed, dirty: isDirty } = latest.current;
      if (!ed || !isDirty) return true;
      const choice = await open<"save" | "discard" | "cancel">((resolve) => ({
        kind: "unsaved",
        title: `Save changes to ${ed.name}?`,
        message: <p>{why} Your changes are not saved yet.</p>,
        resolve,
      }));
      if (choice === "cancel") return false;
      if (choice === "save") return save();
      discard();
      return true;
    },
    [open, save, discard],
  );

  const openPlan = useCallback(
    async (name: string, checkLeave = true) => {
      if (checkLeave && latest.current.editor?.name === name) return;
      if (checkLeave && !(await settleDraft("You are switching to another plan."))) return;
      setLoadingPlan(name);
      try {
        const view = await backend.showPlan(name);
        let hist = createHistory(view.plan);
        const stored = loadDraft(view.name);
        if (stored && !samePlan(stored.plan, view.plan)) {
          const restore = await confirm(
            "Restore unsaved changes?",
            <p>
              Plan <strong>{view.name}</strong> has changes from {formatTime(stored.savedAt)} that were never saved (based on revision{" "}
              {stored.revision}; the plan is now at revision {view.revision}).
            </p>,
            "Restore",
            { cancel: "Discard them" },
          );
          if (restore) hist = push(hist, stored.plan);
          else clearDraft(view.name);
        }
        setEditor({ name: view.name, revision: view.revision, saved: view.plan, hist });
        setFindings(view.findings);
        setSelected([]);
        setFocus(null);
      } catch (e) {
        report(e);
      } finally {
        setLoadingPlan(null);
      }
    },
    [settleDraft, confirm, report],
  );

  // Start: app info, the plans (opening the first), and the boot server's state and messages.
  useEffect(() => {
    let live = true;
    backend.appInfo().then(setInfo).catch(report);
    backend
      .listPlans()
      .then((list) => {
        if (!live) return;
        setPlans(list);
        if (list[0]) void openPlan(list[0].name, false);
      })
      .catch(report);
    return () => {
      live = false;
    };
  }, [report, openPlan]);

  useEffect(() => {
    let live = true;
    // Live lines wait here until the status (with every line so far) has arrived; then each
    // line is applied once, by its run and number.
    let buffer: SidecarLine[] | null = [];
    let cursor = startCursor;
    const apply = (lines: SidecarLine[]) => {
      const [msgs, next] = unseen(cursor, lines);
      cursor = next;
      setBoot((b) => msgs.reduce(foldMessage, b));
      setSightings((list) => mergeSightings(list, sightingsFromMessages(msgs)));
      for (const msg of msgs) {
        if (msg.type === "ready") setBootRunning(true);
        if (msg.type === "error") setBootError(msg.error);
      }
    };
    const unlisten = [
      events.onBootMessage((msg) => {
        if (!live) return;
        if (buffer) buffer.push(msg);
        else apply([msg]);
      }),
      events.onBootStopped((stopped) => {
        if (!live) return;
        setBootRunning(false);
        if (stopped.error) setBootError(stopped.error);
      }),
    ];
    Promise.all(unlisten)
      .then(() => backend.bootStatus())
      .then((status) => {
        if (!live) return;
        const later = buffer ?? [];
        buffer = null;
        [, cursor] = unseen(startCursor, status.messages);
        setBoot(foldMessages(status.messages));
        setSightings((s) => mergeSightings(s, sightingsFromMessages(status.messages)));
        setBootRunning(status.running);
        setBootError(status.error);
        apply(later);
      })
      .catch((e) => {
        buffer = null;
        report(e);
      });
    return () => {
      live = false;
      for (const u of unlisten) u.then((f) => f()).catch(() => {});
    };
  }, [report]);

  // Closing the window with a dirty draft asks first.
  useEffect(() => {
    let unlisten: Promise<() => void> | null = null;
    try {
      unlisten = appWindow.onCloseRequested(() => settleDraft("You are closing Flatlab."));
      unlisten.catch(() => {});
    } catch {
      // Not in a Tauri window (tests without a window mock).
    }
    return () => {
      unlisten?.then((f) => f()).catch(() => {});
    };
  }, [settleDraft]);

  // Validation on every change, debounced.
  useEffect(() => {
    if (!plan) return;
    let live = true;
    const timer = window.setTimeout(() => {
      backend
        .validatePlan(plan)
        .then((f) => live && setFindings(f))
        .catch((e) => live && report(e));
    }, 150);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [plan, report]);

  // The dirty draft survives a crash: kept in localStorage until saved or discarded.
  useEffect(() => {
    if (!editor) return;
    if (dirty) storeDraft(editor.name, { plan: editor.hist.present, revision: editor.revision, savedAt: Date.now() });
    else clearDraft(editor.name);
  }, [editor, dirty]);

  const edit: Edit = useCallback((fn, coalesce) => {
    setEditor((ed) => (ed ? { ...ed, hist: push(ed.hist, fn(ed.hist.present), coalesce ?? null) } : ed));
  }, []);
  const doUndo = useCallback(() => setEditor((ed) => (ed ? { ...ed, hist: undo(ed.hist) } : ed)), []);
  const doRedo = useCallback(() => setEditor((ed) => (ed ? { ...ed, hist: redo(ed.hist) } : ed)), []);

  // Keyboard: Ctrl+S, Ctrl+Z, Ctrl+Shift+Z, Ctrl+Y.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (latest.current.modalOpen || !(e.ctrlKey || e.metaKey) || e.altKey) return;
      const k = e.key.toLowerCase();
      if (k === "s") {
        e.preventDefault();
        if (latest.current.dirty) void save();
      } else if (k === "z" && !e.shiftKey) {
        e.preventDefault();
        doUndo();
      } else if ((k === "z" && e.shiftKey) || k === "y") {
        e.preventDefault();
        doRedo();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [save, doUndo, doRedo]);

  // Canvas and inspector.
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

  const target: InspectorTarget = useMemo(() => {
    if (selected.length === 0) return { kind: "cluster" };
    if (selected.length > 1) return { kind: "many", count: selected.length };
    const index = Number(selected[0].slice(1));
    return selected[0].startsWith("n") ? { kind: "node", index } : { kind: "switch", index };
  }, [selected]);

  const decorations: Decorations = useMemo(() => {
    const sev = severityByIndex(findings);
    return { nodeFindings: sev.nodes, switchFindings: sev.switches, stages: (plan?.nodes ?? []).map((n) => nodeStage(boot, n) ?? "") };
  }, [findings, boot, plan]);

  const onFinding = useCallback((finding: Finding) => {
    const current = latest.current.editor?.hist.present;
    if (!current) return;
    const t = finding.target;
    let field = inspectorField(t);
    if (t.kind === "node") {
      setSelected(t.index < current.nodes.length ? [`n${t.index}`] : []);
      field = field || "name";
    } else if (t.kind === "switch") {
      setSelected(t.index < (current.switches ?? []).length ? [`s${t.index}`] : []);
      field = "name";
    } else {
      setSelected([]);
      if (field === "name") field = "plan-name";
    }
    setTab("design");
    setFocus((f) => ({ field, seq: (f?.seq ?? 0) + 1 }));
  }, []);

  const onAdd = useCallback(
    (kind: "server" | "agent" | "switch") => {
      const current = latest.current.editor?.hist.present;
      if (!current) return;
      if (kind === "switch") {
        edit((p) => addSwitch(p).plan);
        setSelected([`s${(current.switches ?? []).length}`]);
      } else {
        edit((p) => addNode(p, kind).plan);
        setSelected([`n${current.nodes.length}`]);
      }
    },
    [edit],
  );

  const removeSelected = useCallback(() => {
    const nodes = selected.filter((id) => id.startsWith("n")).map((id) => Number(id.slice(1)));
    const switches = selected.filter((id) => id.startsWith("s")).map((id) => Number(id.slice(1)));
    edit((p) => removeItems(p, nodes, switches));
    setSelected([]);
  }, [selected, edit]);

  const addSighting = useCallback(
    (mac: string, at?: Position) => {
      const current = latest.current.editor?.hist.present;
      if (!current) return;
      const s = sightings.find((x) => x.mac && normalizeMac(x.mac) === normalizeMac(mac));
      const name = hostnameToNodeName(s?.name ?? s?.node) ?? undefined;
      edit((p) => {
        const role = p.nodes.some((n) => n.role === "server") ? "agent" : "server";
        return addNode(p, role, { mac, name, ...(at ? { position: at } : {}) }).plan;
      });
      setSelected([`n${current.nodes.length}`]);
    },
    [edit, sightings],
  );

  const scan = useCallback(() => {
    setScanning(true);
    backend
      .discover(3)
      .then((found) => setSightings((s) => mergeSightings(s, found)))
      .catch(report)
      .finally(() => setScanning(false));
  }, [report]);

  const macs = useMemo(() => (plan ? planMacs(plan) : new Set<string>()), [plan]);

  // Sidebar actions.
  const newPlan = async () => {
    const name = await prompt("New plan", "Name (lowercase letters, digits and -)", "", "Create");
    if (!name) return;
    if (!(await settleDraft("You are switching to a new plan."))) return;
    try {
      const out = await backend.createPlan(name);
      await refreshPlans();
      await openPlan(out.saved.name, false);
    } catch (e) {
      report(e);
    }
  };

  const renamePlan = async () => {
    if (!editor) return;
    const old = editor.name;
    const name = await prompt(`Rename ${old}`, "New name", old, "Rename");
    if (!name || name === old) return;
    if (!(await settleDraft("Renaming works on the saved plan."))) return;
    try {
      const out = await backend.renamePlan(old, name);
      clearDraft(old);
      await refreshPlans();
      await openPlan(out.name, false);
    } catch (e) {
      report(e);
    }
  };

  const duplicatePlan = async () => {
    if (!editor) return;
    const name = await prompt(`Duplicate ${editor.name}`, "Name of the copy", `${editor.name}-copy`, "Duplicate");
    if (!name) return;
    if (!(await settleDraft("The copy is made of the saved plan, and opened."))) return;
    try {
      const out = await backend.duplicatePlan(editor.name, name);
      await refreshPlans();
      await openPlan(out.name, false);
    } catch (e) {
      report(e);
    }
  };

  const deletePlan = async () => {
    if (!editor) return;
    const name = editor.name;
    const ok = await confirm(
      `Delete ${name}?`,
      <p>
        Plan <strong>{name}</strong> is removed with all its revisions and its secrets (such as the K3s token). This cannot be undone:
        export the plan file first if you may want it back.
      </p>,
      "Delete",
      { danger: true },
    );
    if (!ok) return;
    try {
      await backend.deletePlan(name);
      clearDraft(name);
      setEditor(null);
      setFindings([]);
      setSelected([]);
      const list = await refreshPlans();
      if (list?.[0]) await openPlan(list[0].name, false);
    } catch (e) {
      report(e);
    }
  };

  const showHistory = async () => {
    if (!editor) return;
    const name = editor.name;
    let revisions: RevisionInfo[];
    try {
      revisions = await backend.planHistory(name);
    } catch (e) {
      report(e);
      return;
    }
    const rev = await open<number | null>((resolve) => ({
      kind: "history",
      title: `History of ${name}`,
      revisions,
      current: editor.revision,
      resolve,
    }));
    if (rev === null) return;
    if (!(await settleDraft(`Reverting saves revision ${rev} again as the newest.`))) return;
    try {
      await backend.revertPlan(name, rev);
      await refreshPlans();
      await openPlan(name, false);
      setNotice(`Reverted ${name} to revision ${rev}.`);
    } catch (e) {
      report(e);
    }
  };

  const importPlan = async () => {
    try {
      const path = await dialogs.openPlanFile();
      if (!path) return;
      if (!(await settleDraft("You are opening the imported plan."))) return;
      const out = await backend.importPlanFile(path);
      await refreshPlans();
      await openPlan(out.saved.name, false);
      const errors = out.findings.filter((f) => f.severity === "error").length;
      setNotice(
        `${out.saved.changed ? "Imported" : "Nothing new in"} ${path.split("/").pop()} as ${out.saved.name} revision ${out.saved.revision}` +
          (errors ? ` (${errors} error${errors === 1 ? "" : "s"} to fix)` : "") +
          ".",
      );
    } catch (e) {
      report(e);
    }
  };

  const exportPlan = async () => {
    if (!editor) return;
    const name = editor.name;
    if (!(await settleDraft("The plan file is written from the saved plan."))) return;
    try {
      const path = await dialogs.savePlanFile(`${name}.yaml`);
      if (!path) return;
      const rev = await backend.exportPlanFile(name, path);
      setNotice(`Wrote revision ${rev} of ${name} to ${path}.`);
    } catch (e) {
      report(e);
    }
  };

  const about = () =>
    open<null>((resolve) => ({
      kind: "about",
      title: "About Flatlab",
      body: info ? (
        <dl className="about">
          <dt>Version</dt>
          <dd data-testid="about-version">{info.version}</dd>
          <dt>Revision</dt>
          <dd className="mono">{info.revision}</dd>
          <dt>Database</dt>
          <dd className="mono">{info.db_path}</dd>
        </dl>
      ) : (
        <p>Loading…</p>
      ),
      resolve,
    }));

  const installConfirm = useCallback((title: string, body: string, ok: string) => confirm(title, <p>{body}</p>, ok), [confirm]);
  const addToPalette = useCallback((m: MachineView) => {
    setSightings((s) => mergeSightings(s, [sightingFromBoot(m.mac, m.firmware)]));
    setTab("design");
    setNotice(`${m.mac} is in the palette on the left: drag it onto the canvas, or press Add.`);
  }, []);
  const clearBootError = useCallback((e: ErrorBody | null) => setBootError(e), []);
  const onStarted = useCallback(() => setBootRunning(true), []);
  const onStopped = useCallback(() => setBootRunning(false), []);

  const hist = editor?.hist;

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">Flatlab</span>
        {editor && (
          <span className="title">
            <strong data-testid="plan-title">{editor.name}</strong>
            <span className="muted small" data-testid="revision">
              rev {editor.revision}
            </span>
            {dirty && (
              <span className="dirty-dot" data-testid="dirty" title="Unsaved changes" aria-label="Unsaved changes">
                ●
              </span>
            )}
          </span>
        )}
        {loadingPlan && editor && <span className="muted small">Opening {loadingPlan}…</span>}
        <div className="toolbar">
          <button data-testid="undo" onClick={doUndo} disabled={!hist || !canUndo(hist)} title="Undo (Ctrl+Z)">
            ↶ Undo
          </button>
          <button data-testid="redo" onClick={doRedo} disabled={!hist || !canRedo(hist)} title="Redo (Ctrl+Shift+Z)">
            ↷ Redo
          </button>
          <button className="primary" data-testid="save" onClick={() => void save()} disabled={!dirty || saving} title="Save (Ctrl+S)">
            {saving ? "Saving…" : "Save"}
          </button>
        </div>
        <nav className="tabs" role="tablist" aria-label="Views">
          {TABS.map(([id, label]) => (
            <button key={id} role="tab" aria-selected={tab === id} className={tab === id ? "tab active" : "tab"} data-testid={`tab-${id}`} onClick={() => setTab(id)}>
              {label}
              {id === "install" && bootRunning && <span className="status-dot on" title="Boot server running" />}
            </button>
          ))}
        </nav>
        <span className="spacer" />
        <button className="link" data-testid="about" onClick={() => void about()}>
          About{info ? ` · v${info.version}` : ""}
        </button>
      </header>

      {error && (
        <div className="banner error" role="alert">
          <span>{error}</span>
          <button onClick={() => setError(null)} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
      {notice && (
        <div className="banner success" role="status">
          <span>{notice}</span>
          <button onClick={() => setNotice(null)} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}

      <div className="body">
        <nav className="sidebar" aria-label="Plans">
          <div className="section-head">
            <h2>Plans</h2>
            <button data-testid="plan-new" onClick={() => void newPlan()} title="Create a plan">
              New
            </button>
            <button data-testid="plan-import" onClick={() => void importPlan()} title="Import a plan file">
              Import
            </button>
          </div>
          {plans === null && <p className="muted">Loading…</p>}
          {plans?.length === 0 && <p className="muted">No plans yet. Create a plan or import a plan file.</p>}
          <ul className="plan-list">
            {plans?.map((p) => (
              <li key={p.name}>
                <button className={p.name === editor?.name ? "plan active" : "plan"} onClick={() => void openPlan(p.name)} data-testid={`plan-${p.name}`}>
                  <span className="plan-name">
                    {p.name}
                    {p.name === editor?.name && dirty && <span className="dirty-dot small">●</span>}
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
            <button data-testid="plan-rename" onClick={() => void renamePlan()} disabled={!editor}>
              Rename
            </button>
            <button data-testid="plan-duplicate" onClick={() => void duplicatePlan()} disabled={!editor}>
              Duplicate
            </button>
            <button data-testid="plan-history" onClick={() => void showHistory()} disabled={!editor}>
              History
            </button>
            <button data-testid="plan-export" onClick={() => void exportPlan()} disabled={!editor}>
              Export file
            </button>
            <button className="danger" data-testid="plan-delete" onClick={() => void deletePlan()} disabled={!editor}>
              Delete
            </button>
          </div>
          {tab === "design" && editor && <Palette sightings={sightings} planMacs={macs} scanning={scanning} onScan={scan} onAdd={addSighting} />}
        </nav>

        <main className="main">
          {!editor || !plan ? (
            <div className="empty">
              {loadingPlan ? (
                <p className="muted">Opening {loadingPlan}…</p>
              ) : plans?.length === 0 ? (
                <>
                  <h1>Create a plan or import a plan file</h1>
                  <p className="muted">A plan describes your cluster: the machines, their roles and disks, and the network they sit on.</p>
                  <div className="buttons">
                    <button className="primary" onClick={() => void newPlan()}>
                      Create a plan
                    </button>
                    <button onClick={() => void importPlan()}>Import a plan file</button>
                  </div>
                </>
              ) : (
                <p className="muted">{plans === null ? "Loading…" : "Choose a plan on the left."}</p>
              )}
            </div>
          ) : tab === "design" ? (
            <div className="design">
              <div className="canvas-wrap">
                <Canvas
                  key={editor.name}
                  plan={plan}
                  decorations={decorations}
                  selected={selected}
                  onSelectChanges={onSelectChanges}
                  onEdit={edit}
                  onDropSighting={addSighting}
                  onAdd={onAdd}
                  onError={report}
                  reveal={focus?.seq ?? 0}
                />
              </div>
              <Inspector
                plan={plan}
                target={target}
                findings={findings}
                onEdit={edit}
                onFinding={onFinding}
                focus={focus}
                onError={report}
                onRemoveSelected={removeSelected}
              />
            </div>
          ) : tab === "generate" ? (
            <GenerateView plan={plan} findings={findings} onFinding={onFinding} />
          ) : tab === "install" ? (
            <InstallView
              plan={plan}
              planName={editor.name}
              boot={boot}
              running={bootRunning}
              error={bootError}
              ensureSaved={settleDraft}
              confirm={installConfirm}
              onStarted={onStarted}
              onStopped={onStopped}
              onError={clearBootError}
              onReport={report}
              onAddToPalette={addToPalette}
            />
          ) : (
            <ExportView planName={editor.name} ensureSaved={settleDraft} onReport={report} />
          )}
        </main>
      </div>
      {modal && <Modal key={modal.id} spec={modal.spec} />}
    </div>
  );
}
