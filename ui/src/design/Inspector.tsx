import { memo, useEffect, useRef, useState, type ReactNode } from "react";
import { backend, type Disk, type Finding, type MachineInventory, type Plan, type SshPublicKey } from "../lib/ipc";
import { findingsByField } from "./findings";
import { setClusterField, updateNode, updateSwitch, type Edit } from "./plan";
import { FindingList } from "./FindingList";

export type InspectorTarget = { kind: "node"; index: number } | { kind: "switch"; index: number } | { kind: "cluster" } | { kind: "many"; count: number };

interface Props {
  plan: Plan;
  target: InspectorTarget;
  findings: Finding[];
  onEdit: Edit;
  onFinding: (finding: Finding) => void;
  /** A field to focus (after a finding was clicked); `seq` changes on every request. */
  focus: { field: string; seq: number } | null;
  onError: (e: unknown) => void;
  /** Removes the selected nodes and switches. */
  onRemoveSelected: () => void;
  /** Versions to offer (mirrored, or on the release servers); any other can still be typed. */
  versions?: { flatcar: string[]; k3s: string[] };
}

/** A coalescing key per focus of a field, so that typing in one field is one undo step. */
function useCoalesceKey(field: string) {
  const key = useRef("");
  const seq = useRef(0);
  return {
    onFocus: () => {
      seq.current += 1;
      key.current = `${field}#${seq.current}`;
    },
    get: () => key.current || `${field}#0`,
  };
}

interface FieldProps {
  id: string;
  label: string;
  value: string;
  onChange: (value: string, key: string) => void;
  errors?: Finding[];
  placeholder?: string;
  hint?: ReactNode;
  readOnly?: boolean;
  mono?: boolean;
  /** Values to choose from (a datalist); any other can still be typed. */
  options?: string[];
}

function FieldErrors({ id, errors }: { id: string; errors?: Finding[] }) {
  if (!errors?.length) return null;
  const worst = errors.some((f) => f.severity === "error") ? "error" : "warning";
  return (
    <div className={`field-error ${worst}`} data-testid={`field-error-${id}`} role="alert">
      {errors.map((f, i) => (
        <div key={i}>{f.message}</div>
      ))}
    </div>
  );
}

function TextField({ id, label, value, onChange, errors, placeholder, hint, readOnly, mono, options }: FieldProps) {
  const key = useCoalesceKey(id);
  const severity = errors?.some((f) => f.severity === "error") ? "error" : errors?.length ? "warning" : "";
  return (
    <label className={`field ${severity}`}>
      <span>{label}</span>
      <input
        data-testid={`field-${id}`}
        className={mono ? "mono" : undefined}
        value={value}
        placeholder={placeholder}
        readOnly={readOnly}
        spellCheck={false}
        onFocus={key.onFocus}
        onChange={(e) => onChange(e.target.value, key.get())}
        aria-invalid={severity === "error"}
        list={options?.length ? `choices-${id}` : undefined}
      />
      {options && options.length > 0 && (
        <datalist id={`choices-${id}`} data-testid={`choices-${id}`}>
          {options.map((o) => (
            <option key={o} value={o} />
          ))}
        </datalist>
      )}
      {hint && <small className="muted">{hint}</small>}
      <FieldErrors id={id} errors={errors} />
    </label>
  );
}

function SelectField({
  id,
  label,
  value,
  options,
  onChange,
  errors,
}: {
  id: string;
  label: string;
  value: string;
  options: [string, string][];
  onChange: (value: string) => void;
  errors?: Finding[];
}) {
  return (
    <label className="field">
      <span>{label}</span>
      <select data-testid={`field-${id}`} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
      <FieldErrors id={id} errors={errors} />
    </label>
  );
}

