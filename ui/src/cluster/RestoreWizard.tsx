// Restore from a snapshot: what happens (asked once), then every server on its way back, until
// the cluster answers with every server Ready.
import { useEffect, useState } from "react";
import { backend, type DownloadedSnapshot, type RestoreProgress } from "../lib/ipc";
import type { Dialogs } from "../app/useModal";

export const RESTORE_POLL_MS = 5000;

interface Props {
  planName: string;
  server: string;
  /** The copies of snapshots on this workstation, newest first. */
  copies: DownloadedSnapshot[];
  dialogs: Pick<Dialogs, "confirm">;
  onReport: (e: unknown) => void;
  onNotify: (message: string) => void;
}

const when = (ms: number | null) => (ms === null ? "an unknown time" : new Date(ms).toLocaleString());

export function RestoreWizard({ planName, server, copies, dialogs, onReport, onNotify }: Props) {
  const [picked, setChosen] = useState("");
  // The newest copy until the user picks another (the list arrives after the first render).
  const chosen = copies.some((c) => c.name === picked) ? picked : (copies[0]?.name ?? "");
  const [progress, setProgress] = useState<RestoreProgress | null>(null);
  const [busy, setBusy] = useState(false);

  // Follows a restore under way (also one started elsewhere, or before the app was opened).
  useEffect(() => {
    let gone = false;
    const look = () =>
      backend
        .restoreProgress(planName, server.trim() || null)
        .then((p) => {
          if (gone) return;
          setProgress(p);
          if (p.back) onNotify(`The cluster is back: every server runs it again from snapshot ${p.snapshot}.`);
        })
        .catch(onReport);
    void look();
    const timer = window.setInterval(() => void look(), RESTORE_POLL_MS);
    return () => {
      gone = true;
      window.clearInterval(timer);
    };
  }, [planName, server, onReport, onNotify]);

  const start = async () => {
    const copy = copies.find((c) => c.name === chosen);
    if (!copy) return;
    const ok = await dialogs.confirm(
      "Restore the cluster from this snapshot?",
      <>
        <p>
          Every server of plan {planName} is installed again, erasing its disk: the first server restores <code>{copy.name}</code> (taken{" "}
          {when(copy.created_at)} on {copy.node || "a server"}), the others rejoin it. What changed in the cluster since then is lost.
        </p>
        <p>Keep the boot server running, then power the servers on (or reset them) so that they network-boot.</p>
      </>,
      "Restore",
      { danger: true },
    );
    if (!ok) return;
    setBusy(true);
    try {
      const started = await backend.restoreCluster(planName, copy.name);
      onNotify(`Armed ${started.servers.join(", ")}: ${started.first} restores ${started.snapshot} at its next network boot.`);
      setProgress(await backend.restoreProgress(planName, server.trim() || null));
    } catch (e) {
      onReport(e);
    } finally {
      setBusy(false);
    }
  };

  const active = progress?.active ?? false;
  return (
    <div className="restore" data-testid="restore-wizard" data-active={active ? "yes" : "no"} data-back={progress?.back ? "yes" : "no"}>
      <h3>Restore from a snapshot</h3>
      {active && progress ? (
        <>
          <p className="small" data-testid="restore-status">
            Restoring {progress.snapshot}:{" "}
            {progress.restored ? "the restored cluster answers." : "waiting for the first server to come back with it."}
          </p>
          <ul className="restore-servers">
            {progress.servers.map((s) => (
              <li key={s.name} data-testid={`restore-server-${s.name}`} data-stage={s.install_stage ?? ""} data-state={s.state}>
                <span className="mono">{s.name}</span> · install {s.install_stage ?? "–"} · {s.state.replace("_", " ")}
              </li>
            ))}
          </ul>
          {progress.deleted_stale.length > 0 && (
            <p className="small muted">Deleted the stale Nodes of {progress.deleted_stale.join(", ")}, so that they register afresh.</p>
          )}
        </>
      ) : copies.length === 0 ? (
        <p className="small muted" data-testid="restore-none">
          No snapshot is copied to this workstation yet: download one above while a server answers, or import a secrets backup that
          carries one.
        </p>
      ) : (
        <div className="form-row">
          <label className="field grow">
            <span>Snapshot</span>
            <select data-testid="restore-snapshot" value={chosen} onChange={(e) => setChosen(e.target.value)}>
              {copies.map((c) => (
                <option key={c.name} value={c.name}>
                  {c.name} ({when(c.created_at)})
                </option>
              ))}
            </select>
          </label>
          <div className="buttons">
            <button className="danger" data-testid="restore-start" onClick={() => void start()} disabled={busy || !chosen}>
              {busy ? "Arming…" : "Restore…"}
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
