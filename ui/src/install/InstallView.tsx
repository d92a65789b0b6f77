import { memo, useEffect, useState, type ReactNode } from "react";
import { backend, IpcError, type DhcpMode, type ErrorBody, type Finding, type NetInterface, type Plan, type PoweredOn, type Stage } from "../lib/ipc";
import { failure, lastGoodStage, machineForNode, STAGES, stageTimes, strangers, type MachineView } from "./boot";
import type { BootServer } from "./useBootServer";
import type { Dialogs } from "../app/useModal";
import { progressText, type Images } from "../images/useImages";
import { useReadiness } from "../images/ImagesView";

interface Props {
  plan: Plan;
  /** The saved plan's name: what the boot server serves. */
  planName: string;
  /** What the app hears of the boot server; the view tells it when it started or stopped it. */
  server: BootServer;
  /** Saves a dirty draft first (asking); false when the user cancelled. */
  ensureSaved: (what: string) => Promise<boolean>;
  confirm: (title: string, body: ReactNode, ok: string, opts?: { danger?: boolean; cancel?: string }) => Promise<boolean>;
  choose: Dialogs["choose"];
  /** Shows the Cluster tab, where a cluster is restored from a snapshot. */
  onRestore: () => void;
  onReport: (e: unknown) => void;
  /** Sends a machine the plan does not have to the palette. */
  onAddToPalette: (m: MachineView) => void;
  /** The image mirror: Start offers to fetch what the plan's machines need. */
  images: Images;
  /** Shows the Images view. */
  onImages: () => void;
  /** What the LAN said of the plan's static addresses at Start (findings on their nodes). */
  onLanFindings: (findings: Finding[]) => void;
  /** Shows a finding's node and field in the Design view. */
  onShowFinding: (finding: Finding) => void;
}

const time = (ms: number) => new Date(ms).toLocaleTimeString();

/** Not seen on the network since the boot server started (or since it was armed): maybe off. */
const notSeen = (m: MachineView | null) => !m || !m.stage || m.stage === "armed";

const GiB = 1024 * 1024 * 1024;
export const formatBytes = (n: number) =>
  n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;

const Timeline = memo(function Timeline({ machine, armed }: { machine: MachineView | null; armed: boolean }) {
  const times = machine ? stageTimes(machine) : new Map<Stage, number>();
  const failedAt = machine?.stage === "failed" ? lastGoodStage(machine) : null;
  const current: Stage | null = machine?.stage ?? (armed ? "armed" : null);
  const reached = current === "failed" ? (failedAt ? STAGES.indexOf(failedAt) : -1) : current ? STAGES.indexOf(current) : -1;
  return (
    <ol className="timeline">
      {STAGES.map((s, i) => {
        const cls =
          i === reached && current === "failed"
            ? "failed"
            : i === reached
              ? "current"
              : i < reached
                ? // A stage passed without being reached (an install from an inspection's live system skips the network boot's).
                  times.has(s) || s === "armed" || times.size === 0
                  ? "done"
                  : "skipped"
                : "todo";
        const at = times.get(s);
        return (
          <li key={s} className={cls} title={at ? time(at) : undefined}>
            <span className="dot" />
            <span className="stage-name">{s}</span>
            {at !== undefined && <span className="stage-time">{time(at)}</span>}
          </li>
        );
      })}
    </ol>
  );
});

function explain(error: ErrorBody) {
  switch (error.code) {
    case "needs_privilege":
      return "The boot server answers DHCP and TFTP on ports 67 and 69, which needs a one-time permission. Grant it (your password is asked once), then start again.";
    case "address_in_use":
      return "Another DHCP or TFTP server already runs on this machine (dnsmasq, a VM network, another Flatlab). Stop it, or choose DHCP mode “off”, then start again.";
    default:
      return null;
  }
}

/** What the machines of `planName` reported about the disks an install would erase. */
export async function eraseWarnings(planName: string, plan: Plan): Promise<{ node: string; warning: string }[]> {
  const all = await backend.inventories(planName).catch(() => []);
  const nodes = new Set(plan.nodes.map((n) => n.name));
  return all
    .filter((m) => nodes.has(m.node))
    .flatMap((m) =>
      m.warnings
        .filter((w) => w.startsWith("installing erases") || w.includes("is removable"))
        .map((warning) => ({ node: m.node, warning })),
    );
}

