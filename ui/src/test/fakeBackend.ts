// An in-memory Flatlab backend answering the app's commands through @tauri-apps/api/mocks.
import { clearMocks, mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import type {
  ClusterStatus,
  Drive,
  FetchRequest,
  Finding,
  ImagesReadiness,
  MachineInventory,
  MirrorOverview,
  MirrorSettings,
  NodeView,
  Plan,
  PreviewFile,
  ReleaseVersions,
  RevisionInfo,
  SidecarLine,
  SidecarMessage,
  RestoreProgress,
  SnapshotList,
} from "../lib/ipc";

export const demoPlan = (): Plan => ({
  version: 1,
  name: "demo-lab",
  os: { channel: "stable", version: "4593.2.5", arch: "amd64" },
  kubernetes: { k3s_version: "v1.32.2+k3s1", api_endpoint: "10.0.0.11", disable: ["traefik"] },
  network: { subnet: "10.0.0.0/24", gateway: "10.0.0.1", dns: ["10.0.0.1"] },
  ssh_authorized_keys: [],
  switches: [{ name: "rack-switch", position: { x: 400, y: 40 } }],
  nodes: [
    { name: "cp1", mac: "52:54:00:00:00:01", role: "server", install_disk: "/dev/sda", address: "10.0.0.11/24", switch: "rack-switch", position: { x: 100, y: 200 } },
    { name: "worker1", mac: "52:54:00:00:00:04", role: "agent", install_disk: "/dev/nvme0n1", switch: "rack-switch", position: { x: 300, y: 380 } },
  ],
});

const emptyPlan = (name: string): Plan => ({
  version: 1,
  name,
  os: { channel: "stable", version: "4593.2.5", arch: "amd64" },
  kubernetes: { k3s_version: "v1.32.2+k3s1" },
  ssh_authorized_keys: [],
  nodes: [],
});

/** A small stand-in for the real validator: missing MACs, bad names, no server. */
export function fakeValidate(plan: Plan): Finding[] {
  const out: Finding[] = [];
  const atPlan = (severity: Finding["severity"], field: string, message: string): Finding => ({ severity, path: field, message, target: { kind: "plan", field } });
  if (plan.nodes.length === 0) out.push(atPlan("error", "nodes", "the plan has no nodes; add at least one server"));
  plan.nodes.forEach((n, i) => {
    const key = n.name.trim() || String(i);
    const atNode = (field: string, message: string): Finding => ({ severity: "error", path: `nodes[${key}].${field}`, message, target: { kind: "node", index: i, field } });
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(n.name)) out.push(atNode("name", "not a label"));
    if (!n.mac) out.push(atNode("mac", "missing; set the MAC address of the network card"));
    else if (!/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(n.mac)) out.push(atNode("mac", `\`${n.mac}\` is not a MAC address`));
  });
  if (plan.nodes.length && !plan.nodes.some((n) => n.role === "server")) out.push(atPlan("error", "nodes", "no node is a K3s server"));
  if (plan.ssh_authorized_keys.length === 0) out.push(atPlan("warning", "ssh_authorized_keys", "no SSH key"));
  return out;
}

const node = (name: string, more: Partial<NodeView>): NodeView => ({
  name,
  state: "ready",
  planned_role: "server",
  role: "server",
  k3s_version: "v1.32.2+k3s1",
  os_image: "Flatcar Container Linux by Kinvolk 4593.2.5 (Oklo)",
  flatcar_version: "4593.2.5",
  internal_ip: "10.0.0.11",
  cordoned: false,
  reboot: null,
  install_stage: "k3s-ready",
  problems: [],
  ...more,
});

