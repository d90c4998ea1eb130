// Issue 5's "a subscribed browser gets a push", in real Chromium against a
// real `porchlight demo`.
//
// Headless Chromium has no push service (pushManager.subscribe fails), so
// this test stands in for one: a local HTTP server on 127.0.0.1, which the
// hub accepts only because it runs with `PORCHLIGHT_WEB_PUSH_ALLOW_LOOPBACK_HTTP`
// (`[web] push_allow_loopback_http`, off by default, loopback IP literals
// only). The chain:
//
// 1. the owner, signed in, registers through the hub's push API a
//    subscription whose endpoint is that server and whose keys are a P-256
//    pair and auth secret this test made (as a browser would);
// 2. a doorbell press is posted to the hub (`POST /api/v1/events`);
// 3. the push service receives the hub's POST: the VAPID token verifies
//    against the hub's public key and names this push service, and the
//    body decrypts (RFC 8291 aes128gcm: ECDH + HKDF + AES-128-GCM, with
//    node's crypto) to that event — title, link, no picture;
// 4. the decrypted payload is handed to the page's real service worker
//    (sw.js) through the DevTools protocol (`ServiceWorker.deliverPushMessage`),
//    as the browser's push service client would, and the worker shows a
//    notification with the event's title whose click target is the
//    event's page, which opens.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createECDH, randomBytes } from "node:crypto";
import { b64u, checkVapid, decrypt, pushService, showPush } from "./lib/push.mjs";
import { launchBrowser, phonePage, shot, startHub } from "./lib/harness.mjs";
import { signInOwner, watchErrors } from "./lib/household.mjs";

const CAM = "front-door";
const ENV = {
  PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB: "64",
  PORCHLIGHT_ACCOUNTS_ARGON2_T: "1",
  PORCHLIGHT_RECORDER_SEGMENT_SECONDS: "10",
  PORCHLIGHT_RECORDER_FLUSH_INTERVAL_SECONDS: "1",
  PORCHLIGHT_RECORDER_MIN_FREE_MIB: "1",
  PORCHLIGHT_NEIGHBORHOOD_ENABLED: "false",
  PORCHLIGHT_WEB_PUSH_ALLOW_LOOPBACK_HTTP: "true",
};

let hub, push, browser, context, page, errors;
before(async () => {
  push = await pushService();
  hub = await startHub("demo", ENV, { args: ["--rtsp-listen", "127.0.0.1:0"] });
  hub.owner = { username: "demo-owner", password: "porchlight-demo" };
  browser = await launchBrowser();
  page = await phonePage(browser);
  context = page.context();
  page.setDefaultTimeout(15000);
  errors = watchErrors(page);
});
after(async () => {
  await browser?.close();
  hub?.stop();
  push?.close();
});

/** A JSON API call from the signed-in page (cookie and CSRF header). */
const api = (method, path, body) => page.evaluate(async ([method, path, body]) => {
  const csrf = document.querySelector("input[name=csrf]").value;
  const r = await fetch(path, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}, [method, path, body]);

const ecdh = createECDH("prime256v1");
ecdh.generateKeys();
const auth = randomBytes(16);
let eventId, payloadText, payload;

test("the hub refuses a push endpoint off this machine, and accepts the local push service", async () => {
  await signInOwner(page, hub);
  await page.goto(`${hub.url}/settings/notifications`);
  const keys = { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) };
  for (const endpoint of ["http://192.0.2.7/push/x", "http://localhost:9/push/x"]) {
    const r = await api("POST", "/api/v1/push/subscriptions", { endpoint, keys });
    assert.equal(r.status, 400, `${endpoint}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error, /https:\/\/.*127\.0\.0\.1/);
  }
  const r = await api("POST", "/api/v1/push/subscriptions", { endpoint: `${push.origin}/push/owner-phone`, keys });
  assert.equal(r.status, 201, JSON.stringify(r.body));
});

test("a doorbell press on the demo reaches the push service, signed and encrypted to the browser's keys", async () => {
  const hubKey = (await api("GET", "/api/v1/push/key")).body.public_key;
  const t0 = Date.now();
  const r = await api("POST", "/api/v1/events", { camera: CAM, kind: "doorbell" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  eventId = r.body.id;
  const got = await push.waitFor((req) => {
    if (req.path !== "/push/owner-phone") return null;
    const text = decrypt(req.body, ecdh, auth);
    const p = JSON.parse(text);
    return p.event_id === eventId ? { req, text, p } : null;
  }, 20000);
  console.log(`# push for event ${eventId} reached the push service ${got.req.at - t0} ms after the trigger was posted (${push.received.length} push(es) received in all)`);
  assert.equal(got.req.method, "POST");
  assert.equal(got.req.headers["content-encoding"], "aes128gcm");
  assert.ok(Number(got.req.headers.ttl) > 0, "a TTL");
  checkVapid(got.req.headers.authorization, hubKey, push.origin);
  payloadText = got.text;
  payload = got.p;
  assert.deepEqual(Object.keys(payload).sort(), ["body", "event_id", "tag", "title", "url"], "nothing but the notification's text and link: no picture");
  assert.equal(payload.title, `Doorbell — ${CAM}`);
  assert.equal(payload.url, `/events/${eventId}`);
  assert.equal(payload.tag, `event-${eventId}`);
  assert.match(payload.body, /^doorbell at \d\d:\d\d:\d\d$/);
});

test("the page's service worker shows it as a notification that opens the event", async () => {
  await context.grantPermissions(["notifications"], { origin: hub.url });
  await page.goto(`${hub.url}/`);
  const shown = await showPush(context, page, hub.url, payloadText);
  assert.equal(shown.length, 1, `one notification: ${JSON.stringify(shown)}`);
  const [n] = shown;
  assert.equal(n.title, payload.title);
  assert.equal(n.body, payload.body);
  assert.equal(n.tag, `event-${eventId}`);
  assert.deepEqual(n.data, { url: `/events/${eventId}`, event_id: eventId });
  assert.equal(n.icon, `${hub.url}/static/icon-192.png`);
  // Its click target (sw.js opens data.url on the hub) is the event's page.
  const target = new URL(n.data.url, hub.url);
  assert.equal(target.origin, hub.url);
  const res = await page.goto(target.href);
  assert.equal(res.status(), 200);
  assert.match(await page.textContent("h1"), new RegExp(`Doorbell at ${CAM}`));
  await shot(page, "push-event-page");
  assert.deepEqual(errors, [], "no script errors or CSP violations");
});
