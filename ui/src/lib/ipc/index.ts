// The only module that talks to the Tauri backend. Everything else imports from here.
//
// Commands are thin wrappers over `flatlab-api` (src-tauri/src/main.rs); their types are
// generated from Rust with ts-rs into ./bindings and checked in CI.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { getCurrentWindow } from "@tauri-apps/api/window";
import type { AppInfo } from "./bindings/AppInfo";
import type { Drive } from "./bindings/Drive";
import type { Ejection } from "./bindings/Ejection";
import type { ErrorBody } from "./bindings/ErrorBody";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { Finding } from "./bindings/Finding";
import type { GitOutcome } from "./bindings/GitOutcome";
import type { NetInterface } from "./bindings/NetInterface";
import type { Plan } from "./bindings/Plan";
import type { PlanListing } from "./bindings/PlanListing";
import type { PlanView } from "./bindings/PlanView";
import type { PreviewFile } from "./bindings/PreviewFile";
import type { RevisionInfo } from "./bindings/RevisionInfo";
import type { SaveOutcome } from "./bindings/SaveOutcome";
import type { Saved } from "./bindings/Saved";
import type { SidecarMessage } from "./bindings/SidecarMessage";
import type { SidecarLine } from "./bindings/SidecarLine";
import type { BootStatus } from "./bindings/BootStatus";
import type { BootStopped } from "./bindings/BootStopped";
import type { StartOptions } from "./bindings/StartOptions";
import type { ExportProgress } from "./bindings/ExportProgress";
import type { GitExportOptions } from "./bindings/GitExportOptions";
import type { DhcpMode } from "./bindings/DhcpMode";
import type { Sighting } from "./bindings/Sighting";
import type { SshPublicKey } from "./bindings/SshPublicKey";
import type { ClusterStatus } from "./bindings/ClusterStatus";
import type { KubeconfigSaved } from "./bindings/KubeconfigSaved";
import type { UpgradeStarted } from "./bindings/UpgradeStarted";
import type { SnapshotList } from "./bindings/SnapshotList";
import type { SnapshotView } from "./bindings/SnapshotView";
import type { DownloadedSnapshot } from "./bindings/DownloadedSnapshot";
import type { TakenSnapshot } from "./bindings/TakenSnapshot";
import type { RestoreStarted } from "./bindings/RestoreStarted";
import type { RestoreProgress } from "./bindings/RestoreProgress";
import type { RestoreServer } from "./bindings/RestoreServer";
import type { MachineInventory } from "./bindings/MachineInventory";
import type { MirrorSettings } from "./bindings/MirrorSettings";
import type { MirrorOverview } from "./bindings/MirrorOverview";
import type { MirrorProgress } from "./bindings/MirrorProgress";
import type { ReleaseVersions } from "./bindings/ReleaseVersions";
import type { ImagesReadiness } from "./bindings/ImagesReadiness";
import type { FetchRequest } from "./bindings/FetchRequest";
import type { FetchOutcome } from "./bindings/FetchOutcome";
import type { FileCheck } from "./bindings/FileCheck";
import type { InspectRequested } from "./bindings/InspectRequested";
import type { PoweredOn } from "./bindings/PoweredOn";
import type { DbProblem } from "./bindings/DbProblem";

