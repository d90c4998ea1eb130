// The detection page's zone editor (pages/detection.rs): zones and masks
// drawn as SVG polygons over a current still of the camera. Add a zone or
// a mask, tap the picture to place corners, drag a corner to move it,
// double-tap it (or "Delete point") to remove it; name each zone, choose
// its kind and the labels that alert in it. Corners are kept normalised
// (0..1 of the picture's width and height), as the API expects.
//
// Saving sends the whole settings document (the form's fields plus the
// zones) with PUT /api/v1/cameras/{name}/detection and the session's CSRF
// token; the hub validates it and, when it refuses, its message is shown
// and the drawing stays as it is. No framework, no third-party requests.
"use strict";
(function () {
  const form = document.getElementById("detection-form");
  const editor = document.getElementById("zone-editor");
  if (!form || !editor) return;
  const camera = form.dataset.camera;
  const csrf = form.dataset.csrf;
  const stage = document.getElementById("zone-stage");
  const still = document.getElementById("zone-still");
  const hint = document.getElementById("zone-hint");
  const list = document.getElementById("zone-list");
  const addZone = document.getElementById("zone-add");
  const addMask = document.getElementById("mask-add");
  const delPoint = document.getElementById("point-delete");
  const done = document.getElementById("zone-done");
  const status = document.getElementById("detection-status");
  const textBox = document.getElementById("zones-text");
  const LABELS = [["person", "People"], ["vehicle", "Vehicles"], ["animal", "Animals"], ["parcel", "Parcels"]];
  const NS = "http://www.w3.org/2000/svg";

  let doc;
  try { doc = JSON.parse(form.dataset.doc || "{}"); } catch (_) { doc = {}; }
  doc.motion = doc.motion || {};
  // The zones textarea holds what the server rendered (after a refused
  // no-script post: what was submitted); start from it when it parses.
  let zones = Array.isArray(doc.motion.zones) ? doc.motion.zones : [];
  try {
    const t = JSON.parse(form.elements.zones.value || "[]");
    if (Array.isArray(t)) zones = t;
  } catch (_) { /* keep the stored zones */ }
  zones = zones.map((z) => ({
    name: String(z.name || ""),
    kind: z.kind === "mask" ? "mask" : "include",
    polygon: Array.isArray(z.polygon) ? z.polygon.map((p) => [Number(p[0]), Number(p[1])]) : [],
    labels: Array.isArray(z.labels) ? z.labels.slice() : null,
  }));
  let active = zones.length ? 0 : -1; // the zone being edited
  let selected = -1; // its selected corner
  let W = 1000, H = 562.5; // the SVG's user space: the picture's aspect

  editor.hidden = false;
  if (textBox) textBox.hidden = true; // the editor replaces the text form

  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("id", "zone-svg");
  svg.setAttribute("data-testid", "zone-svg");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Zones and masks over the camera's picture");
  stage.appendChild(svg);

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  function say(text, cls) {
    status.textContent = text;
    status.className = "test-result " + (cls || "");
    status.setAttribute("role", cls === "error" ? "alert" : "status");
  }

  function setHint() {
    if (active < 0) {
      hint.textContent = zones.length ? "Tap a zone (or its Edit button below) to edit it, or add one." : "No zones: motion anywhere in the picture counts. Add a zone or a mask to draw one.";
    } else {
      const z = zones[active];
      const n = z.polygon.length;
      hint.textContent = `Editing ${z.kind === "mask" ? "mask" : "zone"} “${z.name}”: ${n} corner${n === 1 ? "" : "s"}. ` +
        (n < 3 ? "Tap the picture to add corners (at least 3)." : "Tap to add a corner, drag one to move it, double-tap it to delete it.");
    }
  }

  const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;

  /** A pointer event's position, normalised to the picture. */
  function norm(ev) {
    const r = svg.getBoundingClientRect();
    return [round((ev.clientX - r.left) / r.width), round((ev.clientY - r.top) / r.height)];
  }

  function draw() {
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.replaceChildren();
    const r = svg.getBoundingClientRect();
    const px = r.width > 0 ? W / r.width : 1; // user units per CSS pixel
    const bg = el("rect", { x: 0, y: 0, width: W, height: H, class: "zone-bg" }, svg);
    bg.addEventListener("click", (ev) => {
      if (active < 0) { say("Add a zone or a mask first, then tap the picture to place its corners."); return; }
      zones[active].polygon.push(norm(ev));
      selected = zones[active].polygon.length - 1;
      changed();
    });
    zones.forEach((z, i) => {
      if (i === active) return; // drawn last, on top
      drawZone(z, i, px);
    });
    if (active >= 0) drawZone(zones[active], active, px);
    // While a zone is edited, taps on other zones add corners to it.
    svg.classList.toggle("editing", active >= 0);
    delPoint.disabled = !(active >= 0 && selected >= 0);
    done.hidden = active < 0;
    setHint();
  }

  function drawZone(z, i, px) {
    const g = el("g", { class: `zone-shape ${z.kind === "mask" ? "mask" : "zone"}${i === active ? " active" : ""}`, "data-zone": i }, svg);
    const pts = z.polygon.map(([x, y]) => `${x * W},${y * H}`).join(" ");
    const shape = el(z.polygon.length >= 3 ? "polygon" : "polyline", { points: pts }, g);
    shape.addEventListener("click", (ev) => {
      if (i === active) {
        // A tap inside the zone being edited adds a corner there too.
        zones[active].polygon.push(norm(ev));
        selected = zones[active].polygon.length - 1;
        changed();
        return;
      }
      active = i; selected = -1; draw(); renderList();
    });
    if (z.polygon.length) {
      const cx = z.polygon.reduce((a, p) => a + p[0], 0) / z.polygon.length;
      const cy = z.polygon.reduce((a, p) => a + p[1], 0) / z.polygon.length;
      const t = el("text", { x: cx * W, y: cy * H, "font-size": 14 * px, class: "zone-name" }, g);
      t.textContent = z.name;
    }
    if (i !== active) return;
    z.polygon.forEach(([x, y], k) => {
      el("circle", { cx: x * W, cy: y * H, r: 7 * px, class: `handle${k === selected ? " selected" : ""}` }, g);
      // A bigger, invisible target for fingers.
      const hit = el("circle", { cx: x * W, cy: y * H, r: 18 * px, class: "hit", "data-point": k }, g);
      hit.addEventListener("pointerdown", (ev) => startDrag(ev, k));
      hit.addEventListener("click", (ev) => ev.stopPropagation());
      hit.addEventListener("dblclick", (ev) => { ev.stopPropagation(); selected = k; deletePoint(); });
    });
  }

  function startDrag(ev, k) {
    ev.preventDefault();
    ev.stopPropagation();
    selected = k;
    const target = ev.currentTarget;
    target.setPointerCapture(ev.pointerId);
    const poly = zones[active].polygon;
    const move = (e) => { poly[k] = norm(e); redrawSoon(); };
    const up = () => {
      target.removeEventListener("pointermove", move);
      target.removeEventListener("pointerup", up);
      target.removeEventListener("pointercancel", up);
      changed();
    };
    target.addEventListener("pointermove", move);
    target.addEventListener("pointerup", up);
    target.addEventListener("pointercancel", up);
    delPoint.disabled = false;
  }

  // Redraws while dragging move only the shapes (the drawn handle keeps its
  // pointer capture until the drag ends).
  let pending = false;
  function redrawSoon() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const g = svg.querySelector(`g[data-zone="${active}"]`);
      if (!g) return;
      const z = zones[active];
      const shape = g.querySelector("polygon, polyline");
      shape.setAttribute("points", z.polygon.map(([x, y]) => `${x * W},${y * H}`).join(" "));
      g.querySelectorAll("circle").forEach((c, idx) => {
        const k = Math.floor(idx / 2);
        c.setAttribute("cx", z.polygon[k][0] * W);
        c.setAttribute("cy", z.polygon[k][1] * H);
      });
    });
  }

  function deletePoint() {
    if (active < 0 || selected < 0) return;
    zones[active].polygon.splice(selected, 1);
    selected = -1;
    changed();
  }

  function changed() {
    draw();
    const n = list.querySelector(`[data-zone-index="${active}"] .zone-points`);
    if (n) n.textContent = pointsText(zones[active]);
  }

  const pointsText = (z) => `${z.polygon.length} corner${z.polygon.length === 1 ? "" : "s"}`;

  function uniqueName(base) {
    for (let i = 1; ; i++) {
      const name = `${base} ${i}`;
      if (!zones.some((z) => z.name === name)) return name;
    }
  }

  function add(kind) {
    zones.push({ name: uniqueName(kind === "mask" ? "mask" : "zone"), kind, polygon: [], labels: null });
    active = zones.length - 1;
    selected = -1;
    draw();
    renderList();
    say("");
  }

  let ids = 0;
  /** The list of zones: one card each, rebuilt when zones come or go. */
  function renderList() {
    list.replaceChildren();
    zones.forEach((z, i) => {
      const box = document.createElement("fieldset");
      box.className = "zone-item" + (i === active ? " active" : "");
      box.dataset.zoneIndex = i;
      const legend = document.createElement("legend");
      legend.textContent = z.kind === "mask" ? "Mask" : "Zone";
      box.appendChild(legend);

      const top = document.createElement("p");
      top.className = "zone-row";
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "secondary zone-edit";
      edit.textContent = i === active ? "Editing" : "Edit on the picture";
      edit.disabled = i === active;
      edit.addEventListener("click", () => { active = i; selected = -1; draw(); renderList(); });
      const pts = document.createElement("span");
      pts.className = "muted zone-points";
      pts.textContent = pointsText(z);
      top.append(edit, " ", pts);
      box.appendChild(top);

      const nameId = `zone-name-${++ids}`;
      const nameLabel = document.createElement("label");
      nameLabel.htmlFor = nameId;
      nameLabel.textContent = "Name";
      const name = document.createElement("input");
      name.id = nameId;
      name.className = "zone-name-input";
      name.maxLength = 64;
      name.value = z.name;
      name.addEventListener("input", () => { z.name = name.value; draw(); });
      nameLabel.appendChild(name);
      box.appendChild(nameLabel);

      const kindLabel = document.createElement("label");
      kindLabel.textContent = "Kind";
      const kind = document.createElement("select");
      kind.className = "zone-kind";
      for (const [v, t] of [["include", "Zone: motion here counts"], ["mask", "Mask: ignore this part"]]) {
        const o = document.createElement("option");
        o.value = v; o.textContent = t; o.selected = z.kind === v;
        kind.appendChild(o);
      }
      kind.addEventListener("change", () => {
        z.kind = kind.value;
        if (z.kind === "mask") z.labels = null; // masks have no labels
        draw(); renderList();
      });
      kindLabel.appendChild(kind);
      box.appendChild(kindLabel);

      if (z.kind !== "mask") {
        const fs = document.createElement("fieldset");
        fs.className = "zone-labels";
        const lg = document.createElement("legend");
        lg.textContent = "Alerts in this zone";
        fs.appendChild(lg);
        const group = `zone-labels-${++ids}`;
        const radio = (value, text, checked) => {
          const l = document.createElement("label");
          l.className = "check";
          const r = document.createElement("input");
          r.type = "radio"; r.name = group; r.value = value; r.checked = checked;
          r.addEventListener("change", () => {
            z.labels = value === "all" ? null : (z.labels || LABELS.map(([k]) => k));
            renderList();
          });
          l.append(r, " " + text);
          return l;
        };
        fs.append(radio("all", "Every label the camera alerts for", z.labels === null),
          radio("some", "Only:", z.labels !== null));
        if (z.labels !== null) {
          for (const [k, t] of LABELS) {
            const l = document.createElement("label");
            l.className = "check";
            const c = document.createElement("input");
            c.type = "checkbox"; c.value = k; c.className = "zone-label";
            c.checked = z.labels.includes(k) || (k === "parcel" && z.labels.includes("package"));
            c.addEventListener("change", () => {
              const set = new Set(z.labels.map((x) => (x === "package" ? "parcel" : x)));
              if (c.checked) set.add(k); else set.delete(k);
              z.labels = LABELS.map(([x]) => x).filter((x) => set.has(x));
            });
            l.append(c, " " + t);
            fs.appendChild(l);
          }
        }
        box.appendChild(fs);
      }

      const del = document.createElement("button");
      del.type = "button";
      del.className = "danger zone-delete";
      del.textContent = z.kind === "mask" ? "Delete this mask" : "Delete this zone";
      del.addEventListener("click", () => {
        zones.splice(i, 1);
        if (active === i) active = -1; else if (active > i) active -= 1;
        selected = -1;
        draw(); renderList();
      });
      box.appendChild(del);
      list.appendChild(box);
    });
  }

  /** The whole document: the stored one, with the form's fields and the
   *  drawn zones over it (fields the page does not show are kept). */
  function documentFromForm() {
    const f = form.elements;
    const num = (name) => (f[name].value.trim() === "" ? NaN : Number(f[name].value));
    const d = JSON.parse(JSON.stringify(doc));
    d.enabled = f.enabled.checked;
    d.objects = f.objects.checked;
    d.parcels = f.parcels.checked;
    d.stream = f.stream.value;
    d.fps = num("fps");
    d.threshold = num("threshold");
    d.parcel_threshold = num("parcel_threshold");
    d.preroll_s = num("preroll_s");
    d.postroll_s = num("postroll_s");
    d.alert_labels = Array.from(form.querySelectorAll("input[name=alert_label]:checked"), (c) => c.value);
    d.motion = Object.assign({}, d.motion, {
      sensitivity: num("sensitivity"),
      min_area: num("min_area_pct") / 100,
      zones: zones.map((z) => {
        const out = { name: z.name.trim(), kind: z.kind, polygon: z.polygon.map((p) => [p[0], p[1]]) };
        if (z.kind !== "mask" && z.labels !== null) out.labels = z.labels.slice();
        return out;
      }),
    });
    for (const [k, v] of Object.entries({ fps: d.fps, threshold: d.threshold, parcel_threshold: d.parcel_threshold,
      preroll_s: d.preroll_s, postroll_s: d.postroll_s, sensitivity: d.motion.sensitivity, min_area: d.motion.min_area })) {
      if (!Number.isFinite(v)) throw new Error(`${k.replace(/_/g, " ")} is not a number`);
    }
    return d;
  }

  const save = document.getElementById("detection-save");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    save.disabled = true;
    say("Saving…");
    try {
      const body = documentFromForm();
      const res = await fetch(`/api/v1/cameras/${encodeURIComponent(camera)}/detection`, {
        method: "PUT",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      const json = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(json.error || `HTTP ${res.status}`);
      doc = json;
      form.elements.zones.value = JSON.stringify(json.motion.zones, null, 2);
      say("Saved. The hub uses the new settings within a few seconds.", "ok");
    } catch (err) {
      say(`Not saved: ${err.message}`, "error");
    } finally {
      save.disabled = false;
    }
  });

  addZone.addEventListener("click", () => add("include"));
  addMask.addEventListener("click", () => add("mask"));
  delPoint.addEventListener("click", deletePoint);
  done.addEventListener("click", () => { active = -1; selected = -1; draw(); renderList(); });
  document.addEventListener("keydown", (ev) => {
    if ((ev.key === "Delete" || ev.key === "Backspace") && selected >= 0 && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      ev.preventDefault();
      deletePoint();
    }
  });

  function sized() {
    if (still.naturalWidth > 0) {
      W = 1000;
      H = Math.round(1000 * still.naturalHeight / still.naturalWidth * 100) / 100;
      stage.classList.add("loaded");
      if (hint.textContent.startsWith("Loading")) setHint();
    }
    draw();
  }
  still.addEventListener("load", sized);
  still.addEventListener("error", () => {
    stage.classList.add("no-picture");
    stage.dataset.message = "No current picture (the camera is offline, paused, or not live here). Zones can still be drawn.";
    draw();
  });
  window.addEventListener("resize", () => draw());
  if (still.complete && still.naturalWidth > 0) sized(); else draw();
  renderList();
  setHint();
})();
