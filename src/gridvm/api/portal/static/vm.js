// gridvm portal, a VM's page: while the VM has not ended, ask the REST API for it
// (GET /api/v1/vms/ID) every 2 s and update its state, what it waits for, its exit, guest
// readiness, progress and host in place. When it ends, say so once and stop; the buttons
// and runs shown are the page's (its Refresh link renders them again).
"use strict";
(function () {
  const details = document.getElementById("vm");
  if (!details || !window.gridvm || details.dataset.live !== "true") return;

  const PERIOD_MS = 2000;
  const FINAL = new Set(["done", "failed", "cancelled", "expired"]);
  const vmId = details.dataset.vmId;
  const rendered = details.dataset.state; // the state the page's buttons and runs are for

  // As the page's "when" filter: YYYY-MM-DD HH:MM:SS UTC.
  const when = (iso) => (iso ? iso.slice(0, 19).replace("T", " ") + " UTC" : "");

  function setText(id, text) {
    const node = document.getElementById(id);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function showState(state) {
    const cell = document.getElementById("vm-state");
    const badge = cell && cell.querySelector(".badge");
    if (!badge || badge.textContent === state) return;
    badge.textContent = state;
    badge.className = "badge " + state;
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
    showProgress(vm);
    if (vm.state !== rendered && !FINAL.has(vm.state)) {
      setText("vm-live", "The VM is now " + vm.state + " (it was " + rendered + "): Refresh " +
        "the page for the buttons and runs that apply now.");
    }
  }

  // One step: false (stop polling) once the VM has ended.
  let failing = false;
  async function poll() {
    try {
      const vm = await gridvm.api("/vms/" + encodeURIComponent(vmId));
      update(vm);
      if (failing) gridvm.announce("The VM's details are up to date again.", false);
      failing = false;
      if (FINAL.has(vm.state)) {
        setText("vm-live", "The VM has ended (" + vm.state + "). Refresh the page for its " +
          "results, runs and buttons.");
        gridvm.announce("VM " + vm.name + " has ended: " + vm.state + ".", false);
        return false;
      }
    } catch (error) {
      if (!failing) gridvm.announce("Could not update the VM: " + error.message, true);
      failing = true;
    }
    return true;
  }

  gridvm.every(PERIOD_MS, poll);
})();