export type {
  AppInfo,
  Drive,
  Ejection,
  ErrorBody,
  ErrorCode,
  Finding,
  GitOutcome,
  NetInterface,
  Plan,
  PlanListing,
  PlanView,
  PreviewFile,
  RevisionInfo,
  SaveOutcome,
  Saved,
  SidecarMessage,
  SidecarLine,
  Sighting,
  SshPublicKey,
  BootStatus,
  BootStopped,
  StartOptions,
  ExportProgress,
  GitExportOptions,
  DhcpMode,
  ClusterStatus,
  KubeconfigSaved,
  UpgradeStarted,
  SnapshotList,
  SnapshotView,
  DownloadedSnapshot,
  TakenSnapshot,
  RestoreStarted,
  RestoreProgress,
  RestoreServer,
  MachineInventory,
  MirrorSettings,
  MirrorOverview,
  MirrorProgress,
  ReleaseVersions,
  ImagesReadiness,
  FetchRequest,
  FetchOutcome,
  FileCheck,
  InspectRequested,
  PoweredOn,
  DbProblem,
};
export type { MirroredRelease } from "./bindings/MirroredRelease";
export type { MirroredK3s } from "./bindings/MirroredK3s";
export type { ChannelRelease } from "./bindings/ChannelRelease";
export type { K3sChannel } from "./bindings/K3sChannel";
export type { NodeView } from "./bindings/NodeView";
export type { NodeState } from "./bindings/NodeState";
export type { Reach } from "./bindings/Reach";
export type { Reboot } from "./bindings/Reboot";
export type { UpgradeView } from "./bindings/UpgradeView";
export { STAGES } from "./bindings/stages";
export type { Alert } from "./bindings/Alert";
export type { Diagnosis } from "./bindings/Diagnosis";
export type { Target } from "./bindings/Target";
export type { Arch } from "./bindings/Arch";
export type { Channel } from "./bindings/Channel";
export type { EmbeddedFile } from "./bindings/EmbeddedFile";
export type { Event as BootEvent } from "./bindings/Event";
export type { HistoryEntry } from "./bindings/HistoryEntry";
export type { MachineStatus } from "./bindings/MachineStatus";
export type { Node } from "./bindings/Node";
export type { Position } from "./bindings/Position";
export type { Role } from "./bindings/Role";
export type { Severity } from "./bindings/Severity";
export type { Stage } from "./bindings/Stage";
export type { Switch } from "./bindings/Switch";
export type { Verdict } from "./bindings/Verdict";
export type { Inventory } from "./bindings/Inventory";
export type { Disk } from "./bindings/Disk";

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
  /** Why the database could not be opened at start; null when it is open. */
  dbProblem: () => call<DbProblem | null>("db_problem"),
  /** Opens another database file instead of the one that could not be opened. */
  openOtherDatabase: (path: string) => call<void>("open_other_database", { path }),
  quit: () => call<void>("quit"),

  // Plans. Every save is a revision; saving an identical plan writes nothing.
  listPlans: () => call<PlanListing[]>("list_plans"),
  showPlan: (name: string, revision?: number) => call<PlanView>("show_plan", { name, revision: revision ?? null }),
  validatePlan: (plan: Plan) => call<Finding[]>("validate_plan", { plan }),
  /** Asks the LAN about the plan's static addresses (about 1 s): one another host answers for is a warning on its node. */
  checkAddresses: (plan: Plan) => call<Finding[]>("check_addresses", { plan }),
  savePlan: (plan: Plan, message: string) => call<SaveOutcome>("save_plan", { plan, message }),
  /** A new, empty plan with the demo's OS and K3s settings. */
  createPlan: (name: string) => call<SaveOutcome>("create_plan", { name }),
  renamePlan: (name: string, newName: string) => call<Saved>("rename_plan", { name, newName }),
  duplicatePlan: (name: string, newName: string) => call<Saved>("duplicate_plan", { name, newName }),
  /** Returns how many revisions were removed. */
  deletePlan: (name: string) => call<number>("delete_plan", { name }),
  planHistory: (name: string) => call<RevisionInfo[]>("plan_history", { name }),
  revertPlan: (name: string, revision: number) => call<Saved>("revert_plan", { name, revision }),
  /** Imports a plan file; a plan with validation errors is kept so it can be fixed here. */
  importPlanFile: (path: string) => call<SaveOutcome>("import_plan_file", { path }),
  /** Writes the newest revision as a plan file; returns the revision written. */
  exportPlanFile: (name: string, path: string) => call<number>("export_plan_file", { name, path }),

  // Generate.
  previewPlan: (plan: Plan) => call<PreviewFile[]>("preview_plan", { plan }),
  sshPublicKeys: () => call<SshPublicKey[]>("ssh_public_keys"),
  /** The hardware each of the plan's machines reported when its install started. */
  inventories: (name: string) => call<MachineInventory[]>("inventories", { name }),

  // Discover.
  discover: (seconds: number) => call<Sighting[]>("discover", { seconds }),

  // Install.
  listInterfaces: () => call<NetInterface[]>("list_interfaces"),
  bootStart: (options: StartOptions) => call<void>("boot_start", { options }),
  bootStop: () => call<void>("boot_stop"),
  bootStatus: () => call<BootStatus>("boot_status"),
  /** Arms a node for reinstall: at once when the boot server runs, else at its next start. */
  /** `newCluster`: the plan's first server starts a new cluster (the old one's data is given up). */
  bootArm: (plan: string, node: string, newCluster = false) => call<void>("boot_arm", { plan, node, newCluster }),
  /** Wake-on-LAN magic packets for one node (or, with null, every node) on `iface` (null: the one on the plan's subnet). */
  powerOn: (plan: string, node: string | null, iface: string | null) => call<PoweredOn[]>("power_on", { plan, node, interface: iface }),
  /** Inspects a machine (a node, or a MAC) at its next network boot: it reports its hardware and waits to be armed. */
  inspectMachine: (plan: string, target: { node: string } | { mac: string }) =>
    call<InspectRequested>("inspect_machine", { plan, node: "node" in target ? target.node : null, mac: "mac" in target ? target.mac : null }),
  /** The machines of a plan to be inspected before their install (until armed). */
  inspections: (plan: string) => call<InspectRequested[]>("inspections", { plan }),
  /** Grants the boot server its port privilege (`setcap`, through pkexec's password prompt). */
  grantBootPrivilege: () => call<void>("grant_boot_privilege"),

  // Images: the mirror of the app's settings.
  mirrorSettings: () => call<MirrorSettings>("mirror_settings"),
  saveMirrorSettings: (settings: MirrorSettings) => call<void>("save_mirror_settings", { settings }),
  mirrorOverview: () => call<MirrorOverview>("mirror_overview"),
  /** Each Flatcar channel's current release and K3s's channels; a server that does not answer is a field. */
  releaseVersions: (arch: string) => call<ReleaseVersions>("release_versions", { arch }),
  /** Whether the mirror holds what `plan` (a draft) needs. */
  imagesReadiness: (plan: Plan) => call<ImagesReadiness>("images_readiness", { plan }),
  /** Fetches and verifies into the mirror; progress arrives as `onMirrorProgress`. Fails with code `cancelled` when cancelled. */
  mirrorFetch: (request: FetchRequest) => call<FetchOutcome>("mirror_fetch", { request }),
  /** Cancels the running fetch (it keeps what it downloaded); false when none runs. */
  mirrorCancel: () => call<boolean>("mirror_cancel"),
  mirrorVerify: () => call<FileCheck[]>("mirror_verify"),
  /** Keeps the newest `keep` releases of each channel; returns the folders removed. */
  mirrorPrune: (keep: number) => call<string[]>("mirror_prune", { keep }),

  // Export.
  listDrives: () => call<Drive[]>("list_drives"),
  /** Mounts an unmounted drive (through UDisks2; the desktop may ask for a password); returns its mount point. */
  mountDrive: (device: string) => call<string>("mount_drive", { device }),
  /** Unmounts a drive (by device or mount point) and powers it off, so it can be unplugged. */
  ejectDrive: (target: string) => call<Ejection>("eject_drive", { target }),
  /** Returns the folder written, `<mountpoint>/flatlab/<plan>`. */
  exportUsb: (name: string, mountpoint: string) => call<string>("export_usb", { name, mountpoint }),
  exportGit: (options: GitExportOptions) => call<GitOutcome>("export_git", { options }),

  // Cluster. `server` reaches the API at another address than the plan's (null: the plan's).
  /** The cluster as its API shows it now; an unreachable API is a status, not an error. */
  clusterStatus: (name: string, server: string | null) => call<ClusterStatus>("cluster_status", { name, server }),
  startK3sUpgrade: (name: string, version: string, sha256: string | null, server: string | null) =>
    call<UpgradeStarted>("start_k3s_upgrade", { name, version, sha256, server }),
  /** The cluster's etcd snapshots and the copies on this workstation. */
  clusterSnapshots: (name: string, server: string | null) => call<SnapshotList>("cluster_snapshots", { name, server }),
  /** Takes an etcd snapshot now. */
  takeSnapshot: (name: string, server: string | null) => call<TakenSnapshot>("take_snapshot", { name, server }),
  /** Copies a snapshot to this workstation through the Kubernetes API. */
  downloadSnapshot: (name: string, snapshot: string, server: string | null) =>
    call<DownloadedSnapshot>("download_snapshot", { name, snapshot, server }),
  /** Arms the plan's servers to bring the cluster back from a snapshot copied here. */
  restoreCluster: (name: string, snapshot: string) => call<RestoreStarted>("restore_cluster", { name, snapshot }),
  /** How a restore goes. */
  restoreProgress: (name: string, server: string | null) => call<RestoreProgress>("restore_progress", { name, server }),
  /** Drains a node the plan no longer has and deletes it from the cluster. */
  removeClusterNode: (name: string, node: string, server: string | null) => call<void>("remove_cluster_node", { name, node, server }),
  /** Writes a kubeconfig to `path`, or (null) adds the plan's context to ~/.kube/config. */
  saveKubeconfig: (name: string, path: string | null) => call<KubeconfigSaved>("save_kubeconfig", { name, path }),
  /** Writes the plan's secrets, age-encrypted to `recipients`, to `path`. */
  exportSecrets: (name: string, recipients: string[], path: string) => call<string>("export_secrets", { name, recipients, path }),
  /** Restores a secrets backup with an age identity file; returns how many secrets it holds. */
  importSecrets: (path: string, identity: string, replace: boolean) => call<number>("import_secrets", { path, identity, replace }),
};

