// The alarm page (/alarm): counts the exit/entry delay down every second
// and refreshes the status from GET /api/v1/alarm every few seconds, so a
// state change (armed, pending, triggered, broker away) shows without a
// reload. The page works without this script.
//
// A change is shown by fetching /alarm again and swapping in the parts of
// the page marked `data-part`, never by reloading the whole page: a part
// holding a form the user has started to change (a ticked box not yet
// saved) or is typing in is left as it is, so an edit in progress is never
// lost. It is brought up to date on the first refresh after it is saved.
(function () {
  "use strict";
  if (!document.getElementById("alarm")) return;
  var deadline = null;
  function setCountdown(ms, leave) {
    var p = document.getElementById("alarm-countdown");
    if (!p) return;
    if (ms === null || ms === undefined) {
      deadline = null;
      p.hidden = true;
      return;
    }
    deadline = Date.now() + ms;
    p.textContent = "";
    p.append(leave ? "Leave now: armed in " : "Disarm now: the alarm sounds in ");
    var c = document.createElement("span");
    c.className = "count";
    p.append(c, " s");
    p.hidden = false;
    tick();
  }
  function tick() {
    var c = document.querySelector("#alarm-countdown .count");
    if (!c || deadline === null) return;
    c.textContent = String(Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
  }
  function startCountdown() {
    var first = document.querySelector("#alarm-countdown .count");
    deadline = first && first.dataset.ms ? Date.now() + Number(first.dataset.ms) : null;
    tick();
  }
  startCountdown();
  setInterval(tick, 1000);

  // Whether `part` holds an edit in progress: a control whose value differs
  // from the one the page was drawn with, or the focused control.
  function editing(part) {
    var controls = part.querySelectorAll("input, select, textarea");
    for (var i = 0; i < controls.length; i++) {
      var e = controls[i];
      if (e === document.activeElement && e.type !== "submit" && e.type !== "hidden") return true;
      if (e.type === "checkbox" || e.type === "radio") {
        if (e.checked !== e.defaultChecked) return true;
      } else if (e.tagName === "SELECT") {
        for (var j = 0; j < e.options.length; j++) {
          if (e.options[j].selected !== e.options[j].defaultSelected) return true;
        }
      } else if (e.type !== "hidden" && e.value !== e.defaultValue) {
        return true;
      }
    }
    return false;
  }

  var redrawing = false;
  // Fetches the page again and swaps in every part not being edited.
  function redraw() {
    if (redrawing) return;
    redrawing = true;
    fetch("/alarm", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var kept = 0;
        fresh.querySelectorAll("[data-part]").forEach(function (n) {
          var old = document.querySelector('[data-part="' + CSS.escape(n.dataset.part) + '"]');
          if (!old) return;
          if (editing(old)) { kept++; return; }
          old.replaceWith(document.importNode(n, true));
        });
        document.body.dataset.alarmRedraws = String(Number(document.body.dataset.alarmRedraws || 0) + 1);
        document.body.dataset.alarmKept = String(kept);
        startCountdown();
      })
      .catch(function () {})
      .then(function () { redrawing = false; });
  }

  // Only what the last redraw drew: the status box's state and whether
  // the broker-away warning is up.
  function refresh() {
    fetch("/api/v1/alarm", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) {
        if (!v) return;
        var box = document.getElementById("alarm");
        var away = document.querySelector("[data-testid=broker-away]");
        if (!box || v.state !== box.dataset.state || (v.mqtt.enabled && v.mqtt.connected === !!away)) {
          // A different state changes buttons, warnings and the "(now)"
          // mode of every camera: redraw what is not being edited.
          redraw();
          return;
        }
        if (v.exit_delay_left_ms !== null) setCountdown(v.exit_delay_left_ms, true);
        else if (v.entry_delay_left_ms !== null) setCountdown(v.entry_delay_left_ms, false);
        else setCountdown(null);
      })
      .catch(function () {});
  }
  setInterval(refresh, 3000);
})();