/** A text field for a list: keeps what is typed (blank lines too) while the plan gets the parsed list. */
function ListField({
  id,
  label,
  value,
  onChange,
  errors,
  multiline,
  placeholder,
  hint,
}: {
  id: string;
  label: string;
  value: string[];
  onChange: (value: string[], key: string) => void;
  errors?: Finding[];
  multiline?: boolean;
  placeholder?: string;
  hint?: ReactNode;
}) {
  const key = useCoalesceKey(id);
  const parse = (text: string) =>
    text
      .split(multiline ? /\n/ : /[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean);
  const joined = value.join(multiline ? "\n" : ", ");
  const [text, setText] = useState({ text: joined, from: value });
  if (text.from !== value && parse(text.text).join("\n") !== value.join("\n")) {
    setText({ text: joined, from: value });
  }
  const severity = errors?.some((f) => f.severity === "error") ? "error" : errors?.length ? "warning" : "";
  const props = {
    "data-testid": `field-${id}`,
    value: text.text,
    placeholder,
    spellCheck: false,
    onFocus: key.onFocus,
    onChange: (e: { target: { value: string } }) => {
      const list = parse(e.target.value);
      setText({ text: e.target.value, from: list });
      onChange(list, key.get());
    },
  };
  return (
    <label className={`field ${severity}`}>
      <span>{label}</span>
      {multiline ? <textarea rows={4} className="mono" {...props} /> : <input {...props} />}
      {hint && <small className="muted">{hint}</small>}
      <FieldErrors id={id} errors={errors} />
    </label>
  );
}

const K3S_COMPONENTS = ["coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"];

function NodeInspector({ plan, index, findings, onEdit }: { plan: Plan; index: number; findings: Finding[]; onEdit: Edit }) {
  const node = plan.nodes[index];
  const errs = findingsByField(findings, { kind: "node", index });
  const set = (field: string) => (value: string, key?: string) => onEdit((p) => updateNode(p, index, { [field]: value }), key);
  return (
    <section className="inspector-section">
      <h2>Node</h2>
      <FieldErrors id="node" errors={errs.get("")} />
      <TextField id="name" label="Name" value={node.name} onChange={set("name")} errors={errs.get("name")} hint="Becomes the hostname." />
      <SelectField
        id="role"
        label="Role"
        value={node.role ?? ""}
        options={[
          ...(node.role ? [] : ([["", "(choose)"]] as [string, string][])),
          ["server", "server (control plane)"],
          ["agent", "agent (workloads)"],
        ]}
        onChange={(v) => set("role")(v)}
        errors={errs.get("role")}
      />
      <TextField id="mac" label="MAC address" value={node.mac} onChange={set("mac")} errors={errs.get("mac")} placeholder="52:54:00:00:00:01" mono />
      <TextField
        id="install_disk"
        label="Install disk"
        value={node.install_disk}
        onChange={set("install_disk")}
        errors={errs.get("install_disk")}
        placeholder="/dev/sda"
        hint="Its contents are erased."
        mono
      />
      <TextField
        id="address"
        label="Address"
        value={node.address ?? ""}
        onChange={set("address")}
        errors={errs.get("address")}
        placeholder="DHCP"
        hint="Empty for DHCP, or a static address such as 10.0.0.11/24."
        mono
      />
      <SelectField
        id="switch"
        label="Switch"
        value={node.switch ?? ""}
        options={[
          ["", "(none)"],
          ...(node.switch && !(plan.switches ?? []).some((s) => s.name === node.switch)
            ? ([[node.switch, `${node.switch} (missing)`]] as [string, string][])
            : []),
          ...(plan.switches ?? []).map((s) => [s.name, s.name] as [string, string]),
        ]}
        onChange={(v) => set("switch")(v)}
        errors={errs.get("switch")}
      />
      {errs.get("position") && <FieldErrors id="position" errors={errs.get("position")} />}
      <NodeHardware plan={plan} index={index} onEdit={onEdit} />
    </section>
  );
}

/** Sizes as disk vendors print them (powers of 1000), like the CLI. */
export function humanBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${n} B`;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${units[unit]}`;
}

