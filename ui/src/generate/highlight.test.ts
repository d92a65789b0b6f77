import { describe, expect, it } from "vitest";
import { highlight, highlightIpxe, highlightJson } from "./highlight";

describe("highlight", () => {
  it("tokenizes JSON losslessly", () => {
    const src = '{\n  "ignition": {"version": "3.3.0"},\n  "n": -1.5e3, "ok": true, "x": null, "s": "a\\"b"\n}';
    const tokens = highlightJson(src);
    expect(tokens.map((t) => t.text).join("")).toBe(src);
    expect(tokens.find((t) => t.kind === "key")?.text).toBe('"ignition"');
    expect(tokens.filter((t) => t.kind === "string").map((t) => t.text)).toContain('"3.3.0"');
    expect(tokens.find((t) => t.kind === "number")?.text).toBe("-1.5e3");
    expect(tokens.filter((t) => t.kind === "literal").map((t) => t.text)).toEqual(["true", "null"]);
  });

  it("tokenizes iPXE losslessly", () => {
    const src = "#!ipxe\n# a comment\nkernel ${base}/vmlinuz initrd=main flatcar.first_boot=1 || goto fail\nboot\n:fail\necho --help";
    const tokens = highlightIpxe(src);
    expect(tokens.map((t) => t.text).join("")).toBe(src);
    expect(tokens.filter((t) => t.kind === "comment").map((t) => t.text)).toEqual(["#!ipxe", "# a comment"]);
    expect(tokens.filter((t) => t.kind === "keyword").map((t) => t.text)).toEqual(["kernel", "goto", "boot", "echo"]);
    expect(tokens.find((t) => t.kind === "variable")?.text).toBe("${base}");
    expect(tokens.find((t) => t.kind === "key")?.text).toBe(":fail");
  });

  it("leaves other languages plain", () => {
    expect(highlight("# hi", "markdown")).toEqual([{ kind: "plain", text: "# hi" }]);
    expect(highlight("a: b", "yaml").map((t) => t.text).join("")).toBe("a: b");
  });
});
