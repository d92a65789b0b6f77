// Folds the boot server's messages into one view per machine, for the Install view and the
// canvas cards' install state.
import { STAGES as ALL_STAGES, type Alert, type BootEvent, type Diagnosis, type ErrorBody, type HistoryEntry, type MachineStatus, type SidecarLine, type SidecarMessage, type Sighting, type Stage } from "../lib/ipc";
import { normalizeMac } from "../design/plan";

/** The stages of the timeline, in order (the generated list without `failed`, which marks a step instead). */
export const STAGES: Stage[] = ALL_STAGES.filter((s) => s !== "failed");

export interface StageStep {
  stage: Stage;
  at: number;
  detail: string | null;
}

export interface Progress {
  file: string;
  sent: number;
  total: number;
}

/** Something the boot server refused, or its idea of why a machine is stuck. */
export interface Notice {
  kind: "alert" | "diagnosis";
  code: Alert | Diagnosis;
  at: number;
  message: string;
  from: string | null;
}

export interface MachineView {
  mac: string;
  node: string | null;
  stage: Stage | null;
  ip: string | null;
  firmware: string | null;
  history: StageStep[];
  notices: Notice[];
  progress: Progress | null;
  lastSeen: number;
  /** To be inspected before its install (as the boot server last said). */
  inspecting: boolean;
}

export interface BootState {
  ready: Extract<SidecarMessage, { type: "ready" }> | null;
  /** By normalized MAC. */
  machines: Record<string, MachineView>;
  /** Node names armed since the boot server started. */
  armed: string[];
  errors: ErrorBody[];
  /** Alerts about no machine in particular (an address guessing boot tokens), newest last. */
  alerts: Notice[];
}

/** The most server alerts the view keeps. */
const MAX_ALERTS = 20;

export const emptyBoot: BootState = { ready: null, machines: {}, armed: [], errors: [], alerts: [] };

function notice(h: HistoryEntry): Notice | null {
  if (h.kind === "alert") return { kind: "alert", code: h.alert, at: h.at, message: h.message, from: h.from ?? null };
  if (h.kind === "diagnosis") return { kind: "diagnosis", code: h.diagnosis, at: h.at, message: h.message, from: null };
  return null;
}

function fromStatus(m: MachineStatus): MachineView {
  const steps: StageStep[] = [];
  const notices: Notice[] = [];
  for (const h of m.history) {
    if (h.kind === "stage") steps.push({ stage: h.stage, at: h.at, detail: h.detail ?? null });
    const n = notice(h);
    if (n) notices.push(n);
  }
  return {
    mac: normalizeMac(m.mac),
    node: m.node,
    stage: m.stage,
    ip: m.ip,
    firmware: m.firmware,
    history: steps,
    notices,
    progress: null,
    lastSeen: m.history.length ? m.history[m.history.length - 1].at : 0,
    inspecting: m.inspecting,
  };
}

function blank(mac: string, node: string | null): MachineView {
  return { mac, node, stage: null, ip: null, firmware: null, history: [], notices: [], progress: null, lastSeen: 0, inspecting: false };
}

function foldEvent(state: BootState, e: BootEvent): BootState {
  if (e.mac === "") {
    // About no machine: the boot server as a whole.
    if (e.type !== "alert") return state;
    const alert: Notice = { kind: "alert", code: e.alert, at: e.at, message: e.message, from: e.from };
    return { ...state, alerts: [...state.alerts, alert].slice(-MAX_ALERTS) };
  }
  const mac = normalizeMac(e.mac);
  const old = state.machines[mac] ?? blank(mac, e.node);
  const m: MachineView = { ...old, node: e.node ?? old.node, lastSeen: Math.max(old.lastSeen, e.at) };
  switch (e.type) {
    case "stage":
      m.stage = e.stage;
      m.history = [...old.history, { stage: e.stage, at: e.at, detail: e.detail ?? null }];
      if (e.stage !== "kernel" && e.stage !== "initrd") m.progress = null;
      break;
    case "progress":
      m.progress = { file: e.file, sent: e.sent, total: e.total };
      break;
    case "discovered":
      m.firmware = e.firmware ?? old.firmware;
      break;
    case "alert":
      m.notices = [...old.notices, { kind: "alert", code: e.alert, at: e.at, message: e.message, from: e.from }];
      break;
    case "diagnosis":
      m.notices = [...old.notices, { kind: "diagnosis", code: e.diagnosis, at: e.at, message: e.message, from: null }];
      break;
  }
  return { ...state, machines: { ...state.machines, [mac]: m } };
}

export function foldMessage(state: BootState, msg: SidecarMessage): BootState {
  switch (msg.type) {
    case "ready":
      return { ...state, ready: msg, errors: [], alerts: [] };
    case "machines": {
      const machines: Record<string, MachineView> = {};
      for (const m of msg.machines) {
        const view = fromStatus(m);
        const old = state.machines[view.mac];
        machines[view.mac] = old?.progress ? { ...view, progress: old.progress } : view;
      }
      return { ...state, machines };
    }
    case "event":
      return foldEvent(state, msg.event);
    case "armed":
      return state.armed.includes(msg.node) ? state : { ...state, armed: [...state.armed, msg.node] };
    case "error":
      return { ...state, errors: [...state.errors, msg.error] };
  }
  return state;
}

