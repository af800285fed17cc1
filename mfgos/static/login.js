// The sign-in page: ask for a link in the person's chat. No inline script (CSP script-src 'self').
"use strict";

(function () {
  const form = document.getElementById("login");
  const status = document.getElementById("login-status");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const personId = document.getElementById("person-id").value.trim();
    if (!personId) return;
    const button = form.querySelector("button");
    button.disabled = true;
    status.className = "status";
    status.textContent = "Sending…";
    try {
      const response = await fetch("/auth/login", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({person_id: personId}),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
      status.textContent = "We sent a link to your chat. Open it on this device to sign in; " +
        "it works once, for 10 minutes. (Nothing arrives if the id is not registered.)";
    } catch (error) {
      status.className = "status error";
      status.textContent = `Could not ask for a link: ${error.message || error}`;
    } finally {
      button.disabled = false;
    }
  });

  // Single sign-on is offered when the server has it set up.
  fetch("/auth/options").then((r) => (r.ok ? r.json() : {})).then((options) => {
    if (options.oidc) document.getElementById("login-sso").hidden = false;
  }).catch(() => {});
})();
