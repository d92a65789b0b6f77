import { memo } from "react";
import type { Sighting } from "../lib/ipc";
import { normalizeMac } from "./plan";

interface Props {
  sightings: Sighting[];
  /** MACs already in the plan (normalized). */
  planMacs: Set<string>;
  scanning: boolean;
  onScan: () => void;
  onAdd: (mac: string) => void;
}

/** Machines found on the network that the plan does not have yet: drag them onto the canvas. */
export const Palette = memo(function Palette({ sightings, planMacs, scanning, onScan, onAdd }: Props) {
  const items = sightings.filter((s): s is Sighting & { mac: string } => !!s.mac && !planMacs.has(normalizeMac(s.mac)));
  return (
    <section className="palette" data-testid="palette" aria-label="Found on the network">
      <div className="section-head">
        <h2>Found on the network</h2>
        <button data-testid="scan-network" onClick={onScan} disabled={scanning}>
          {scanning ? "Scanning…" : "Scan network"}
        </button>
      </div>
      {items.length === 0 && (
        <p className="muted small">
          {scanning
            ? "Listening for machines for 3 seconds…"
            : "No new machines. Scan the network, or start the boot server (Install) and network-boot a machine."}
        </p>
      )}
      <ul>
        {items.map((s) => (
          <li
            key={s.mac}
            className="sighting"
            data-testid={`sighting-${s.mac}`}
            draggable
            onDragStart={(e) => {
              e.dataTransfer.setData("application/x-flatlab-mac", s.mac);
              e.dataTransfer.effectAllowed = "copy";
            }}
            title="Drag onto the canvas to add it to the plan"
          >
            <div className="sighting-text">
              <strong>{s.name ?? "unknown machine"}</strong>
              <span className="mono small">{s.mac}</span>
              <span className="muted small">
                {[s.firmware, ...s.addresses, s.plan && s.node ? `in plan ${s.plan} as ${s.node}` : null].filter(Boolean).join(" · ")}
              </span>
            </div>
            <button data-testid={`sighting-add-${s.mac}`} onClick={() => onAdd(s.mac)} aria-label={`Add ${s.name ?? s.mac} to the plan`}>
              Add
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
});
