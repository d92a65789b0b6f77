// The error and the notice shown under the top bar, until dismissed or replaced.
import { useCallback, useState } from "react";

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function useBanners() {
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  /** Shows a failure (an `IpcError` by its message). */
  const report = useCallback((e: unknown) => setError(message(e)), []);
  /** Shows what an action did. */
  const notify = useCallback((text: string) => setNotice(text), []);
  const dismissError = useCallback(() => setError(null), []);
  const dismissNotice = useCallback(() => setNotice(null), []);
  return { error, notice, report, notify, dismissError, dismissNotice };
}

export type Banners = ReturnType<typeof useBanners>;