/** The path Flatlab stores for a disk: its model-and-serial by-id link, else the wwn- one. */
export function stablePath(disk: Disk): string {
  const links = disk.by_id.filter((l) => !l.includes("-part"));
  const isWwn = (l: string) => {
    const name = l.split("/").pop() ?? "";
    return name.startsWith("wwn-") || name.startsWith("nvme-eui.");
  };
  return links.find((l) => !isWwn(l)) ?? links.find(isWwn) ?? `/dev/${disk.name}`;
}

/** The hardware the node's machine reported, and its disks to choose the install disk from. */
function NodeHardware({ plan, index, onEdit }: { plan: Plan; index: number; onEdit: Edit }) {
  const node = plan.nodes[index];
  const [all, setAll] = useState<MachineInventory[] | null>(null);
  useEffect(() => {
    let live = true;
    backend
      .inventories(plan.name)
      .then((list) => live && setAll(list))
      .catch(() => live && setAll([]));
    return () => {
      live = false;
    };
    // Again when the install disk changes: the warnings are judged against the saved plan.
  }, [plan.name, node.install_disk]);
  if (all === null) return null;
  const mac = node.mac.toLowerCase();
  const mine = all.find((m) => m.node === node.name) ?? all.find((m) => m.mac.toLowerCase() === mac);
  if (!mine) {
    return (
      <div className="hardware" data-testid="hardware">
        <h3>Hardware</h3>
        <p className="muted small">Not reported yet. Inspect it on the Install tab: at its next network boot it reports its CPU, memory and disks and waits, so you can choose its install disk first. Every install reports them too.</p>
      </div>
    );
  }
  const inv = mine.inventory;
  const choose = (disk: Disk) => onEdit((p) => updateNode(p, index, { install_disk: stablePath(disk) }));
  return (
    <div className="hardware" data-testid="hardware">
      <h3>Hardware</h3>
      <p className="small">
        {[inv.vendor, inv.product].filter(Boolean).join(" ") || "Unknown machine"}, {inv.firmware === "uefi" ? "UEFI" : "BIOS"}
        <br />
        {inv.cpu_model ?? "CPU"} ({inv.cpus} logical), {humanBytes(inv.memory_bytes)} memory
      </p>
      <ul className="disk-list">
        {inv.disks.map((d) => {
          const path = stablePath(d);
          const chosen = node.install_disk === path || node.install_disk === `/dev/${d.name}`;
          return (
            <li key={d.name} className={chosen ? "chosen" : undefined} data-testid={`disk-${d.name}`}>
              <span className="mono small">{d.name}</span> {d.model ?? "disk"} · {humanBytes(d.size_bytes)}
              {d.removable ? " · removable" : ""}
              {d.partitions.length > 0 ? ` · ${d.partitions.length} partition${d.partitions.length === 1 ? "" : "s"}` : " · empty"}
              {chosen ? (
                <span className="muted small"> · install disk</span>
              ) : (
                <>
                  {mine.suggested_install_disk === path && <span className="muted small"> · suggested</span>}
                  <button type="button" className="link" onClick={() => choose(d)} title={path}>
                    Install here
                  </button>
                </>
              )}
            </li>
          );
        })}
      </ul>
      {mine.warnings.map((w) => (
        <div key={w} className="field-error warning" role="alert">
          {w}
        </div>
      ))}
    </div>
  );
}

function SwitchInspector({ plan, index, findings, onEdit }: { plan: Plan; index: number; findings: Finding[]; onEdit: Edit }) {
  const sw = (plan.switches ?? [])[index];
  const errs = findingsByField(findings, { kind: "switch", index });
  return (
    <section className="inspector-section">
      <h2>Switch</h2>
      <TextField
        id="name"
        label="Name"
        value={sw.name}
        onChange={(v, k) => onEdit((p) => updateSwitch(p, index, { name: v }), k)}
        errors={errs.get("name")}
        hint="Nodes on this switch follow a rename."
      />
      <p className="muted small">Switches are for your overview; they do not change what is installed.</p>
    </section>
  );
}

