// The Images view: the mirror the boot server serves Flatcar and K3s from, so that installs
// need no internet. What the open plan needs, what the release servers offer, fetch with
// progress and cancel, verify, prune, and where the mirror lives.
import { useEffect, useState } from "react";
import { backend, dialogs, type ImagesReadiness, type MirrorSettings, type Plan } from "../lib/ipc";
import type { Edit } from "../design/plan";
import { bytes, progressText, type Images } from "./useImages";

interface Props {
  plan: Plan;
  images: Images;
  edit: Edit;
  onReport: (e: unknown) => void;
}

const board = (arch: string) => (arch === "arm64" ? "arm64-usr" : "amd64-usr");

/** Whether the mirror holds what `plan` needs, checked again when the mirror changes. */
export function useReadiness(plan: Plan, generation: number): ImagesReadiness | null {
  const [readiness, setReadiness] = useState<ImagesReadiness | null>(null);
  const { channel, version, arch } = plan.os;
  const k3s = plan.kubernetes.k3s_version;
  useEffect(() => {
    let gone = false;
    backend
      .imagesReadiness({ ...plan, os: { ...plan.os, channel, version, arch }, kubernetes: { ...plan.kubernetes, k3s_version: k3s } })
      .then((r) => {
        if (!gone) setReadiness(r);
      })
      .catch(() => {
        if (!gone) setReadiness(null);
      });
    return () => {
      gone = true;
    };
    // Only what readiness depends on: not every edit of the plan.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [channel, version, arch, k3s, generation]);
  return readiness;
}

export function ImagesView({ plan, images, edit, onReport }: Props) {
  const { overview, versions, fetching, progress, outcome, checks } = images;
  const readiness = useReadiness(plan, images.generation);
  const [airgap, setAirgap] = useState(false);
  const [keep, setKeep] = useState(2);
  const [pruned, setPruned] = useState<string[] | null>(null);
  const arch = plan.os.arch;
  const { lookUp } = images;
  const servers = images.settings ? JSON.stringify(images.settings) : null;
  // Asked again when the servers in the settings change.
  useEffect(() => {
    if (servers !== null) void lookUp(arch);
  }, [lookUp, arch, servers]);

  const planVersion = plan.os.version.trim();
  const pinned = planVersion !== "" && planVersion !== "current";
  const fetchPlan = () =>
    void images.fetch({
      channel: plan.os.channel,
      arch,
      version: pinned ? planVersion : "current",
      k3s: plan.kubernetes.k3s_version.trim() || null,
      k3s_airgap: airgap,
    });
  const pickRelease = (channel: string, version: string) =>
    edit((p) => ({ ...p, os: { ...p.os, channel: channel as Plan["os"]["channel"], version } }), "images.use");
  const pickK3s = (version: string) => edit((p) => ({ ...p, kubernetes: { ...p.kubernetes, k3s_version: version } }), "images.k3s");
  const failed = checks?.filter((c) => c.problem !== null) ?? [];
  const complete = readiness !== null && pinned && readiness.flatcar_missing.length === 0 && readiness.k3s_mirrored && (!airgap || readiness.airgap_mirrored);

  return (
    <div className="images pad">
      <section className="panel" data-testid="images-plan">
        <h2>What {plan.name} needs</h2>
        {readiness === null ? (
          <p className="muted">Checking the mirror…</p>
        ) : (
          <ul className="needs">
            <li data-testid="need-flatcar" className={readiness.flatcar_missing.length ? "missing" : "present"}>
              <span className={readiness.flatcar_missing.length ? "warning-text" : "ok"}>{readiness.flatcar_missing.length ? "✗" : "✓"}</span> Flatcar {readiness.channel}{" "}
              <code>{readiness.flatcar_version || "(no version)"}</code> for {readiness.arch}
              {!pinned ? (
                <span className="muted"> — pin a release (below) so reinstalls give the same system</span>
              ) : readiness.flatcar_missing.length ? (
                <span className="muted"> — not mirrored: machines could not install</span>
              ) : (
                <span className="muted"> — mirrored and verified</span>
              )}
            </li>
            <li data-testid="need-k3s" className={readiness.k3s_mirrored ? "present" : "missing"}>
              <span className={readiness.k3s_mirrored ? "ok" : "warning-text"}>{readiness.k3s_mirrored ? "✓" : "✗"}</span> K3s <code>{readiness.k3s_version}</code>
              <span className="muted">{readiness.k3s_mirrored ? " — mirrored" : " — not mirrored: nodes would download it from GitHub"}</span>
            </li>
            <li data-testid="need-airgap" className={readiness.airgap_mirrored ? "present" : "optional"}>
              <span className={readiness.airgap_mirrored ? "ok" : "muted"}>{readiness.airgap_mirrored ? "✓" : "–"}</span> K3s air-gap images
              <span className="muted">
                {readiness.airgap_mirrored ? " — mirrored: nodes load them instead of pulling from registries" : " — optional: without them nodes pull K3s's images from the internet"}
              </span>
            </li>
          </ul>
        )}
        <div className="form-row">
          <label className="check">
            <input type="checkbox" data-testid="fetch-airgap" checked={airgap} onChange={(e) => setAirgap(e.target.checked)} />
            with the air-gap images (about 200 MiB more)
          </label>
          <div className="buttons">
            <button className={complete ? undefined : "primary"} data-testid="fetch-plan" onClick={fetchPlan} disabled={fetching !== null || readiness === null}>
              {complete ? "Fetch again (checks what is there)" : pinned ? `Fetch Flatcar ${planVersion} and K3s` : "Fetch the current release and K3s"}
            </button>
          </div>
        </div>
      </section>

      {(fetching || outcome) && (
        <section className="panel" data-testid="fetch-panel">
          {fetching ? (
            <>
              <h2>
                Fetching Flatcar {fetching.channel} {fetching.version}
                {fetching.k3s ? ` and K3s ${fetching.k3s}` : ""}
              </h2>
              <div className="progress-line">
                <progress max={progress?.total ?? 1} value={progress?.total ? progress.done : undefined} data-testid="fetch-progress" />
                <button data-testid="fetch-cancel" onClick={() => void images.cancel()}>
                  Cancel
                </button>
              </div>
              <p className="small mono" data-testid="fetch-status">
                {progress ? `${progress.file}: ${progressText(progress)}` : "Connecting…"}
              </p>
              <p className="muted small">Each file is checked against its OpenPGP signature (Flatcar) or published SHA-256 (K3s) before it enters the mirror.</p>
            </>
          ) : outcome && "ok" in outcome ? (
            <p data-testid="fetch-done" className="ok">
              Flatcar {outcome.ok.version} is verified and mirrored ({outcome.ok.files.length} files){outcome.ok.k3s ? ", with K3s" : ""}.
              {!pinned || planVersion !== outcome.ok.version ? (
                <>
                  {" "}
                  <button data-testid="use-fetched" onClick={() => pickRelease(plan.os.channel, outcome.ok.version)}>
                    Use {outcome.ok.version} in the plan
                  </button>
                </>
              ) : null}
            </p>
          ) : outcome && "cancelled" in outcome ? (
            <p data-testid="fetch-cancelled" className="warning-text">
              Cancelled. What was downloaded is kept: fetching again resumes where this one stopped.
            </p>
          ) : outcome && "error" in outcome ? (
            <p data-testid="fetch-error" className="failure">
              {outcome.error}
            </p>
          ) : null}
        </section>
      )}

      <section className="panel" data-testid="release-servers">
        <div className="section-head">
          <h2>On the release servers</h2>
          <span className="spacer" />
          <button onClick={() => void images.lookUp(arch)} disabled={images.lookingUp}>
            {images.lookingUp ? "Asking…" : "Ask again"}
          </button>
        </div>
        {versions === null ? (
          <p className="muted">{images.lookingUp ? "Asking the release servers…" : "Not asked yet."}</p>
        ) : (
          <table className="nodes-table">
            <thead>
              <tr>
                <th>Flatcar channel</th>
                <th>Current release ({arch})</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {versions.flatcar.map((c) => {
                const have = overview?.releases.some((r) => r.channel === c.channel && r.board === board(arch) && r.version === c.version && r.complete);
                return (
                  <tr key={c.channel} data-testid={`channel-${c.channel}`}>
                    <td>{c.channel}</td>
                    <td>{c.version ? <code>{c.version}</code> : <span className="muted small">{c.error ?? "unknown"}</span>}</td>
                    <td>
                      <div className="buttons">
                      {c.version && (
                        <>
                          {have ? (
                            <span className="ok small">mirrored</span>
                          ) : (
                            <button
                              data-testid={`fetch-${c.channel}`}
                              disabled={fetching !== null}
                              onClick={() => void images.fetch({ channel: c.channel, arch, version: c.version ?? "current", k3s: null, k3s_airgap: false })}
                            >
                              Fetch
                            </button>
                          )}
                          {(plan.os.channel !== c.channel || planVersion !== c.version) && (
                            <button data-testid={`use-${c.channel}`} onClick={() => pickRelease(c.channel, c.version ?? "")}>
                              Use in plan
                            </button>
                          )}
                        </>
                      )}
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {versions && (
          <table className="nodes-table k3s-channels">
            <thead>
              <tr>
                <th>K3s channel</th>
                <th>Newest release</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {versions.k3s_error && (
                <tr>
                  <td colSpan={3} className="muted small">
                    {versions.k3s_error}
                  </td>
                </tr>
              )}
              {versions.k3s
                .filter((k) => k.id === "stable" || k.id === "latest")
                .map((k) => (
                  <tr key={k.id} data-testid={`k3s-channel-${k.id}`}>
                    <td>{k.id}</td>
                    <td>
                      <code>{k.latest}</code>
                    </td>
                    <td>
                      <div className="buttons">
                      {plan.kubernetes.k3s_version !== k.latest && (
                        <button onClick={() => pickK3s(k.latest)} data-testid={`use-k3s-${k.id}`}>
                          Use in plan
                        </button>
                      )}
                      </div>
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        )}
      </section>

      <section className="panel" data-testid="mirrored">
        <div className="section-head">
          <h2>In the mirror</h2>
          <span className="spacer" />
          <button data-testid="mirror-verify" onClick={() => void images.verify()} disabled={images.verifying || fetching !== null || !overview?.releases.length}>
            {images.verifying ? "Verifying…" : "Verify all"}
          </button>
        </div>
        {overview && (
          <p className="muted small" data-testid="mirror-usage">
            {bytes(overview.bytes)} in <code>{overview.dir}</code>
            {overview.free_bytes !== null && <>, {bytes(overview.free_bytes)} free</>}
          </p>
        )}
        {checks && (
          <p data-testid="verify-result" className={failed.length ? "failure" : "ok"}>
            {failed.length === 0 ? `All ${checks.length} files check out against their signatures and checksums.` : `${failed.length} of ${checks.length} files fail: ${failed.map((f) => `${f.file}: ${f.problem}`).join("; ")}`}
          </p>
        )}
        {overview && overview.releases.length === 0 && overview.k3s.length === 0 ? (
          <p className="muted" data-testid="mirror-empty">
            Nothing yet. Fetch the plan's release above: about 500 MiB for Flatcar, 70 MiB for K3s.
          </p>
        ) : (
          <table className="nodes-table" data-testid="mirror-releases">
            <thead>
              <tr>
                <th>Release</th>
                <th>Size</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {overview?.releases.map((r) => (
                <tr key={`${r.channel}/${r.board}/${r.version}`}>
                  <td>
                    Flatcar {r.channel} <code>{r.version}</code> <span className="muted small">{r.board}</span>
                  </td>
                  <td>{bytes(r.bytes)}</td>
                  <td className={r.complete ? "ok" : "warning-text"}>{r.complete ? "complete, signatures checked" : `incomplete (${r.files.length} of 3 files): fetch it again to finish`}</td>
                </tr>
              ))}
              {overview?.k3s.map((k) => (
                <tr key={`k3s/${k.version}`}>
                  <td>
                    K3s <code>{k.version}</code>
                  </td>
                  <td>{bytes(k.bytes)}</td>
                  <td className="ok">
                    {[...k.binaries, ...k.airgap.map(() => "air-gap images")].join(", ")}, checksums checked
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div className="form-row">
          <label className="field">
            <span>Keep per channel</span>
            <input type="number" className="narrow" min={1} max={20} value={keep} onChange={(e) => setKeep(Math.max(1, Number(e.target.value) || 1))} data-testid="prune-keep" />
          </label>
          <div className="buttons">
            <button
              data-testid="mirror-prune"
              disabled={fetching !== null || !overview?.releases.length}
              onClick={() => {
                images
                  .prune(keep)
                  .then(setPruned)
                  .catch(onReport);
              }}
            >
              Remove older releases
            </button>
          </div>
        </div>
        {pruned && <p className="muted small">{pruned.length ? `Removed ${pruned.join(", ")}` : "Nothing to remove."}</p>}
      </section>

      {images.settings && <MirrorSettingsPanel key={JSON.stringify(images.settings)} settings={images.settings} images={images} />}
    </div>
  );
}

function MirrorSettingsPanel({ settings, images }: { settings: MirrorSettings; images: Images }) {
  const [draft, setDraft] = useState<MirrorSettings>(settings);
  const set = (field: keyof MirrorSettings) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [field]: e.target.value || undefined }));
  const changed = JSON.stringify(draft) !== JSON.stringify(settings);
  return (
    <section className="panel" data-testid="mirror-settings">
      <h2>Settings</h2>
      <div className="form-row">
        <label className="field grow">
          <span>Mirror folder</span>
          <input className="mono" data-testid="mirror-dir" value={draft.dir ?? ""} placeholder={images.overview?.dir ?? "~/.local/share/flatlab/mirror"} onChange={set("dir")} spellCheck={false} />
        </label>
        <div className="buttons">
          <button
            onClick={() => {
              void dialogs.pickFolder("Choose the mirror folder").then((folder) => {
                if (folder) setDraft((d) => ({ ...d, dir: folder }));
              });
            }}
          >
            Choose…
          </button>
        </div>
      </div>
      <details>
        <summary className="small">Servers and signing key</summary>
        <label className="field">
          <span>Flatcar release server</span>
          <input className="mono" data-testid="mirror-flatcar-url" value={draft.flatcar_base_url ?? ""} placeholder="https://{channel}.release.flatcar-linux.net" onChange={set("flatcar_base_url")} spellCheck={false} />
        </label>
        <label className="field">
          <span>K3s releases</span>
          <input className="mono" data-testid="mirror-k3s-url" value={draft.k3s_base_url ?? ""} placeholder="https://github.com/k3s-io/k3s/releases/download" onChange={set("k3s_base_url")} spellCheck={false} />
        </label>
        <label className="field">
          <span>K3s channel server</span>
          <input className="mono" data-testid="mirror-k3s-channels" value={draft.k3s_channels_url ?? ""} placeholder="https://update.k3s.io/v1-release/channels" onChange={set("k3s_channels_url")} spellCheck={false} />
        </label>
        <label className="field">
          <span>Signing key file</span>
          <input className="mono" data-testid="mirror-key" value={draft.key ?? ""} placeholder="the Flatcar image signing key shipped with Flatlab" onChange={set("key")} spellCheck={false} />
        </label>
      </details>
      <div className="buttons">
        <button className="primary" data-testid="mirror-settings-save" disabled={!changed} onClick={() => void images.saveSettings(draft)}>
          Save settings
        </button>
      </div>
    </section>
  );
}
