// The boot server as the app hears it: its lines folded into one view per machine, whether it
// runs, why it last failed, and the machines it saw network-booting (for the palette).
import { useCallback, useEffect, useState } from "react";
import { backend, events, type ErrorBody, type SidecarLine, type Sighting } from "../lib/ipc";
import { emptyBoot, foldMessage, foldMessages, mergeSightings, sightingsFromMessages, startCursor, unseen, type BootState } from "./boot";

/** `report` shows a failure; it must keep its identity, or the server is subscribed to again. */
export function useBootServer(report: (e: unknown) => void) {
  const [state, setState] = useState<BootState>(emptyBoot);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<ErrorBody | null>(null);
  const [sightings, setSightings] = useState<Sighting[]>([]);

  useEffect(() => {
    let live = true;
    // Live lines wait here until the status (with every line so far) has arrived; then each
    // line is applied once, by its run and number.
    let buffer: SidecarLine[] | null = [];
    let cursor = startCursor;
    const apply = (lines: SidecarLine[]) => {
      const [fresh, next] = unseen(cursor, lines);
      cursor = next;
      setState((b) => fresh.reduce(foldMessage, b));
      setSightings((list) => mergeSightings(list, sightingsFromMessages(fresh)));
      for (const line of fresh) {
        if (line.type === "ready") setRunning(true);
        if (line.type === "error") setError(line.error);
      }
    };
    const unlisten = [
      events.onBootMessage((line) => {
        if (!live) return;
        if (buffer) buffer.push(line);
        else apply([line]);
      }),
      events.onBootStopped((stopped) => {
        if (!live) return;
        setRunning(false);
        if (stopped.error) setError(stopped.error);
      }),
    ];
    Promise.all(unlisten)
      .then(() => backend.bootStatus())
      .then((status) => {
        if (!live) return;
        const later = buffer ?? [];
        buffer = null;
        [, cursor] = unseen(startCursor, status.messages);
        setState(foldMessages(status.messages));
        setSightings((s) => mergeSightings(s, sightingsFromMessages(status.messages)));
        setRunning(status.running);
        setError(status.error);
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

  /** The Install view started the server (before its first line arrives). */
  const started = useCallback(() => setRunning(true), []);
  /** The Install view stopped the server. */
  const stopped = useCallback(() => setRunning(false), []);

  return {
    /** One view per machine, the armed nodes, the server's address once ready. */
    state,
    running,
    /** Why the server failed to start or stopped; null to clear it. */
    error,
    setError,
    /** Machines seen network-booting, for the palette. */
    sightings,
    started,
    stopped,
  };
}

export type BootServer = ReturnType<typeof useBootServer>;
