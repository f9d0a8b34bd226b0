// gridvm portal: a small helper for the pages' scripts. No framework, no CDN.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  // Call the REST API with the session cookie; requests that change something carry the
  // CSRF token. Resolves to the parsed JSON (or text); rejects with the API's message.
  async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: {}, credentials: "same-origin" };
    if (init.method !== "GET") init.headers["X-CSRF-Token"] = csrf();
    if (options.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      init.body = options.body;
    }
    const response = await fetch("/api/v1" + path, init);
    const type = response.headers.get("content-type") || "";
    const payload = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const message = payload && payload.message ? payload.message : response.statusText;
      const hint = payload && payload.hint ? " (" + payload.hint + ")" : "";
      throw new Error(message + hint);
    }
    return payload;
  }

  // Show a message in the page's live region (screen readers announce it).
  function announce(text, isError) {
    let region = document.getElementById("live-status");
    if (!region) {
      region = document.createElement("p");
      region.id = "live-status";
      region.setAttribute("role", isError ? "alert" : "status");
      document.getElementById("main").prepend(region);
    }
    region.className = isError ? "error" : "notice";
    region.textContent = text;
  }

  // Run ``step`` (async; resolving to false stops it) every ``periodMs`` while the tab is
  // visible, never two at once: the live queue and console pages poll the API with it.
  function every(periodMs, step) {
    let timer = null;
    let running = false;
    let stopped = false;
    async function tick() {
      timer = null;
      if (running || stopped) return;
      running = true;
      try {
        if ((await step()) === false) stopped = true;
      } finally {
        running = false;
      }
      if (!stopped && !document.hidden && timer === null) timer = window.setTimeout(tick, periodMs);
    }
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        if (timer !== null) window.clearTimeout(timer);
        timer = null;
      } else if (timer === null && !running && !stopped) {
        tick();
      }
    });
    timer = window.setTimeout(tick, periodMs);
  }

  // A message for the page a script is about to reload (shown once, after the reload).
  function announceAfterReload(text) {
    window.sessionStorage.setItem("gridvm-notice", text);
  }
  document.addEventListener("DOMContentLoaded", () => {
    const pending = window.sessionStorage.getItem("gridvm-notice");
    if (pending) {
      window.sessionStorage.removeItem("gridvm-notice");
      announce(pending, false);
    }
  });

  // Forms marked data-confirm ask before they are sent (delete, terminate).
  document.addEventListener("submit", (event) => {
    const question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  window.gridvm = { api, csrf, announce, announceAfterReload, every };
})();
