import type { Finding, Plan } from "../lib/ipc";

/** A finding from asking the LAN (a static address another host answers for), with the address the node had then. */
export interface LanFinding {
  finding: Finding;
  address: string | null;
}

/** Remembers what each finding's node had as its address when the LAN was asked. */
export function fromCheck(findings: Finding[], plan: Plan): LanFinding[] {
  return findings.map((finding) => ({
    finding,
    address: finding.target.kind === "node" ? (plan.nodes[finding.target.index]?.address ?? null) : null,
  }));
}

/** The LAN's findings that still hold for `plan`: a node given another address since is no longer flagged. */
export function stillTaken(lan: LanFinding[], plan: Plan | null): Finding[] {
  if (!plan) return [];
  return lan
    .filter(({ finding, address }) => finding.target.kind !== "node" || (address !== null && plan.nodes[finding.target.index]?.address === address))
    .map(({ finding }) => finding);
}
