// The in-app dialog on screen, and the functions that show one and wait for the answer.
import { useCallback, useRef, useState, type ReactNode } from "react";
import type { Choice, ModalSpec } from "./Modal";

/** In-app dialogs, each a promise of the user's answer. */
export interface Dialogs {
  /** Shows the dialog `make` builds around the function that answers it. */
  ask: <T>(make: (resolve: (value: T) => void) => ModalSpec) => Promise<T>;
  /** A line of text, or null when cancelled. */
  prompt: (title: string, label: string, initial: string, ok: string) => Promise<string | null>;
  /** Yes or no. */
  confirm: (title: string, body: ReactNode, ok: string, opts?: { danger?: boolean; cancel?: string }) => Promise<boolean>;
  /** Something to read, closed with one button. */
  inform: (title: string, body: ReactNode) => Promise<null>;
  /** One of `choices` (its value), or null when cancelled. */
  choose: (title: string, body: ReactNode, cancel: string, choices: Choice[]) => Promise<string | null>;
}

export interface ShownModal {
  /** New for every dialog, so that a dialog's own state starts afresh. */
  id: number;
  spec: ModalSpec;
}

export function useModal(): Dialogs & { shown: ShownModal | null } {
  const [shown, setShown] = useState<ShownModal | null>(null);
  const seq = useRef(0);

  const ask = useCallback(<T>(make: (resolve: (value: T) => void) => ModalSpec) => {
    return new Promise<T>((resolve) => {
      seq.current += 1;
      const id = seq.current;
      setShown({
        id,
        spec: make((value: T) => {
          setShown((m) => (m?.id === id ? null : m));
          resolve(value);
        }),
      });
    });
  }, []);
  const prompt = useCallback(
    (title: string, label: string, initial: string, ok: string) =>
      ask<string | null>((resolve) => ({ kind: "prompt", title, label, initial, ok, resolve })),
    [ask],
  );
  const confirm = useCallback(
    (title: string, body: ReactNode, ok: string, opts: { danger?: boolean; cancel?: string } = {}) =>
      ask<boolean>((resolve) => ({ kind: "confirm", title, message: body, ok, ...opts, resolve })),
    [ask],
  );
  const inform = useCallback((title: string, body: ReactNode) => ask<null>((resolve) => ({ kind: "about", title, body, resolve })), [ask]);

  const choose = useCallback(
    (title: string, body: ReactNode, cancel: string, choices: Choice[]) =>
      ask<string | null>((resolve) => ({ kind: "choose", title, message: body, cancel, choices, resolve })),
    [ask],
  );

  return { shown, ask, prompt, confirm, inform, choose };
}
