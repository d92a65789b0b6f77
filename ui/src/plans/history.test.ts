import { describe, expect, it } from "vitest";
import { canRedo, canUndo, createHistory, push, redo, undo } from "./history";

describe("history", () => {
  it("undoes and redoes", () => {
    let h = createHistory(1);
    h = push(h, 2);
    h = push(h, 3);
    expect(canUndo(h)).toBe(true);
    h = undo(h);
    expect(h.present).toBe(2);
    h = undo(h);
    expect(h.present).toBe(1);
    expect(canUndo(h)).toBe(false);
    h = redo(h);
    expect(h.present).toBe(2);
    expect(canRedo(h)).toBe(true);
    h = push(h, 5);
    expect(canRedo(h)).toBe(false);
    expect(h.past).toEqual([1, 2]);
  });

  it("coalesces edits with the same key", () => {
    let h = createHistory("");
    h = push(h, "a", "name#1");
    h = push(h, "ab", "name#1");
    h = push(h, "abc", "name#1");
    h = push(h, "abcd", "name#2");
    expect(h.past).toEqual(["", "abc"]);
    h = undo(h);
    expect(h.present).toBe("abc");
    h = push(h, "abcx", "name#1");
    expect(h.past).toEqual(["", "abc"]);
  });

  it("ignores edits that change nothing", () => {
    const h = createHistory(1);
    expect(push(h, 1)).toBe(h);
  });
});
