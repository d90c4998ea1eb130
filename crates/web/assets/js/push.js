// Notifications on the settings page: subscribe this browser to Web Push
// (the hub's VAPID key from GET /api/v1/push/key, then
// pushManager.subscribe and POST /api/v1/push/subscriptions), unsubscribe
// it, and send a test. The rules form works without this script.
// State-changing calls carry the session's CSRF token from the page.
"use strict";
(function () {
  const box = document.getElementById("push-device");
  if (!box) return;
  const status = document.getElementById("push-status");
  const enable = document.getElementById("push-enable");
  const disable = document.getElementById("push-disable");
  const test = document.getElementById("push-test");
  const csrf = box.dataset.csrf;
  // Hidden until this script runs: without it the buttons could do nothing.
  box.hidden = false;

  function say(text, cls) {
    status.textContent = text;
    status.className = "test-result " + (cls || "");
  }

  function show(subscribed) {
    enable.hidden = subscribed;
    disable.hidden = !subscribed;
    test.hidden = !subscribed;
  }

  async function api(method, path, body) {
    const res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(json.error || `HTTP ${res.status}`), { status: res.status });
    return json;
  }

  // base64url → bytes, for applicationServerKey.
  function bytes(b64) {
    const s = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say("This browser cannot receive notifications. On iPhone and iPad, add Porchlight to the home screen first.", "error");
    enable.disabled = true;
    return;
  }

  async function registration() {
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    return navigator.serviceWorker.ready;
  }

  (async () => {
    try {
      const reg = await registration();
      const sub = await reg.pushManager.getSubscription();
      if (sub) {
        // Tell the hub again: it may have forgotten this browser (a failed
        // delivery, a new hub key). If another account subscribed this
        // browser, the hub keeps it theirs (409): offer "Enable", which
        // makes a new subscription for this account.
        try {
          await api("POST", "/api/v1/push/subscriptions", sub.toJSON());
        } catch (err) {
          if (err.status !== 409) throw err;
          say("Notifications on this device are for another account that used it. Enable them to get yours instead.");
          show(false);
          return;
        }
        say("Notifications are on for this device.", "ok");
      } else {
        say(Notification.permission === "denied"
          ? "Notifications are blocked for this site in the browser's settings."
          : "Notifications are off for this device.");
      }
      show(!!sub);
    } catch (err) {
      say(`Could not check notifications: ${err.message}`, "error");
    }
  })();

  enable.addEventListener("click", async () => {
    enable.disabled = true;
    try {
      if ((await Notification.requestPermission()) !== "granted") {
        say("Notifications were not allowed. You can allow them in the browser's site settings.", "error");
        return;
      }
      const { public_key } = await api("GET", "/api/v1/push/key");
      const reg = await registration();
      let sub = await reg.pushManager.getSubscription();
      if (sub) await sub.unsubscribe();
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(public_key) });
      await api("POST", "/api/v1/push/subscriptions", sub.toJSON());
      say("Notifications are on for this device.", "ok");
      show(true);
    } catch (err) {
      say(`Could not turn notifications on: ${err.message}`, "error");
    } finally {
      enable.disabled = false;
    }
  });

  disable.addEventListener("click", async () => {
    disable.disabled = true;
    try {
      const reg = await registration();
      const sub = await reg.pushManager.getSubscription();
      if (sub) {
        await api("DELETE", "/api/v1/push/subscriptions", { endpoint: sub.endpoint }).catch(() => {});
        await sub.unsubscribe();
      }
      say("Notifications are off for this device.");
      show(false);
    } catch (err) {
      say(`Could not turn notifications off: ${err.message}`, "error");
    } finally {
      disable.disabled = false;
    }
  });

  test.addEventListener("click", async () => {
    test.disabled = true;
    try {
      const r = await api("POST", "/api/v1/push/test");
      if (r.sent === 0) say("None of your devices is subscribed.", "error");
      else say(`Sent to ${r.sent} device(s); ${r.delivered} accepted by the push service.`, r.delivered ? "ok" : "error");
    } catch (err) {
      say(`Could not send a test: ${err.message}`, "error");
    } finally {
      test.disabled = false;
    }
  });
})();
