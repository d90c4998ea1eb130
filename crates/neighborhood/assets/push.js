// Porchlight neighborhood — "notifications on this device" on the My area
// page. Registers /sw.js, subscribes this browser with the neighborhood's
// own VAPID key (data-key on #push-device) and sends the subscription to
// POST /push/subscribe (a form post with the session's CSRF token, like
// every other form here); turning off sends POST /push/unsubscribe. Which
// posts are pushed is the categories form on the same page, which works
// without this script.
"use strict";
(function () {
  const box = document.getElementById("push-device");
  if (!box) return;
  const status = document.getElementById("push-status");
  const enable = document.getElementById("push-enable");
  const disable = document.getElementById("push-disable");
  const csrf = box.dataset.csrf;
  const key = box.dataset.key;
  // Hidden until this script runs: without it the buttons could do nothing.
  box.hidden = false;

  const say = (text, cls) => { status.textContent = text; status.className = cls || "muted"; };
  const show = (on) => { enable.hidden = on; disable.hidden = !on; };

  async function post(path, fields) {
    const body = new URLSearchParams({ csrf, ...fields });
    const res = await fetch(path, { method: "POST", credentials: "same-origin", body });
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      const m = text.match(/role="alert">([^<]*)</);
      throw Object.assign(new Error(m ? m[1] : `the server answered ${res.status}`), { status: res.status });
    }
  }

  function subscriptionFields(sub) {
    const j = sub.toJSON();
    return { endpoint: j.endpoint, p256dh: j.keys.p256dh, auth: j.keys.auth };
  }

  // base64url → bytes, for applicationServerKey.
  function bytes(b64) {
    const s = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say("This browser cannot receive notifications. On iPhone and iPad, add this site to the home screen first.", "error");
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
        // Tell the server again: it may have dropped this browser (an
        // expired subscription). If another account subscribed this
        // browser, the server keeps it theirs (409): offer the button,
        // which makes a new subscription for this account.
        try {
          await post("/push/subscribe", subscriptionFields(sub));
        } catch (err) {
          if (err.status !== 409) throw err;
          say("Notifications on this device are for another account that used it. Turn them on to get yours instead.");
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
      const reg = await registration();
      let sub = await reg.pushManager.getSubscription();
      if (sub) await sub.unsubscribe();
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) });
      await post("/push/subscribe", subscriptionFields(sub));
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
        await post("/push/unsubscribe", { endpoint: sub.endpoint }).catch(() => {});
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
})();
