import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { FakeBackend, resetMocks, sendExportProgress } from "../test/fakeBackend";
import { click, openApp } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("export view", () => {
  it("commits to a Git repository and shows the commit", async () => {
    const fake = new FakeBackend().on("pick_folder", () => "/home/ada/lab-config");
    await openApp(fake.install());
    click("tab-export");
    click("git-pick");
    await waitFor(() => expect((screen.getByTestId("git-repo") as HTMLInputElement).value).toBe("/home/ada/lab-config"));
    fireEvent.change(screen.getByTestId("git-branch"), { target: { value: "main" } });
    fireEvent.change(screen.getByTestId("git-recipients"), { target: { value: "age1abc\n\nage1def\n" } });
    click("git-export");
    await act(() => sendExportProgress(1, 3, "rendering"));
    const result = await screen.findByTestId("export-result");
    expect(result.textContent).toContain("Committed 0123456789ab");
    expect(result.textContent).toContain("demo-lab/plan.yaml");
    expect(fake.callsOf("export_git")).toEqual([
      { options: { name: "demo-lab", repo: "/home/ada/lab-config", branch: "main", push: null, encryptTo: ["age1abc", "age1def"] } },
    ]);

    fake.on("export_git", () => ({ commit: null, pushed: false, changed: [] }));
    click("git-export");
    await waitFor(() => expect(screen.getByTestId("export-result").textContent).toContain("unchanged: no new commit"));
  });

  it("writes to a USB drive", async () => {
    const fake = await openApp();
    click("tab-export");
    await waitFor(() => expect((screen.getByTestId("usb-drives") as HTMLSelectElement).value).toBe("/media/ada/STICK"));
    expect(screen.getByTestId("usb-drives").textContent).toContain("STICK (SanDisk Ultra) · /dev/sdb1 at /media/ada/STICK · 16.0 GiB vfat");
    const unmounted = screen.getByText(/BIG \(Kingston DataTraveler\)/) as HTMLOptionElement;
    expect(unmounted.textContent).toContain("not mounted");
    click("usb-export");
    expect((await screen.findByTestId("export-result")).textContent).toContain("/media/ada/STICK/flatlab/demo-lab");
    expect(fake.callsOf("export_usb")).toEqual([{ name: "demo-lab", mountpoint: "/media/ada/STICK" }]);

    // Safe eject after the write.
    click("usb-eject");
    await waitFor(() => expect(screen.getByTestId("export-result").textContent).toContain("powered off: you can unplug it"));
    expect(fake.callsOf("eject_drive")).toEqual([{ target: "/media/ada/STICK" }]);

    // An unmounted drive is mounted first.
    fireEvent.change(screen.getByTestId("usb-drives"), { target: { value: "unmounted:/dev/sdc1" } });
    click("usb-export");
    await waitFor(() => expect(screen.getByTestId("export-result").textContent).toContain("/media/ada/BIG/flatlab/demo-lab"));
    expect(fake.callsOf("mount_drive")).toEqual([{ device: "/dev/sdc1" }]);
  });
});
