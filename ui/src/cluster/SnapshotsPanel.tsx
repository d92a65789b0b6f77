// The cluster's etcd snapshots (every server's, as K3s lists them) and the copies on this
// workstation: take one now, copy one here.
import { useCallback, useEffect, useState } from "react";
import { backend, type SnapshotList, type SnapshotView } from "../lib/ipc";
import { bytes } from "../images/useImages";
import type { Dialogs } from "../app/useModal";
import { RestoreWizard } from "./RestoreWizard";

interface Props {
  planName: string;
  /** The API address the view reaches the cluster at ("" for the plan's). */
  server: string;
  reachable: boolean;
  dialogs: Pick<Dialogs, "confirm">;
  onReport: (e: unknown) => void;
  onNotify: (message: string) => void;
}

function stateOf(s: SnapshotView): { word: string; kind: string } {
  if (s.error) return { word: `Failed: ${s.error}`, kind: "failed" };
  if (!s.ready) return { word: "In progress", kind: "progress" };
  if (s.token_matches === false) return { word: "Ready · another token: cannot restore this cluster", kind: "foreign" };
  return { word: "Ready", kind: "ready" };
}

const when = (ms: number | null) => (ms === null ? "–" : new Date(ms).toLocaleString());

export function SnapshotsPanel({ planName, server, reachable, dialogs, onReport, onNotify }: Props) {
  const [list, setList] = useState<SnapshotList | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(
    () =>
      backend
        .clusterSnapshots(planName, server.trim() || null)
        .then(setList)
        .catch(onReport),
    [planName, server, onReport],
  );

  useEffect(() => {
    void load();
  }, [load, reachable]);

  const run = async (what: string, job: () => Promise<void>) => {
    setBusy(what);
    try {
      await job();
      await load();
    } catch (e) {
      onReport(e);
    } finally {
      setBusy(null);
    }
  };

  const take = () =>
    run("take", async () => {
      const taken = await backend.takeSnapshot(planName, server.trim() || null);
      onNotify(`${taken.server} took snapshot ${taken.files.join(", ")}.`);
    });

  const download = (s: SnapshotView) =>
    run(`download-${s.name}`, async () => {
      const copy = await backend.downloadSnapshot(planName, s.name, server.trim() || null);
      onNotify(`Copied ${copy.name} (${bytes(copy.size_bytes)}, SHA-256 ${copy.sha256.slice(0, 16)}…) to ${copy.path}.`);
    });

  const rows = list?.snapshots ?? [];
  const here = list?.local_only ?? [];
  return (
    <section className="panel" data-testid="snapshots">
      <h2>Snapshots</h2>
      <p className="small">
        Every server snapshots etcd on the plan&apos;s schedule; Flatlab takes one before each upgrade and node removal. A copy on this
        workstation (and its secrets backup) can bring the cluster back when every server is lost.
      </p>
      <div className="buttons">
        <button data-testid="snapshot-take" onClick={take} disabled={busy !== null || !reachable}>
          {busy === "take" ? "Taking…" : "Take a snapshot now"}
        </button>
        <button data-testid="snapshots-refresh" onClick={() => void load()} disabled={busy !== null}>
          Refresh
        </button>
      </div>
      {rows.length === 0 && here.length === 0 ? (
        <p className="muted small" data-testid="snapshots-empty">
          {reachable ? "No snapshots yet." : "The cluster does not answer, and no snapshot was copied here."}
        </p>
      ) : (
        <table className="nodes-table" data-testid="snapshot-list">
          <thead>
            <tr>
              <th>Snapshot</th>
              <th>Server</th>
              <th>Taken</th>
              <th>Size</th>
              <th>State</th>
              <th>On this workstation</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => {
              const st = stateOf(s);
              return (
                <tr key={`${s.node}/${s.name}`} data-testid={`snapshot-${s.name}`} data-state={st.kind}>
                  <td className="mono">{s.name}</td>
                  <td>{s.node}</td>
                  <td>{when(s.created_at)}</td>
                  <td>{s.size_bytes === null ? "–" : bytes(s.size_bytes)}</td>
                  <td>{st.word}</td>
                  <td>
                    {s.downloaded ? (
                      <span className="ok small" title={s.downloaded.path} data-testid={`snapshot-here-${s.name}`}>
                        SHA-256 {s.downloaded.sha256.slice(0, 12)}…
                      </span>
                    ) : (
                      <button
                        data-testid={`snapshot-download-${s.name}`}
                        onClick={() => download(s)}
                        disabled={busy !== null || !s.ready || !s.location.startsWith("file://")}
                      >
                        {busy === `download-${s.name}` ? "Copying…" : "Download"}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
            {here.map((d) => (
              <tr key={`here/${d.node}/${d.name}`} data-testid={`snapshot-${d.name}`} data-state="here-only">
                <td className="mono">{d.name}</td>
                <td>{d.node}</td>
                <td>{when(d.created_at)}</td>
                <td>{bytes(d.size_bytes)}</td>
                <td>Here only (the cluster does not list it)</td>
                <td>
                  <span className="ok small" title={d.path}>
                    SHA-256 {d.sha256.slice(0, 12)}…
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <RestoreWizard
        planName={planName}
        server={server}
        copies={[...rows.flatMap((s) => (s.downloaded ? [s.downloaded] : [])), ...here]}
        dialogs={dialogs}
        onReport={onReport}
        onNotify={onNotify}
      />
    </section>
  );
}
