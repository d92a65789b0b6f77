// A small W3C WebDriver client over fetch (Node 20): just what the end-to-end tests use.
// tauri-driver speaks W3C WebDriver and forwards to WebKitWebDriver, which drives the real app.

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export class WebDriverError extends Error {}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async start(base, capabilities) {
    const value = await request(base, "POST", "/session", { capabilities: { alwaysMatch: capabilities } });
    return new Session(base, value.sessionId);
  }

  cmd(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(selector) {
    const value = await this.cmd("POST", "/element", { using: "css selector", value: selector });
    return new Element(this, value[ELEMENT]);
  }

  async findAll(selector) {
    // React may replace an element while WebKitWebDriver collects the matches ("stale element
    // reference"): ask again, as a user's second look would.
    for (let attempt = 0; ; attempt++) {
      try {
        const value = await this.cmd("POST", "/elements", { using: "css selector", value: selector });
        return value.map((v) => new Element(this, v[ELEMENT]));
      } catch (e) {
        if (attempt >= 10 || !String(e.message).includes("stale element")) throw e;
        await sleep(50);
      }
    }
  }

  /** Waits until `selector` matches (and `predicate(element)` holds, if given). */
  async waitFor(selector, { timeout = 15000, predicate } = {}) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      try {
        const el = await this.find(selector);
        if (!predicate || (await predicate(el))) return el;
        last = new WebDriverError(`${selector} is there but not as expected`);
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) throw new WebDriverError(`waiting for ${selector}: ${last?.message ?? last}`);
      await sleep(100);
    }
  }

  async waitGone(selector, timeout = 15000) {
    const deadline = Date.now() + timeout;
    const count = () => this.findAll(selector).then((l) => l.length, () => 1);
    while ((await count()) > 0) {
      if (Date.now() > deadline) throw new WebDriverError(`${selector} is still there after ${timeout} ms`);
      await sleep(100);
    }
  }

  execute(script, args = []) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  executeAsync(script, args = []) {
    return this.cmd("POST", "/execute/async", { script, args });
  }

  /** Presses keys on the focused element (W3C key actions), e.g. ["\uE009", "s"] for Ctrl+S. */
  async chord(modifier, key) {
    await this.cmd("POST", "/actions", {
      actions: [
        {
          type: "key",
          id: "keyboard",
          actions: [
            { type: "keyDown", value: modifier },
            { type: "keyDown", value: key },
            { type: "keyUp", value: key },
            { type: "keyUp", value: modifier },
          ],
        },
      ],
    });
    await this.cmd("DELETE", "/actions");
  }

  async screenshot() {
    return Buffer.from(await this.cmd("GET", "/screenshot"), "base64");
  }

  async quit() {
    try {
      await this.cmd("DELETE", "");
    } catch {
      // The app may already be gone.
    }
  }
}

export class Element {
  constructor(session, id) {
    this.session = session;
    this.id = id;
  }

  cmd(method, path, body) {
    return this.session.cmd(method, `/element/${this.id}${path}`, body);
  }

  click() {
    return this.cmd("POST", "/click", {});
  }

  clear() {
    return this.cmd("POST", "/clear", {});
  }

  type(text) {
    return this.cmd("POST", "/value", { text });
  }

  text() {
    return this.cmd("GET", "/text");
  }

  attribute(name) {
    return this.cmd("GET", `/attribute/${name}`);
  }

  property(name) {
    return this.cmd("GET", `/property/${name}`);
  }

  enabled() {
    return this.cmd("GET", "/enabled");
  }
}

export const Keys = { CONTROL: "\uE009", SHIFT: "\uE008", DELETE: "\uE017", ENTER: "\uE007", TAB: "\uE004" };

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function request(base, method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    // A command that hangs is a failure of the app, not a reason to hang the test run.
    signal: AbortSignal.timeout(30000),
  }).catch((e) => {
    throw new WebDriverError(`${method} ${path}: ${e.message}`);
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    const v = json.value ?? {};
    throw new WebDriverError(`${method} ${path}: ${v.error ?? response.status}: ${v.message ?? ""}`.trim());
  }
  return json.value;
}
