// The image mirror as the Images and Install views see it: what it holds, what the release
// servers offer, and the one fetch that may run, with its progress and a way to cancel it.
import { useCallback, useEffect, useRef, useState } from "react";
import {
  backend,
  events,
  IpcError,
  type FetchOutcome,
  type FetchRequest,
  type FileCheck,
  type MirrorOverview,
  type MirrorProgress,
  type MirrorSettings,
  type ReleaseVersions,
} from "../lib/ipc";

export interface Images {
  settings: MirrorSettings | null;
  overview: MirrorOverview | null;
  versions: ReleaseVersions | null;
  lookingUp: boolean;
  /** The fetch running, and how far it has come. */
  fetching: FetchRequest | null;
  progress: MirrorProgress | null;
  /** What the last fetch ended with, for the view to say. */
  outcome: { ok: FetchOutcome } | { cancelled: true } | { error: string } | null;
  checks: FileCheck[] | null;
  verifying: boolean;
  /** Bumped whenever the mirror may have changed, so readiness checks run again. */
  generation: number;
  refresh: () => Promise<void>;
  lookUp: (arch: string) => Promise<void>;
  fetch: (request: FetchRequest) => Promise<FetchOutcome | null>;
  cancel: () => Promise<void>;
  verify: () => Promise<void>;
  prune: (keep: number) => Promise<string[]>;
  saveSettings: (settings: MirrorSettings) => Promise<boolean>;
}

export function useImages(report: (e: unknown) => void): Images {
  const [settings, setSettings] = useState<MirrorSettings | null>(null);
  const [overview, setOverview] = useState<MirrorOverview | null>(null);
  const [versions, setVersions] = useState<ReleaseVersions | null>(null);
  const [lookingUp, setLookingUp] = useState(false);
  const [fetching, setFetching] = useState<FetchRequest | null>(null);
  const [progress, setProgress] = useState<MirrorProgress | null>(null);
  const [outcome, setOutcome] = useState<Images["outcome"]>(null);
  const [checks, setChecks] = useState<FileCheck[] | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [generation, setGeneration] = useState(0);
  const fetchingRef = useRef(false);

  const refresh = useCallback(async () => {
    try {
      const [s, o] = await Promise.all([backend.mirrorSettings(), backend.mirrorOverview()]);
      setSettings(s);
      setOverview(o);
      setGeneration((g) => g + 1);
    } catch (e) {
      report(e);
    }
  }, [report]);

  useEffect(() => {
    let gone = false;
    Promise.all([backend.mirrorSettings(), backend.mirrorOverview()])
      .then(([s, o]) => {
        if (gone) return;
        setSettings(s);
        setOverview(o);
      })
      .catch(report);
    return () => {
      gone = true;
    };
  }, [report]);

  useEffect(() => {
    let unlisten: (() => void) | null = null;
    let gone = false;
    void events
      .onMirrorProgress((p) => {
        if (fetchingRef.current) setProgress(p);
      })
      .then((u) => {
        if (gone) u();
        else unlisten = u;
      });
    return () => {
      gone = true;
      unlisten?.();
    };
  }, []);

  const lookUp = useCallback(
    async (arch: string) => {
      setLookingUp(true);
      try {
        setVersions(await backend.releaseVersions(arch));
      } catch (e) {
        report(e);
      } finally {
        setLookingUp(false);
      }
    },
    [report],
  );

  const fetch = useCallback(
    async (request: FetchRequest) => {
      if (fetchingRef.current) return null;
      fetchingRef.current = true;
      setFetching(request);
      setProgress(null);
      setOutcome(null);
      try {
        const ok = await backend.mirrorFetch(request);
        setOutcome({ ok });
        return ok;
      } catch (e) {
        if (e instanceof IpcError && e.code === "cancelled") setOutcome({ cancelled: true });
        else setOutcome({ error: e instanceof Error ? e.message : String(e) });
        return null;
      } finally {
        fetchingRef.current = false;
        setFetching(null);
        setProgress(null);
        await refresh();
      }
    },
    [refresh],
  );

  const cancel = useCallback(async () => {
    try {
      await backend.mirrorCancel();
    } catch (e) {
      report(e);
    }
  }, [report]);

  const verify = useCallback(async () => {
    setVerifying(true);
    try {
      setChecks(await backend.mirrorVerify());
    } catch (e) {
      report(e);
    } finally {
      setVerifying(false);
    }
  }, [report]);

  const prune = useCallback(
    async (keep: number) => {
      try {
        const removed = await backend.mirrorPrune(keep);
        await refresh();
        return removed;
      } catch (e) {
        report(e);
        return [];
      }
    },
    [refresh, report],
  );

  const saveSettings = useCallback(
    async (next: MirrorSettings) => {
      try {
        await backend.saveMirrorSettings(next);
        setChecks(null);
        await refresh();
        return true;
      } catch (e) {
        report(e);
        return false;
      }
    },
    [refresh, report],
  );

  return { settings, overview, versions, lookingUp, fetching, progress, outcome, checks, verifying, generation, refresh, lookUp, fetch, cancel, verify, prune, saveSettings };
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const bytes = (n: number) =>
  n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : n >= KiB ? `${Math.round(n / KiB)} KiB` : `${n} B`;

/** `12.3 of 450.0 MiB · 8.1 MiB/s · 52 s left`. */
export function progressText(p: MirrorProgress): string {
  const parts = [p.total !== null ? `${(p.done / MiB).toFixed(1)} of ${(p.total / MiB).toFixed(1)} MiB` : `${(p.done / MiB).toFixed(1)} MiB`];
  if (p.rate > 0) parts.push(`${(p.rate / MiB).toFixed(1)} MiB/s`);
  if (p.eta_secs !== null) parts.push(`${duration(p.eta_secs)} left`);
  return parts.join(" · ");
}

export function duration(secs: number): string {
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The versions the inspector offers: those mirrored and those the release servers name. */
export function versionChoices(
  plan: { os: { channel: string; arch: string }; kubernetes: unknown },
  images: Pick<Images, "overview" | "versions"> | undefined,
): { flatcar: string[]; k3s: string[] } {
  const boardName = plan.os.arch === "arm64" ? "arm64-usr" : "amd64-usr";
  const flatcar = new Set<string>();
  const k3s = new Set<string>();
  for (const r of images?.overview?.releases ?? []) if (r.channel === plan.os.channel && r.board === boardName && r.complete) flatcar.add(r.version);
  for (const c of images?.versions?.flatcar ?? []) if (c.channel === plan.os.channel && c.version) flatcar.add(c.version);
  for (const k of images?.overview?.k3s ?? []) k3s.add(k.version);
  for (const k of images?.versions?.k3s ?? []) if (k.id === "stable" || k.id === "latest") k3s.add(k.latest);
  return { flatcar: [...flatcar], k3s: [...k3s] };
}
