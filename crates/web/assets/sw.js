// Service worker: caches the app shell (styles, scripts, icons, the
// offline page) so the installed app opens instantly and says so when the
// hub is out of reach. Pages, API answers and video are never cached: they
// are private to the signed-in household.
//
// It also shows Web Push notifications. A push carries only
// { title, body, url, event_id, tag } — never pictures: it passes through
// the browser vendor's push service. A click opens `url` on the hub (only
// same-origin paths), reusing an open Porchlight window when there is one.
"use strict";
const SHELL = "porchlight-shell-v3";
const ASSETS = [
  "/static/app.css", "/static/app.js", "/static/live.js", "/static/timeline.js", "/static/settings.js", "/static/js/push.js",
  "/static/icon.svg", "/static/icon-192.png", "/static/icon-512.png", "/static/icon-maskable-512.png",
  "/static/offline.html", "/manifest.webmanifest",
];
self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(ASSETS)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k)))).then(() => self.clients.claim()));
});
self.addEventListener("fetch", (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== location.origin) return;
  if (ASSETS.includes(url.pathname)) {
    // The shell: from the cache, refreshed in the background.
    e.respondWith(caches.open(SHELL).then(async (c) => {
      const hit = await c.match(req);
      const fresh = fetch(req).then((r) => { if (r.ok) c.put(req, r.clone()); return r; });
      if (hit) { e.waitUntil(fresh.catch(() => {})); return hit; }
      return fresh;
    }));
  } else if (req.mode === "navigate") {
    // Pages always come from the hub; only when it cannot be reached does
    // the cached offline page answer.
    e.respondWith(fetch(req).catch(() => caches.match("/static/offline.html")));
  }
});
self.addEventListener("push", (e) => {
  let p = {};
  try { p = e.data ? e.data.json() : {}; } catch (_) { p = {}; }
  const url = typeof p.url === "string" && p.url.startsWith("/") && !p.url.startsWith("//") ? p.url : "/";
  e.waitUntil(self.registration.showNotification(p.title || "Porchlight", {
    body: p.body || "",
    tag: p.tag || undefined,
    renotify: !!p.tag,
    icon: "/static/icon-192.png",
    badge: "/static/icon-192.png",
    data: { url, event_id: p.event_id ?? null },
  }));
});
self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  const target = new URL((e.notification.data && e.notification.data.url) || "/", self.location.origin);
  if (target.origin !== self.location.origin) return;
  e.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const w of wins) {
      if (new URL(w.url).origin === self.location.origin && "focus" in w) {
        await w.focus();
        if ("navigate" in w) await w.navigate(target.href).catch(() => {});
        return;
      }
    }
    await self.clients.openWindow(target.href);
  })());
});
