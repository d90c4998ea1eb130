// The alarm page (/alarm): counts the exit/entry delay down every second
// and refreshes the status from GET /api/v1/alarm every few seconds, so a
// state change (armed, pending, triggered, broker away) shows without a
// reload. The page works without this script.
(function () {
  "use strict";
  var box = document.getElementById("alarm");
  if (!box) return;
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
  var first = document.querySelector("#alarm-countdown .count");
  if (first && first.dataset.ms) {
    deadline = Date.now() + Number(first.dataset.ms);
  }
  setInterval(tick, 1000);
  function refresh() {
    fetch("/api/v1/alarm", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) {
        if (!v) return;
        if (v.state !== box.dataset.state) {
          // A different state changes buttons and warnings: redraw.
          window.location.reload();
          return;
        }
        if (v.exit_delay_left_ms !== null) setCountdown(v.exit_delay_left_ms, true);
        else if (v.entry_delay_left_ms !== null) setCountdown(v.entry_delay_left_ms, false);
        else setCountdown(null);
        var away = document.querySelector("[data-testid=broker-away]");
        if (v.mqtt.enabled && (v.mqtt.connected === !!away)) window.location.reload();
      })
      .catch(function () {});
  }
  setInterval(refresh, 3000);
})();
