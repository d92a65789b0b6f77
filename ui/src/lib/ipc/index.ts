// The only module that talks to the Tauri backend. Everything else imports from here.
import { invoke } from "@tauri-apps/api/core";
import type { ErrorBody } from "./bindings/ErrorBody";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { Finding } from "./bindings/Finding";
import type { Plan } from "./bindings/Plan";
import type { PlanListing } from "./bindings/PlanListing";
import type { PlanView } from "./bindings/PlanView";
import type { SaveOutcome } from "./bindings/SaveOutcome";

export type { ErrorCode, Finding, Plan, PlanListing, PlanView, SaveOutcome };
export type { Node } from "./bindings/Node";
export type { Role } from "./bindings/Role";
export type { Severity } from "./bindings/Severity";

export interface AppInfo {
  version: string;
  db_path: string;
}

/** A failed command: branch on `code`, show `message`. */
export class IpcError extends Error {
  readonly code: ErrorCode | "ipc";

  constructor(code: ErrorCode | "ipc", message: string) {
    super(message);
    this.code = code;
    this.name = "IpcError";
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ErrorBody).code === "string" &&
    typeof (value as ErrorBody).message === "string"
  );
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    if (isErrorBody(error)) throw new IpcError(error.code, error.message);
    throw new IpcError("ipc", String(error));
  }
}

export const backend = {
  appInfo: () => call<AppInfo>("app_info"),
  listPlans: () => call<PlanListing[]>("list_plans"),
  showPlan: (name: string, revision?: number) => call<PlanView>("show_plan", { name, revision: revision ?? null }),
  validatePlan: (plan: Plan) => call<Finding[]>("validate_plan", { plan }),
  savePlan: (plan: Plan, message: string) => call<SaveOutcome>("save_plan", { plan, message }),
};
