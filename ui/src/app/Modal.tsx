import { useEffect, useRef, useState, type ReactNode } from "react";
import type { RevisionInfo } from "../lib/ipc";

/** An in-app dialog; `resolve` is called once with the user's answer. */
export type ModalSpec =
  | { kind: "prompt"; title: string; label: string; initial: string; ok: string; resolve: (value: string | null) => void }
  | { kind: "confirm"; title: string; message: ReactNode; ok: string; cancel?: string; danger?: boolean; resolve: (ok: boolean) => void }
  | { kind: "unsaved"; title: string; message: ReactNode; resolve: (choice: "save" | "discard" | "cancel") => void }
  | { kind: "history"; title: string; revisions: RevisionInfo[]; current: number; resolve: (revision: number | null) => void }
  | { kind: "about"; title: string; body: ReactNode; resolve: (v: null) => void }
  | { kind: "choose"; title: string; message: ReactNode; cancel: string; choices: Choice[]; resolve: (value: string | null) => void };

/** One of several answers to a question (besides cancelling it). */
export interface Choice {
  value: string;
  label: string;
  danger?: boolean;
  /** Why it cannot be chosen, if it cannot. */
  disabled?: string;
}

export const formatTime = (ms: number) => new Date(ms).toLocaleString();

function cancelValue(spec: ModalSpec) {
  switch (spec.kind) {
    case "prompt":
      return () => spec.resolve(null);
    case "confirm":
      return () => spec.resolve(false);
    case "unsaved":
      return () => spec.resolve("cancel");
    case "history":
      return () => spec.resolve(null);
    case "about":
      return () => spec.resolve(null);
    case "choose":
      return () => spec.resolve(null);
  }
}

export function Modal({ spec }: { spec: ModalSpec }) {
  const [value, setValue] = useState(spec.kind === "prompt" ? spec.initial : "");
  const dialog = useRef<HTMLDivElement>(null);
  const cancel = cancelValue(spec);

  useEffect(() => {
    const el = dialog.current?.querySelector<HTMLElement>("[data-autofocus]");
    el?.focus();
    if (el instanceof HTMLInputElement) el.select();
  }, []);

  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && cancel()}>
      <div
        className="modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby="modal-title"
        ref={dialog}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.stopPropagation();
            cancel();
          }
        }}
      >
        <h3 id="modal-title">{spec.title}</h3>
        {spec.kind === "prompt" && (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (value.trim()) spec.resolve(value.trim());
            }}
          >
            <label className="field">
              <span>{spec.label}</span>
              <input data-testid="modal-input" data-autofocus value={value} onChange={(e) => setValue(e.target.value)} />
            </label>
            <div className="modal-buttons">
              <button type="button" data-testid="modal-cancel" onClick={cancel}>
                Cancel
              </button>
              <button type="submit" className="primary" data-testid="modal-ok" disabled={!value.trim()}>
                {spec.ok}
              </button>
            </div>
          </form>
        )}
        {spec.kind === "confirm" && (
          <>
            <div className="modal-body">{spec.message}</div>
            <div className="modal-buttons">
              <button data-testid="modal-cancel" onClick={cancel}>
                {spec.cancel ?? "Cancel"}
              </button>
              <button
                className={spec.danger ? "danger" : "primary"}
                data-testid="modal-ok"
                data-autofocus
                onClick={() => spec.resolve(true)}
              >
                {spec.ok}
              </button>
            </div>
          </>
        )}
        {spec.kind === "unsaved" && (
          <>
            <div className="modal-body">{spec.message}</div>
            <div className="modal-buttons">
              <button data-testid="unsaved-cancel" onClick={cancel}>
                Cancel
              </button>
              <button className="danger" data-testid="unsaved-discard" onClick={() => spec.resolve("discard")}>
                Discard
              </button>
              <button className="primary" data-testid="unsaved-save" data-autofocus onClick={() => spec.resolve("save")}>
                Save
              </button>
            </div>
          </>
        )}
        {spec.kind === "history" && (
          <>
            <ul className="history">
              {spec.revisions.map((r) => (
                <li key={r.revision}>
                  <span className="rev">#{r.revision}</span>
                  <span className="history-message">
                    {r.message}
                    <span className="muted small"> · {formatTime(r.created_at)}</span>
                  </span>
                  {r.revision === spec.current ? (
                    <span className="muted small">current</span>
                  ) : (
                    <button data-testid={`revert-${r.revision}`} onClick={() => spec.resolve(r.revision)}>
                      Revert
                    </button>
                  )}
                </li>
              ))}
            </ul>
            <div className="modal-buttons">
              <button data-testid="modal-cancel" data-autofocus onClick={cancel}>
                Close
              </button>
            </div>
          </>
        )}
        {spec.kind === "choose" && (
          <>
            <div className="modal-body">{spec.message}</div>
            <div className="modal-buttons">
              <button data-testid="modal-cancel" data-autofocus onClick={cancel}>
                {spec.cancel}
              </button>
              {spec.choices.map((c) => (
                <button
                  key={c.value}
                  className={c.danger ? "danger" : "primary"}
                  data-testid={`modal-choice-${c.value}`}
                  disabled={c.disabled !== undefined}
                  title={c.disabled}
                  onClick={() => spec.resolve(c.value)}
                >
                  {c.label}
                </button>
              ))}
            </div>
          </>
        )}
        {spec.kind === "about" && (
          <>
            <div className="modal-body">{spec.body}</div>
            <div className="modal-buttons">
              <button data-testid="modal-ok" className="primary" data-autofocus onClick={cancel}>
                Close
              </button>
            </div>
          </>
        )}
      </div>
    </div>
  );
}
