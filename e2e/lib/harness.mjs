// Shared pieces of the browser tests: start a real `porchlight` process on
// a fresh data folder, launch Debian's Chromium through playwright-core,
// compute TOTP codes, save screenshots.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "..", "..");
export const outDir = process.env.PORCHLIGHT_E2E_OUT || join(repo, "test-output", "e2e");
mkdirSync(outDir, { recursive: true });

export function binary() {
  const bin = process.env.PORCHLIGHT_BIN || join(repo, "target", "debug", "porchlight");
  if (!existsSync(bin)) throw new Error(`no porchlight binary at ${bin}: run cargo build first`);
  return bin;
}

/** Starts `porchlight <cmd> --listen 127.0.0.1:0` and resolves with {url, proc, dataDir}.
 *  `opts.dataDir` reuses a prepared data folder. */
export async function startHub(cmd = "serve", extraEnv = {}, opts = {}) {
  const dataDir = opts.dataDir || mkdtempSync(join(tmpdir(), "porchlight-e2e-"));
  const proc = spawn(binary(), [cmd, "--data-dir", dataDir, "--listen", "127.0.0.1:0", ...(opts.args || [])], {
    env: { ...process.env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  // The first line names the web address, the second the RTSP restream.
  const lines = createInterface({ input: proc.stdout });
  let rtsp = null;
  // The demo prints an RTSP token made for the run (RTSP never takes an
  // account password): `live at rtsp://demo-owner:TOKEN@…`.
  let rtspToken = null;
  let https = null;
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`hub did not start in 30 s:\n${stderr}`)), 30000);
    proc.on("exit", (code) => fail(new Error(`hub exited with ${code}:\n${stderr}`)));
    lines.on("line", (line) => {
      const m = line.match(/running at (http:\/\/\S+?)\/?$/);
      if (m) { clearTimeout(timer); ok(m[1]); }
      const r = line.match(/RTSP restream at (rtsp:\/\/\S+?)\/?$/);
      if (r) rtsp = r[1];
      const t = line.match(/live at rtsp:\/\/[^:\s]+:([^@\s]+)@/);
      if (t) rtspToken = t[1];
      // With remote access on, a third line names the hub's HTTPS address.
      const h = line.match(/^HTTPS at (https:\/\/\S+?)\/? \(listening/);
      if (h) https = h[1];
    });
  });
  for (let i = 0; i < 20 && !rtsp; i++) await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 40 && cmd === "demo" && !rtspToken; i++) await new Promise((r) => setTimeout(r, 50));
  return { url, rtsp, rtspToken, get https() { return https; }, proc, dataDir, stop: () => proc.kill("SIGTERM"), stderr: () => stderr };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
}

/** A phone-sized page. */
export async function phonePage(browser) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  return ctx.newPage();
}

export async function shot(page, name) {
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
}

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0; const out = [];
  for (const c of s.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error(`bad base32 ${c}`);
    value = (value << 5) | i; bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

/** RFC 6238 code for `secretB32` at `unixSeconds` (an authenticator app). */
export function totp(secretB32, unixSeconds = Date.now() / 1000) {
  const step = BigInt(Math.floor(unixSeconds / 30));
  const msg = Buffer.alloc(8); msg.writeBigUInt64BE(step);
  const h = createHmac("sha1", base32Decode(secretB32)).update(msg).digest();
  const off = h[19] & 0xf;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 1000000).padStart(6, "0");
}

/** Waits until the next 30 s step starts, so a just-used code is not replayed. */
export async function nextStep() {
  const ms = 30000 - (Date.now() % 30000) + 200;
  await new Promise((r) => setTimeout(r, ms));
}

/** Waits until `selector`'s <video> plays: time advances and, for live
 *  video, it stays under a second behind what it has received. */
export async function assertPlays(p, selector, { live }) {
  await p.waitForFunction(
    (sel) => { const v = document.querySelector(sel); return v && v.currentTime > 0.3 && v.buffered.length > 0; },
    selector, { timeout: 25000 });
  const t0 = await p.$eval(selector, (v) => v.currentTime);
  let worstLag = 0;
  for (let i = 0; i < 5; i++) {
    await p.waitForTimeout(400);
    const lag = await p.$eval(selector, (v) => v.buffered.end(v.buffered.length - 1) - v.currentTime);
    worstLag = Math.max(worstLag, lag);
  }
  const t1 = await p.$eval(selector, (v) => v.currentTime);
  assert.ok(t1 - t0 > 1, `${selector} plays: currentTime went from ${t0} to ${t1}`);
  if (live) assert.ok(worstLag < 1, `${selector} is live: buffered end − currentTime was up to ${worstLag.toFixed(2)} s`);
  return `${selector}: played ${(t1 - t0).toFixed(1)} s in 2 s` + (live ? `, buffered lag at most ${worstLag.toFixed(2)} s` : "");
}
