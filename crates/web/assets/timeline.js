// The timeline on a camera's page: tap or drag on the bar to play the
// recording from that moment; zoom (hour/day) and move earlier/later
// without reloading the page (the live view keeps playing); the playhead
// follows the video; "Download this clip" saves what is playing.
//
// The bar is rendered by the hub (SVG, works without this script: each
// recorded stretch is a link to its MP4). Geometry comes from data-
// attributes in milliseconds since the epoch.
"use strict";
(function () {
  const player = document.querySelector("video[data-playback]");
  const box = document.getElementById("playback");
  const status = document.querySelector("[data-playback-status]");
  const dl = document.querySelector("a[data-download]");
  const form = document.querySelector("form[data-download-form]");
  let tl = document.getElementById("timeline");
  if (!tl || !player) return;
  const camera = tl.dataset.camera;
  const CLIP_MS = 10 * 60 * 1000; // one playback request covers up to 10 minutes
  let clip = null; // what the player holds: {from, to, start, end, url}
  let cursor = null; // the moment chosen with keys or a drag
  let loading = 0;
  let dragging = false;

  const two = (n) => String(n).padStart(2, "0");
  const iso = (ms) => new Date(ms).toISOString();
  const clock = (ms) => { const d = new Date(ms); return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`; };
  const day = (ms) => { const d = new Date(ms); return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`; };
  const say = (t) => { if (status) status.textContent = t; };
  const geometry = () => ({ from: +tl.dataset.from, to: +tl.dataset.to });
  const spans = () => [...tl.querySelectorAll("rect.tl-span")].map((r) => ({ s: +r.dataset.start, e: +r.dataset.end }));
  const track = () => tl.querySelector(".tl-track");

  function timeAt(clientX) {
    const r = track().getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    const g = geometry();
    return Math.round(g.from + f * (g.to - g.from));
  }

  function place(el, ms) {
    const g = geometry();
    const p = ((ms - g.from) / (g.to - g.from)) * 100;
    if (ms == null || p < 0 || p > 100) { el.hidden = true; return; }
    el.hidden = false;
    el.style.left = `${p}%`;
  }

  function showCursor(ms) {
    cursor = ms;
    const t = track();
    place(t.querySelector(".tl-cursor"), ms);
    const tip = t.querySelector(".tl-tip");
    place(tip, ms);
    tip.textContent = clock(ms);
    t.setAttribute("aria-valuenow", String(ms));
    t.setAttribute("aria-valuetext", `${day(ms)} ${clock(ms)}`);
  }

  function hideCursor() {
    const t = track();
    t.querySelector(".tl-cursor").hidden = true;
    t.querySelector(".tl-tip").hidden = true;
  }

  // A moment inside a recorded stretch: the one chosen, or the start of the
  // next stretch, or the last minute of the last one.
  function target(t) {
    const list = spans();
    let sp = list.find((s) => t >= s.s && t < s.e);
    if (!sp) { sp = list.find((s) => s.s > t); if (sp) t = sp.s; }
    if (!sp && list.length) { sp = list[list.length - 1]; t = Math.max(sp.s, sp.e - 60000); }
    return sp ? { t, span: sp } : null;
  }

  async function playAt(wanted) {
    const tg = target(wanted);
    if (!tg) { box.hidden = false; say("Nothing is recorded here."); return; }
    const t = tg.t;
    if (clip && t >= clip.start && t < clip.end - 500) {
      player.currentTime = (t - clip.start) / 1000;
      player.play().catch(() => {});
      return;
    }
    let from = t;
    let to = Math.min(tg.span.e, t + CLIP_MS);
    if (to - from < 5000) from = Math.max(tg.span.s, to - 60000);
    from = Math.floor(from / 1000) * 1000;
    to = Math.ceil(to / 1000) * 1000;
    const url = `/api/v1/cameras/${encodeURIComponent(camera)}/view.mp4?from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(to))}`;
    const mine = ++loading;
    box.hidden = false;
    say(`Loading ${clock(t)}…`);
    let res;
    try {
      // One byte first: the answer says where the video really starts (on
      // the key frame before the moment) and whether it can be played.
      res = await fetch(url, { headers: { Range: "bytes=0-0" }, credentials: "same-origin" });
    } catch (e) {
      say("The hub did not answer; check the connection and try again.");
      return;
    }
    if (mine !== loading) return;
    if (!res.ok) {
      let m = `This recording cannot be played (HTTP ${res.status}).`;
      try { m = (await res.json()).error || m; } catch (e) { /* not JSON */ }
      say(m);
      return;
    }
    if (res.body && res.body.cancel) res.body.cancel().catch(() => {});
    const start = Date.parse(res.headers.get("x-porchlight-start")) || from;
    const end = Date.parse(res.headers.get("x-porchlight-end")) || to;
    clip = { from, to, start, end, url };
    dl.href = `${url}&download=1`;
    if (form) fillForm(start, end);
    player.src = url;
    player.addEventListener("loadedmetadata", () => {
      player.currentTime = Math.max(0, (t - start) / 1000);
      player.play().catch(() => {});
    }, { once: true });
    say(`Recording from ${clock(t)}`);
    if (box.scrollIntoView && box.getBoundingClientRect().bottom > window.innerHeight) {
      box.scrollIntoView({ block: "end", behavior: "smooth" });
    }
  }

  player.addEventListener("timeupdate", () => {
    if (!clip) return;
    const now = clip.start + player.currentTime * 1000;
    place(track().querySelector(".tl-playhead"), now);
    if (!dragging) say(`Recording · ${day(now)} ${clock(now)}`);
  });
  // Keep going into the rest of the recorded stretch.
  player.addEventListener("ended", () => {
    if (!clip) return;
    const sp = spans().find((s) => clip.end >= s.s && clip.end < s.e - 1000);
    if (sp) playAt(clip.end);
  });
  player.addEventListener("error", () => {
    if (clip) say("This browser could not play the recording; download it instead.");
  });

  function fillForm(start, end) {
    const d = new Date(start);
    form.elements.from.value = `${day(start)}T${clock(start)}`;
    form.elements.minutes.value = String(Math.max(1, Math.ceil((end - start) / 60000)));
    form.elements.tz.value = String(-d.getTimezoneOffset());
  }

  if (form) {
    // The form was filled in UTC; show and send local time instead.
    const v = form.elements.from.value;
    const utc = Date.parse(`${v}Z`);
    if (!isNaN(utc)) form.elements.from.value = `${day(utc)}T${clock(utc)}`;
    form.elements.tz.value = String(-new Date().getTimezoneOffset());
    const label = form.querySelector("[data-tz-label]");
    if (label) label.textContent = "(your time)";
    form.addEventListener("submit", () => {
      const local = new Date(form.elements.from.value);
      if (!isNaN(local)) form.elements.tz.value = String(-local.getTimezoneOffset());
    });
  }

  function bind() {
    const t = track();
    t.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      dragging = true;
      t.setPointerCapture(e.pointerId);
      showCursor(timeAt(e.clientX));
      e.preventDefault();
    });
    t.addEventListener("pointermove", (e) => {
      if (dragging || e.pointerType === "mouse") showCursor(timeAt(e.clientX));
    });
    t.addEventListener("pointerup", (e) => {
      if (!dragging) return;
      dragging = false;
      const at = timeAt(e.clientX);
      hideCursor();
      playAt(at);
    });
    t.addEventListener("pointercancel", () => { dragging = false; hideCursor(); });
    t.addEventListener("pointerleave", () => { if (!dragging) hideCursor(); });
    // The script plays in place: the links are for pages without it.
    t.addEventListener("click", (e) => e.preventDefault());
    t.addEventListener("keydown", (e) => {
      const g = geometry();
      const step = (g.to - g.from) / (e.shiftKey ? 24 : 120);
      const cur = cursor ?? (clip ? clip.start + player.currentTime * 1000 : g.to - step);
      let next = null;
      if (e.key === "ArrowLeft") next = cur - step;
      else if (e.key === "ArrowRight") next = cur + step;
      else if (e.key === "Home") next = g.from;
      else if (e.key === "End") next = g.to;
      else if (e.key === "Enter" || e.key === " ") { e.preventDefault(); hideCursor(); playAt(cur); return; }
      else return;
      e.preventDefault();
      showCursor(Math.min(g.to, Math.max(g.from, next)));
    });
    if (clip) place(t.querySelector(".tl-playhead"), clip.start + player.currentTime * 1000);
  }

  // Zoom and earlier/later: swap the timeline in place.
  async function load(query, push) {
    let res;
    try {
      res = await fetch(`/cameras/${encodeURIComponent(camera)}/timeline${query}`, { credentials: "same-origin" });
    } catch (e) { return; }
    if (!res.ok) return;
    const html = await res.text();
    const tmp = document.createElement("div");
    tmp.innerHTML = html;
    const fresh = tmp.querySelector("#timeline");
    if (!fresh || dragging) return;
    const hadFocus = tl.contains(document.activeElement) && document.activeElement.classList.contains("tl-track");
    tl.replaceWith(fresh);
    tl = fresh;
    if (window.Porchlight && Porchlight.localTimes) Porchlight.localTimes(tl);
    bind();
    if (hadFocus) track().focus();
    if (push) history.replaceState(null, "", `/cameras/${encodeURIComponent(camera)}${query}`);
  }

  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a[data-tl-nav]");
    if (!a || !tl.contains(a)) return;
    e.preventDefault();
    load(new URL(a.href).search, true);
  });

  // While the bar shows the present, let it grow.
  setInterval(() => {
    if (tl.dataset.live === "true" && !dragging && document.visibilityState === "visible") load(location.search, false);
  }, 30000);

  bind();
})();
