// Issue 6's per-mode camera form in real Chromium against `porchlight
// demo`: an owner ticks and unticks what a camera does in each alarm mode;
// while those ticks are unsaved the alarm changes state (armed from
// another tab) and the page's periodic refresh redraws the status without
// losing them; saved, reloaded, they are still there, and the API reports
// them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { shot } from "./lib/harness.mjs";
import { openFixture, closeFixture, signInOwner, CAMERAS } from "./lib/household.mjs";

const [CAM] = CAMERAS;

let hub, browser, page, errors;
before(async () => ({ hub, browser, page, errors } = await openFixture()));
after(() => closeFixture({ hub, browser }));

const box = (mode, flag) => `[data-testid="camera-modes-${CAM}"] input[name="${mode}.${flag}"]`;

/** The checkboxes of CAM's form as {mode: {flag: bool}}. */
async function ticks(p) {
  return p.$$eval(`[data-testid="camera-modes-${CAM}"] input[type=checkbox]`, (inputs) => {
    const out = {};
    for (const i of inputs) {
      const [mode, flag] = i.name.split(".");
      (out[mode] ||= {})[flag] = i.checked;
    }
    return out;
  });
}

test("per-mode camera options survive the page's refresh, save, reload and show in the API", async () => {
  await signInOwner(page, hub);
  await page.goto(`${hub.url}/alarm`);
  await page.waitForSelector(`[data-testid="camera-modes-${CAM}"]`);
  assert.equal(await page.getAttribute("#alarm", "data-state"), "disarmed");
  const before = await ticks(page);
  for (const m of ["disarmed", "home", "away"]) {
    for (const f of ["record", "detect", "notify"]) {
      assert.equal(typeof before[m]?.[f], "boolean", `${m}.${f} is in the form: ${JSON.stringify(before)}`);
    }
  }

  // Flip three boxes in different modes (ticks and unticks, whatever they were).
  const flips = [["home", "record"], ["away", "notify"], ["disarmed", "detect"]];
  const want = structuredClone(before);
  for (const [m, f] of flips) {
    await page.click(box(m, f));
    want[m][f] = !before[m][f];
  }
  assert.deepEqual(await ticks(page), want, "the clicks took");

  // A mark that a page load would wipe.
  await page.evaluate(() => { window.__sameDocument = true; });
  // Another tab arms the alarm: the state changes under the unsaved form.
  const other = await page.context().newPage();
  await other.goto(`${hub.url}/alarm`);
  await other.click("form[action='/alarm/arm'] button:has-text('Arm away')");
  await other.waitForSelector("#alarm[data-state=arming], #alarm[data-state=armed_away]");
  await other.close();
  // Headless Chromium does not give the first tab the foreground back on
  // its own, and a background tab's timers and animation frames (the
  // page's 3 s refresh, Playwright's selector polling) may be throttled
  // or stopped: bring it back as a user's closing a tab would.
  await page.bringToFront();

  // alarm.js polls every 3 s; the status box is redrawn to the new state…
  await page.waitForSelector("#alarm[data-state=arming], #alarm[data-state=armed_away]", { timeout: 15000 });
  const state = await page.textContent("#alarm-state");
  assert.match(state, /arming|armed away/, `the status shows the new state: ${state}`);
  assert.ok(Number(await page.evaluate(() => document.body.dataset.alarmRedraws)) >= 1, "redrawn in place");
  // …with no page load (a reload would have dropped the ticks)…
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");
  // …and the form being edited left as it was.
  assert.deepEqual(await ticks(page), want, "the unsaved ticks survived the refresh");
  assert.ok(Number(await page.evaluate(() => document.body.dataset.alarmKept)) >= 1, "the edited part was kept");
  await shot(page, "alarm-modes-unsaved-after-refresh");

  // Save, then a fresh load shows what was saved.
  await Promise.all([
    page.waitForURL(/\/alarm\?msg=/),
    page.click(`form[action="/alarm/cameras/${CAM}/modes"] button[type=submit]`),
  ]);
  assert.match(await page.textContent("p.notice"), new RegExp(`Saved what ${CAM} does in each mode`));
  await page.goto(`${hub.url}/alarm`);
  assert.deepEqual(await ticks(page), want, "saved and shown after a reload");
  await shot(page, "alarm-modes-saved");

  // The API reports the same.
  const r = await page.request.get(`${hub.url}/api/v1/cameras/${CAM}/modes`);
  assert.equal(r.status(), 200);
  const api = await r.json();
  for (const m of Object.keys(want)) {
    for (const f of Object.keys(want[m])) {
      assert.equal(api.modes[m][f], want[m][f], `API ${m}.${f}: ${JSON.stringify(api.modes)}`);
    }
  }

  // After saving, the refresh keeps the form up to date again: untick
  // nothing, disarm from another tab, and the (clean) form is redrawn.
  const redraws = Number(await page.evaluate(() => document.body.dataset.alarmRedraws || 0));
  const other2 = await page.context().newPage();
  await other2.goto(`${hub.url}/alarm`);
  await other2.click("form[action='/alarm/disarm'] button");
  await other2.close();
  await page.bringToFront();
  await page.waitForSelector("#alarm[data-state=disarmed]", { timeout: 15000 });
  assert.ok(Number(await page.evaluate(() => document.body.dataset.alarmRedraws)) > redraws);
  assert.equal(await page.evaluate(() => document.body.dataset.alarmKept), "0", "nothing was being edited");
  assert.match(await page.textContent(`[data-testid="camera-modes-${CAM}"] tr[data-mode=disarmed] td`), /\(now\)/,
    "the clean form was redrawn with the current mode");
  assert.deepEqual(errors, [], `no script errors or CSP violations: ${errors.join("\n")}`);
});
