// Porchlight's small script: progressive enhancement only; every page
// works without it.
"use strict";
document.documentElement.classList.add("js");

// The installed app's shell (styles, scripts, icons) comes from the
// service worker's cache; pages and video never do.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  });
}

// Times are rendered in UTC on the hub; show them in the reader's own time.
const Porchlight = (window.Porchlight = window.Porchlight || {});
Porchlight.localTimes = function (root) {
  const two = (n) => String(n).padStart(2, "0");
  for (const el of (root || document).querySelectorAll("time[datetime][data-format]")) {
    const d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) continue;
    const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
    const f = el.dataset.format;
    if (f === "time") el.textContent = hm;
    else if (f === "seconds") el.textContent = `${hm}:${two(d.getSeconds())}`;
    else {
      const date = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
      el.textContent = f === "full" ? `${date} ${hm}:${two(d.getSeconds())}` : `${date} ${hm}`;
    }
    el.title = d.toString();
  }
};
document.addEventListener("DOMContentLoaded", () => Porchlight.localTimes());

// Camera tiles' still pictures: the hub waits for the camera's next key
// frame; if none came in time, ask again (a camera reconnecting).
for (const v of document.querySelectorAll("video.still")) {
  let tries = 0;
  v.addEventListener("error", () => {
    if (++tries <= 3) setTimeout(() => v.load(), 1500 * tries);
  });
}
