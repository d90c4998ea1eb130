// A running hub with two recording cameras and an owner, for the browser
// tests of the web app, plus the sign-in steps they share.
//
// Two ways to get one; the tests do not care which:
//   "demo" — `porchlight demo`, which brings its own synthetic cameras
//            (`front-door`, `driveway`) and demo accounts (the default);
//   "sim"  — GStreamer camera simulator (../shared/tools/rtsp_cam.py), the
//            cameras and the owner added with the CLI, then `porchlight serve`.
//
// `testCamera` is a camera address that answers, for "test connection":
// the simulator, or the hub's own RTSP restream (which asks for a hub
// user's name and password).
// Switch with PORCHLIGHT_E2E_HUB=sim|demo, or change the default on the next line.
export const MODE = process.env.PORCHLIGHT_E2E_HUB || "demo";

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { binary, repo, startHub, totp, launchBrowser, phonePage } from "./harness.mjs";

export const CAMERAS = ["front-door", "driveway"];

/** Fast, test-sized settings: cheap password hashing, short segments, frequent flushes. */
export const ENV = {
  PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB: "64",
  PORCHLIGHT_ACCOUNTS_ARGON2_T: "1",
  PORCHLIGHT_RECORDER_SEGMENT_SECONDS: "10",
  PORCHLIGHT_RECORDER_FLUSH_INTERVAL_SECONDS: "1",
  PORCHLIGHT_RECORDER_MIN_FREE_MIB: "1",
};

/** A TCP port nothing listens on (right now). */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on("error", fail);
  });
}

export function simulator(port) {
  const script = process.env.PORCHLIGHT_SHARED
    ? join(process.env.PORCHLIGHT_SHARED, "tools", "rtsp_cam.py")
    : join(repo, "..", "shared", "tools", "rtsp_cam.py");
  if (!existsSync(script)) throw new Error(`no camera simulator at ${script}`);
  const proc = spawn("/usr/bin/python3", [script, String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`camera simulator did not start:\n${stderr}`)), 20000);
    proc.on("exit", (code) => fail(new Error(`camera simulator exited with ${code}:\n${stderr}`)));
    createInterface({ input: proc.stdout }).once("line", (line) => {
      clearTimeout(timer);
      if (line.includes("RTSP camera sim")) ok(proc);
      else fail(new Error(`camera simulator said ${line}`));
    });
  });
}

export function cli(dataDir, args, input = "") {
  return execFileSync(binary(), ["--data-dir", dataDir, ...args], {
    env: { ...process.env, ...ENV },
    input,
    encoding: "utf8",
  });
}

async function startSim() {
  const port = await freePort();
  const sim = await simulator(port);
  const dataDir = mkdtempSync(join(tmpdir(), "porchlight-e2e-"));
  const owner = { username: "alex", password: "a long household passphrase" };
  // The owner first: recordings are encrypted to the household's keys, so
  // the hub records from the first minute only if an owner exists.
  cli(dataDir, ["user", "add", owner.username, "--role", "owner", "--password-stdin"], `${owner.password}\n`);
  // The sub-streams (640×360) keep two cores free enough for Chromium.
  for (const name of CAMERAS) cli(dataDir, ["camera", "add", name, "--url", `rtsp://127.0.0.1:${port}/sub`]);
  const hub = await startHub("serve", ENV, { dataDir, args: ["--rtsp-listen", "127.0.0.1:0"] });
  return {
    ...hub,
    owner,
    testCamera: { url: `rtsp://127.0.0.1:${port}/sub` },
    stop: () => { hub.stop(); sim.kill("SIGTERM"); },
  };
}

async function startDemo() {
  const hub = await startHub("demo", ENV, { args: ["--rtsp-listen", "127.0.0.1:0"] });
  const owner = { username: "demo-owner", password: "porchlight-demo" };
  if (!hub.rtsp) throw new Error("the demo did not say where its RTSP restream is");
  if (!hub.rtspToken) throw new Error("the demo did not print its RTSP token");
  // The restream takes a per-device RTSP token, never the account password.
  const testCamera = { url: `${hub.rtsp}/${CAMERAS[0]}`, username: owner.username, password: hub.rtspToken };
  return { ...hub, owner, testCamera };
}

/** Starts the hub; resolves with {url, rtsp, owner, testCamera, dataDir, stop}. */
export async function startHousehold() {
  return MODE === "demo" ? startDemo() : startSim();
}

/** The usual fixture: a household hub, Chromium, and a phone-sized page
 *  whose script and console errors are collected. Resolves with
 *  {hub, browser, page, errors}; `closeFixture` undoes it. */
export async function openFixture() {
  const hub = await startHousehold();
  const browser = await launchBrowser();
  const page = await phonePage(browser);
  return { hub, browser, page, errors: watchErrors(page) };
}

export async function closeFixture({ hub, browser } = {}) {
  await browser?.close();
  hub?.stop();
}

/** Signs the owner in on `page`, setting up two-factor sign-in (required
 *  of owners) on the way. Returns the TOTP secret. */
export async function signInOwner(page, hub) {
  await page.goto(`${hub.url}/signin`);
  await page.fill("input[name=username]", hub.owner.username);
  await page.fill("input[name=password]", hub.owner.password);
  await page.click("button[type=submit]");
  if (!page.url().endsWith("/account/two-factor")) throw new Error(`expected two-factor set-up, got ${page.url()}`);
  const secret = (await page.textContent("[data-testid=totp-secret]")).trim();
  await page.fill("input[name=code]", totp(secret));
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-testid=recovery-codes]");
  await page.click("text=Done");
  return secret;
}

/** Signs in an account without two-factor sign-in (a member). */
export async function signIn(page, hub, username, password) {
  await page.goto(`${hub.url}/signin`);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
}

/** Collects script errors and CSP violations of `page` (a failed load —
 *  an expected 403 — is not one). */
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  return errors;
}

/** The demo neighborhood's accounts (crates/neighborhood/src/demo.rs). */
export const NEIGHBORS = {
  resident: { username: "maria", password: "demo-resident-password", displayName: "Maria" },
  agency: { username: "firedept", password: "demo-agency-password", displayName: "Station 8", agencyName: "Seattle Fire Department" },
  moderator: { username: "mod", password: "demo-moderator-password", displayName: "Sam (moderator)" },
};

/** `porchlight demo` with its neighborhood server on a free port
 *  (`PORCHLIGHT_NEIGHBORHOOD_LISTEN`), waited for until it answers (it is
 *  seeded before it listens). Resolves with the household's fields plus
 *  `neighborhood` (its base URL). */
export async function startNeighborhoodDemo() {
  const port = await freePort();
  const neighborhood = `http://127.0.0.1:${port}`;
  const hub = await startHub("demo", { ...ENV, PORCHLIGHT_NEIGHBORHOOD_LISTEN: `127.0.0.1:${port}` },
    { args: ["--rtsp-listen", "127.0.0.1:0"] });
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const r = await fetch(`${neighborhood}/signin`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      hub.stop();
      throw new Error(`the demo's neighborhood server did not answer at ${neighborhood} in 30 s:\n${hub.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { ...hub, neighborhood };
}