/** The demo cluster's snapshots: two of cp1's, one of them copied here. */
export const snapshotList = (): SnapshotList => ({
  plan: "demo-lab",
  server: "https://10.0.0.11:6443",
  reach: { kind: "reachable", version: "" },
  snapshots: [
    {
      name: "etcd-snapshot-cp1-1700000000",
      node: "cp1",
      location: "file:///var/lib/rancher/k3s/server/db/snapshots/etcd-snapshot-cp1-1700000000",
      size_bytes: 4_194_304,
      created_at: 1_700_000_000_000,
      ready: true,
      error: null,
      token_matches: true,
      token_hash: "0123456789ab",
      downloaded: null,
    },
    {
      name: "flatlab-before-upgrade-cp1-1699990000",
      node: "cp1",
      location: "file:///var/lib/rancher/k3s/server/db/snapshots/flatlab-before-upgrade-cp1-1699990000",
      size_bytes: 4_000_000,
      created_at: 1_699_990_000_000,
      ready: true,
      error: null,
      token_matches: true,
      token_hash: "0123456789ab",
      downloaded: {
        name: "flatlab-before-upgrade-cp1-1699990000",
        node: "cp1",
        path: "/home/ada/.local/share/flatlab/snapshots/demo-lab/flatlab-before-upgrade-cp1-1699990000",
        sha256: "a".repeat(64),
        size_bytes: 4_000_000,
        created_at: 1_699_990_000_000,
        downloaded_at: 1_700_000_100_000,
        identity: "5f0c2a4e-7d1b-4c8e-9a36-2b7e1d0f4c91",
        k3s_version: "v1.32.2+k3s1",
        token_hash: "0123456789ab",
      },
    },
  ],
  local_only: [],
});

/** The demo plan's cluster: cp1 Ready, worker1 rebooting, one node the plan no longer has. */
export const clusterStatus = (): ClusterStatus => ({
  plan: "demo-lab",
  server: "https://10.0.0.11:6443",
  reach: { kind: "reachable", version: "v1.32.2+k3s1" },
  nodes: [
    node("cp1", {}),
    node("worker1", { planned_role: "agent", role: "agent", internal_ip: "10.0.0.21", reboot: "rebooting", cordoned: true }),
    node("old-cp4", { state: "not_in_plan", planned_role: null, internal_ip: "10.0.0.14", install_stage: null }),
  ],
  api_note: "API access goes through 10.0.0.11",
  upgrade: null,
  upgrade_error: null,
  installed_nodes: 2,
  secrets_backup_at: null,
  checked_at: 1_700_000_000_000,
});

type Handler = (args: Record<string, unknown>) => unknown;

export interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

export class FakeBackend {
  plans = new Map<string, { revisions: { plan: Plan; message: string; at: number }[] }>();
  calls: Call[] = [];
  overrides = new Map<string, Handler>();
  bootMessages: (SidecarMessage | SidecarLine)[] = [];
  bootRunning = false;
  /** What `inventories` answers (for every plan). */
  inventories: MachineInventory[] = [];
  /** The image mirror: the demo plan's release and K3s (tests of an empty one clear it). */
  mirror: MirrorOverview = {
    dir: "/home/ada/.local/share/flatlab/mirror",
    releases: [{ channel: "stable", board: "amd64-usr", version: "4593.2.5", files: ["flatcar_production_pxe.vmlinuz", "flatcar_production_pxe_image.cpio.gz", "flatcar_production_image.bin.bz2"], complete: true, bytes: 500 * 1024 ** 2 }],
    k3s: [{ version: "v1.32.2+k3s1", binaries: ["k3s"], airgap: [], bytes: 70 * 1024 ** 2 }],
    bytes: 570 * 1024 ** 2,
    free_bytes: 40 * 1024 ** 3,
  };
  mirrorSettings: MirrorSettings = {};
  /** Addresses another host on the LAN answers for (what `check_addresses` finds). */
  takenOnLan = new Set<string>();
  versions: ReleaseVersions = {
    flatcar: [
      { channel: "stable", version: "4593.2.5", error: null },
      { channel: "beta", version: "4628.1.0", error: null },
      { channel: "alpha", version: null, error: "downloading https://alpha.release.flatcar-linux.net/amd64-usr/current/version.txt: timed out" },
      { channel: "lts", version: "4081.3.6", error: null },
    ],
    k3s: [
      { id: "stable", latest: "v1.32.2+k3s1" },
      { id: "latest", latest: "v1.33.1+k3s1" },
    ],
    k3s_error: null,
  };
  /** A restore under way (`restore_cluster` starts one). */
  restore: RestoreProgress | null = null;
  /** Machines to be inspected (`inspect_machine` adds, `boot_arm` ends). */
  inspected: { mac: string; node: string | null }[] = [];
  /** What `db_problem` answers: null when the database opened. */
  dbProblem: { path: string; error: { code: string; message: string } } | null = null;
  /** A fetch waits for this before it ends, when set (tests resolve it). */
  fetchGate: Promise<void> | null = null;
  private cancelled = false;

