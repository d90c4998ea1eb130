// Porchlight neighborhood — service worker. It only shows Web Push
// notifications of new posts; it caches nothing (every page is private to
// the signed-in neighbour and comes from the server).
//
// A push carries { title, body, category, post_id, url, tag } — never a
// place: it passes through the browser vendor's push service. A click opens
// `url` on this neighborhood (same-origin paths only), reusing an open
// window when there is one.
"use strict";
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("push", (e) => {
  let p = {};
  try { p = e.data ? e.data.json() : {}; } catch (_) { p = {}; }
  const url = typeof p.url === "string" && p.url.startsWith("/") && !p.url.startsWith("//") ? p.url : "/feed";
  e.waitUntil(self.registration.showNotification(p.title || "Neighborhood", {
    body: p.body || "",
    tag: p.tag || undefined,
    renotify: !!p.tag,
    data: { url },
  }));
});
self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  const target = new URL((e.notification.data && e.notification.data.url) || "/feed", self.location.origin);
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
