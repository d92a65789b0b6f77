import { afterEach, describe, expect, it } from "vitest";
import { act, renderHook, waitFor } from "@testing-library/react";
import type { SidecarLine } from "../lib/ipc";
import { FakeBackend, resetMocks, sendBootMessage } from "../test/fakeBackend";
import { useBootServer } from "./useBootServer";

afterEach(resetMocks);

const dhcp = (run: string, seq: number, at: number): SidecarLine => ({
  run,
  seq,
  type: "event",
  event: { at, mac: "52:54:00:00:00:01", node: "cp1", type: "stage", stage: "dhcp", detail: null },
});

describe("useBootServer", () => {
  it("applies each line once, and a restarted server's lines from its first", async () => {
    const fake = new FakeBackend();
    fake.bootMessages = [dhcp("one", 1, 1_000)];
    fake.install();
    const reported: unknown[] = [];
    const report = (e: unknown) => void reported.push(e);
    const { result } = renderHook(() => useBootServer(report));
    const steps = () => result.current.state.machines["52:54:00:00:00:01"]?.history.length ?? 0;
    await waitFor(() => expect(steps()).toBe(1));

    await act(async () => {
      await sendBootMessage(dhcp("one", 1, 1_000));
      await sendBootMessage({ run: "one", seq: 2, type: "error", error: { code: "io", message: "disk full" } });
      await sendBootMessage({ run: "one", seq: 2, type: "error", error: { code: "io", message: "disk full" } });
    });
    expect(steps()).toBe(1);
    expect(result.current.state.errors).toHaveLength(1);
    expect(result.current.error?.message).toBe("disk full");

    await act(async () => {
      await sendBootMessage({ run: "two", seq: 1, type: "ready", plan: "demo-lab", interface: "eth0", http: "http://10.0.0.2:8080", tftp: null, admin: "x", warnings: [] });
      await sendBootMessage(dhcp("two", 2, 2_000));
    });
    expect(result.current.running).toBe(true);
    expect(result.current.state.errors).toHaveLength(0);
    expect(steps()).toBe(2);
    expect(reported).toEqual([]);
  });
});