function SshKeys({ plan, onEdit, onError }: { plan: Plan; onEdit: Edit; onError: (e: unknown) => void }) {
  const [keys, setKeys] = useState<SshPublicKey[] | null>(null);
  const [loading, setLoading] = useState(false);
  const load = () => {
    setLoading(true);
    backend
      .sshPublicKeys()
      .then(setKeys)
      .catch(onError)
      .finally(() => setLoading(false));
  };
  const have = new Set(plan.ssh_authorized_keys.map((k) => k.split(/\s+/).slice(0, 2).join(" ")));
  return (
    <div className="ssh-keys">
      <button data-testid="ssh-keys-load" onClick={load} disabled={loading}>
        {loading ? "Looking…" : "Add from ~/.ssh"}
      </button>
      {keys && keys.length === 0 && <p className="muted small">No public keys in ~/.ssh.</p>}
      {keys && keys.length > 0 && (
        <ul className="key-list">
          {keys.map((k) => {
            const present = have.has(k.key.split(/\s+/).slice(0, 2).join(" "));
            return (
              <li key={k.file}>
                <span className="mono small" title={k.key}>
                  {k.file.split("/").pop()}: {k.key.split(/\s+/)[0]} …{k.key.split(/\s+/)[2] ? ` ${k.key.split(/\s+/)[2]}` : ""}
                </span>
                <button
                  disabled={present}
                  data-testid={`ssh-key-add-${k.file.split("/").pop()}`}
                  onClick={() => onEdit((p) => ({ ...p, ssh_authorized_keys: [...p.ssh_authorized_keys, k.key.trim()] }))}
                >
                  {present ? "Added" : "Add"}
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}

function ClusterInspector({
  plan,
  findings,
  onEdit,
  onError,
  versions,
}: {
  plan: Plan;
  findings: Finding[];
  onEdit: Edit;
  onError: (e: unknown) => void;
  versions?: { flatcar: string[]; k3s: string[] };
}) {
  const errs = findingsByField(findings, { kind: "plan" });
  const text = (path: string) => (value: string, key?: string) => onEdit((p) => setClusterField(p, path, value), key);
  const list = (path: string) => (value: string[], key?: string) => onEdit((p) => setClusterField(p, path, value), key);
  const disabled = plan.kubernetes.disable ?? [];
  return (
    <section className="inspector-section">
      <h2>Cluster</h2>
      <TextField id="plan-name" label="Plan name" value={plan.name} onChange={() => {}} readOnly hint="Rename the plan in the sidebar." errors={errs.get("name")} />
      <div className="field-row">
        <SelectField
          id="os.channel"
          label="Flatcar channel"
          value={plan.os.channel}
          options={[
            ["stable", "stable"],
            ["beta", "beta"],
            ["alpha", "alpha"],
            ["lts", "lts"],
          ]}
          onChange={(v) => text("os.channel")(v)}
          errors={errs.get("os.channel")}
        />
        <SelectField
          id="os.arch"
          label="Architecture"
          value={plan.os.arch}
          options={[
            ["amd64", "amd64"],
            ["arm64", "arm64"],
          ]}
          onChange={(v) => text("os.arch")(v)}
          errors={errs.get("os.arch")}
        />
      </div>
      <TextField
        id="os.version"
        label="Flatcar version"
        value={plan.os.version}
        onChange={text("os.version")}
        errors={errs.get("os.version")}
        placeholder="4593.2.5"
        mono
        options={versions?.flatcar}
        hint={versions?.flatcar.length ? "Choose a mirrored or current release, or type one." : undefined}
      />
      <TextField
        id="kubernetes.k3s_version"
        label="K3s version"
        value={plan.kubernetes.k3s_version}
        onChange={text("kubernetes.k3s_version")}
        errors={errs.get("kubernetes.k3s_version")}
        placeholder="v1.32.2+k3s1"
        mono
        options={versions?.k3s}
      />
      <TextField
        id="kubernetes.api_endpoint"
        label="API endpoint"
        value={plan.kubernetes.api_endpoint ?? ""}
        onChange={text("kubernetes.api_endpoint")}
        errors={errs.get("kubernetes.api_endpoint")}
        placeholder="the first server"
        hint="Bare IP or DNS name; empty uses the first server."
        mono
      />
      <fieldset className="field" data-testid="field-kubernetes.disable">
        <legend>Disabled K3s components</legend>
        <div className="checks">
          {K3S_COMPONENTS.map((c) => (
            <label key={c} className="check">
              <input
                type="checkbox"
                checked={disabled.includes(c)}
                onChange={(e) =>
                  onEdit((p) =>
                    setClusterField(
                      p,
                      "kubernetes.disable",
                      e.target.checked ? [...(p.kubernetes.disable ?? []), c] : (p.kubernetes.disable ?? []).filter((x) => x !== c),
                    ),
                  )
                }
              />
              {c}
            </label>
          ))}
        </div>
        <FieldErrors id="kubernetes.disable" errors={errs.get("kubernetes.disable")} />
      </fieldset>
      <h2>Network</h2>
      <TextField id="network.subnet" label="Subnet" value={plan.network?.subnet ?? ""} onChange={text("network.subnet")} errors={errs.get("network.subnet")} placeholder="10.0.0.0/24" mono />
      <TextField id="network.gateway" label="Gateway" value={plan.network?.gateway ?? ""} onChange={text("network.gateway")} errors={errs.get("network.gateway")} placeholder="10.0.0.1" mono />
      <ListField id="network.dns" label="DNS servers" value={plan.network?.dns ?? []} onChange={list("network.dns")} errors={errs.get("network.dns")} placeholder="10.0.0.1" hint="Separated by commas." />
      <h2>Access</h2>
      <ListField
        id="ssh_authorized_keys"
        label="SSH authorized keys"
        value={plan.ssh_authorized_keys}
        onChange={(v, k) => onEdit((p) => ({ ...p, ssh_authorized_keys: v }), k)}
        errors={errs.get("ssh_authorized_keys")}
        multiline
        placeholder="ssh-ed25519 AAAA… me@laptop"
        hint="One public key per line."
      />
      <SshKeys plan={plan} onEdit={onEdit} onError={onError} />
    </section>
  );
}

/** The right panel: the selected node or switch, or the cluster settings; then the findings. */
export const Inspector = memo(function Inspector({ plan, target: wanted, findings, onEdit, onFinding, focus, onError, onRemoveSelected, versions }: Props) {
  // A selection that no longer exists (after undo or a delete) shows the cluster settings.
  const target: InspectorTarget =
    (wanted.kind === "node" && !plan.nodes[wanted.index]) || (wanted.kind === "switch" && !plan.switches?.[wanted.index])
      ? { kind: "cluster" }
      : wanted;
  const panel = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!focus) return;
    const testid = `field-${focus.field}`;
    const el = [...(panel.current?.querySelectorAll<HTMLElement>("[data-testid]") ?? [])].find((e) => e.dataset.testid === testid);
    if (el) {
      el.focus();
      el.scrollIntoView?.({ block: "nearest" });
    }
  }, [focus]);
  return (
    <aside className="inspector" aria-label="Inspector" ref={panel}>
      {target.kind === "node" && (
        <NodeInspector key={`n${target.index}`} plan={plan} index={target.index} findings={findings} onEdit={onEdit} />
      )}
      {target.kind === "switch" && (
        <SwitchInspector key={`s${target.index}`} plan={plan} index={target.index} findings={findings} onEdit={onEdit} />
      )}
      {target.kind === "cluster" && <ClusterInspector plan={plan} findings={findings} onEdit={onEdit} onError={onError} versions={versions} />}
      {target.kind === "many" && <p className="muted">{target.count} items selected. Drag them together, or remove them.</p>}
      {target.kind !== "cluster" && (
        <div className="buttons">
          <button className="danger" data-testid="delete-selected" onClick={onRemoveSelected} title="Delete">
            {target.kind === "node" ? "Remove node" : target.kind === "switch" ? "Remove switch" : `Remove ${target.count} items`}
          </button>
        </div>
      )}
      <h2>Findings</h2>
      <FindingList findings={findings} onSelect={onFinding} />
    </aside>
  );
});
