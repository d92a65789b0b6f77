// Generated from flatlab_bootd::Stage::ALL by `cargo test` (crates/bootd/src/stage.rs). Do not edit.
import type { Stage } from "./Stage";

/** Every stage, in the order a machine goes through them (`failed` last). */
export const STAGES: readonly Stage[] = [
  "armed",
  "dhcp",
  "ipxe",
  "kernel",
  "initrd",
  "ignition",
  "installing",
  "installed",
  "booted",
  "k3s-ready",
  "failed",
];
