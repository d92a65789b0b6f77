import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, screen, waitFor, within } from "@testing-library/react";
import { FakeBackend, resetMocks } from "../test/fakeBackend";
import { click, openApp, type } from "../test/app";
import { duration, progressText, versionChoices } from "./useImages";

afterEach(() => {
  cleanup();
  resetMocks();
});

const empty = (fake: FakeBackend) => {
  fake.mirror = { ...fake.mirror, releases: [], k3s: [], bytes: 0 };
  return fake;
};

describe("images view", () => {
  it("shows what the plan needs, fetches it with progress and says when it is there", async () => {
    const fake = empty(new FakeBackend());
    let release = () => {};
    fake.fetchGate = new Promise((r) => (release = r));
    await openApp(fake.install());
    click("tab-images");
    const flatcar = await screen.findByTestId("need-flatcar");
    await waitFor(() => expect(flatcar.className).toBe("missing"));
    expect(flatcar.textContent).toContain("4593.2.5");
    expect(screen.getByTestId("need-k3s").textContent).toContain("not mirrored");
    expect(screen.getByTestId("mirror-empty")).toBeTruthy();
    // The release servers' current versions, and one that did not answer.
    expect((await screen.findByTestId("channel-stable")).textContent).toContain("4593.2.5");
    expect(screen.getByTestId("channel-alpha").textContent).toContain("timed out");

    click("fetch-airgap");
    click("fetch-plan");
    const status = await screen.findByTestId("fetch-status");
    await waitFor(() => expect(status.textContent).toContain("100.0 of 400.0 MiB · 10.0 MiB/s · 30 s left"));
    expect(fake.callsOf("mirror_fetch")).toEqual([{ request: { channel: "stable", arch: "amd64", version: "4593.2.5", k3s: "v1.32.2+k3s1", k3s_airgap: true } }]);
    await act(async () => release());
    expect((await screen.findByTestId("fetch-done")).textContent).toContain("Flatcar 4593.2.5 is verified and mirrored (3 files), with K3s");
    await waitFor(() => expect(screen.getByTestId("need-flatcar").className).toBe("present"));
    expect(screen.getByTestId("need-airgap").className).toBe("present");
    expect(within(screen.getByTestId("mirror-releases")).getByText("4593.2.5")).toBeTruthy();

    click("mirror-verify");
    expect((await screen.findByTestId("verify-result")).textContent).toContain("All 3 files check out");
  });

  it("cancels a fetch and says that the next one resumes", async () => {
    const fake = empty(new FakeBackend());
    let release = () => {};
    fake.fetchGate = new Promise((r) => (release = r));
    await openApp(fake.install());
    click("tab-images");
    click(await screen.findByTestId("fetch-beta").then((b) => b.dataset.testid!));
    await screen.findByTestId("fetch-cancel");
    click("fetch-cancel");
    await waitFor(() => expect(fake.callsOf("mirror_cancel")).toHaveLength(1));
    await act(async () => release());
    expect((await screen.findByTestId("fetch-cancelled")).textContent).toContain("resumes");
    expect(screen.getByTestId("mirror-empty")).toBeTruthy();
  });

  it("uses a server's release in the plan and offers versions in the inspector", async () => {
    const fake = new FakeBackend();
    await openApp(fake.install());
    click("tab-images");
    click(await screen.findByTestId("use-beta").then((b) => b.dataset.testid!));
    click("tab-design");
    const version = (await screen.findByTestId("field-os.version")) as HTMLInputElement;
    expect(version.value).toBe("4628.1.0");
    expect((screen.getByTestId("field-os.channel") as HTMLSelectElement).value).toBe("beta");
    const options = [...screen.getByTestId("choices-os.version").querySelectorAll("option")].map((o) => o.value);
    expect(options).toEqual(["4628.1.0"]);
    const k3s = [...screen.getByTestId("choices-kubernetes.k3s_version").querySelectorAll("option")].map((o) => o.value);
    expect(k3s).toEqual(["v1.32.2+k3s1", "v1.33.1+k3s1"]);
  });

  it("saves the mirror folder and the servers", async () => {
    const fake = new FakeBackend();
    await openApp(fake.install());
    click("tab-images");
    type(await screen.findByTestId("mirror-dir").then((e) => e.dataset.testid!), "/srv/flatlab-mirror");
    type("mirror-flatcar-url", "http://10.0.0.5:8000/{channel}");
    click("mirror-settings-save");
    await waitFor(() => expect(fake.callsOf("save_mirror_settings")).toEqual([{ settings: { dir: "/srv/flatlab-mirror", flatcar_base_url: "http://10.0.0.5:8000/{channel}" } }]));
    await waitFor(() => expect(screen.getByTestId("mirror-usage").textContent).toContain("/srv/flatlab-mirror"));
  });
});

