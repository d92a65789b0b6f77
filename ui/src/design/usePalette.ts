// The palette: machines found on the network that the plan may want. Those seen network-booting
// come from the boot server; a scan (mDNS) and "Add to plan…" in the Install view add more.
import { useCallback, useMemo, useState } from "react";
import { backend, type Plan, type Position, type Sighting } from "../lib/ipc";
import { mergeSightings, sightingFromBoot, type MachineView } from "../install/boot";
import { addNode, hostnameToNodeName, normalizeMac, planMacs, type Edit } from "./plan";

/** How long a scan listens, in seconds. */
const SCAN_SECONDS = 3;

interface Options {
  /** Machines the boot server saw network-booting. */
  booted: Sighting[];
  plan: Plan | null;
  edit: Edit;
  select: (ids: string[]) => void;
  report: (e: unknown) => void;
  notify: (text: string) => void;
}

export function usePalette({ booted, plan, edit, select, report, notify }: Options) {
  const [found, setFound] = useState<Sighting[]>([]);
  const [scanning, setScanning] = useState(false);

  const sightings = useMemo(() => mergeSightings(booted, found), [booted, found]);
  /** The plan's MACs (normalized): the palette leaves those machines out. */
  const macs = useMemo(() => (plan ? planMacs(plan) : new Set<string>()), [plan]);

  const scan = useCallback(() => {
    setScanning(true);
    backend
      .discover(SCAN_SECONDS)
      .then((more) => setFound((s) => mergeSightings(s, more)))
      .catch(report)
      .finally(() => setScanning(false));
  }, [report]);

  /** Puts a machine from the Install view in the palette. */
  const show = useCallback(
    (m: MachineView) => {
      setFound((s) => mergeSightings(s, [sightingFromBoot(m.mac, m.firmware)]));
      notify(`${m.mac} is in the palette on the left: drag it onto the canvas, or press Add.`);
    },
    [notify],
  );

  /** Adds a machine as a node (named after its host name, a server if the plan has none) and selects it. */
  const addToPlan = useCallback(
    (mac: string, at?: Position) => {
      if (!plan) return;
      const s = sightings.find((x) => x.mac && normalizeMac(x.mac) === normalizeMac(mac));
      const name = hostnameToNodeName(s?.name ?? s?.node) ?? undefined;
      edit((p) => {
        const role = p.nodes.some((n) => n.role === "server") ? "agent" : "server";
        return addNode(p, role, { mac, name, ...(at ? { position: at } : {}) }).plan;
      });
      select([`n${plan.nodes.length}`]);
    },
    [plan, edit, select, sightings],
  );

  return { sightings, macs, scanning, scan, show, addToPlan };
}

export type PaletteState = ReturnType<typeof usePalette>;
