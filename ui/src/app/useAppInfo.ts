import { useEffect, useState } from "react";
import { backend, type AppInfo } from "../lib/ipc";

/** The app's version, revision and database path, once the backend has answered. */
export function useAppInfo(report: (e: unknown) => void): AppInfo | null {
  const [info, setInfo] = useState<AppInfo | null>(null);
  useEffect(() => {
    backend.appInfo().then(setInfo).catch(report);
  }, [report]);
  return info;
}
