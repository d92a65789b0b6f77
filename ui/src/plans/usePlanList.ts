import { useCallback, useState } from "react";
import { backend, type PlanListing } from "../lib/ipc";

/** The stored plans as the sidebar lists them; null until the backend first answers. */
export function usePlanList(report: (e: unknown) => void) {
  const [plans, setPlans] = useState<PlanListing[] | null>(null);
  /** Lists the plans again; resolves to the list, or null after reporting a failure. */
  const refresh = useCallback(
    () =>
      backend
        .listPlans()
        .then((list) => {
          setPlans(list);
          return list;
        })
        .catch((e) => {
          report(e);
          return null;
        }),
    [report],
  );
  return { plans, refresh };
}