  constructor(plans: Plan[] = [demoPlan()]) {
    for (const p of plans) this.plans.set(p.name, { revisions: [{ plan: p, message: "created", at: 1_700_000_000_000 }] });
  }

  /** Replaces the answer to one command. */
  on(cmd: string, handler: Handler) {
    this.overrides.set(cmd, handler);
    return this;
  }

  callsOf(cmd: string) {
    return this.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
  }

  private get(name: string) {
    const p = this.plans.get(name);
    if (!p) throw { code: "plan_not_found", message: `no plan named ${name}` };
    return p;
  }

  private newest(name: string) {
    const p = this.get(name);
    return { revision: p.revisions.length, ...p.revisions[p.revisions.length - 1] };
  }

  private save(plan: Plan, message: string) {
    const entry = this.plans.get(plan.name);
    if (!entry) {
      this.plans.set(plan.name, { revisions: [{ plan, message, at: Date.now() }] });
      return { name: plan.name, revision: 1, changed: true };
    }
    if (JSON.stringify(entry.revisions[entry.revisions.length - 1].plan) === JSON.stringify(plan))
      return { name: plan.name, revision: entry.revisions.length, changed: false };
    entry.revisions.push({ plan, message, at: Date.now() });
    return { name: plan.name, revision: entry.revisions.length, changed: true };
  }

  private taken(name: string) {
    if (this.plans.has(name)) throw { code: "name_taken", message: `a plan named ${name} already exists` };
  }

