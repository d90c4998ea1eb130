// Settings: "Test connection" asks the hub in place (POST
// /api/v1/cameras/test) instead of posting the whole form, so what was
// typed — the password too — stays in the form. Without this script the
// same button posts the form and the page shows the answer.
"use strict";
(function () {
  for (const button of document.querySelectorAll("button[data-test-button]")) {
    const form = button.form;
    const out = form.dataset.output ? document.getElementById(form.dataset.output) : form.querySelector("[data-test-output]");
    if (!form || !out) continue;
    button.addEventListener("click", async (e) => {
      e.preventDefault();
      const f = form.elements;
      const body = {};
      if (form.dataset.cameraTest) body.camera = form.dataset.cameraTest;
      for (const k of ["url", "username", "password"]) if (f[k] && f[k].value.trim()) body[k] = f[k].value.trim();
      out.replaceChildren(line("Testing…", "test-result", "status"));
      // An earlier complaint about the form no longer applies.
      for (const old of document.querySelectorAll("[data-testid=form-error]")) old.remove();
      button.disabled = true;
      try {
        const res = await fetch("/api/v1/cameras/test", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": f.csrf.value },
          body: JSON.stringify(body),
        });
        const r = await res.json().catch(() => ({}));
        if (!res.ok) out.replaceChildren(line(`Connection failed: ${r.error || `HTTP ${res.status}`}`, "test-result error", "alert"));
        else if (r.ok) out.replaceChildren(line(describe(r.camera), "test-result ok", "status"));
        else out.replaceChildren(line(`Connection failed: ${r.error}`, "test-result error", "alert"));
      } catch (err) {
        out.replaceChildren(line("The hub did not answer; check your connection.", "test-result error", "alert"));
      } finally {
        button.disabled = false;
      }
    });
  }

  function describe(c) {
    const size = c.width && c.height ? `, ${c.width}×${c.height}` : "";
    return `The camera answered: ${(c.streams || []).join(", ")}${size}.`;
  }

  function line(text, cls, role) {
    const p = document.createElement("p");
    p.className = cls;
    p.setAttribute("role", role);
    p.dataset.testid = "test-result";
    p.textContent = text;
    return p;
  }
})();
