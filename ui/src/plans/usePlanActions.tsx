// What the plans sidebar does: create, rename, duplicate, delete, history and revert, import and
// export of plan files. Each settles a dirty draft first where the action works on the saved plan.
import { useEffect } from "react";
import { backend, dialogs as files, type PlanListing, type RevisionInfo } from "../lib/ipc";
import type { Dialogs } from "../app/useModal";
import { clearDraft } from "./drafts";
import type { PlanEditor } from "./usePlanEditor";

interface Options {
  editor: PlanEditor;
  refreshPlans: () => Promise<PlanListing[] | null>;
  dialogs: Dialogs;
  report: (e: unknown) => void;
  notify: (text: string) => void;
}

export function usePlanActions({ editor, refreshPlans, dialogs, report, notify }: Options) {
  const { current, open, close, settleDraft } = editor;
  const { ask, prompt, confirm } = dialogs;

  // At start: the plans, opening the first.
  useEffect(() => {
    let live = true;
    void refreshPlans().then((list) => {
      if (live && list?.[0]) void open(list[0].name, false);
    });
    return () => {
      live = false;
    };
  }, [refreshPlans, open]);

  const create = async () => {
    const name = await prompt("New plan", "Name (lowercase letters, digits and -)", "", "Create");
    if (!name) return;
    if (!(await settleDraft("You are switching to a new plan."))) return;
    try {
      const out = await backend.createPlan(name);
      await refreshPlans();
      await open(out.saved.name, false);
    } catch (e) {
      report(e);
    }
  };

  const rename = async () => {
    if (!current) return;
    const old = current.name;
    const name = await prompt(`Rename ${old}`, "New name", old, "Rename");
    if (!name || name === old) return;
    if (!(await settleDraft("Renaming works on the saved plan."))) return;
    try {
      const out = await backend.renamePlan(old, name);
      clearDraft(old);
      await refreshPlans();
      await open(out.name, false);
    } catch (e) {
      report(e);
    }
  };

  const duplicate = async () => {
    if (!current) return;
    const name = await prompt(`Duplicate ${current.name}`, "Name of the copy", `${current.name}-copy`, "Duplicate");
    if (!name) return;
    if (!(await settleDraft("The copy is made of the saved plan, and opened."))) return;
    try {
      const out = await backend.duplicatePlan(current.name, name);
      await refreshPlans();
      await open(out.name, false);
    } catch (e) {
      report(e);
    }
  };

  const remove = async () => {
    if (!current) return;
    const name = current.name;
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
      close();
      const list = await refreshPlans();
      if (list?.[0]) await open(list[0].name, false);
    } catch (e) {
      report(e);
    }
  };

  /** Lists the revisions; reverting to one saves it again as the newest. */
  const history = async () => {
    if (!current) return;
    const name = current.name;
    let revisions: RevisionInfo[];
    try {
      revisions = await backend.planHistory(name);
    } catch (e) {
      report(e);
      return;
    }
    const rev = await ask<number | null>((resolve) => ({
      kind: "history",
      title: `History of ${name}`,
      revisions,
      current: current.revision,
      resolve,
    }));
    if (rev === null) return;
    if (!(await settleDraft(`Reverting saves revision ${rev} again as the newest.`))) return;
    try {
      await backend.revertPlan(name, rev);
      await refreshPlans();
      await open(name, false);
      notify(`Reverted ${name} to revision ${rev}.`);
    } catch (e) {
      report(e);
    }
  };

  const importFile = async () => {
    try {
      const path = await files.openPlanFile();
      if (!path) return;
      if (!(await settleDraft("You are opening the imported plan."))) return;
      const out = await backend.importPlanFile(path);
      await refreshPlans();
      await open(out.saved.name, false);
      const errors = out.findings.filter((f) => f.severity === "error").length;
      notify(
        `${out.saved.changed ? "Imported" : "Nothing new in"} ${path.split("/").pop()} as ${out.saved.name} revision ${out.saved.revision}` +
          (errors ? ` (${errors} error${errors === 1 ? "" : "s"} to fix)` : "") +
          ".",
      );
    } catch (e) {
      report(e);
    }
  };

  const exportFile = async () => {
    if (!current) return;
    const name = current.name;
    if (!(await settleDraft("The plan file is written from the saved plan."))) return;
    try {
      const path = await files.savePlanFile(`${name}.yaml`);
      if (!path) return;
      const rev = await backend.exportPlanFile(name, path);
      notify(`Wrote revision ${rev} of ${name} to ${path}.`);
    } catch (e) {
      report(e);
    }
  };

  return { open, create, rename, duplicate, remove, history, importFile, exportFile };
}

export type PlanActions = ReturnType<typeof usePlanActions>;
