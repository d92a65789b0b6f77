import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import { DatabaseGate } from "./DatabaseGate";
import { FakeBackend, resetMocks } from "../test/fakeBackend";
import { click } from "../test/app";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("a database that cannot be opened", () => {
  it("is shown with its path, the reason and a way on, instead of the app", async () => {
    const fake = new FakeBackend();
    fake.dbProblem = { path: "/home/ada/.local/share/flatlab/flatlab.db", error: { code: "newer_database", message: "written by a newer Flatlab (schema 9)" } };
    fake.on("pick_open_file", () => "/home/ada/other.db");
    fake.on("open_other_database", () => {
      throw { code: "not_flatlab_database", message: "/home/ada/other.db is not a Flatlab database" };
    });
    fake.install();
    render(
      <DatabaseGate>
        <p data-testid="the-app">app</p>
      </DatabaseGate>,
    );
    const dialog = await screen.findByTestId("db-problem");
    expect(dialog.textContent).toContain("/home/ada/.local/share/flatlab/flatlab.db");
    expect(dialog.textContent).toContain("written by a newer Flatlab");
    expect(dialog.textContent).toContain("update Flatlab");
    expect(screen.queryByTestId("the-app")).toBeNull();
    click("db-open-other");
    await waitFor(() => expect(dialog.textContent).toContain("other.db is not a Flatlab database"));
    expect(fake.callsOf("open_other_database")).toEqual([{ path: "/home/ada/other.db" }]);
    click("db-quit");
    await waitFor(() => expect(fake.callsOf("quit")).toHaveLength(1));
  });

  it("stays out of the way when the database opened", async () => {
    new FakeBackend().install();
    render(
      <DatabaseGate>
        <p data-testid="the-app">app</p>
      </DatabaseGate>,
    );
    await screen.findByTestId("the-app");
  });
});
