// Desktop benchmarks over the real app (run through scripts/bench-desktop.sh): cold start to an
// interactive canvas, memory of the idle app, and frame rate while dragging a card on a
// 200-node plan. Prints figures; asserts nothing about them.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Session, sleep } from "./webdriver.mjs";

const app = process.env.E2E_APP;
const driver = process.env.E2E_DRIVER;
const work = process.env.E2E_WORK;
const runs = Number(process.env.BENCH_RUNS ?? 5);
const cli = join(app, "..", "flatlab");
const testid = (id) => `[data-testid='${id}']`;

function bigPlan(n) {
  const lines = [
    "version: 1",
    "name: big-lab",
    "os: {channel: stable, version: 4593.2.5, arch: amd64}",
    "kubernetes: {k3s_version: v1.32.2+k3s1}",
    "network: {subnet: 10.8.0.0/16, gateway: 10.8.0.1, dns: [10.8.0.1]}",
    "ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINRTeXwtuR3aVMeliYY5lnlLm3DbC7C7B8fGAidHPl7j bench@lab']",
    "switches:",
    "- {name: core, position: {x: 0, y: -200}}",
    "nodes:",
  ];
  for (let i = 0; i < n; i++) {
    const hex = (i + 1).toString(16).padStart(4, "0");
    const role = i < 3 ? "server" : "agent";
    const x = (i % 20) * 240;
    const y = Math.floor(i / 20) * 140;
    lines.push(
      `- {name: n${i + 1}, role: ${role}, mac: "52:54:00:00:${hex.slice(0, 2)}:${hex.slice(2)}", install_disk: /dev/sda, address: 10.8.${Math.floor((i + 10) / 250)}.${((i + 10) % 250) + 2}/16, switch: core, position: {x: ${x}, y: ${y}}}`,
    );
  }
  return lines.join("\n") + "\n";
}

function pidsOf(pattern) {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(pattern);
      } catch {
        return false;
      }
    });
}

function pssKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8").match(/^Pss:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// 1. Cold start to interactive canvas (the demo plan), and idle memory.
const starts = [];
let memory = null;
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  const s = await Session.start(driver, { "tauri:options": { application: app } });
  await s.waitFor(testid("node-cp1"), { timeout: 60000 });
  const ms = performance.now() - t0;
  starts.push(ms);
  if (r === runs - 1) {
    await sleep(10000);
    const parts = {
      "flatlab-desktop": pidsOf(app).concat(pidsOf("/usr/bin/flatlab-desktop")),
      WebKitWebProcess: pidsOf("WebKitWebProcess"),
      WebKitNetworkProcess: pidsOf("WebKitNetworkProcess"),
    };
    memory = Object.fromEntries(Object.entries(parts).map(([k, pids]) => [k, pids.reduce((a, p) => a + pssKiB(p), 0)]));
  }
  await s.quit();
  await sleep(500);
}

// 2. Dragging a card on a 200-node plan.
const file = join(work, "big-lab.yaml");
writeFileSync(file, bigPlan(200));
execFileSync(cli, ["plan", "import", file], { stdio: "ignore" });
const t0 = performance.now();
const s = await Session.start(driver, { "tauri:options": { application: app } });
await (await s.waitFor(testid("plan-big-lab"), { timeout: 60000 })).click();
const card = await s.waitFor(testid("node-n1"), { timeout: 60000 });
const openMs = performance.now() - t0;
const drags = [];
for (let r = 0; r < 3; r++) {
  await s.execute(`window.__frames = []; const tick = (t) => { window.__frames.push(t); if (window.__frames.length < 100000) window.__raf = requestAnimationFrame(tick); }; window.__raf = requestAnimationFrame(tick);`);
  const moves = [];
  for (let i = 1; i <= 60; i++) moves.push({ type: "pointerMove", duration: 16, origin: "pointer", x: r % 2 ? -4 : 4, y: 2 * (r % 2 ? -1 : 1) });
  await s.cmd("POST", "/actions", {
    actions: [
      {
        type: "pointer",
        id: "mouse",
        parameters: { pointerType: "mouse" },
        actions: [
          { type: "pointerMove", duration: 0, origin: { "element-6066-11e4-a52e-4f735466cecf": card.id }, x: 0, y: 0 },
          { type: "pointerDown", button: 0 },
          ...moves,
          { type: "pointerUp", button: 0 },
        ],
      },
    ],
  });
  await s.cmd("DELETE", "/actions");
  const frames = await s.execute(`cancelAnimationFrame(window.__raf); return window.__frames;`);
  const span = frames[frames.length - 1] - frames[0];
  const gaps = frames.slice(1).map((t, i) => t - frames[i]);
  drags.push({ fps: ((frames.length - 1) * 1000) / span, worst: Math.max(...gaps), ms: span });
}
const moved = await s.execute(`return document.querySelector("[data-testid='dirty']") !== null`);
await s.quit();

const fmt = (x) => x.toFixed(0);
console.log(`cold start to interactive canvas (demo plan, ${runs} runs): median ${fmt(median(starts))} ms, min ${fmt(Math.min(...starts))} ms, max ${fmt(Math.max(...starts))} ms`);
console.log(`idle memory after 10 s (PSS): ${Object.entries(memory).map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} MiB`).join(", ")}; total ${(Object.values(memory).reduce((a, b) => a + b, 0) / 1024).toFixed(0)} MiB`);
console.log(`cold start to interactive canvas on the 200-node plan: ${fmt(openMs)} ms`);
for (const [i, d] of drags.entries()) {
  console.log(`drag ${i + 1} on the 200-node plan: ${d.fps.toFixed(1)} frames/s over ${fmt(d.ms)} ms, worst frame ${fmt(d.worst)} ms`);
}
console.log(`the drag moved the card (plan dirty afterwards): ${moved}`);