/** Backend events. Each returns a function that stops listening. */
export const events = {
  onBootMessage: (handler: (line: SidecarLine) => void): Promise<UnlistenFn> =>
    listen<SidecarLine>("boot-message", (e) => handler(e.payload)),
  onBootStopped: (handler: (stopped: BootStopped) => void): Promise<UnlistenFn> =>
    listen<BootStopped>("boot-stopped", (e) => handler(e.payload)),
  onMirrorProgress: (handler: (progress: MirrorProgress) => void): Promise<UnlistenFn> =>
    listen<MirrorProgress>("mirror-progress", (e) => handler(e.payload)),
  onExportProgress: (handler: (progress: ExportProgress) => void): Promise<UnlistenFn> =>
    listen<ExportProgress>("export-progress", (e) => handler(e.payload)),
};

/**
 * Native file dialogs (tauri-plugin-dialog, shown by the Rust side). Each resolves to null when
 * the user cancels. Confirmations are in-app dialogs, not native ones.
 */
export const dialogs = {
  openPlanFile: () => call<string | null>("pick_open_plan_file"),
  savePlanFile: (defaultName: string) => call<string | null>("pick_save_plan_file", { defaultName }),
  pickFolder: (title: string) => call<string | null>("pick_folder", { title }),
  saveFile: (title: string, defaultName: string) => call<string | null>("pick_save_file", { title, defaultName }),
  /** `e2eName`: the file end-to-end runs answer with (in their dialog folder). */
  openFile: (title: string, e2eName: string) => call<string | null>("pick_open_file", { title, e2eName }),
};

/** The main window. */
export const appWindow = {
  /** Calls `handler` when the user closes the window; the window closes only if it resolves true. */
  onCloseRequested: (handler: () => Promise<boolean>): Promise<UnlistenFn> => {
    const win = getCurrentWindow();
    return win.onCloseRequested(async (event) => {
      event.preventDefault();
      if (await handler()) await win.destroy();
    });
  },
};
