import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { App } from "../App";
import { FakeBackend, resetMocks } from "../test/fakeBackend";

afterEach(() => {
  cleanup();
  resetMocks();
});

describe("App", () => {
  it("shows backend errors by message", async () => {
    new FakeBackend()
      .on("list_plans", () => {
        throw { code: "corrupt_database", message: "flatlab.db is damaged" };
      })
      .install();
    render(<App />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("flatlab.db is damaged");
    fireEvent.click(within(alert).getByLabelText("Dismiss"));
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
