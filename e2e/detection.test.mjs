// Issue 5's zone editor, in real Chromium on a phone-sized screen against
// a real `porchlight demo`: the owner opens the front door's Detection
// page, draws a zone by tapping its corners over the camera's current
// picture, drags a corner, picks its labels, saves, reloads — the zone is
// still there, and the API returns it; then a mask; then a zone with too
// few corners (a corner drawn and deleted again) is refused with the
// hub's own message and nothing is saved. Screenshots:
// test-output/e2e/detection-*.png.
//
// The tests run in order and share the owner's browser session.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, phonePage, shot, startHub } from "./lib/harness.mjs";
import { signInOwner, watchErrors } from "./lib/household.mjs";

const CAM = "front-door";
const PAGE = `/cameras/${CAM}/detection`;
const API = `/api/v1/cameras/${CAM}/detection`;
// Test-sized settings (as lib/household.mjs uses); the neighborhood server
// is off so this hub takes no fixed port.
const ENV = {
  PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB: "64",
  PORCHLIGHT_ACCOUNTS_ARGON2_T: "1",
  PORCHLIGHT_RECORDER_SEGMENT_SECONDS: "10",
  PORCHLIGHT_RECORDER_FLUSH_INTERVAL_SECONDS: "1",
  PORCHLIGHT_RECORDER_MIN_FREE_MIB: "1",
  PORCHLIGHT_NEIGHBORHOOD_ENABLED: "false",
};

let hub, browser, page, errors;
before(async () => {
  hub = await startHub("demo", ENV, { args: ["--rtsp-listen", "127.0.0.1:0"] });
  hub.owner = { username: "demo-owner", password: "porchlight-demo" };
  browser = await launchBrowser();
  page = await phonePage(browser);
  page.setDefaultTimeout(15000);
  errors = watchErrors(page);
});
after(async () => {
  await browser?.close();
  hub?.stop();
});

/** The settings as the API gives them to the signed-in page. */
const apiSettings = () => page.evaluate(async (path) => {
  const r = await fetch(path, { credentials: "same-origin" });
  return { status: r.status, body: await r.json() };
}, API);

/** Opens the page and waits until the editor runs over a loaded still. */
async function openEditor() {
  await page.goto(hub.url + PAGE);
  await page.waitForSelector("#zone-svg");
  await page.waitForFunction(() => {
    const s = document.getElementById("zone-stage");
    return s.classList.contains("loaded") || s.classList.contains("no-picture");
  }, null, { timeout: 20000 });
}

/** Taps the picture at normalised (x, y). */
async function tapAt(x, y) {
  // The mouse clicks at page coordinates: bring the picture on screen first
  // (on a phone-sized page the zone list can push it out of view).
  await page.locator("#zone-svg").scrollIntoViewIfNeeded();
  const box = await page.locator("#zone-svg").boundingBox();
  await page.mouse.click(box.x + x * box.width, box.y + y * box.height);
}

/** Drags the corner at normalised `from` to `to`. */
async function drag(from, to) {
  await page.locator("#zone-svg").scrollIntoViewIfNeeded();
  const box = await page.locator("#zone-svg").boundingBox();
  const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(from));
  await page.mouse.down();
  for (let i = 1; i <= 5; i++) {
    await page.mouse.move(...at([from[0] + (to[0] - from[0]) * i / 5, from[1] + (to[1] - from[1]) * i / 5]));
  }
  await page.mouse.up();
}

async function save() {
  await page.click("#detection-save");
  await page.waitForFunction(() => {
    const t = document.getElementById("detection-status").textContent;
    return t.startsWith("Saved") || t.startsWith("Not saved");
  });
  return (await page.textContent("#detection-status")).trim();
}

