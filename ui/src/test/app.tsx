// Drives the whole app against the fake backend, as the feature tests do.
import { act, fireEvent, render, screen } from "@testing-library/react";
import { App } from "../App";
import { FakeBackend } from "./fakeBackend";

export const click = (id: string) => fireEvent.click(screen.getByTestId(id));

/** Focuses a field and sets its value, as typing into it does. */
export const type = (id: string, value: string) => {
  const el = screen.getByTestId(id);
  fireEvent.focus(el);
  fireEvent.change(el, { target: { value } });
};

/** Renders the app and waits until the first plan (the demo plan's `cp1`) is on the canvas. */
export async function openApp(fake: FakeBackend = new FakeBackend().install()) {
  render(<App />);
  await screen.findByTestId("node-cp1");
  return fake;
}

/** Waits until the debounced validation has answered for the current draft. */
export const settle = () => act(() => new Promise((r) => setTimeout(r, 250)));
