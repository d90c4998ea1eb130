// A stand-in push service and what a browser does with a push (RFC 8291
// decryption, the VAPID check), shared by the browser tests that need a
// push to arrive: headless Chromium has no push service of its own.
import assert from "node:assert/strict";
import http from "node:http";
import { createDecipheriv, createPublicKey, hkdfSync, verify } from "node:crypto";

export const b64u = (buf) => Buffer.from(buf).toString("base64url");

/** A push service: records every POST, answers 201 like real ones. */
export function pushService() {
  const received = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
      res.writeHead(201, { Location: "/message/1" });
      res.end();
      waiters.splice(0).forEach((w) => w());
    });
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => {
    const origin = `http://127.0.0.1:${server.address().port}`;
    ok({
      origin,
      received,
      close: () => server.close(),
      /** Resolves with the first request `match` accepts (checking new ones as they come). */
      async waitFor(match, ms) {
        const deadline = Date.now() + ms;
        for (let seen = 0; ;) {
          for (; seen < received.length; seen++) {
            const hit = match(received[seen]);
            if (hit) return hit;
          }
          const left = deadline - Date.now();
          if (left <= 0) throw new Error(`no matching push in ${ms} ms; ${received.length} received`);
          await new Promise((r) => { waiters.push(r); setTimeout(r, Math.min(left, 500)); });
        }
      },
    });
  }));
}

/** RFC 8291 aes128gcm, as a browser decrypts a push: the plaintext. */
export function decrypt(body, ecdh, auth) {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20];
  const asPublic = body.subarray(21, 21 + idlen);
  const ct = body.subarray(21 + idlen);
  assert.equal(idlen, 65, "keyid is the hub's ephemeral P-256 public key");
  assert.ok(ct.length <= rs, "one record");
  const uaPublic = ecdh.getPublicKey();
  const shared = ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync("sha256", shared, auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const d = createDecipheriv("aes-128-gcm", cek, nonce);
  d.setAuthTag(ct.subarray(ct.length - 16));
  const plain = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
  let end = plain.length - 1;
  while (end >= 0 && plain[end] === 0) end--;
  assert.equal(plain[end], 2, "the last record's padding delimiter");
  return plain.subarray(0, end).toString("utf8");
}

/** Checks the `Authorization: vapid t=…, k=…` header; returns its claims. */
export function checkVapid(header, hubKey, audience) {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header || "");
  assert.ok(m, `a VAPID authorization header: ${header}`);
  const [, jwt, k] = m;
  assert.equal(k, hubKey, "k is the hub's public key");
  const [h, p, s] = jwt.split(".");
  assert.deepEqual(JSON.parse(Buffer.from(h, "base64url")), { typ: "JWT", alg: "ES256" });
  const raw = Buffer.from(k, "base64url");
  const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64u(raw.subarray(1, 33)), y: b64u(raw.subarray(33, 65)) }, format: "jwk" });
  const ok = verify("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
  assert.ok(ok, "the VAPID token's ES256 signature verifies with the hub's key");
  const claims = JSON.parse(Buffer.from(p, "base64url"));
  assert.equal(claims.aud, audience, "the token is for this push service");
  assert.ok(claims.exp * 1000 > Date.now(), "not expired");
  return claims;
}

/** Hands `data` (a decrypted push payload) to the page's service worker
 *  through the DevTools protocol, as a browser's push client would, and
 *  resolves with the notifications the worker then shows. `origin` is the
 *  page's. Headless Chromium has once dropped such a delivery (a
 *  clean-clone CI run), so the same push is delivered again every 5 s
 *  until it shows, for up to 30 s (a bound, not a timing check); the
 *  notification's tag is the event's, so a second delivery replaces the
 *  first rather than adding one. */
export async function showPush(context, page, origin, data) {
  const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  assert.equal(scope, `${origin}/`);
  const cdp = await context.newCDPSession(page);
  const registration = new Promise((ok) => cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
    const r = registrations.find((x) => x.scopeURL === scope && !x.isDeleted);
    if (r) ok(r.registrationId);
  }));
  await cdp.send("ServiceWorker.enable");
  const registrationId = await registration;
  let shown = [];
  for (let i = 0; i < 150 && shown.length === 0; i++) {
    if (i % 25 === 0) await cdp.send("ServiceWorker.deliverPushMessage", { origin, registrationId, data });
    shown = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data, icon: n.icon }));
    });
    if (shown.length === 0) await page.waitForTimeout(200);
  }
  return shown;
}