const near = (a, b) => Math.abs(a - b) < 0.02;
function assertPolygon(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: ${JSON.stringify(actual)}`);
  actual.forEach((p, i) => assert.ok(near(p[0], expected[i][0]) && near(p[1], expected[i][1]),
    `${what} corner ${i}: ${JSON.stringify(p)}, expected about ${JSON.stringify(expected[i])}`));
}

let before0;
test("the owner opens the front door's detection page from the camera page", async () => {
  await signInOwner(page, hub);
  await page.goto(`${hub.url}/cameras/${CAM}`);
  await page.click("[data-testid=detection-link]");
  await page.waitForURL(`**${PAGE}`);
  await openEditor();
  const picture = await page.$eval("#zone-stage", (s) => s.classList.contains("loaded"));
  console.log(`# the current still ${picture ? "loaded" : "did not load (editor without a picture)"}`);
  assert.ok(picture, "the camera's current still is under the editor");
  // The demo's own zones are drawn: the clock mask and the porch zone.
  before0 = (await apiSettings()).body;
  const names = before0.motion.zones.map((z) => z.name);
  assert.deepEqual(names, ["clock", "porch"]);
  assert.equal(await page.locator("#zone-svg g.zone-shape").count(), 2);
  assert.equal(await page.locator("#zone-list .zone-item").count(), 2);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page fits a 390 px phone screen (it is ${width} px wide)`);
  await shot(page, "detection-page");
});

const ZONE = [[0.05, 0.35], [0.38, 0.35], [0.38, 0.85], [0.05, 0.85]];
const DRAGGED = [0.3, 0.95];

test("a zone drawn with taps, a corner dragged, labels picked, saved and still there after a reload", async () => {
  await page.click("#zone-add");
  const item = page.locator("#zone-list .zone-item").last();
  await item.locator(".zone-name-input").fill("walkway");
  for (const [x, y] of ZONE) await tapAt(x, y);
  assert.equal((await item.locator(".zone-points").textContent()).trim(), "4 corners");
  await drag(ZONE[2], DRAGGED);
  await item.locator("input[type=radio][value=some]").check();
  await item.locator("input.zone-label[value=vehicle]").uncheck();
  await item.locator("input.zone-label[value=animal]").uncheck();
  await item.locator("input.zone-label[value=parcel]").uncheck();
  await shot(page, "detection-zone-drawn");
  assert.match(await save(), /^Saved/);

  const expected = [ZONE[0], ZONE[1], DRAGGED, ZONE[3]];
  await openEditor();
  const names = await page.locator("#zone-list .zone-name-input").evaluateAll((xs) => xs.map((x) => x.value));
  assert.deepEqual(names, ["clock", "porch", "walkway"], "after a reload the zone is listed");
  assert.equal(await page.locator("#zone-svg g.zone-shape").count(), 3, "and drawn");
  const { status, body } = await apiSettings();
  assert.equal(status, 200);
  const z = body.motion.zones.find((x) => x.name === "walkway");
  assert.ok(z, `the API returns the zone: ${JSON.stringify(body.motion.zones)}`);
  assert.equal(z.kind, "include");
  assert.deepEqual(z.labels, ["person"]);
  assertPolygon(z.polygon, expected, "walkway");
  // The rest of the settings went through untouched.
  assert.equal(body.stream, before0.stream);
  assert.deepEqual(body.alert_labels, before0.alert_labels);
  assert.deepEqual(body.motion.zones.slice(0, 2), before0.motion.zones);
});

const MASK = [[0.6, 0.02], [0.98, 0.02], [0.98, 0.12]];

test("a mask too", async () => {
  await page.click("#mask-add");
  const item = page.locator("#zone-list .zone-item").last();
  await item.locator(".zone-name-input").fill("street lamp");
  for (const [x, y] of MASK) await tapAt(x, y);
  assert.equal(await item.locator(".zone-labels").count(), 0, "a mask has no labels to choose");
  assert.match(await save(), /^Saved/);
  await openEditor();
  assert.equal(await page.locator("#zone-svg g.zone-shape.mask").count(), 2, "the clock and the new mask");
  const { body } = await apiSettings();
  const m = body.motion.zones.find((x) => x.name === "street lamp");
  assert.ok(m, `the API returns the mask: ${JSON.stringify(body.motion.zones)}`);
  assert.equal(m.kind, "mask");
  assert.equal(m.labels, undefined);
  assertPolygon(m.polygon, MASK, "mask");
  await shot(page, "detection-mask");
});

test("a zone with too few corners is refused with the hub's message, and nothing is saved", async () => {
  const saved = (await apiSettings()).body;
  await page.click("#zone-add");
  const item = page.locator("#zone-list .zone-item").last();
  await item.locator(".zone-name-input").fill("sliver");
  await tapAt(0.5, 0.5);
  await tapAt(0.6, 0.5);
  await tapAt(0.6, 0.6);
  // The last corner is selected after a tap: delete it again.
  assert.equal(await page.isEnabled("#point-delete"), true);
  await page.click("#point-delete");
  assert.equal((await item.locator(".zone-points").textContent()).trim(), "2 corners");
  const said = await save();
  assert.match(said, /^Not saved: .*"sliver".*at least 3 points, it has 2/);
  assert.equal(await page.getAttribute("#detection-status", "role"), "alert");
  await shot(page, "detection-refused");
  assert.deepEqual((await apiSettings()).body, saved, "the refused settings were not stored");
  // The drawing is kept to be fixed; deleting the zone makes it savable.
  await item.locator(".zone-delete").click();
  assert.match(await save(), /^Saved/);
  await openEditor();
  assert.deepEqual((await apiSettings()).body, saved);
  assert.deepEqual(errors, [], "no script errors or CSP violations");
});
