// gridvm portal, a VM's page: follows the VM without a reload. Every 2 s (while the tab is
// visible) it asks the REST API for the VM (GET /api/v1/vms/ID) and updates its state, what
// it waits for, its exit, guest readiness, progress, host, times, published data, results and
// buttons in place (the buttons for the new state, as the queue's: static/vm_buttons.js).
// When the state changes, or while the VM runs, it also asks for its runs
// (GET /api/v1/vms/ID/runs) and redraws the Runs table. Once the VM has ended and the page
// has its final runs it stops; a button pressed after that (Redeploy) starts it again.
// The buttons stay plain forms that come back to this page without JavaScript; with it they
// act through the REST API, say what happened (or why not) and refresh the page's data.
"use strict";
(function () {
  const details = document.getElementById("vm");
  const buttons = document.getElementById("vm-actions");
  if (!details || !buttons || !window.gridvm || !gridvm.vmButtons) return;

  const PERIOD_MS = 2000;
  const { FINAL, el, actionsOf, duration } = gridvm.vmButtons;
  const vmId = details.dataset.vmId;
  const here = window.location.pathname;
  let shownState = details.dataset.state; // the state the page shows
  let runsState = null; // the state the Runs table was last fetched for (null: the page's)
  let polling = false; // the 2 s loop runs
  let again = false; // follow() was asked for while it ran

  // As the page's filters: "when" is YYYY-MM-DD HH:MM:SS UTC, "moment" is MM-DD HH:MM.
  const when = (iso) => (iso ? iso.slice(0, 19).replace("T", " ") + " UTC" : "");
  const moment = (iso) => (iso ? iso.slice(5, 16).replace("T", " ") : "");

  // As gridvm.common.units.format_size: 1536 -> 1.5 KiB.
  function size(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let value = bytes;
    let index = 0;
    while (Math.abs(value) >= 1024 && index < units.length - 1) {
      value /= 1024;
      index += 1;
    }
    if (index === 0) return bytes + " B";
    return value.toFixed(1).replace(/\.0$/, "") + " " + units[index];
  }

  function setText(id, text) {
    const node = document.getElementById(id);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function badge(state) {
    return el("span", { class: "badge " + state }, state);
  }

  function showState(state) {
    const cell = document.getElementById("vm-state");
    const shown = cell && cell.querySelector(".badge");
    if (shown && shown.textContent !== state) shown.replaceWith(badge(state));
  }

  function guestText(vm) {
    if (!vm.ready_at) return "not reported ready";
    return "ready since " + when(vm.ready_at) + (vm.ip ? ", address " + vm.ip : "");
  }

  function showProgress(vm) {
    const bar = document.getElementById("vm-progress");
    const hasValue = vm.progress !== null && vm.progress !== undefined;
    if (bar) {
      // No percent reported: no bar (an empty one would spin as if something moved).
      if (hasValue) bar.value = vm.progress;
      bar.hidden = !hasValue;
    }
    const percent = hasValue ? String(Number(vm.progress)) + "%" : "";
    const text = [percent, vm.progress_message || ""].filter(Boolean).join(" ");
    setText("vm-progress-text", text || "none reported");
  }

  // The buttons for the VM's state, redrawn only when that set changes (a value being typed
  // into Extend or Save stays while it applies).
  function showButtons(vm) {
    const wanted = actionsOf(vm).join("|");
    if (buttons.dataset.actions === wanted) return;
    const focused = buttons.contains(document.activeElement);
    buttons.replaceChildren(...gridvm.vmButtons.forms(vm, here));
    buttons.dataset.actions = wanted;
    if (focused) {
      const first = buttons.querySelector("button");
      if (first) first.focus();
    }
  }

  // As the page renders them: a download link, or why there is none (yet).
  function showResults(vm) {
    const cell = document.getElementById("vm-results");
    if (!cell) return;
    const key = vm.results_bytes !== null && vm.results_bytes !== undefined
      ? "bytes:" + vm.results_bytes : FINAL.has(vm.state) ? "none" : "later";
    if (cell.dataset.shown === key) return;
    cell.dataset.shown = key;
    const code = el("code", {}, "$GRIDVM_OUTPUT");
    if (key.startsWith("bytes:")) {
      const link = el("a", { id: "results-link", href: "/ui/vms/" + vm.id + "/results",
        download: "" }, "Download results");
      cell.replaceChildren(link, " (" + size(vm.results_bytes) + ", a tar of what the job wrote to ",
        code, ")");
    } else if (key === "none") {
      cell.replaceChildren(el("span", { id: "no-results" }, "None: the job left no results."));
    } else {
      cell.replaceChildren(el("span", { id: "no-results" }, "No results yet: they appear when a " +
        "job that writes to ", code, " ends."));
    }
  }

  function showPublished(vm) {
    const box = document.getElementById("vm-published");
    if (!box) return;
    const byKey = ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0);
    const entries = Object.entries(vm.published || {}).sort(byKey);
    const key = JSON.stringify(entries);
    if (box.dataset.shown === undefined) {
      // The page's own: the same data unless the rows say otherwise.
      const rows = [...box.querySelectorAll("tbody tr")].map((row) =>
        [...row.cells].map((cell) => cell.textContent));
      box.dataset.shown = JSON.stringify(rows);
    }
    if (box.dataset.shown === key) return;
    box.dataset.shown = key;
    if (!entries.length) {
      box.replaceChildren(el("p", { class: "help", id: "no-published" },
        "The guest has published nothing (", el("code", {}, "gridvm-guest publish KEY VALUE"), ")."));
      return;
    }
    const body = el("tbody");
    for (const [name, value] of entries) {
      body.append(el("tr", {}, el("td", {}, name), el("td", { class: "value" }, value)));
    }
    const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Key"),
      el("th", { scope: "col" }, "Value")));
    box.replaceChildren(el("div", { class: "table-wrap" },
      el("table", { id: "published", "aria-labelledby": "published-heading" }, head, body)));
  }

  function runRow(run) {
    const ended = run.end_state ? badge(run.end_state) : badge("running");
    return el("tr", { "data-run": String(run.number) },
      el("td", { class: "num" }, String(run.number)),
      el("td", {}, run.host || "-"),
      el("td", {}, moment(run.started_at)),
      el("td", {}, moment(run.ended_at) || "-"),
      el("td", {}, duration(run.duration_s) + (run.ended_at ? "" : " so far")),
      el("td", {}, ended));
  }

  async function showRuns() {
    const runs = await gridvm.api("/vms/" + encodeURIComponent(vmId) + "/runs");
    const body = document.querySelector("#runs tbody");
    if (!body) return;
    const rows = runs.length ? runs.map(runRow)
      : [el("tr", { class: "empty" }, el("td", { colspan: "6" }, "It has not run yet."))];
    // Only the rows that changed are replaced (screen readers and selections are spared).
    rows.forEach((row, index) => {
      const old = body.rows[index];
      if (!old) body.append(row);
      else if (old.outerHTML !== row.outerHTML) old.replaceWith(row);
    });
    while (body.rows.length > rows.length) body.rows[rows.length].remove();
  }

  function update(vm) {
    showState(vm.state);
    details.dataset.state = vm.state;
    setText("vm-reason", vm.state === "pending" ? vm.pending_reason || "-" : "-");
    const hasStatus = vm.exit_status !== null && vm.exit_status !== undefined;
    setText("vm-exit-status", hasStatus ? String(vm.exit_status) : "-");
    setText("vm-exit-reason", vm.exit_reason || "-");
    setText("vm-guest", guestText(vm));
    setText("vm-host", vm.host || "-");
    setText("vm-site-address", vm.site_address || "-");
    setText("vm-walltime", duration(vm.walltime_s));
    setText("vm-started", when(vm.started_at) || "-");
    setText("vm-expires", when(vm.expires_at) || "-");
    setText("vm-ended", when(vm.ended_at) || "-");
    setText("vm-attempt", String(vm.attempt));
    showProgress(vm);
    showButtons(vm);
    showResults(vm);
    showPublished(vm);
  }

  // One step: false (stop polling) once the VM has ended and the page has its final runs.
  let failing = false;
  async function poll() {
    try {
      const vm = await gridvm.api("/vms/" + encodeURIComponent(vmId));
      const was = shownState;
      update(vm);
      shownState = vm.state;
      // The runs: when the state changed since they were fetched, or while it runs.
      if (vm.state !== (runsState || details.dataset.renderedState) || vm.state === "running") {
        await showRuns();
        runsState = vm.state;
      }
      if (failing) gridvm.announce("The VM's details are up to date again.", false);
      failing = false;
      if (FINAL.has(vm.state)) {
        setText("vm-live", "The VM has ended (" + vm.state + ").");
        if (!FINAL.has(was)) gridvm.announce("VM " + vm.name + " has ended: " + vm.state + ".", false);
        return false;
      }
      if (vm.state !== was) {
        setText("vm-live", "The VM is now " + vm.state + " (it was " + was + "). This page " +
          "follows it every few seconds while it is open.");
      }
    } catch (error) {
      if (!failing) gridvm.announce("Could not update the VM: " + error.message, true);
      failing = true;
    }
    return true;
  }

  // Poll every 2 s until the VM has ended (again). Asked to follow while a step is under way
  // (a Redeploy pressed as the VM ended), the loop goes on once more rather than stop.
  function follow() {
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    again = false;
    gridvm.every(PERIOD_MS, async () => {
      const going = await poll();
      if (going !== false || again) {
        again = false;
        return true;
      }
      polling = false;
      return false;
    });
  }

  // A button pressed on the page: act, then look again at once (and follow the VM again
  // when it starts over).
  gridvm.vmButtons.actInPlace([buttons], async () => {
    const going = await poll();
    if (going !== false) follow();
  });

  details.dataset.renderedState = details.dataset.state;
  if (details.dataset.live === "true") follow();
})();
