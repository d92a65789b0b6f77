// Opens the packaged desktop app through tauri-driver and prints what its About box shows, as one
// JSON line: {"version":"…","revision":"…"}. Run by tests/package/run.sh, which starts Xvfb and
// tauri-driver and sets PACKAGE_APP (the app's binary) and PACKAGE_DRIVER (tauri-driver's URL).
import { Session } from "../e2e/webdriver.mjs";

const app = process.env.PACKAGE_APP;
const driver = process.env.PACKAGE_DRIVER;

const s = await Session.start(driver, { "tauri:options": { application: app } });
try {
  // The button reads "About · v<version>" once the app has answered app_info.
  const button = await s.waitFor("[data-testid='about']", {
    timeout: 30000,
    predicate: async (el) => /v\d/.test(await el.text()),
  });
  await button.click();
  const version = await (await s.waitFor("[data-testid='about-version']")).text();
  // The About box is a <dl>: Version, Revision, Database.
  const revision = await (await s.waitFor("dl.about dd:nth-of-type(2)")).text();
  console.log(JSON.stringify({ version, revision }));
} finally {
  await s.quit();
}
