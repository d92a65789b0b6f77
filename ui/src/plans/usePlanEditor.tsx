// The open plan: its draft with undo history, the dirty flag against the newest saved revision,
// validation of every change, the draft kept in localStorage until saved, and the questions
// asked before a dirty draft is left (another plan, closing the window).
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { appWindow, backend, type Finding, type Plan } from "../lib/ipc";
import { formatTime } from "../app/Modal";
import type { Dialogs } from "../app/useModal";
import type { Edit } from "../design/plan";
import { canRedo, canUndo, createHistory, push, redo, undo, type History } from "./history";
import { clearDraft, loadDraft, samePlan, storeDraft } from "./drafts";

interface Editor {
  name: string;
  revision: number;
  /** The newest saved revision; the draft is dirty when it differs. */
  saved: Plan;
  hist: History<Plan>;
}

/** The message of every revision saved from the editor. */
export const SAVE_MESSAGE = "edited in the app";

/** How long typing pauses before the draft is validated. */
const VALIDATE_AFTER_MS = 150;

interface Options {
  dialogs: Pick<Dialogs, "ask" | "confirm">;
  /** True while a dialog is up: the keyboard shortcuts wait for it. */
  modalOpen: boolean;
  report: (e: unknown) => void;
  /** After a save, so that the plan list shows the new revision. Must keep its identity. */
  onSaved: () => void;
  /** When another plan (or none) is opened: what was selected belonged to the old one. Must keep its identity. */
  onSwitch: () => void;
}

export function usePlanEditor({ dialogs, modalOpen, report, onSaved, onSwitch }: Options) {
  const { ask, confirm } = dialogs;
  const [editor, setEditor] = useState<Editor | null>(null);
  const [findings, setFindings] = useState<Finding[]>([]);
  const [saving, setSaving] = useState(false);
  const [loading, setLoading] = useState<string | null>(null);

  const plan = editor?.hist.present ?? null;
  const dirty = useMemo(() => (editor ? !samePlan(editor.hist.present, editor.saved) : false), [editor]);

  // The newest state for async flows and window-level handlers.
  const latest = useRef({ editor, dirty, modalOpen });
  useEffect(() => {
    latest.current = { editor, dirty, modalOpen };
  });

  const save = useCallback(async (): Promise<boolean> => {
    const ed = latest.current.editor;
    if (!ed) return false;
    const draft = ed.hist.present;
    setSaving(true);
    try {
      const out = await backend.savePlan(draft, SAVE_MESSAGE);
      setEditor((cur) => (cur && cur.name === ed.name ? { ...cur, saved: draft, revision: out.saved.revision } : cur));
      clearDraft(ed.name);
      onSaved();
      return true;
    } catch (e) {
      report(e);
      return false;
    } finally {
      setSaving(false);
    }
  }, [onSaved, report]);

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
      const choice = await ask<"save" | "discard" | "cancel">((resolve) => ({
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
    [ask, save, discard],
  );

  /** Opens a plan; with `checkLeave`, not the one already open and only after settling a dirty draft. */
  const open = useCallback(
    async (name: string, checkLeave = true) => {
      if (checkLeave && latest.current.editor?.name === name) return;
      if (checkLeave && !(await settleDraft("You are switching to another plan."))) return;
      setLoading(name);
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
        onSwitch();
      } catch (e) {
        report(e);
      } finally {
        setLoading(null);
      }
    },
    [settleDraft, confirm, report, onSwitch],
  );

  /** Leaves no plan open (after the open one was deleted). */
  const close = useCallback(() => {
    setEditor(null);
    setFindings([]);
    onSwitch();
  }, [onSwitch]);

  const edit: Edit = useCallback((fn, coalesce) => {
    setEditor((ed) => (ed ? { ...ed, hist: push(ed.hist, fn(ed.hist.present), coalesce ?? null) } : ed));
  }, []);
  const doUndo = useCallback(() => setEditor((ed) => (ed ? { ...ed, hist: undo(ed.hist) } : ed)), []);
  const doRedo = useCallback(() => setEditor((ed) => (ed ? { ...ed, hist: redo(ed.hist) } : ed)), []);

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
    }, VALIDATE_AFTER_MS);
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

  /** The open plan's draft, by the name and revision it was saved as. */
  const current = useMemo(() => (editor ? { name: editor.name, revision: editor.revision, plan: editor.hist.present } : null), [editor]);

  return {
    current,
    /** The draft's findings (validated shortly after each change). */
    findings,
    dirty,
    saving,
    /** The plan being opened, if any. */
    loading,
    canUndo: editor ? canUndo(editor.hist) : false,
    canRedo: editor ? canRedo(editor.hist) : false,
    open,
    close,
    save,
    settleDraft,
    edit,
    undo: doUndo,
    redo: doRedo,
  };
}

export type PlanEditor = ReturnType<typeof usePlanEditor>;
