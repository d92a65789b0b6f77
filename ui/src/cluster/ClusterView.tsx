import { useState } from "react";
import { backend, dialogs as fileDialogs, IpcError, type ClusterStatus, type NodeView, type Plan, type Reach } from "../lib/ipc";
import type { Dialogs } from "../app/useModal";
import { SnapshotsPanel } from "./SnapshotsPanel";
import { useCluster } from "./useCluster";

interface Props {
  plan: Plan;
  planName: string;
  dialogs: Pick<Dialogs, "confirm" | "prompt">;
  onReport: (e: unknown) => void;
  onNotify: (text: string) => void;
  /** The cluster finished an upgrade and Flatlab saved the plan as this revision. */
  onRevision: (revision: number) => void;
}

/** One line on whether Flatlab reaches the API, and why not. */
export function reachText(reach: Reach, server: string): string {
  const at = server ? ` at ${server}` : "";
  switch (reach.kind) {
    case "reachable":
      return `Connected${at} · Kubernetes ${reach.version}`;
    case "unreachable":
      return `API unreachable${at}: ${reach.reason}`;
    case "certificate_refused":
      return `The API${at} refused Flatlab's certificate: ${reach.reason}`;
    case "wrong_cluster":
      return `Another cluster answers${at}: ${reach.reason}`;
    case "bad_server_certificate":
      return `The API${at} does not fit: ${reach.reason}`;
    case "foreign_ca":
      return "This cluster was installed before Flatlab made its own certificate authorities, so Flatlab holds no keys to reach it. Reinstall it to give it Flatlab's.";
  }
}

const STATE_TEXT: Record<NodeView["state"], string> = {
  ready: "Ready",
  not_ready: "Not ready",
  missing: "Not in the cluster",
  not_in_plan: "Not in the plan",
  unknown: "Unknown",
};

/** What to say about a node besides its columns. */
export function nodeNotes(n: NodeView): string[] {
  const notes: string[] = [];
  if (n.reboot === "rebooting") notes.push("Rebooting into a Flatcar update");
  if (n.reboot === "pending") notes.push("Flatcar update installed; reboot pending");
  if (n.cordoned && n.reboot !== "rebooting") notes.push("Cordoned");
  return notes;
}

/** Upgrade progress as "2 of 5 nodes". */
export function upgradeProgress(s: ClusterStatus): { done: number; total: number } | null {
  if (!s.upgrade) return null;
  const done = s.upgrade.done.length;
  return { done, total: done + s.upgrade.remaining.length };
}

const splitRecipients = (text: string) => text.split(/[\s,]+/).map((r) => r.trim()).filter(Boolean);

