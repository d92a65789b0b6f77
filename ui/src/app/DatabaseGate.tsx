// The app opens only once its database is open. When it could not be opened at start, the
// window says which file, why, and offers a way on: open another database file, or quit.
import { useEffect, useState, type ReactNode } from "react";
import { backend, dialogs, type DbProblem } from "../lib/ipc";

export function DatabaseGate({ children }: { children: ReactNode }) {
  const [problem, setProblem] = useState<DbProblem | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    backend
      .dbProblem()
      .then(setProblem)
      .catch(() => setProblem(null));
  }, []);
  if (problem === undefined) return null;
  if (problem === null) return <>{children}</>;
  const openOther = async () => {
    setError(null);
    const path = await dialogs.openFile("Open a Flatlab database", "other.db");
    if (!path) return;
    try {
      await backend.openOtherDatabase(path);
      window.location.reload();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <div className="modal-backdrop">
      <div className="modal" role="alertdialog" aria-labelledby="db-title" data-testid="db-problem" data-code={problem.error.code}>
        <h3 id="db-title">Flatlab cannot open its database</h3>
        <p className="mono small">{problem.path}</p>
        <p>{problem.error.message}</p>
        <p className="muted small">
          {problem.error.code === "newer_database"
            ? "A newer Flatlab wrote it: update Flatlab, or open another database."
            : problem.error.code === "not_flatlab_database"
              ? "The file is not a Flatlab database; it was left as it is."
              : "Nothing in it was changed. Open another database file (a new name creates one), or quit and look at the file."}{" "}
          Set <code>FLATLAB_DB</code> to start with another file.
        </p>
        {error && <p className="failure">{error}</p>}
        <div className="modal-buttons">
          <button onClick={() => void backend.quit()} data-testid="db-quit">
            Quit
          </button>
          <button className="primary" onClick={() => void openOther()} data-testid="db-open-other">
            Open another database…
          </button>
        </div>
      </div>
    </div>
  );
}
