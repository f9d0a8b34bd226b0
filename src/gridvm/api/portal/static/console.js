// gridvm portal, console page: while the VM runs, fetch what its console wrote since the
// page was made (GET /api/v1/vms/ID/console?offset=N) every 2 s and append it; stop when
// the VM has ended or the tab is hidden.
"use strict";
(function () {
  const log = document.getElementById("console-log");
  if (!log || !window.gridvm || log.dataset.live !== "true") return;

  const PERIOD_MS = 2000;
  const FINAL = new Set(["done", "failed", "cancelled", "expired", "stopped"]);
  const vmId = log.dataset.vmId;
  const stateBadge = document.getElementById("vm-state");
  let offset = Number(log.dataset.offset) || 0;
  // As console_text.py: terminal control sequences and C0 controls but tab/newline go.
  const CONTROL = new RegExp(
    "\\x1b\\[[0-?]*[ -/]*[@-~]|\\x1b\\][^\\x07\\x1b]*(?:\\x07|\\x1b\\\\)" +
      "|\\x1b[@-Z\\\\-_]|\\x1b[0-9=>c]|[\\x00-\\x08\\x0b-\\x1f\\x7f]",
    "g",
  );
  const printable = (text) => text.replace(/\r\n/g, "\n").replace(CONTROL, "");

  async function more() {
    const response = await fetch(
      "/api/v1/vms/" + encodeURIComponent(vmId) + "/console?offset=" + offset,
      { credentials: "same-origin" },
    );
    if (!response.ok) throw new Error(response.statusText);
    const text = await response.text();
    offset = Number(response.headers.get("X-Console-Offset")) || offset + text.length;
    if (text) {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.append(printable(text));
      const empty = document.getElementById("console-empty");
      if (empty) empty.remove();
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
  }

  // One step: new output and the VM's state; false (stop) once the VM has ended.
  async function poll() {
    try {
      const vm = await gridvm.api("/vms/" + encodeURIComponent(vmId));
      await more();
      if (stateBadge && stateBadge.textContent !== vm.state) {
        stateBadge.textContent = vm.state;
        stateBadge.className = "badge " + vm.state;
      }
      return !FINAL.has(vm.state);
    } catch (error) {
      gridvm.announce("Could not update the console log: " + error.message, true);
      return true;
    }
  }

  gridvm.every(PERIOD_MS, poll);
})();
