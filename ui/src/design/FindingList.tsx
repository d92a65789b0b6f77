import { memo } from "react";
import type { Finding } from "../lib/ipc";

interface Props {
  findings: Finding[];
  focused?: string | null;
  onSelect: (finding: Finding) => void;
}

/** The plan's findings; choosing one selects the node and field it concerns. */
export const FindingList = memo(function FindingList({ findings, focused = null, onSelect }: Props) {
  if (findings.length === 0) {
    return (
      <p className="ok" data-testid="findings">
        No problems: this plan is ready to render.
      </p>
    );
  }
  return (
    <ul className="findings" data-testid="findings">
      {findings.map((f, i) => (
        <li key={`${f.path}-${i}`}>
          <button
            className={`finding ${f.severity}${focused && f.path.startsWith(focused) ? " focused" : ""}`}
            onClick={() => onSelect(f)}
            data-testid="finding"
            data-path={f.path}
            data-severity={f.severity}
          >
            <span className={`badge ${f.severity}`}>{f.severity}</span>
            {f.path && <code className="path">{f.path}</code>}
            <span className="message">{f.message}</span>
          </button>
        </li>
      ))}
    </ul>
  );
});
