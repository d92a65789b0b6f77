// The cluster view's data: the API's answer for the open plan, refreshed every few seconds
// while the view is open, and the API address the user reaches it at (kept per plan).
import { useCallback, useEffect, useRef, useState } from "react";
import { backend, type ClusterStatus } from "../lib/ipc";

export const REFRESH_MS = 5000;

const key = (plan: string) => `flatlab.cluster-server.${plan}`;

/** The API address the user set for a plan, if any. */
export function loadServer(plan: string): string {
  try {
    return localStorage.getItem(key(plan)) ?? "";
  } catch {
    return "";
  }
}

function storeServer(plan: string, server: string) {
  try {
    if (server.trim()) localStorage.setItem(key(plan), server.trim());
    else localStorage.removeItem(key(plan));
  } catch {
    // A full or disabled storage only loses the setting.
  }
}

export function useCluster(planName: string, onReport: (e: unknown) => void, onRevision: (revision: number) => void) {
  const [status, setStatus] = useState<ClusterStatus | null>(null);
  const [server, setServerState] = useState(() => loadServer(planName));
  const [loading, setLoading] = useState(false);
  const inFlight = useRef(false);
  const seenRevision = useRef<number | null>(null);

  // Polls without touching state before its answer arrives (the view is keyed by plan, so a
  // new plan starts afresh).
  const load = useCallback(() => {
    if (inFlight.current) return Promise.resolve();
    inFlight.current = true;
    return backend
      .clusterStatus(planName, server.trim() || null)
      .then((s) => {
        setStatus(s);
        const saved = s.upgrade?.saved_revision ?? null;
        if (saved !== null && saved !== seenRevision.current) {
          seenRevision.current = saved;
          onRevision(saved);
        }
      })
      .catch(onReport)
      .finally(() => {
        inFlight.current = false;
        setLoading(false);
      });
  }, [planName, server, onReport, onRevision]);

  /** Asks again now, showing that it does. */
  const refresh = useCallback(() => {
    setLoading(true);
    return load();
  }, [load]);

  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load]);

  const setServer = useCallback(
    (value: string) => {
      storeServer(planName, value);
      setServerState(value);
    },
    [planName],
  );

  return { status, server, setServer, loading, refresh };
}