describe("install with an empty mirror", () => {
  it("Start offers to fetch the plan's release first, then starts", async () => {
    const fake = empty(new FakeBackend());
    await openApp(fake.install());
    click("tab-install");
    expect((await screen.findByTestId("images-missing")).textContent).toContain("no Flatcar stable 4593.2.5");
    await waitFor(() => expect((screen.getByTestId("boot-start") as HTMLButtonElement).disabled).toBe(false));
    click("boot-start");
    const dialog = await screen.findByRole("dialog");
    expect(dialog.textContent).toContain("Flatcar 4593.2.5 is not in the mirror");
    click("modal-ok");
    await waitFor(() => expect(fake.callsOf("boot_start")).toHaveLength(1));
    expect(fake.callsOf("mirror_fetch")).toHaveLength(1);
    await waitFor(() => expect(screen.queryByTestId("images-missing")).toBeNull());
  });

  it("declining the fetch starts nothing", async () => {
    const fake = empty(new FakeBackend());
    await openApp(fake.install());
    click("tab-install");
    await screen.findByTestId("images-missing");
    await waitFor(() => expect((screen.getByTestId("boot-start") as HTMLButtonElement).disabled).toBe(false));
    click("boot-start");
    await screen.findByRole("dialog");
    click("modal-cancel");
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(fake.callsOf("boot_start")).toHaveLength(0);
    expect(fake.callsOf("mirror_fetch")).toHaveLength(0);
  });
});

describe("images helpers", () => {
  it("formats progress and time left", () => {
    expect(progressText({ file: "f", done: 5 * 1024 ** 2, total: null, rate: 0, eta_secs: null })).toBe("5.0 MiB");
    expect(duration(59)).toBe("59 s");
    expect(duration(125)).toBe("2 min 5 s");
    expect(duration(7300)).toBe("2 h 1 min");
  });

  it("offers each version once, only of the plan's channel and board", () => {
    const choices = versionChoices(
      { os: { channel: "stable", arch: "amd64" }, kubernetes: null },
      {
        overview: {
          dir: "/m",
          bytes: 0,
          free_bytes: null,
          releases: [
            { channel: "stable", board: "amd64-usr", version: "1.0.0", files: [], complete: true, bytes: 0 },
            { channel: "stable", board: "amd64-usr", version: "0.9.0", files: [], complete: false, bytes: 0 },
            { channel: "beta", board: "amd64-usr", version: "2.0.0", files: [], complete: true, bytes: 0 },
            { channel: "stable", board: "arm64-usr", version: "1.1.0", files: [], complete: true, bytes: 0 },
          ],
          k3s: [{ version: "v1.32.2+k3s1", binaries: ["k3s"], airgap: [], bytes: 0 }],
        },
        versions: { flatcar: [{ channel: "stable", version: "1.0.0", error: null }], k3s: [{ id: "stable", latest: "v1.32.2+k3s1" }, { id: "v1.30", latest: "v1.30.9+k3s1" }], k3s_error: null },
      },
    );
    expect(choices).toEqual({ flatcar: ["1.0.0"], k3s: ["v1.32.2+k3s1"] });
  });
});