/** The running cluster, as its API shows it: nodes, versions, reboots; kubeconfig, backups, upgrades. */
export function ClusterView({ plan, planName, dialogs, onReport, onNotify, onRevision }: Props) {
  const { status, server, setServer, loading, refresh } = useCluster(planName, onReport, onRevision);
  const [serverDraft, setServerDraft] = useState(server);
  const [version, setVersion] = useState("");
  const [sha, setSha] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [upgradeError, setUpgradeError] = useState<string | null>(null);

  const run = async (what: string, job: () => Promise<void>) => {
    setBusy(what);
    try {
      await job();
    } catch (e) {
      onReport(e);
    } finally {
      setBusy(null);
    }
  };

  const kubeconfigMerge = () =>
    run("kubeconfig", async () => {
      const saved = await backend.saveKubeconfig(planName, null);
      onNotify(`Added context ${saved.context} (${saved.server}) to ${saved.path}. kubectl --context ${saved.context} get nodes`);
    });

  const kubeconfigFile = () =>
    run("kubeconfig", async () => {
      const path = await fileDialogs.saveFile("Save the kubeconfig", `${planName}.kubeconfig`);
      if (!path) return;
      const saved = await backend.saveKubeconfig(planName, path);
      onNotify(`Wrote a kubeconfig for ${saved.server} to ${saved.path} (readable by you only: it holds an admin key).`);
    });

  const backup = () =>
    run("backup", async () => {
      const text = await dialogs.prompt(
        "Back up the cluster's keys",
        "The age recipients (age1…) who can open the backup, separated by spaces",
        "",
        "Choose a file…",
      );
      if (text === null) return;
      const recipients = splitRecipients(text);
      if (recipients.length === 0) throw new Error("Give at least one age recipient (age1…): the backup is never written unencrypted.");
      const path = await fileDialogs.saveFile("Save the secrets backup", `${planName}-secrets.age`);
      if (!path) return;
      await backend.exportSecrets(planName, recipients, path);
      onNotify(`Wrote the keys to the cluster, encrypted to ${recipients.length} recipient(s), to ${path}. Keep it somewhere safe.`);
      await refresh();
    });

  const restore = () =>
    run("restore", async () => {
      const path = await fileDialogs.openFile("Open a secrets backup", "secrets.age");
      if (!path) return;
      const identity = await fileDialogs.openFile("Open the age identity (key.txt) that opens it", "key.txt");
      if (!identity) return;
      try {
        const n = await backend.importSecrets(path, identity, false);
        onNotify(`Restored ${n} secrets of plan ${planName}.`);
      } catch (e) {
        if (!(e instanceof IpcError) || e.code !== "secrets_clash") throw e;
        const replace = await dialogs.confirm(
          "Replace this plan's secrets?",
          <p>Plan {planName} holds other keys already. Nodes installed with them no longer fit the cluster after the restore.</p>,
          "Replace them",
          { danger: true },
        );
        if (!replace) return;
        const n = await backend.importSecrets(path, identity, true);
        onNotify(`Restored ${n} secrets of plan ${planName}.`);
      }
    });

  const upgrade = () =>
    run("upgrade", async () => {
      setUpgradeError(null);
      const to = version.trim();
      const ok = await dialogs.confirm(
        `Upgrade K3s to ${to}?`,
        <p>
          The cluster upgrades one node at a time, servers first; each is cordoned while K3s restarts. The plan gets the new version once
          every node runs it.
        </p>,
        "Upgrade",
      );
      if (!ok) return;
      try {
        const started = await backend.startK3sUpgrade(planName, to, sha.trim() || null, server.trim() || null);
        onNotify(`Upgrading ${started.nodes} nodes from K3s ${started.from} to ${started.to}.`);
        await refresh();
      } catch (e) {
        if (e instanceof IpcError && (e.code === "upgrade_refused" || e.code === "bad_request")) setUpgradeError(e.message);
        else throw e;
      }
    });

  const removeNode = (node: string) =>
    run(`remove-${node}`, async () => {
      const ok = await dialogs.confirm(
        `Drain and delete ${node}?`,
        <p>
          Its pods move to other nodes; a server leaves etcd. Then power the machine off or reinstall it: a K3s still running there would
          register it again.
        </p>,
        "Drain and delete",
        { danger: true },
      );
      if (!ok) return;
      await backend.removeClusterNode(planName, node, server.trim() || null);
      onNotify(`${node} is out of the cluster.`);
      await refresh();
    });

  const reach = status?.reach;
  const reachable = reach?.kind === "reachable";
  const progress = status ? upgradeProgress(status) : null;
  const needsBackup = status !== null && status.installed_nodes > 0 && status.secrets_backup_at === null;
  const upgrading = !!status?.upgrade && status.upgrade.remaining.length > 0;

  return (
    <div className="cluster pad">
      <section className="panel">
        <div className="section-head">
          <h2>Cluster</h2>
          <button data-testid="cluster-refresh" onClick={() => void refresh()} disabled={loading}>
            {loading ? "Checking…" : "Refresh"}
          </button>
        </div>
        <p className="status" data-testid="cluster-reach" data-kind={reach?.kind ?? "loading"}>
          <span className={`status-dot ${reachable ? "on" : reach ? "bad" : ""}`} />{" "}
          {reach ? reachText(reach, status?.server ?? "") : "Asking the cluster…"}
        </p>
        {status?.api_note && <p className="muted small" data-testid="api-note">{status.api_note}</p>}
        <div className="form-row">
          <label className="field grow">
            <span>Reach the API at (leave empty for the plan's address)</span>
            <input
              data-testid="cluster-server"
              placeholder={`https://${plan.kubernetes.api_endpoint ?? plan.nodes.find((n) => n.role === "server")?.address?.split("/")[0] ?? ""}:6443`}
              value={serverDraft}
              onChange={(e) => setServerDraft(e.target.value)}
              onBlur={() => setServer(serverDraft)}
              onKeyDown={(e) => e.key === "Enter" && setServer(serverDraft)}
            />
          </label>
          <div className="buttons">
            <button className="primary" data-testid="kubeconfig-merge" onClick={kubeconfigMerge} disabled={busy !== null || reach?.kind === "foreign_ca"}>
              Get kubeconfig
            </button>
            <button data-testid="kubeconfig-file" onClick={kubeconfigFile} disabled={busy !== null || reach?.kind === "foreign_ca"}>
              Save as file…
            </button>
          </div>
        </div>
        {needsBackup && (
          <div className="banner warning inline" data-testid="backup-reminder" role="status">
            <div>
              <div>Back up the keys to this cluster.</div>
              <div className="explain">
                Its certificate authorities live only in this app&apos;s database. Without a backup, losing this computer means losing admin
                access to the cluster.
              </div>
            </div>
            <button className="primary" data-testid="backup-secrets" onClick={backup} disabled={busy !== null}>
              Back up…
            </button>
          </div>
        )}
        <div className="buttons">
          {!needsBackup && (
            <button data-testid="backup-secrets" onClick={backup} disabled={busy !== null}>
              Back up keys…
            </button>
          )}
          <button data-testid="restore-secrets" onClick={restore} disabled={busy !== null}>
            Restore keys…
          </button>
        </div>
      </section>

      <section className="panel">
        <h2>Nodes</h2>
        <table className="nodes-table" data-testid="cluster-nodes">
          <thead>
            <tr>
              <th>Node</th>
              <th>State</th>
              <th>Role</th>
              <th>K3s</th>
              <th>Flatcar</th>
              <th>Address</th>
              <th>Install</th>
              <th>Notes</th>
            </tr>
          </thead>
          <tbody>
            {(status?.nodes ?? []).map((n) => (
              <tr key={n.name} data-testid={`cluster-node-${n.name}`} data-state={n.state} className={n.problems.length ? "has-problems" : ""}>
                <td className="mono">{n.name}</td>
                <td>
                  <span className={`state ${n.state}`}>{STATE_TEXT[n.state]}</span>
                </td>
                <td>{n.role ?? n.planned_role ?? "–"}</td>
                <td className="mono small">{n.k3s_version ?? "–"}</td>
                <td className="mono small">{n.flatcar_version ?? "–"}</td>
                <td className="mono small">{n.internal_ip ?? "–"}</td>
                <td>{n.install_stage ? <span className={`stage ${n.install_stage}`}>{n.install_stage}</span> : "–"}</td>
                <td className="small">
                  {nodeNotes(n).map((t) => (
                    <div key={t} data-testid={`note-${n.name}`}>
                      {t}
                    </div>
                  ))}
                  {n.problems.map((p) => (
                    <div key={p} className="warning-text">
                      {p}
                    </div>
                  ))}
                  {n.state === "not_in_plan" && (
                    <button data-testid={`remove-node-${n.name}`} onClick={() => removeNode(n.name)} disabled={busy !== null || !reachable}>
                      Drain and delete…
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <SnapshotsPanel planName={planName} server={server} reachable={reachable} dialogs={dialogs} onReport={onReport} onNotify={onNotify} />

      <section className="panel">
        <h2>Upgrade K3s</h2>
        <p className="small">
          The plan installs K3s <span className="mono">{plan.kubernetes.k3s_version}</span>. Upgrades go one minor version at a time, one
          node at a time (servers first), through system-upgrade-controller in the cluster.
        </p>
        <div className="form-row">
          <label className="field">
            <span>New version</span>
            <input data-testid="upgrade-version" placeholder="v1.33.4+k3s1" value={version} onChange={(e) => setVersion(e.target.value)} />
          </label>
          <label className="field grow">
            <span>SHA-256 of the new k3s binary (optional)</span>
            <input data-testid="upgrade-sha256" value={sha} onChange={(e) => setSha(e.target.value)} />
          </label>
          <div className="buttons">
            <button className="primary" data-testid="upgrade-start" onClick={upgrade} disabled={busy !== null || !reachable || !version.trim() || upgrading}>
              {busy === "upgrade" ? "Starting…" : "Upgrade K3s"}
            </button>
          </div>
        </div>
        {upgradeError && (
          <p className="failure" data-testid="upgrade-error" role="alert">
            {upgradeError}
          </p>
        )}
        {status?.upgrade_error && (
          <p className="failure small" data-testid="upgrade-unknown">
            Whether an upgrade runs is unknown: {status.upgrade_error}
          </p>
        )}
        {status?.upgrade && progress && (
          <div className="upgrade" data-testid="upgrade-progress" data-done={progress.done} data-total={progress.total}>
            <div className="progress-line">
              <span>
                K3s <span className="mono">{status.upgrade.to}</span>: {progress.done} of {progress.total} nodes
              </span>
              <progress max={progress.total || 1} value={progress.done} />
            </div>
            {status.upgrade.remaining.length > 0 && <p className="small muted">Still to go: {status.upgrade.remaining.join(", ")}</p>}
            {status.upgrade.saved_revision !== null && (
              <p className="small ok" data-testid="upgrade-saved">
                Every node runs it; saved as plan revision {status.upgrade.saved_revision}.
              </p>
            )}
          </div>
        )}
      </section>
    </div>
  );
}
