import { memo, useEffect, useMemo, useState } from "react";
import { backend, IpcError, type Finding, type Plan, type PreviewFile } from "../lib/ipc";
import { highlight } from "./highlight";
import { FindingList } from "../design/FindingList";

interface Props {
  plan: Plan;
  findings: Finding[];
  onFinding: (finding: Finding) => void;
}

const baseName = (path: string) => path.split("/").pop() ?? path;

/** Syntax-highlighted file contents. */
export const Code = memo(function Code({ text, language }: { text: string; language: string }) {
  const tokens = useMemo(() => highlight(text, language), [text, language]);
  return (
    <pre className={`code lang-${language}`} data-testid="preview-code">
      <code>
        {tokens.map((t, i) =>
          t.kind === "plain" ? (
            t.text
          ) : (
            <span key={i} className={`tok-${t.kind}`}>
              {t.text}
            </span>
          ),
        )}
      </code>
    </pre>
  );
});

/** What the plan renders to, before anything is saved or installed. */
export function GenerateView({ plan, findings, onFinding }: Props) {
  const [result, setResult] = useState<{ plan: Plan; files: PreviewFile[] | null; error: IpcError | null } | null>(null);
  const [node, setNode] = useState<string | null>(null);
  const [file, setFile] = useState<string>("config.ign");

  useEffect(() => {
    let live = true;
    const timer = window.setTimeout(() => {
      backend
        .previewPlan(plan)
        .then((files) => live && setResult({ plan, files, error: null }))
        .catch((e) => live && setResult({ plan, files: null, error: e instanceof IpcError ? e : new IpcError("ipc", String(e)) }));
    }, 150);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [plan]);

  const files = result?.files ?? null;
  const nodes = useMemo(() => [...new Set((files ?? []).map((f) => f.node).filter((n): n is string => n !== null))], [files]);
  const currentNode = node && nodes.includes(node) ? node : (nodes[0] ?? null);
  const choices = (files ?? []).filter((f) => f.node === currentNode || f.node === null);
  const current = choices.find((f) => baseName(f.path) === file) ?? choices[0] ?? null;
  const loading = result === null || result.plan !== plan;

  return (
    <div className="generate">
      {result?.error && (
        <div className="generate-error">
          <p className="banner error inline" data-testid="preview-error">
            {result.error.message}
          </p>
          {result.error.code === "invalid_plan" && (
            <>
              <p className="muted">Fix these errors in the Design view to see the generated files:</p>
              <FindingList findings={findings} onSelect={onFinding} />
            </>
          )}
        </div>
      )}
      {loading && !files && !result?.error && <p className="muted pad">Rendering…</p>}
      {files && (
        <div className="generate-grid">
          <nav className="file-nav" aria-label="Generated files">
            <h2>Nodes {loading && <span className="muted small">· updating…</span>}</h2>
            <ul>
              {nodes.map((n) => (
                <li key={n}>
                  <button className={n === currentNode ? "list-item active" : "list-item"} data-testid={`preview-node-${n}`} onClick={() => setNode(n)}>
                    {n}
                  </button>
                </li>
              ))}
            </ul>
            <h2>Files</h2>
            <p className="muted small">Rendered from the draft, saved or not. Secrets are shown as stand-ins.</p>
            <ul>
              {choices.map((f) => (
                <li key={f.path}>
                  <button
                    className={f === current ? "list-item active" : "list-item"}
                    data-testid={`preview-file-${baseName(f.path)}`}
                    onClick={() => setFile(baseName(f.path))}
                    title={f.path}
                  >
                    {baseName(f.path)}
                    {f.node === null && <span className="muted small"> (plan)</span>}
                  </button>
                </li>
              ))}
            </ul>
          </nav>
          {current && (
            <section className="file-view">
              <div className="file-head">
                <code>{current.path}</code>
                <span className="verdicts">
                  {current.verdicts.map((v) => (
                    <span key={v.validator} className={`verdict ${v.ok ? "ok" : "bad"}`} data-testid={`verdict-${v.validator}`} data-ok={String(v.ok)} title={v.message}>
                      {v.ok ? "✓" : "✗"} {v.validator}
                      {v.message && <span className="verdict-message">: {v.message}</span>}
                    </span>
                  ))}
                </span>
              </div>
              {current.secret && (
                <p className="note">
                  Secrets such as the K3s token are shown as stand-ins here; the real values stay in Flatlab's database and go only
                  into the files the boot server serves or an export writes.
                </p>
              )}
              <Code text={current.contents} language={current.language} />
              {current.embedded.length > 0 && (
                <>
                  <h2>Files this config writes on the node</h2>
                  <ul className="embedded">
                    {current.embedded.map((e) => (
                      <li key={e.path}>
                        <details>
                          <summary>
                            <code>{e.path}</code>
                            {e.contents === null && e.source && <span className="muted small"> · downloaded from {e.source}</span>}
                          </summary>
                          {e.contents !== null && <pre className="code small">{e.contents}</pre>}
                        </details>
                      </li>
                    ))}
                  </ul>
                </>
              )}
            </section>
          )}
        </div>
      )}
    </div>
  );
}
