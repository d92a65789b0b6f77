// End-to-end scenarios over the real app (see run.sh). Each scenario starts the app afresh on
// the same database, so a later scenario sees what an earlier one saved.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { Keys, Session, sleep } from "./webdriver.mjs";

const app = process.env.E2E_APP;
const driver = process.env.E2E_DRIVER;
const artifacts = process.env.E2E_ARTIFACTS;
const work = process.env.E2E_WORK;
const only = process.argv[2];

let shots = 0;
/**
 * Saves what the X display shows. Captured from X (ImageMagick's `import`), not through
 * WebDriver: WebKitWebDriver's screenshot command can wait forever after some page updates, and
 * the X capture shows the real pixels a user would see.
 */
async function shot(_s, name) {
  shots += 1;
  const file = join(artifacts, `${String(shots).padStart(2, "0")}-${name}.png`);
  await sleep(150); // Let the last change paint.
  execFileSync("import", ["-window", "root", file], { stdio: "ignore", timeout: 10000 });
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Runs `body` against a freshly started app; a failure leaves a screenshot of the moment. */
async function withApp(body) {
  const s = await open();
  try {
    await body(s);
  } catch (e) {
    await shot(s, "FAILED").catch(() => {});
    throw e;
  } finally {
    await s.quit();
  }
}

async function open() {
  const s = await Session.start(driver, { "tauri:options": { application: app } });
  await s.waitFor("[data-testid^='plan-']", { timeout: 30000 });
  return s;
}

const testid = (id) => `[data-testid='${id}']`;

async function click(s, id) {
  if (process.env.E2E_VERBOSE) console.log(`  click ${id}`);
  await (await s.waitFor(testid(id))).click();
}

async function fill(s, id, text) {
  // WebKitWebDriver's clear can land while React re-renders the controlled field, which then
  // keeps its old text and the typing is appended: check what the field holds, and do it again.
  for (let attempt = 0; ; attempt++) {
    const el = await s.waitFor(testid(id));
    await el.clear();
    if (text) await el.type(text);
    const value = await el.property("value");
    if (value === text) return;
    if (attempt >= 3) throw new Error(`${id} holds ${JSON.stringify(value)}, not ${JSON.stringify(text)}`);
    await sleep(200);
  }
}

async function select(s, id, value) {
  // A native <select>: set it the way a user's choice does, with the change event React hears.
  const el = await s.waitFor(testid(id));
  await s.execute(
    `const el = arguments[0]; const set = Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, "value").set;
     set.call(el, arguments[1]); el.dispatchEvent(new Event("change", { bubbles: true }));`,
    [{ "element-6066-11e4-a52e-4f735466cecf": el.id }, value],
  );
}

async function findings(s) {
  for (let attempt = 0; ; attempt++) {
    try {
      const list = await s.findAll(testid("finding"));
      return await Promise.all(list.map(async (f) => ({ path: await f.attribute("data-path"), severity: await f.attribute("data-severity") })));
    } catch (e) {
      // The list re-rendered while it was read: read it again.
      if (attempt >= 10) throw e;
      await sleep(100);
    }
  }
}

const scenarios = {
  async "first start shows the demo plan"() {
    await withApp(async (s) => {
      await click(s, "plan-demo-lab");
      await s.waitFor(testid("node-cp1"));
      await s.waitFor(testid("switch-rack-switch"));
      await shot(s, "demo-plan");
    });
  },

  async "create a plan, build a cluster, fix a finding, save, reopen, export"() {
    await withApp(async (s) => {
      await click(s, "plan-new");
      await fill(s, "modal-input", "garage");
      await click(s, "modal-ok");
      await s.waitFor(testid("plan-garage"));
      await s.waitFor(testid("add-server"));

      // Cluster settings show while nothing is selected.
      await fill(s, "field-network.subnet", "192.168.50.0/24");
      await fill(s, "field-network.gateway", "192.168.50.1");
      await fill(s, "field-network.dns", "192.168.50.1");

      await click(s, "add-switch");
      await s.waitFor(testid("switch-switch-1"));
      for (let i = 0; i < 3; i++) await click(s, "add-server");
      for (let i = 0; i < 2; i++) await click(s, "add-agent");
      for (let i = 1; i <= 5; i++) await s.waitFor(testid(`node-node-${i}`));
      await click(s, "auto-layout");
      await sleep(600);
      await shot(s, "five-new-nodes");

      // New nodes have no MAC yet: each shows an error on its card and in the findings.
      await s.waitFor(testid("node-node-1"), { predicate: async (e) => (await e.attribute("data-severity")) === "error" });
      const before = await findings(s);
      check(before.some((f) => f.path === "nodes[node-1].mac" && f.severity === "error"), `no MAC error: ${JSON.stringify(before)}`);

      for (let i = 1; i <= 5; i++) {
        await click(s, `node-node-${i}`);
        await s.waitFor(testid("field-mac"));
        await fill(s, "field-mac", `52:54:00:12:34:0${i}`);
        await fill(s, "field-address", `192.168.50.1${i}/24`);
        await select(s, "field-switch", "switch-1");
      }
      await s.waitFor(testid("node-node-5"), { predicate: async (e) => (await e.attribute("data-severity")) !== "error" });
      await shot(s, "cluster-connected");
      const after = await findings(s);
      check(!after.some((f) => f.severity === "error"), `errors left: ${JSON.stringify(after)}`);

      // A duplicate MAC is an error on the field, and goes away when fixed.
      await click(s, "node-node-2");
      await fill(s, "field-mac", "52:54:00:12:34:01");
      await s.waitFor(testid("field-error-mac"));
      await shot(s, "duplicate-mac");
      await fill(s, "field-mac", "52:54:00:12:34:02");
      await s.waitGone(testid("field-error-mac"));

      check((await (await s.find(testid("save"))).enabled()) === true, "Save is enabled with unsaved changes");
      await s.find(testid("dirty"));
      await click(s, "save");
      await s.waitGone(testid("dirty"));
      await shot(s, "saved");
    });

    // Reopen: the plan is there as saved.
    await withApp(async (s) => {
      await click(s, "plan-garage");
      for (let i = 1; i <= 5; i++) await s.waitFor(testid(`node-node-${i}`));
      await s.waitFor(testid("switch-switch-1"));
      await click(s, "plan-export");
      const file = join(work, "dialogs", "garage.yaml");
      const deadline = Date.now() + 10000;
      while (!existsSync(file) && Date.now() < deadline) await sleep(100);
      const text = readFileSync(file, "utf8");
      check(text.includes("name: garage") && text.includes("52:54:00:12:34:05"), `exported plan file:\n${text}`);
      check(!/token/i.test(text), "no secret in the plan file");
      await shot(s, "reopened");
    });
  },
};

Object.assign(scenarios, {
  async "import a plan file with an error, and fix it on the canvas"() {
    const demo = readFileSync(new URL("../../assets/demo-plan.yaml", import.meta.url), "utf8");
    const text = demo.replace("name: demo-lab", "name: imported-lab").replace("52:54:00:00:00:05", "52:54:00:00:00:04");
    writeFileSync(join(work, "dialogs", "import.yaml"), text);
    await withApp(async (s) => {
      await click(s, "plan-import");
      await s.waitFor(testid("plan-imported-lab"));
      await s.waitFor(testid("node-worker2"), { predicate: async (e) => (await e.attribute("data-severity")) === "error" });
      await click(s, "node-worker2");
      await s.waitFor(testid("field-error-mac"));
      await fill(s, "field-mac", "52:54:00:00:00:05");
      await s.waitGone(testid("field-error-mac"));
      await click(s, "save");
      await s.waitGone(testid("dirty"));
      await shot(s, "imported-and-fixed");
    });
  },

  async "generate: preview a node's files with the validators' verdicts"() {
    await withApp(async (s) => {
      await click(s, "plan-demo-lab");
      await click(s, "tab-generate");
      await click(s, "preview-node-cp1");
      await click(s, "preview-file-config.ign");
      await s.waitFor(testid("verdict-ignition-config"), { predicate: async (e) => (await e.attribute("data-ok")) === "true" });
      await s.waitFor(testid("verdict-ignition-validate"), { predicate: async (e) => (await e.attribute("data-ok")) === "true" });
      const code = await (await s.find(testid("preview-code"))).text();
      check(code.includes('"version": "3.3.0"'), "the config is shown");
      await shot(s, "generate-config");
      await click(s, "preview-file-boot.ipxe");
      await s.waitFor(testid("preview-code"), { predicate: async (e) => (await e.text()).includes("#!ipxe") });
      await shot(s, "generate-ipxe");
    });
  },

  async "export: commit the bundle to a Git repository"() {
    await withApp(async (s) => {
      await click(s, "plan-demo-lab");
      await click(s, "tab-export");
      await click(s, "git-pick");
      await s.waitFor(testid("git-repo"), { predicate: async (e) => (await e.property("value")) !== "" });
      await click(s, "git-export");
      const result = await s.waitFor(testid("export-result"), { timeout: 30000 });
      const text = await result.text();
      check((await result.attribute("data-ok")) === "true" && text.includes("Committed"), `export said: ${text}`);
      await shot(s, "export-git");
      const repo = join(work, "dialogs", "folder");
      const log = execFileSync("git", ["-C", repo, "log", "--oneline"], { encoding: "utf8" });
      check(log.includes("flatlab: plan demo-lab"), `git log: ${log}`);
      const files = execFileSync("git", ["-C", repo, "ls-files"], { encoding: "utf8" });
      check(files.includes("demo-lab/nodes/cp1/install.ign") && !files.includes("config.ign\n"), `files: ${files}`);
    });
  },

  async "images: fetch the plan's release from a release stand-in, cancel, resume, verify"() {
    // A release tree as the Flatcar and K3s servers lay it out, signed by a key made here; the
    // app is told to trust that key instead of Flatcar's (its Images settings).
    const root = new URL("../../", import.meta.url).pathname;
    const tree = join(work, "releases");
    const gnupg = join(work, "gnupg-images");
    execFileSync("mkdir", ["-p", gnupg, join(tree, "stable/amd64-usr/current"), join(tree, "stable/amd64-usr/4593.2.5"), join(tree, "k3s/v1.32.2+k3s1")]);
    execFileSync("chmod", ["700", gnupg]);
    const gpg = (...args) => execFileSync("gpg", ["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "", "--homedir", gnupg, ...args]);
    gpg("--quick-gen-key", "Flatlab e2e images <e2e@flatlab.invalid>", "ed25519", "sign", "never");
    writeFileSync(join(work, "images-key.asc"), gpg("--armor", "--export"));
    writeFileSync(join(tree, "stable/amd64-usr/current/version.txt"), "FLATCAR_VERSION=4593.2.5\n");
    const release = join(tree, "stable/amd64-usr/4593.2.5");
    for (const [file, mib] of [["flatcar_production_pxe.vmlinuz", 1], ["flatcar_production_pxe_image.cpio.gz", 2], ["flatcar_production_image.bin.bz2", 24]]) {
      writeFileSync(join(release, file), execFileSync("head", ["-c", String(mib << 20), "/dev/urandom"], { maxBuffer: 64 << 20 }));
      gpg("--detach-sign", "-o", join(release, `${file}.sig`), join(release, file));
    }
    writeFileSync(join(tree, "k3s/v1.32.2+k3s1/k3s"), "#!/bin/sh\necho k3s stand-in\n");
    const sum = execFileSync("sha256sum", ["k3s"], { cwd: join(tree, "k3s/v1.32.2+k3s1"), encoding: "utf8" });
    writeFileSync(join(tree, "k3s/v1.32.2+k3s1/sha256sum-amd64.txt"), sum);
    writeFileSync(join(tree, "channels.json"), JSON.stringify({ data: [{ id: "stable", latest: "v1.32.2+k3s1" }, { id: "latest", latest: "v1.33.1+k3s1" }] }));
    // 4 MiB/s: the 24 MiB image takes six seconds, time to see its progress and cancel it.
    const standin = spawn(join(root, "target/debug/flatlab-release-standin"), ["--root", tree, "--rate", String(4 << 20)], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const base = await new Promise((resolve, reject) => {
        standin.stdout.on("data", (d) => {
          const m = /listening (\S+)/.exec(String(d));
          if (m) resolve(m[1]);
        });
        standin.on("exit", (code) => reject(new Error(`the release stand-in exited (${code})`)));
      });
      await withApp(async (s) => {
        await click(s, "plan-demo-lab");
        await click(s, "tab-images");
        await s.waitFor(testid("need-flatcar"), { predicate: async (e) => (await e.attribute("class")) === "missing" });
        await s.waitFor(testid("mirror-empty"));
        await s.execute("document.querySelector(\"[data-testid='mirror-settings'] details\").open = true");
        await fill(s, "mirror-flatcar-url", `${base}/{channel}`);
        await fill(s, "mirror-k3s-url", `${base}/k3s`);
        await fill(s, "mirror-k3s-channels", `${base}/channels.json`);
        await fill(s, "mirror-key", join(work, "images-key.asc"));
        await click(s, "mirror-settings-save");
        await s.waitFor(testid("channel-stable"), { predicate: async (e) => (await e.text()).includes("4593.2.5"), timeout: 20000 });
        await click(s, "fetch-plan");
        await s.waitFor(testid("fetch-status"), { predicate: async (e) => /flatcar_production_image\.bin\.bz2: .* of 24\.0 MiB · .*MiB\/s · .* left/.test(await e.text()), timeout: 20000 });
        await shot(s, "images-fetching");
        await click(s, "fetch-cancel");
        await s.waitFor(testid("fetch-cancelled"), { timeout: 15000 });
        const part = join(process.env.XDG_DATA_HOME, "flatlab/mirror/.partial/stable/amd64-usr/4593.2.5/flatcar_production_image.bin.bz2.part");
        check(existsSync(part), "the cancelled download is kept for the next fetch");
        await click(s, "fetch-plan");
        await s.waitFor(testid("fetch-done"), { timeout: 30000 });
        await s.waitFor(testid("need-flatcar"), { predicate: async (e) => (await e.attribute("class")) === "present" });
        await s.waitFor(testid("need-k3s"), { predicate: async (e) => (await e.attribute("class")) === "present" });
        await click(s, "mirror-verify");
        await s.waitFor(testid("verify-result"), { predicate: async (e) => (await e.text()).includes("All 4 files check out"), timeout: 20000 });
        await shot(s, "images-mirrored");
        await click(s, "tab-install");
        await s.waitFor(testid("images-ready"));
      });
    } finally {
      standin.kill();
    }
  },

  async "install: the boot server runs as a sidecar and shows machines live"() {
    const iface = process.env.E2E_BOOT_INTERFACE;
    if (!iface) return "skipped: needs root for a network namespace";
    await withApp(async (s) => {
      await click(s, "plan-demo-lab");
      await click(s, "tab-install");
      await s.waitFor(`${testid("boot-interface")} option[value='${iface}']`);
      await select(s, "boot-interface", iface);
      await select(s, "boot-dhcp", "proxy");
      await click(s, "boot-start");
      await s.waitFor(testid("machine-cp1"), { predicate: async (e) => (await e.attribute("data-stage")) === "armed", timeout: 30000 });
      await shot(s, "install-armed");
      // Power on: Wake-on-LAN magic packets for cp1 on the boot interface (tests/netboot/power-on.sh
      // captures them on a LAN).
      await click(s, "power-on-cp1");
      await s.waitFor(testid("power-on-result"), { timeout: 10000 });
      const powered = await (await s.find(testid("power-on-result"))).text();
      check(powered.includes("Sent 3 magic packets each to cp1 (52:54:00:00:00:01)"), `power on: ${powered}`);
      await shot(s, "install-power-on");
      // cp1's firmware asks for its iPXE script, as a machine would after DHCP.
      const response = await fetch(`http://${process.env.E2E_BOOT_ADDRESS}:8080/v1/boot/52-54-00-00-00-01.ipxe?arch=x86_64&platform=efi`);
      check(response.ok, `script: ${response.status}`);
      const script = await response.text();
      check(script.startsWith("#!ipxe"), "an iPXE script");
      await s.waitFor(testid("machine-cp1"), { predicate: async (e) => (await e.attribute("data-stage")) === "ipxe" });
      await shot(s, "install-live");
      // cp1 fetches its install config, and again (a retry of a cut transfer: same address, no
      // stage reported since); once it reported `installing`, a fetch of it is refused, with an
      // alert on cp1's card that names the address.
      const configUrl = /ignition\.config\.url=(\S+)/.exec(script)?.[1];
      check(configUrl, `no install config URL in the script:\n${script}`);
      check((await fetch(configUrl)).status === 200, "the install config");
      check((await fetch(configUrl)).status === 200, "the install config again: a retry");
      const attemptToken = /\/v1\/ignition\/([A-Za-z0-9]+)/.exec(script)?.[1];
      const movedOn = await fetch(`http://${process.env.E2E_BOOT_ADDRESS}:8080/v1/report/${attemptToken}?stage=installing`, { method: "POST" });
      check(movedOn.status === 204, `report: ${movedOn.status}`);
      check((await fetch(configUrl)).status === 403, "the install config, once cp1 moved on");
      await s.waitFor(testid("alert-cp1"), { timeout: 10000 });
      const alertText = await (await s.find(testid("alert-cp1"))).text();
      check(alertText.includes("a second time in this boot attempt"), `alert: ${alertText}`);
      await shot(s, "install-alert");
      // Its live system posts the machine's hardware with its install token, as install.sh does;
      // the node's inspector shows it and installs to the disk chosen from it.
      const token = /\/v1\/ignition\/([A-Za-z0-9]+)/.exec(script)?.[1];
      check(token, `no install token in the script:\n${script}`);
      const inventory = {
        firmware: "uefi", vendor: "Intel(R) Client Systems", product: "NUC8i5BEH", cpu_model: "Intel(R) Core(TM) i5-8259U CPU @ 2.30GHz",
        cpus: 8, memory_bytes: 16 * 1024 ** 3,
        nics: [{ name: "eno1", mac: "52:54:00:00:00:01", driver: "e1000e", speed_mbps: 1000 }],
        disks: [
          { name: "nvme0n1", by_id: ["/dev/disk/by-id/nvme-Samsung_SSD_970_EVO_500GB_S466NX0K123456"], size_bytes: 500107862016,
            model: "Samsung SSD 970 EVO 500GB", serial: "S466NX0K123456", rotational: false, removable: false,
            partitions: [{ name: "nvme0n1p1", size_bytes: 500000000000, fstype: "ntfs", label: "Windows" }] },
          { name: "sda", by_id: ["/dev/disk/by-id/usb-SanDisk_Ultra-0:0"], size_bytes: 32000000000, model: "Ultra", serial: null,
            rotational: false, removable: true, partitions: [] },
        ],
      };
      const posted = await fetch(`http://${process.env.E2E_BOOT_ADDRESS}:8080/v1/inventory/${token}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(inventory),
      });
      check(posted.status === 204, `inventory: ${posted.status} ${await posted.text()}`);
      await click(s, "tab-design");
      await click(s, "node-cp1");
      await s.waitFor(testid("disk-nvme0n1"));
      await shot(s, "inventory");
      await click(s, "tab-install");
      await click(s, "rearm-cp1");
      await click(s, "modal-ok");
      await s.waitFor(testid("machine-cp1"), { predicate: async (e) => (await e.attribute("data-stage")) === "armed" });

      // worker1 is inspected before its install: the running boot server takes it up from the
      // store, its next script is the inspection's live system, whose config posts the hardware
      // and waits; Install now hands that live system its install script.
      const base = `http://${process.env.E2E_BOOT_ADDRESS}:8080`;
      await click(s, "inspect-worker1");
      await s.waitFor(testid("inspecting-worker1"));
      // The running sidecar takes it up from the store within 2 s; then worker1 network-boots.
      await sleep(2500);
      const inspectScript = await (await fetch(`${base}/v1/boot/52-54-00-00-00-04.ipxe?arch=x86_64&platform=efi`)).text();
      const inspectToken = /\/v1\/inspect\/([A-Za-z0-9]+)\.ign/.exec(inspectScript)?.[1];
      check(inspectToken, `worker1 did not get its inspection:\n${inspectScript}`);
      const config = await fetch(`${base}/v1/inspect/${inspectToken}.ign`);
      check(config.ok && (await config.text()).includes("flatlab-inspect.service"), `inspection config: ${config.status}`);
      const worker = { ...inventory, nics: [{ name: "eno1", mac: "52:54:00:00:00:04", driver: "e1000e", speed_mbps: 1000 }] };
      const reported = await fetch(`${base}/v1/inventory/${inspectToken}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(worker) });
      check(reported.status === 204, `inspection inventory: ${reported.status}`);
      check((await fetch(`${base}/v1/inspect/${inspectToken}/next`)).status === 204, "the inspected machine waits");
      const waiting = await (await s.find(testid("machine-worker1"))).attribute("data-stage");
      check(waiting === "armed", `an inspected machine installs nothing yet (stage ${waiting})`);
      await click(s, "tab-design");
      await click(s, "node-worker1");
      await s.waitFor(testid("disk-nvme0n1"));
      await shot(s, "inspected");
      await click(s, "tab-install");
      await s.waitFor(testid("rearm-worker1"), { predicate: async (e) => (await e.text()) === "Install now" });
      await click(s, "rearm-worker1");
      await click(s, "modal-ok");
      let next = 204;
      for (let i = 0; i < 40 && next !== 200; i++) {
        next = (await fetch(`${base}/v1/inspect/${inspectToken}/next`)).status;
        if (next !== 200) await sleep(250);
      }
      check(next === 200, `Install now did not reach the waiting live system (${next})`);
      await s.waitFor(testid("machine-worker1"), { predicate: async (e) => (await e.attribute("data-stage")) === "ignition", timeout: 15000 });
      await shot(s, "installing-from-inspection");
      await click(s, "boot-stop");
      await s.waitFor(testid("boot-start"), { predicate: (e) => e.enabled(), timeout: 15000 });
    });
  },
});

Object.assign(scenarios, {
  async "cluster: the view, a kubeconfig, a K3s upgrade, snapshots and a restore against a stand-in of the API"() {
    // The stand-in holds what the first server's rendered config holds: the CA files. Rendered
    // by the CLI from the app's own database, so both have the same cluster PKI.
    const root = new URL("../../", import.meta.url).pathname;
    const bundle = join(work, "bundle");
    execFileSync(join(root, "target/debug/flatlab"), ["render", "demo-lab", "-o", bundle], { stdio: "ignore" });
    const standin = spawn(
      join(root, "target/debug/flatlab-kube-standin"),
      ["--config", join(bundle, "nodes/cp1/config.ign"), "--fixture", join(root, "crates/kube-standin/fixtures/demo-lab.yaml"),
       "--listen", "127.0.0.1:0", "--upgrade-step-ms", "600"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const address = await new Promise((resolve, reject) => {
        standin.stdout.on("data", (d) => {
          const m = /listening on (\S+)/.exec(String(d));
          if (m) resolve(m[1]);
        });
        standin.on("exit", (code) => reject(new Error(`the stand-in exited (${code})`)));
      });
      await withApp(async (s) => {
        await click(s, "plan-demo-lab");
        await click(s, "tab-cluster");
        await fill(s, "cluster-server", `https://${address}`);
        await click(s, "cluster-refresh");
        await s.waitFor(testid("cluster-reach"), { predicate: async (e) => (await e.attribute("data-kind")) === "reachable", timeout: 20000 });
        await s.waitFor(testid("cluster-node-cp2"), { predicate: async (e) => (await e.text()).includes("Rebooting into a Flatcar update") });
        const worker2 = await s.waitFor(testid("cluster-node-worker2"));
        check((await worker2.attribute("data-state")) === "missing", "worker2 never joined");
        await shot(s, "cluster-view");
        await click(s, "kubeconfig-merge");
        await s.waitFor(".banner.success");
        const kubeconfig = readFileSync(join(process.env.HOME, ".kube", "config"), "utf8");
        check(kubeconfig.includes("name: demo-lab") && kubeconfig.includes("client-key-data"), "the kubeconfig has the plan's context");
        const revision = Number((await (await s.find(testid("revision"))).text()).replace(/\D+/g, ""));
        await fill(s, "upgrade-version", "v1.33.4+k3s1");
        await click(s, "upgrade-start");
        await click(s, "modal-ok");
        await s.waitFor(testid("upgrade-progress"), { predicate: async (e) => Number(await e.attribute("data-done")) >= 1, timeout: 20000 });
        await shot(s, "cluster-upgrading");
        await s.waitFor(testid("upgrade-saved"), { timeout: 30000 });
        await s.waitFor(testid("revision"), { predicate: async (e) => (await e.text()) === `rev ${revision + 1}` });
        await shot(s, "cluster-upgraded");

        // Snapshots: the one the upgrade took first is listed; one more taken now; it is copied
        // here through the API (a pod on cp1 serves it), and the Restore wizard can use it.
        await click(s, "snapshots-refresh");
        await s.waitFor("[data-testid^='snapshot-flatlab-before-upgrade-to-v1-33-4-k3s1-cp1-']", { timeout: 15000 });
        await click(s, "snapshot-take");
        const taken = await s.waitFor("[data-testid^='snapshot-download-flatlab-on-demand-cp1-']", { timeout: 15000 });
        await taken.click();
        await s.waitFor("[data-testid^='snapshot-here-flatlab-on-demand-cp1-']", { timeout: 30000 });
        await shot(s, "cluster-snapshots");
        await click(s, "restore-start");
        await s.waitFor(testid("modal-ok"));
        await shot(s, "cluster-restore-confirm");
        await click(s, "modal-ok");
        await s.waitFor(testid("restore-wizard"), { predicate: async (e) => (await e.attribute("data-active")) === "yes", timeout: 15000 });
        await s.waitFor(testid("restore-server-cp2"), { predicate: async (e) => (await e.attribute("data-stage")) === "armed" });
        await shot(s, "cluster-restore");
      });
    } finally {
      standin.kill();
    }
  },
});

let failed = 0;
for (const [name, run] of Object.entries(scenarios)) {
  if (only && !name.includes(only)) continue;
  const started = Date.now();
  try {
    const skipped = await run();
    if (skipped) console.log(`skip ${name}: ${skipped}`);
    else console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
console.log(`e2e: ${shots} screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
void Keys;