/** Serves the saved plan to network-booting machines and shows how far each has come. */
export function InstallView({ plan, planName, server, ensureSaved, confirm, choose, onRestore, onReport, onAddToPalette, images, onImages, onLanFindings, onShowFinding }: Props) {
  const { state: boot, running, error } = server;
  const [interfaces, setInterfaces] = useState<NetInterface[] | null>(null);
  const [iface, setIface] = useState("");
  const [powered, setPowered] = useState<string | null>(null);
  const [dhcp, setDhcp] = useState<DhcpMode>("proxy");
  const [busy, setBusy] = useState<string | null>(null);
  const readiness = useReadiness(plan, images.generation);
  const pinned = plan.os.version.trim() !== "" && plan.os.version !== "current";

  useEffect(() => {
    backend
      .listInterfaces()
      .then((list) => {
        setInterfaces(list);
        const usable = list.find((i) => i.addresses.some((a) => !a.startsWith("127."))) ?? list[0];
        setIface((cur) => cur || usable?.name || "");
      })
      .catch(onReport);
  }, [onReport]);

  /** Fetches the plan's release and K3s into the mirror; true once they are there. */
  const fetchImages = async () => {
    setBusy("fetch");
    try {
      const done = await images.fetch({ channel: plan.os.channel, arch: plan.os.arch, version: plan.os.version, k3s: plan.kubernetes.k3s_version || null, k3s_airgap: false });
      return done !== null;
    } finally {
      setBusy(null);
    }
  };

  const start = async (withoutImages = false) => {
    if (!(await ensureSaved("The boot server serves the saved plan."))) return;
    // A boot server whose mirror lacks the plan's Flatcar cannot install anything: offer to
    // fetch it first.
    const ready = await backend.imagesReadiness(plan).catch(() => null);
    if (!withoutImages && ready && pinned && ready.flatcar_missing.length > 0) {
      const fetch = await confirm(
        `Flatcar ${ready.flatcar_version} is not in the mirror`,
        <>
          <p>
            Machines that network-boot now could not install: the boot server has no Flatcar {ready.channel} {ready.flatcar_version} ({ready.arch}) to give them.
          </p>
          <p>
            Fetch it{ready.k3s_mirrored ? "" : ` and K3s ${ready.k3s_version}`} first (about 500 MiB, each file checked against its signature); the boot server starts once it is in the
            mirror.
          </p>
        </>,
        "Fetch, then start",
      );
      if (!fetch) return;
      if (!(await fetchImages())) {
        onImages();
        return;
      }
    }
    // A planned static address that another host already answers for: the node would lose its
    // network after its install. The finding shows on the node; the user decides.
    const taken = await backend.checkAddresses(plan).catch(() => [] as Finding[]);
    onLanFindings(taken);
    if (taken.length > 0) {
      const ok = await confirm(
        taken.length === 1 ? "An address is taken on the LAN" : `${taken.length} addresses are taken on the LAN`,
        <>
          <p>Another host already answers for these planned addresses; the nodes would lose their network after their install:</p>
          <ul data-testid="taken-list">
            {taken.map((f) => (
              <li key={f.path}>{f.message}</li>
            ))}
          </ul>
          <p>The Design view shows each on its node.</p>
        </>,
        "Start anyway",
        { cancel: "Fix the plan" },
      );
      if (!ok) {
        if (taken[0]) onShowFinding(taken[0]);
        return;
      }
    }
    // Disks whose machines reported partitions (or that are removable) are named, and the user
    // asks once for all of them, before anything can be erased.
    const risky = await eraseWarnings(planName, plan);
    if (risky.length > 0) {
      const ok = await confirm(
        risky.length === 1 ? "Erase this disk?" : `Erase these ${risky.length} disks?`,
        <>
          <p>Each armed machine that network-boots installs Flatcar on its install disk, erasing it:</p>
          <ul data-testid="erase-list">
            {risky.map((r) => (
              <li key={r.node + r.warning}>
                <b>{r.node}</b>: {r.warning}
              </li>
            ))}
          </ul>
        </>,
        "Start and erase",
      );
      if (!ok) return;
    }
    setBusy("start");
    server.setError(null);
    try {
      await backend.bootStart({ plan: planName, interface: iface, dhcp, mirror: null });
      server.started();
    } catch (e) {
      server.setError(e instanceof IpcError && e.code !== "ipc" ? { code: e.code, message: e.message } : { code: "internal", message: String(e instanceof Error ? e.message : e) });
    } finally {
      setBusy(null);
    }
  };

  const stop = async () => {
    setBusy("stop");
    try {
      await backend.bootStop();
      server.stopped();
    } catch (e) {
      onReport(e);
    } finally {
      setBusy(null);
    }
  };

  const grant = async () => {
    setBusy("grant");
    try {
      await backend.grantBootPrivilege();
    } catch (e) {
      setBusy(null);
      onReport(e);
      return;
    }
    setBusy(null);
    await start(true);
  };

  /** Wake-on-LAN: magic packets on the boot interface, for `nodes` (one, or those not seen yet). */
  const powerOn = async (nodes: string[]) => {
    setPowered(null);
    try {
      const sent: PoweredOn[] = [];
      for (const node of nodes) sent.push(...(await backend.powerOn(planName, node, boot.ready?.interface ?? (iface || null))));
      setPowered(
        sent.length === 0
          ? "Every machine of the plan is on the network already: no magic packets sent."
          : `Sent ${sent[0].packets} magic packets each to ${sent.map((s) => `${s.node} (${s.mac})`).join(", ")} on ${sent[0].to}. A machine that is off and has power starts in seconds and network-boots; one that does not has Wake-on-LAN off in its firmware setup (installed nodes arm it themselves).`,
      );
    } catch (e) {
      onReport(e);
    }
  };

  const rearm = async (node: string, mac: string) => {
    const waiting = mac !== "" && isInspecting(mac);
    const ok = await confirm(
      waiting ? `Install ${node} now?` : `Re-arm ${node}?`,
      waiting ? (
        <p>
          {node} was inspected: its live system installs Flatcar on its install disk (<code>{plan.nodes.find((n) => n.name === node)?.install_disk}</code>) as soon as it next asks,
          erasing the disk. If it is not waiting there, its next network boot installs it.
        </p>
      ) : (
        <p>The next time {node} network-boots, Flatcar is installed again on its install disk, erasing it.</p>
      ),
      waiting ? "Install" : "Re-arm",
    );
    if (!ok) return;
    try {
      if (!(await armAskingTheCluster(node))) return;
      const m = mac.toLowerCase().replaceAll("-", ":");
      setInspecting((list) => list.filter((x) => x !== m));
    } catch (e) {
      onReport(e);
    }
  };

  /** Arms `node`; when the cluster ran and no server of it answers, the user chooses. False
   * when the user chose to wait. */
  const armAskingTheCluster = async (node: string): Promise<boolean> => {
    try {
      await backend.bootArm(planName, node);
      return true;
    } catch (e) {
      if (!(e instanceof IpcError) || e.code !== "cluster_lost") throw e;
      const choice = await choose(
        `The cluster does not answer`,
        <>
          <p data-testid="cluster-lost-message">{e.message}</p>
          <p>Installing {node} now would start a second, empty cluster beside the old one. Choose how to go on.</p>
        </>,
        "Wait for a server",
        [
          { value: "restore", label: "Restore from a snapshot" },
          { value: "new", label: "Start a new cluster", danger: true },
        ],
      );
      if (choice === "restore") onRestore();
      if (choice !== "new") return false;
      const sure = await confirm(
        "Start a new cluster?",
        <p>
          {node} starts a new, empty cluster. The old cluster's data (its workloads, its secrets) is gone for good; its other servers must be
          installed again to join the new one.
        </p>,
        "Start a new cluster",
        { danger: true },
      );
      if (!sure) return false;
      await backend.bootArm(planName, node, true);
      return true;
    }
  };

  const others = strangers(boot, plan);
  const [inspecting, setInspecting] = useState<string[]>([]);
  // The store's inspections: they outlive this view and the boot server.
  useEffect(() => {
    let gone = false;
    backend
      .inspections(planName)
      .then((list) => {
        if (!gone) setInspecting(list.map((i) => i.mac.toLowerCase()));
      })
      .catch(() => {});
    return () => {
      gone = true;
    };
  }, [planName]);

  /** Inspects a machine at its next network boot (a waiting stranger at its next ask). */
  const inspect = async (target: { node: string } | { mac: string }) => {
    if (!(await ensureSaved("An inspection is kept with the saved plan."))) return;
    try {
      const done = await backend.inspectMachine(planName, target);
      setInspecting((list) => [...list.filter((m) => m !== done.mac), done.mac]);
    } catch (e) {
      onReport(e);
    }
  };
  const isInspecting = (mac: string) => inspecting.includes(mac.toLowerCase().replaceAll("-", ":"));

  return (
    <div className="install pad">
      <section className="panel">
        <h2>Boot server</h2>
        <div className="form-row">
          <label className="field">
            <span>Network interface</span>
            <select data-testid="boot-interface" value={iface} onChange={(e) => setIface(e.target.value)} disabled={running}>
              {interfaces === null && <option value="">Loading…</option>}
              {interfaces?.length === 0 && <option value="">No interfaces</option>}
              {interfaces?.map((i) => (
                <option key={i.name} value={i.name}>
                  {i.name}
                  {i.addresses.length ? ` — ${i.addresses.join(", ")}` : " — no address"}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>DHCP</span>
            <select data-testid="boot-dhcp" value={dhcp} onChange={(e) => setDhcp(e.target.value as DhcpMode)} disabled={running}>
              <option value="proxy">Next to my home router (recommended)</option>
              <option value="full">Isolated switch, Flatlab is the DHCP server</option>
              <option value="off">Off (Flatlab answers no DHCP)</option>
            </select>
          </label>
          <div className="buttons">
            <button className="primary" data-testid="boot-start" onClick={() => void start()} disabled={running || busy !== null || !iface}>
              {busy === "start" ? "Starting…" : busy === "fetch" ? "Fetching images…" : "Start"}
            </button>
            <button data-testid="boot-stop" onClick={stop} disabled={!running || busy !== null}>
              {busy === "stop" ? "Stopping…" : "Stop"}
            </button>
            <button
              data-testid="power-on-all"
              onClick={() => void powerOn(plan.nodes.filter((n) => n.name && n.mac && notSeen(machineForNode(boot, n))).map((n) => n.name))}
              disabled={!running || busy !== null}
              title="Wake-on-LAN: magic packets to every machine of the plan not seen on the network yet, so that they power on and network-boot."
            >
              Power on machines
            </button>
          </div>
        </div>
        {powered && (
          <p className="note" data-testid="power-on-result">
            {powered}
          </p>
        )}
        <p className="status">
          {running ? (
            <>
              <span className="status-dot on" /> Serving plan <strong>{planName}</strong>
              {boot.ready && (
                <span className="muted">
                  {" "}
                  on {boot.ready.interface} · HTTP {boot.ready.http}
                  {boot.ready.tftp ? ` · TFTP ${boot.ready.tftp}` : ""}
                </span>
              )}
            </>
          ) : (
            <>
              <span className="status-dot" /> Stopped. Start it, then switch on the machines and let them network-boot.
            </>
          )}
        </p>
        {!running && readiness && (readiness.flatcar_missing.length > 0 || !pinned) && (
          <p className="note" data-testid="images-missing">
            {pinned ? (
              <>
                The mirror has no Flatcar {readiness.channel} {readiness.flatcar_version}: machines could not install.{" "}
                <button className="link" onClick={() => void fetchImages()} disabled={busy !== null || images.fetching !== null} data-testid="install-fetch">
                  Fetch it now
                </button>{" "}
                or{" "}
                <button className="link" onClick={onImages}>
                  open Images
                </button>
                .
              </>
            ) : (
              <>
                The plan does not pin a Flatcar release.{" "}
                <button className="link" onClick={onImages}>
                  Choose one in Images
                </button>{" "}
                so that the boot server can serve it.
              </>
            )}
          </p>
        )}
        {!running && readiness && readiness.flatcar_missing.length === 0 && (
          <p className="muted small" data-testid="images-ready">
            Flatcar {readiness.flatcar_version} is in the mirror{readiness.k3s_mirrored ? `, and K3s ${readiness.k3s_version}` : `; K3s ${readiness.k3s_version} is not (nodes download it from GitHub)`}.
          </p>
        )}
        {images.fetching && images.progress && (
          <p className="small mono" data-testid="install-fetch-progress">
            {images.progress.file}: {progressText(images.progress)}
          </p>
        )}
        {boot.alerts.map((a) => (
          <p key={`${a.code}-${a.at}-${a.from ?? ""}`} className="notice alert" data-testid="server-alert" data-code={a.code}>
            <b>Alert</b> ({time(a.at)}): {a.message}
          </p>
        ))}
        {boot.ready?.warnings.map((w, i) => (
          <p key={i} className="warning-text small">
            {w}
          </p>
        ))}
        {error && (
          <div className="banner error inline" data-testid="boot-error" data-code={error.code} role="alert">
            <div>
              <div>{error.message}</div>
              {explain(error) && <div className="explain">{explain(error)}</div>}
            </div>
            {error.code === "needs_privilege" && (
              <button className="primary" data-testid="grant-privilege" onClick={grant} disabled={busy !== null}>
                {busy === "grant" ? "Granting…" : "Grant permission"}
              </button>
            )}
          </div>
        )}
      </section>

      <section className="panel">
        <h2>Machines in the plan</h2>
        <ul className="machines">
          {plan.nodes.map((n, i) => {
            const m = machineForNode(boot, n);
            const armed = boot.armed.includes(n.name);
            const stage = m?.stage ?? (armed ? "armed" : "");
            const failed = m ? failure(m) : null;
            return (
              <li key={`${n.name}-${i}`} className={`machine ${stage === "failed" ? "failed" : ""}`} data-testid={`machine-${n.name}`} data-stage={stage}>
                <div className="machine-head">
                  <strong>{n.name || "(unnamed)"}</strong>
                  <span className={`role ${n.role ?? "none"}`}>{n.role ?? "no role"}</span>
                  <span className="mono small muted">{n.mac || "no MAC"}</span>
                  {m?.ip && <span className="mono small">{m.ip}</span>}
                  {m?.firmware && <span className="muted small">{m.firmware}</span>}
                  <span className="spacer" />
                  {n.mac && isInspecting(n.mac) ? (
                    <span className="small stage" data-testid={`inspecting-${n.name}`} title="At its next network boot it reports its hardware and waits; Re-arm then installs it from there.">
                      inspecting
                    </span>
                  ) : (
                    <button
                      data-testid={`inspect-${n.name}`}
                      onClick={() => void inspect({ node: n.name })}
                      disabled={!n.name || !n.mac || (stage !== "" && stage !== "armed" && stage !== "dhcp")}
                      title="At its next network boot it reports its hardware (memory, disks) and waits, so you can choose its install disk first."
                    >
                      Inspect
                    </button>
                  )}
                  <button
                    data-testid={`power-on-${n.name}`}
                    onClick={() => void powerOn([n.name])}
                    disabled={!n.name || !n.mac || (!running && !iface)}
                    title="Wake-on-LAN: a magic packet on the boot interface powers the machine on when it is off."
                  >
                    Power on
                  </button>
                  <button data-testid={`rearm-${n.name}`} onClick={() => void rearm(n.name, n.mac)} disabled={!n.name}>
                    {n.mac && isInspecting(n.mac) ? "Install now" : "Re-arm"}
                  </button>
                </div>
                <Timeline machine={m} armed={armed} />
                {failed && <p className="failure">Failed: {failed}</p>}
                {m?.notices
                  .filter((x, j, all) => !all.slice(j + 1).some((y) => y.code === x.code))
                  .map((x) => (
                    <p key={`${x.code}-${x.at}`} className={`notice ${x.kind}`} data-testid={`${x.kind}-${n.name}`} data-code={x.code}>
                      <b>{x.kind === "diagnosis" ? "Why it may be stuck" : "Alert"}</b> ({time(x.at)}): {x.kind === "diagnosis" ? `${n.name} ` : ""}
                      {x.message}
                      {x.from && !x.message.includes(x.from) ? ` (from ${x.from})` : ""}
                    </p>
                  ))}
                {m?.progress && (
                  <div className="progress-line">
                    <span className="mono small">{m.progress.file}</span>
                    <progress max={m.progress.total || 1} value={m.progress.sent} />
                    <span className="small muted">
                      {formatBytes(m.progress.sent)} / {formatBytes(m.progress.total)}
                    </span>
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      </section>

      <section className="panel">
        <h2>Other machines that network-booted</h2>
        {others.length === 0 ? (
          <p className="muted small">None. Machines the plan does not have show up here when they network-boot.</p>
        ) : (
          <ul className="machines">
            {others.map((m) => (
              <li key={m.mac} className="machine stranger" data-testid={`stranger-${m.mac}`}>
                <div className="machine-head">
                  <span className="mono">{m.mac}</span>
                  {m.firmware && <span className="muted small">{m.firmware}</span>}
                  {m.lastSeen > 0 && <span className="muted small">seen {time(m.lastSeen)}</span>}
                  <span className="spacer" />
                  {isInspecting(m.mac) ? (
                    <span className="small stage" data-testid={`stranger-inspecting-${m.mac}`}>
                      inspecting
                    </span>
                  ) : (
                    <button data-testid={`stranger-inspect-${m.mac}`} onClick={() => void inspect({ mac: m.mac })} title="Boot it into the live system to report its hardware; it waits there until you add it to the plan and arm it.">
                      Inspect
                    </button>
                  )}
                  <button data-testid={`stranger-add-${m.mac}`} onClick={() => onAddToPalette(m)}>
                    Add to plan…
                  </button>
                </div>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