export function foldMessages(messages: SidecarMessage[], state: BootState = emptyBoot): BootState {
  return messages.reduce(foldMessage, state);
}

/**
 * Where the app is in the boot server's output: the run heard last and its last line. A line
 * of another run (a restarted server) starts over; a line already heard is dropped.
 */
export interface LineCursor {
  run: string | null;
  seq: number;
  /** Runs heard before the current one: a late line of theirs is stale. */
  retired: readonly string[];
}

export const startCursor: LineCursor = { run: null, seq: 0, retired: [] };

/** The lines not heard yet, and the cursor after them. */
export function unseen(cursor: LineCursor, lines: SidecarLine[]): [SidecarLine[], LineCursor] {
  const fresh: SidecarLine[] = [];
  let { run, seq, retired } = cursor;
  for (const line of lines) {
    if (retired.includes(line.run)) continue;
    if (line.run !== run) {
      if (run !== null) retired = [...retired, run];
      run = line.run;
      seq = 0;
    }
    if (line.seq <= seq) continue;
    seq = line.seq;
    fresh.push(line);
  }
  return [fresh, { run, seq, retired }];
}

/** The machine a planned node is: by node name, else by MAC. */
export function machineForNode(state: BootState, node: { name: string; mac: string }): MachineView | null {
  const byMac = state.machines[normalizeMac(node.mac)];
  if (byMac) return byMac;
  for (const m of Object.values(state.machines)) if (m.node === node.name) return m;
  return null;
}

/** The stage a planned node is at: its machine's, or `armed` when armed and not seen since. */
export function nodeStage(state: BootState, node: { name: string; mac: string }): Stage | null {
  const m = machineForNode(state, node);
  if (m?.stage) return m.stage;
  return state.armed.includes(node.name) ? "armed" : null;
}

/** Machines the plan does not have (by MAC and node name). */
export function strangers(state: BootState, plan: { nodes: { name: string; mac: string }[] }): MachineView[] {
  const macs = new Set(plan.nodes.map((n) => normalizeMac(n.mac)));
  const names = new Set(plan.nodes.map((n) => n.name));
  return Object.values(state.machines).filter((m) => !macs.has(m.mac) && !(m.node && names.has(m.node)));
}

/** The failed step's detail, when the machine's current stage is `failed`. */
export function failure(m: MachineView): string | null {
  if (m.stage !== "failed") return null;
  for (let i = m.history.length - 1; i >= 0; i--) if (m.history[i].stage === "failed") return m.history[i].detail ?? "failed";
  return "failed";
}

/** The last time each stage was reached, for the timeline. */
export function stageTimes(m: MachineView): Map<Stage, number> {
  const out = new Map<Stage, number>();
  for (const h of m.history) out.set(h.stage, h.at);
  return out;
}

/** The stage before the failure, so the timeline can mark where it broke. */
export function lastGoodStage(m: MachineView): Stage | null {
  for (let i = m.history.length - 1; i >= 0; i--) if (m.history[i].stage !== "failed") return m.history[i].stage;
  return null;
}

/** A machine seen network-booting, as the palette lists it. */
export function sightingFromBoot(mac: string, firmware: string | null): Sighting {
  return { name: null, addresses: [], mac, services: [], flatlab: null, firmware, sources: ["network-boot"], plan: null, node: null };
}

/** Adds sightings to a list, merging those with the same MAC (newer values win, sources add up). */
export function mergeSightings(list: Sighting[], more: Sighting[]): Sighting[] {
  const out = list.slice();
  for (const s of more) {
    const i = s.mac ? out.findIndex((o) => o.mac && normalizeMac(o.mac) === normalizeMac(s.mac!)) : out.findIndex((o) => !o.mac && o.name === s.name);
    if (i < 0) {
      out.push(s);
      continue;
    }
    const o = out[i];
    out[i] = {
      ...o,
      name: s.name ?? o.name,
      addresses: s.addresses.length ? s.addresses : o.addresses,
      services: s.services.length ? s.services : o.services,
      flatlab: s.flatlab ?? o.flatlab,
      firmware: s.firmware ?? o.firmware,
      sources: [...new Set([...o.sources, ...s.sources])],
      plan: s.plan ?? o.plan,
      node: s.node ?? o.node,
    };
  }
  return out;
}

/** The palette entries hidden in a list of boot messages. */
export function sightingsFromMessages(messages: SidecarMessage[]): Sighting[] {
  const out: Sighting[] = [];
  for (const m of messages) {
    if (m.type === "event" && m.event.type === "discovered") out.push(sightingFromBoot(m.event.mac, m.event.firmware));
  }
  return mergeSightings([], out);
}
