import { useEffect, useState } from "react";
import { backend, dialogs, events, IpcError, type Drive, type ExportProgress } from "../lib/ipc";

interface Props {
  planName: string;
  ensureSaved: (what: string) => Promise<boolean>;
  onReport: (e: unknown) => void;
}

type Result = { ok: boolean; text: string; details?: string[]; eject?: string } | null;

const gib = (bytes: number) => `${(bytes / 1024 / 1024 / 1024).toFixed(1)} GiB`;

/** `USBSTICK (SanDisk Ultra) · /dev/sdb1 at /media/ada/USBSTICK · 14.9 GiB vfat`. */
export function describeDrive(d: Drive): string {
  const name = [d.label, d.model ? `(${d.model})` : null].filter(Boolean).join(" ") || d.device;
  const where = d.mounted && d.mountpoint ? `${d.device} at ${d.mountpoint}` : `${d.device}, not mounted yet`;
  return `${name} · ${where} · ${gib(d.size_bytes)} ${d.filesystem}${d.removable ? "" : " (not removable)"}`;
}

const usable = (d: Drive) => d.mounted && !!d.mountpoint;

/** Writes the saved plan's bundle to a USB drive or commits it to a Git repository. */
export function ExportView({ planName, ensureSaved, onReport }: Props) {
  const [drives, setDrives] = useState<Drive[] | null>(null);
  const [drive, setDrive] = useState("");
  const [loadingDrives, setLoadingDrives] = useState(false);
  const [repo, setRepo] = useState("");
  const [branch, setBranch] = useState("");
  const [push, setPush] = useState("");
  const [recipients, setRecipients] = useState("");
  const [busy, setBusy] = useState<"usb" | "git" | null>(null);
  const [progress, setProgress] = useState<ExportProgress | null>(null);
  const [result, setResult] = useState<Result>(null);

  const refresh = () => {
    setLoadingDrives(true);
    backend
      .listDrives()
      .then((list) => {
        setDrives(list);
        setDrive((cur) => (list.some((d) => usable(d) && d.mountpoint === cur) ? cur : (list.find(usable)?.mountpoint ?? "")));
      })
      .catch(onReport)
      .finally(() => setLoadingDrives(false));
  };

  useEffect(() => {
    let live = true;
    backend
      .listDrives()
      .then((list) => {
        if (!live) return;
        setDrives(list);
        setDrive((cur) => cur || (list.find(usable)?.mountpoint ?? ""));
      })
      .catch(onReport);
    return () => {
      live = false;
    };
  }, [onReport]);

  useEffect(() => {
    const stop = events.onExportProgress(setProgress);
    return () => {
      stop.then((f) => f()).catch(() => {});
    };
  }, []);

  const run = async (kind: "usb" | "git", job: () => Promise<Result>) => {
    if (!(await ensureSaved("Export writes the saved plan."))) return;
    setBusy(kind);
    setProgress(null);
    setResult(null);
    try {
      setResult(await job());
    } catch (e) {
      setResult({ ok: false, text: e instanceof IpcError ? e.message : String(e) });
    } finally {
      setBusy(null);
      setProgress(null);
    }
  };

  const exportUsb = () =>
    run("usb", async () => {
      // An unmounted drive is mounted first (UDisks2), as a file manager would.
      const mountpoint = drive.startsWith("unmounted:") ? await backend.mountDrive(drive.slice("unmounted:".length)) : drive;
      const folder = await backend.exportUsb(planName, mountpoint);
      return { ok: true, text: `Wrote the bundle to ${folder} and read it back.`, eject: mountpoint };
    });

  const eject = async (target: string) => {
    setBusy("usb");
    try {
      const done = await backend.ejectDrive(target);
      const how =
        done.action === "powered_off" ? "powered off" : done.action === "media_ejected" ? "ejected" : done.action === "loop_detached" ? "detached" : "unmounted";
      setResult({ ok: true, text: `${done.device} is ${how}: you can unplug it.${done.note ? ` ${done.note}` : ""}` });
      refresh();
    } catch (e) {
      setResult({ ok: false, text: e instanceof IpcError ? e.message : String(e) });
    } finally {
      setBusy(null);
    }
  };

  const exportGit = () =>
    run("git", async () => {
      const out = await backend.exportGit({
        name: planName,
        repo,
        branch: branch.trim() || null,
        push: push.trim() || null,
        encryptTo: recipients
          .split("\n")
          .map((r) => r.trim())
          .filter(Boolean),
      });
      if (!out.commit) return { ok: true, text: "unchanged: no new commit" + (out.pushed ? " (pushed)" : "") };
      return {
        ok: true,
        text: `Committed ${out.commit.slice(0, 12)}${out.pushed ? " and pushed" : ""}`,
        details: out.changed,
      };
    });

  const pick = async () => {
    try {
      const folder = await dialogs.pickFolder("Choose a Git repository");
      if (folder) setRepo(folder);
    } catch (e) {
      onReport(e);
    }
  };

  return (
    <div className="export pad">
      <section className="panel">
        <h2>USB drive</h2>
        <p className="muted small">Writes the plan's bundle to <code>flatlab/{planName}</code> on the drive, to install machines without the boot server.</p>
        <div className="form-row">
          <label className="field grow">
            <span>Drive</span>
            <select data-testid="usb-drives" value={drive} onChange={(e) => setDrive(e.target.value)}>
              {drives === null && <option value="">Loading…</option>}
              {drives?.length === 0 && <option value="">No drives found: plug one in and refresh</option>}
              {drives?.map((d) => (
                <option key={d.device + d.mountpoint} value={d.mounted && d.mountpoint ? d.mountpoint : `unmounted:${d.device}`}>
                  {describeDrive(d)}
                </option>
              ))}
            </select>
          </label>
          <div className="buttons">
            <button data-testid="usb-refresh" onClick={refresh} disabled={loadingDrives}>
              {loadingDrives ? "Refreshing…" : "Refresh"}
            </button>
            <button className="primary" data-testid="usb-export" onClick={exportUsb} disabled={!drive || busy !== null}>
              {busy === "usb" ? "Writing…" : "Write to drive"}
            </button>
          </div>
        </div>
      </section>

      <section className="panel">
        <h2>Git repository</h2>
        <p className="muted small">Commits the bundle to <code>{planName}/</code> in the repository. Nothing is committed when nothing changed.</p>
        <div className="form-row">
          <label className="field grow">
            <span>Repository folder</span>
            <input data-testid="git-repo" value={repo} onChange={(e) => setRepo(e.target.value)} placeholder="/home/me/lab-config" spellCheck={false} />
          </label>
          <div className="buttons">
            <button data-testid="git-pick" onClick={pick}>
              Choose…
            </button>
          </div>
        </div>
        <div className="form-row">
          <label className="field">
            <span>Branch</span>
            <input data-testid="git-branch" value={branch} onChange={(e) => setBranch(e.target.value)} placeholder="the current branch" spellCheck={false} />
          </label>
          <label className="field grow">
            <span>Push to remote (optional)</span>
            <input data-testid="git-push" value={push} onChange={(e) => setPush(e.target.value)} placeholder="origin" spellCheck={false} />
          </label>
        </div>
        <label className="field">
          <span>age recipients (optional, one per line)</span>
          <textarea data-testid="git-recipients" className="mono" rows={3} value={recipients} onChange={(e) => setRecipients(e.target.value)} placeholder="age1…" spellCheck={false} />
          <small className="muted">
            Files with the K3s token are encrypted to these recipients. Without recipients they stay out of the repository, and you install from
            the boot server or a USB drive instead.
          </small>
        </label>
        <div className="buttons">
          <button className="primary" data-testid="git-export" onClick={exportGit} disabled={!repo.trim() || busy !== null}>
            {busy === "git" ? "Committing…" : "Commit"}
          </button>
        </div>
      </section>

      {(busy || progress) && (
        <div className="progress-line panel">
          <progress max={progress?.total || 1} value={progress?.step ?? 0} />
          <span className="small">{progress ? `${progress.step}/${progress.total} ${progress.message}` : "Starting…"}</span>
        </div>
      )}
      {result && (
        <div className={`banner ${result.ok ? "success" : "error"} inline`} data-testid="export-result" data-ok={String(result.ok)} role="status">
          <div>
            <div>{result.text}</div>
            {result.eject && (
              <button data-testid="usb-eject" onClick={() => void eject(result.eject ?? "")} disabled={busy !== null}>
                Eject the drive
              </button>
            )}
            {result.details && result.details.length > 0 && (
              <ul className="changed small mono">
                {result.details.map((c) => (
                  <li key={c}>{c}</li>
                ))}
              </ul>
            )}
          </div>
          <button onClick={() => setResult(null)} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
    </div>
  );
}
