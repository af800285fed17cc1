// Who is at the console (GET /api/session): the demo gets a banner and keeps the person picker
// ("chat as anyone"); a signed-in person's picker is replaced by their name and a sign-out button.
// Self-contained beside app.js: it only drives the #person select through its change event.
"use strict";

(function () {
  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function demoBanner() {
    const banner = element("div", "session-demo",
      "Demo: no sign-in, anyone can chat and act as anyone. `mfgos serve` signs people in.");
    banner.setAttribute("role", "note");
    document.body.prepend(banner);
  }

  function signedIn(person) {
    const select = document.getElementById("person");
    if (select) {
      if (select.value !== person.id) {
        localStorage.setItem("mfgos.person", person.id);
        // app.js fills the options from /api/plant; make sure ours is there before choosing it.
        if (![...select.options].some((o) => o.value === person.id)) select.append(new Option(person.name, person.id));
        select.value = person.id;
        select.dispatchEvent(new Event("change"));
      }
      select.hidden = true;
      select.disabled = true;
      const head = select.closest(".panel-head");
      const title = head && head.querySelector("h2");
      if (title) title.textContent = "Chat";
    }
    const bar = element("div", "session-user");
    bar.append(element("span", "", `Signed in as ${person.name} (${person.id})`));
    const out = element("button", "session-signout", "Sign out");
    out.type = "button";
    out.addEventListener("click", async () => {
      await fetch("/auth/logout", {method: "POST"}).catch(() => {});
      localStorage.removeItem("mfgos.person");
      window.location.assign("/");
    });
    bar.append(out);
    const topbar = document.querySelector(".topbar");
    (topbar || document.body).append(bar);
  }

  async function check(first) {
    let response;
    try {
      response = await fetch("/api/session", {cache: "no-store"});
    } catch (_) {
      return;  // offline: app.js shows it
    }
    if (response.status === 401) {
      window.location.assign("/");  // the session ended: back to the sign-in page
      return;
    }
    if (!response.ok || !first) return;
    const session = await response.json();
    if (session.demo) demoBanner();
    else if (session.person) signedIn(session.person);
  }

  check(true);
  setInterval(() => check(false), 60000);
})();
