import type { Finding, Plan } from "../lib/ipc";

/** A finding from asking the LAN (a static address another host answers for), with the node's name and address then. */
export interface LanFinding {
  finding: Finding;
  node: string | null;
  address: string | null;
}

const nodeAt = (finding: Finding, plan: Plan) => (finding.target.kind === "node" ? plan.nodes[finding.target.index] : undefined);

/** Remembers which node each finding was on, and its address, when the LAN was asked. */
export function fromCheck(findings: Finding[], plan: Plan): LanFinding[] {
  return findings.map((finding) => {
    const node = nodeAt(finding, plan);
    return { finding, node: node?.name ?? null, address: node?.address ?? null };
  });
}

/** The LAN's findings that still hold for `plan`: a node renamed, given another address, or another plan's, is no longer flagged. */
export function stillTaken(lan: LanFinding[], plan: Plan | null): Finding[] {
  if (!plan) return [];
  return lan
    .filter(({ finding, node, address }) => {
      const now = nodeAt(finding, plan);
      return now !== undefined && address !== null && now.name === node && now.address === address;
    })
    .map(({ finding }) => finding);
}
