// Porchlight neighborhood — area picker. Loaded only on /area.
//
// Never sends a precise location: the position from navigator.geolocation
// is rounded to ONE decimal degree (about 11 km) before the only request,
// GET /area/candidates, which returns the resolution-8 hexagons around
// that rounded point with their centres. The nearest hexagon to the
// precise position is chosen here, in the browser, and the page then
// opens /area?cell=<hexagon>, where the user confirms with "Save".
"use strict";

(function () {
  const button = document.getElementById("use-location");
  const status = document.getElementById("locate-status");
  if (!button || !status || !("geolocation" in navigator)) return;
  button.hidden = false;

  const say = (text) => { status.textContent = text; };

  // Great-circle distance in km (haversine).
  function km(lat1, lng1, lat2, lng2) {
    const r = Math.PI / 180;
    const dlat = (lat2 - lat1) * r, dlng = (lng2 - lng1) * r;
    const a = Math.sin(dlat / 2) ** 2 + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(dlng / 2) ** 2;
    return 12742 * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  button.addEventListener("click", () => {
    say("Asking your browser for your location…");
    navigator.geolocation.getCurrentPosition(async (pos) => {
      const lat = pos.coords.latitude, lng = pos.coords.longitude;
      const rlat = Math.round(lat * 10) / 10, rlng = Math.round(lng * 10) / 10;
      say("Finding your hexagon (only a rounded point is sent)…");
      try {
        const res = await fetch(`/area/candidates?lat=${rlat.toFixed(1)}&lng=${rlng.toFixed(1)}`,
          { credentials: "same-origin", headers: { "Accept": "application/json" } });
        if (!res.ok) throw new Error(`the server answered ${res.status}`);
        const data = await res.json();
        let best = null, bestKm = Infinity;
        for (const [cell, clat, clng] of data.cells) {
          const d = km(lat, lng, clat, clng);
          if (d < bestKm) { best = cell; bestKm = d; }
        }
        if (!best) throw new Error("no hexagon found near you");
        window.location.href = "/area?cell=" + encodeURIComponent(best);
      } catch (e) {
        say("Could not find your hexagon: " + e.message + ". Click a hexagon or enter a rough point instead.");
      }
    }, (err) => {
      say("Your browser did not share a location (" + err.message + "). Click a hexagon or enter a rough point instead.");
    }, { enableHighAccuracy: false, maximumAge: 600000, timeout: 20000 });
  });
})();
