// Unsaved drafts kept in localStorage, one per plan name, so that a crash or a forced close
// does not lose work. The app offers to restore one when its plan is opened again.
import type { Plan } from "../lib/ipc";

const PREFIX = "flatlab.draft.";

export interface StoredDraft {
  plan: Plan;
  /** The revision the draft was based on. */
  revision: number;
  savedAt: number;
}

export function storeDraft(name: string, draft: StoredDraft): void {
  try {
    localStorage.setItem(PREFIX + name, JSON.stringify(draft));
  } catch {
    // Storage full or unavailable: the in-memory draft is still there.
  }
}

export function loadDraft(name: string): StoredDraft | null {
  try {
    const raw = localStorage.getItem(PREFIX + name);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as StoredDraft;
    return parsed && typeof parsed === "object" && parsed.plan ? parsed : null;
  } catch {
    return null;
  }
}

export function clearDraft(name: string): void {
  try {
    localStorage.removeItem(PREFIX + name);
  } catch {
    // Nothing to do.
  }
}

/** Deep equality of JSON values, ignoring key order and keys whose value is undefined. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => deepEqual(ra[k], rb[k]));
}

export function samePlan(a: Plan, b: Plan): boolean {
  return deepEqual(a, b);
}