  handle(cmd: string, args: Record<string, unknown>): unknown {
    const override = this.overrides.get(cmd);
    if (override) return override(args);
    switch (cmd) {
      case "db_problem":
        return this.dbProblem;
      case "open_other_database":
        this.dbProblem = null;
        return null;
      case "quit":
        return null;
      case "app_info":
        return { version: "0.1.0", revision: "abc1234", db_path: "/tmp/flatlab.db" };
      case "list_plans":
        return [...this.plans.keys()].sort().map((name) => {
          const n = this.newest(name);
          const f = fakeValidate(n.plan);
          return {
            name,
            revision: n.revision,
            created_at: 0,
            updated_at: n.at,
            nodes: n.plan.nodes.length,
            errors: f.filter((x) => x.severity === "error").length,
            warnings: f.filter((x) => x.severity === "warning").length,
          };
        });
      case "show_plan": {
        const name = args.name as string;
        const entry = this.get(name);
        const revision = (args.revision as number | null) ?? entry.revisions.length;
        const r = entry.revisions[revision - 1];
        return { name, revision, saved_at: r.at, plan: r.plan, findings: fakeValidate(r.plan) };
      }
      case "validate_plan":
        return fakeValidate(args.plan as Plan);
      case "save_plan": {
        const plan = args.plan as Plan;
        return { saved: this.save(plan, args.message as string), findings: fakeValidate(plan) };
      }
      case "create_plan": {
        const name = args.name as string;
        this.taken(name);
        return { saved: this.save(emptyPlan(name), "created"), findings: fakeValidate(emptyPlan(name)) };
      }
      case "rename_plan": {
        const { name, newName } = args as { name: string; newName: string };
        this.taken(newName);
        const entry = this.get(name);
        this.plans.delete(name);
        const last = entry.revisions[entry.revisions.length - 1].plan;
        entry.revisions.push({ plan: { ...last, name: newName }, message: `renamed from ${name}`, at: Date.now() });
        this.plans.set(newName, entry);
        return { name: newName, revision: entry.revisions.length, changed: true };
      }
      case "duplicate_plan": {
        const { name, newName } = args as { name: string; newName: string };
        this.taken(newName);
        const last = this.newest(name).plan;
        this.plans.set(newName, { revisions: [{ plan: { ...last, name: newName }, message: `duplicated from ${name}`, at: Date.now() }] });
        return { name: newName, revision: 1, changed: true };
      }
      case "delete_plan": {
        const n = this.get(args.name as string).revisions.length;
        this.plans.delete(args.name as string);
        return n;
      }
      case "plan_history":
        return this.get(args.name as string)
          .revisions.map((r, i): RevisionInfo => ({ revision: i + 1, message: r.message, created_at: r.at }))
          .reverse();
      case "revert_plan": {
        const { name, revision } = args as { name: string; revision: number };
        const entry = this.get(name);
        const old = entry.revisions[revision - 1];
        if (!old) throw { code: "revision_not_found", message: `no revision ${revision}` };
        entry.revisions.push({ plan: old.plan, message: `reverted to revision ${revision}`, at: Date.now() });
        return { name, revision: entry.revisions.length, changed: true };
      }
      case "import_plan_file":
        throw { code: "io", message: "no file in tests" };
      case "export_plan_file":
        return this.newest(args.name as string).revision;
      case "preview_plan":
        return previewFiles(args.plan as Plan);
      case "ssh_public_keys":
        return [{ file: "/home/ada/.ssh/id_ed25519.pub", key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/GUmYZcpEn ada@laptop" }];
      case "discover":
        return [];
      case "inventories":
        return this.inventories;
      case "list_interfaces":
        return [
          { name: "lo", addresses: ["127.0.0.1/8"] },
          { name: "eth0", addresses: ["192.168.1.20/24"] },
        ];
      case "boot_start":
        this.bootRunning = true;
        return null;
      case "boot_stop":
        this.bootRunning = false;
        return null;
      case "boot_status":
        return { running: this.bootRunning, messages: this.bootMessages.map(asLine), error: null, sidecar: "/usr/bin/flatlab" };
      case "inspect_machine": {
        const node = args.node as string | null;
        const mac = (args.mac as string | null) ?? this.newest(args.plan as string).plan.nodes.find((n) => n.name === node)?.mac ?? "";
        const done = { mac: mac.toLowerCase(), node };
        this.inspected = [...this.inspected.filter((i) => i.mac !== done.mac), done];
        return done;
      }
      case "inspections":
        return this.inspected;
      case "boot_arm": {
        const mac = this.newest(args.plan as string).plan.nodes.find((n) => n.name === args.node)?.mac?.toLowerCase();
        this.inspected = this.inspected.filter((i) => i.mac !== mac);
        return null;
      }
      case "power_on": {
        const nodes = this.newest(args.plan as string).plan.nodes.filter((n) => args.node === null || n.name === args.node);
        return nodes.map((n) => ({ node: n.name, mac: n.mac, to: "192.168.1.255:9", packets: 3 }));
      }
      case "grant_boot_privilege":
        return null;
      case "mirror_settings":
        return this.mirrorSettings;
      case "save_mirror_settings":
        this.mirrorSettings = args.settings as MirrorSettings;
        if (this.mirrorSettings.dir) this.mirror = { ...this.mirror, dir: this.mirrorSettings.dir };
        return null;
      case "mirror_overview":
        return this.mirror;
      case "release_versions":
        return this.versions;
      case "check_addresses": {
        const plan = args.plan as Plan;
        return plan.nodes.flatMap((n, index) => {
          const ip = n.address?.split("/")[0];
          if (!ip || !this.takenOnLan.has(ip)) return [];
          return [{ severity: "warning", path: `nodes[${n.name}].address`, target: { kind: "node", index, field: "address" }, message: `${n.name}'s address ${ip} is taken on the LAN: another host (aa:bb:cc:00:00:01) answers for it` }];
        });
      }
      case "images_readiness":
        return this.readiness(args.plan as Plan);
      case "mirror_fetch":
        return this.fetch(args.request as FetchRequest);
      case "mirror_cancel":
        this.cancelled = true;
        return true;
      case "mirror_verify":
        return this.mirror.releases.flatMap((r) => r.files.map((f) => ({ file: `${this.mirror.dir}/${r.channel}/${r.board}/${r.version}/${f}`, problem: null })));
      case "mirror_prune":
        return [];
      case "list_drives":
        return [
          { device: "/dev/sdc1", mountpoint: "", filesystem: "exfat", removable: true, size_bytes: 64 * 1024 ** 3, label: "BIG", model: "Kingston DataTraveler", mounted: false, source: "udisks2" },
          { device: "/dev/sdb1", mountpoint: "/media/ada/STICK", filesystem: "vfat", removable: true, size_bytes: 16 * 1024 ** 3, label: "STICK", model: "SanDisk Ultra", mounted: true, source: "udisks2" },
        ] satisfies Drive[];
      case "export_usb":
        return `${args.mountpoint}/flatlab/${args.name}`;
      case "mount_drive":
        return `/media/ada/${args.device === "/dev/sdc1" ? "BIG" : "DRIVE"}`;
      case "eject_drive":
        return { device: "/dev/sdc1", unmounted: [args.target], action: "powered_off", source: "udisks2", note: null };
      case "export_git":
        return { commit: "0123456789abcdef0123", pushed: false, changed: ["demo-lab/plan.yaml"] };
      case "cluster_status":
        return clusterStatus();
      case "save_kubeconfig":
        return { path: (args.path as string | null) ?? "/home/ada/.kube/config", context: args.name, server: "https://10.0.0.11:6443", merged: args.path === null, expires_at: 1_731_000_000_000 };
      case "start_k3s_upgrade":
        return { from: "v1.32.2+k3s1", to: args.version, nodes: 2, snapshot: ["flatlab-before-upgrade-to-v1-33-4-k3s1-cp1-1700000500"] };
      case "cluster_snapshots":
        return snapshotList();
      case "restore_progress":
        return this.restore ?? { active: false, snapshot: null, reach: { kind: "unreachable", reason: "no restore under way" }, servers: [], restored: false, deleted_stale: [], back: false };
      case "restore_cluster":
        this.restore = {
          active: true,
          snapshot: args.snapshot as string,
          reach: { kind: "unreachable", reason: "nothing listens at the API's port (connection refused)" },
          servers: ["cp1", "cp2", "cp3"].map((name) => ({ name, install_stage: "armed", state: "unknown" })),
          restored: false,
          deleted_stale: [],
          back: false,
        };
        return { snapshot: args.snapshot, first: "cp1", servers: ["cp1", "cp2", "cp3"] };
      case "take_snapshot":
        return { server: "https://10.0.0.11:6443", files: ["flatlab-on-demand-cp1-1700000600"] };
      case "download_snapshot": {
        const s = snapshotList().snapshots.find((x) => x.name === args.snapshot);
        return { ...snapshotList().snapshots[1].downloaded, name: s?.name, path: `/home/ada/.local/share/flatlab/snapshots/demo-lab/${s?.name}` };
      }
      case "remove_cluster_node":
      case "export_secrets":
        return args.path ?? null;
      case "import_secrets":
        return 5;
      case "pick_open_plan_file":
      case "pick_save_plan_file":
      case "pick_folder":
      case "pick_save_file":
      case "pick_open_file":
        return null;
      default:
        throw { code: "internal", message: `unexpected command ${cmd}` };
    }
  }

  readiness(plan: Plan): ImagesReadiness {
    const release = this.mirror.releases.find((r) => r.channel === plan.os.channel && r.version === plan.os.version && r.complete);
    const k3s = this.mirror.k3s.find((k) => k.version === plan.kubernetes.k3s_version);
    return {
      dir: this.mirror.dir,
      channel: plan.os.channel,
      arch: plan.os.arch,
      flatcar_version: plan.os.version,
      flatcar_missing: release ? [] : ["flatcar_production_pxe.vmlinuz", "flatcar_production_pxe_image.cpio.gz", "flatcar_production_image.bin.bz2"],
      k3s_version: plan.kubernetes.k3s_version,
      k3s_mirrored: k3s !== undefined && k3s.binaries.length > 0,
      airgap_mirrored: k3s !== undefined && k3s.airgap.length > 0,
    };
  }

  private async fetch(request: FetchRequest) {
    this.cancelled = false;
    const version = request.version === "current" ? (this.versions.flatcar.find((c) => c.channel === request.channel)?.version ?? "1.0.0") : request.version;
    await emit("mirror-progress", { file: "flatcar_production_image.bin.bz2", done: 100 * 1024 ** 2, total: 400 * 1024 ** 2, rate: 10 * 1024 ** 2, eta_secs: 30 });
    if (this.fetchGate) await this.fetchGate;
    if (this.cancelled) throw { code: "cancelled", message: "cancelled; what was downloaded so far is kept, and the next fetch resumes from it" };
    const files = ["flatcar_production_pxe.vmlinuz", "flatcar_production_pxe_image.cpio.gz", "flatcar_production_image.bin.bz2"];
    const board = request.arch === "arm64" ? "arm64-usr" : "amd64-usr";
    const others = this.mirror.releases.filter((r) => !(r.channel === request.channel && r.version === version));
    this.mirror = {
      ...this.mirror,
      releases: [...others, { channel: request.channel, board, version, files, complete: true, bytes: 500 * 1024 ** 2 }],
      k3s: request.k3s
        ? [...this.mirror.k3s, { version: request.k3s, binaries: ["k3s"], airgap: request.k3s_airgap ? ["k3s-airgap-images-amd64.tar.zst"] : [], bytes: 70 * 1024 ** 2 }]
        : this.mirror.k3s,
      bytes: this.mirror.bytes + 500 * 1024 ** 2,
    };
    return { version, files: files.map((f) => `${this.mirror.dir}/${request.channel}/${board}/${version}/${f}`), k3s: request.k3s ? `${this.mirror.dir}/k3s/${request.k3s}/k3s` : null };
  }

  /** Installs this backend as the IPC mock, with events and a main window. */
  install() {
    mockWindows("main");
    mockIPC(
      (cmd, payload) => {
        const args = (payload ?? {}) as Record<string, unknown>;
        if (!cmd.startsWith("plugin:")) this.calls.push({ cmd, args });
        return this.handle(cmd, args);
      },
      { shouldMockEvents: true },
    );
    return this;
  }
}

export function previewFiles(plan: Plan): PreviewFile[] {
  const errors = fakeValidate(plan).filter((f) => f.severity === "error");
  if (errors.length) throw { code: "invalid_plan", message: `plan ${plan.name} has ${errors.length} errors; fix them first` };
  const files: PreviewFile[] = [
    { path: "plan.yaml", node: null, language: "yaml", contents: `version: 1\nname: ${plan.name}\n`, secret: false, embedded: [], verdicts: [] },
    { path: "README.md", node: null, language: "markdown", contents: "# Bundle\n", secret: false, embedded: [], verdicts: [] },
  ];
  for (const n of plan.nodes) {
    files.push(
      {
        path: `nodes/${n.name}/config.ign`,
        node: n.name,
        language: "json",
        contents: `{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/etc/hostname"}]}, "n": 1}`,
        secret: true,
        embedded: [{ path: "/etc/hostname", contents: `${n.name}\n`, source: null }],
        verdicts: [
          { validator: "ignition-config", ok: true, message: "" },
          { validator: "ignition-validate", ok: false, message: "warning at $.storage: unused key" },
        ],
      },
      {
        path: `nodes/${n.name}/boot.ipxe`,
        node: n.name,
        language: "ipxe",
        contents: "#!ipxe\nkernel ${base}/flatcar_production_pxe.vmlinuz initrd=main\nboot\n",
        secret: false,
        embedded: [],
        verdicts: [],
      },
    );
  }
  return files;
}

// Messages become lines of one run of the sidecar, numbered in the order first seen: the same
// message object is the same line, in the status and as a live event alike.
const lineNumbers = new WeakMap<object, number>();
let lastSeq = 0;
export function asLine(message: SidecarMessage | SidecarLine): SidecarLine {
  if ("seq" in message) return message;
  let seq = lineNumbers.get(message);
  if (seq === undefined) {
    seq = ++lastSeq;
    lineNumbers.set(message, seq);
  }
  return { run: "test-run", seq, ...message };
}

export const sendBootMessage = (message: SidecarMessage | SidecarLine) => emit("boot-message", asLine(message));
export const sendBootStopped = (error: { code: string; message: string } | null) => emit("boot-stopped", { error });
export const sendExportProgress = (step: number, total: number, message: string) => emit("export-progress", { step, total, message });

export function resetMocks() {
  clearMocks();
  localStorage.clear();
}
