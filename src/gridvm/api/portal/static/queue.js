// gridvm portal, Queue page: keeps the VM and deployment tables current without a reload.
// Every 2 s (while the tab is visible) it asks the REST API for the page of VMs shown (same
// filter, limit and offset) and the deployments, updates the rows in place (state, reason,
// host, times, buttons), adds the VMs that came onto the page and drops those that left.
// The buttons stay plain forms, as the server renders them (they work without this script);
// with it, a submitted button calls the REST API instead, says what happened, and refreshes
// (static/vm_buttons.js: which buttons apply, their forms, acting on them; the VM page's too).
"use strict";
(function () {
  const vmTable = document.getElementById("vms");
  const depTable = document.getElementById("deployments");
  if (!vmTable || !depTable || !window.gridvm || !gridvm.vmButtons) return;

  const PERIOD_MS = 2000;
  const FINAL = gridvm.vmButtons.FINAL;
  const allUsers = vmTable.dataset.all === "true";
  const deployment = vmTable.dataset.deployment;
  const states = vmTable.dataset.states ? vmTable.dataset.states.split(",") : [];
  const pageSize = Number(vmTable.dataset.pageSize) || 50;
  let pageNumber = Number(vmTable.dataset.page) || 1;
  const here = window.location.pathname + window.location.search;
  let failing = false;

  // As the page's "moment" filter: MM-DD HH:MM (UTC, the column says so).
  const when = (iso) => (iso ? iso.slice(5, 16).replace("T", " ") : "");

  const { el, actionsOf } = gridvm.vmButtons;
  const actionForm = (path, label, css, confirm) =>
    gridvm.vmButtons.actionForm(path, label, css, confirm, here);

  function badge(state) {
    return el("span", { class: "badge " + state }, state);
  }

  function vmActions(vm) {
    const cell = el("td", { class: "actions" });
    cell.append(el("a", { href: "/ui/vms/" + vm.id + "/console" }, "Console log"));
    cell.append(...gridvm.vmButtons.forms(vm, here));
    return cell;
  }

  function vmCells(vm) {
    const page = el("a", { href: "/ui/vms/" + vm.id }, vm.name);
    const name = el("td", { class: "name" }, page, el("br"), el("span", { class: "muted" }, vm.id));
    const hasStatus = vm.exit_status !== null && vm.exit_status !== undefined;
    const exit = vm.exit_reason || (hasStatus ? "exit status " + vm.exit_status : "");
    return [
      name,
      ...(allUsers ? [el("td", { class: "owner" }, vm.owner)] : []),
      el("td", { class: "state" }, badge(vm.state)),
      el("td", { class: "reason" }, vm.state === "pending" ? vm.pending_reason || "" : ""),
      el("td", { class: "host" }, vm.host || ""),
      el("td", { class: "image" }, vm.image_name + (vm.image_version ? ":" + vm.image_version : "")),
      el("td", { class: "num cores" }, String(vm.vcpus)),
      el("td", { class: "num memory" }, vm.memory_mb + " MiB"),
      el("td", { class: "started" }, when(vm.started_at)),
      el("td", { class: "expires" }, when(vm.expires_at)),
      el("td", { class: "exit" }, exit),
      vmActions(vm),
    ];
  }

  // Replace a cell's text only when it changed (screen readers and selections are spared).
  function sync(row, fresh) {
    fresh.forEach((cell, index) => {
      const old = row.cells[index];
      if (!old) row.append(cell);
      else if (cell.classList.contains("actions")) {
        if (row.dataset.actions !== row.dataset.nextActions) old.replaceWith(cell);
      } else if (old.textContent !== cell.textContent) old.replaceWith(cell);
    });
  }

  function dropEmpty(table) {
    const empty = table.tBodies[0].querySelector("tr.empty");
    if (empty) empty.remove();
  }

  function emptyRow() {
    const text = "No VMs" + (deployment ? " in this deployment" : "") +
      (states.length ? " to show with this filter" : "") + ".";
    return el("tr", { class: "empty" }, el("td", { colspan: allUsers ? "12" : "11" }, text));
  }

  // The page's rows become the VMs of the page, in the API's order.
  function updateVms(vms) {
    const body = vmTable.tBodies[0];
    const wanted = new Set(vms.map((vm) => vm.id));
    for (const row of [...body.querySelectorAll("tr[data-vm-id]")]) {
      if (!wanted.has(row.dataset.vmId)) row.remove();
    }
    vms.forEach((vm, index) => {
      let row = body.querySelector('tr[data-vm-id="' + CSS.escape(vm.id) + '"]');
      if (!row) {
        dropEmpty(vmTable);
        row = el("tr", { "data-vm-id": vm.id, "data-state": vm.state,
          "data-actions": actionsOf(vm).join("|") });
        row.append(...vmCells(vm));
      } else {
        row.dataset.nextActions = actionsOf(vm).join("|");
        sync(row, vmCells(vm));
        row.dataset.state = vm.state;
        row.dataset.actions = row.dataset.nextActions;
      }
      if (body.rows[index] !== row) body.insertBefore(row, body.rows[index] || null);
    });
    if (!vms.length && !body.querySelector("tr.empty")) body.append(emptyRow());
  }

  function pageUrl(number) {
    const query = new URLSearchParams();
    if (allUsers) query.set("all", "1");
    if (deployment) query.set("deployment", deployment);
    if (vmTable.dataset.show) query.set("show", vmTable.dataset.show);
    if (number > 1) query.set("page", String(number));
    const text = query.toString();
    return "/ui/queue" + (text ? "?" + text : "");
  }

  // "Previous", "Page N of M, T VMs", "Next", as the server renders them.
  function updatePager(total) {
    const pager = document.getElementById("vms-pager");
    if (!pager || String(total) === vmTable.dataset.total) return;
    vmTable.dataset.total = String(total);
    const pages = Math.max(1, Math.ceil(total / pageSize));
    const parts = [];
    if (pageNumber > 1) parts.push(el("a", { href: pageUrl(pageNumber - 1), rel: "prev" }, "Previous"));
    parts.push(el("span", { id: "vms-page-info" },
      "Page " + pageNumber + " of " + pages + ", " + total + (total === 1 ? " VM" : " VMs")));
    if (pageNumber < pages) parts.push(el("a", { href: pageUrl(pageNumber + 1), rel: "next" }, "Next"));
    pager.replaceChildren();
    parts.forEach((part, index) => pager.append(...(index ? [" ", part] : [part])));
  }

  // One page of VMs from the REST API and how many match (its X-Total-Count header).
  async function fetchVms() {
    const query = new URLSearchParams();
    if (allUsers) query.set("all", "true");
    if (deployment) query.set("deployment", deployment);
    for (const state of states) query.append("state", state);
    query.set("limit", String(pageSize));
    query.set("offset", String((pageNumber - 1) * pageSize));
    const response = await fetch("/api/v1/vms?" + query, { credentials: "same-origin" });
    const payload = await response.json().catch(() => null);
    if (!response.ok) throw new Error((payload && payload.message) || response.statusText);
    const total = Number(response.headers.get("X-Total-Count"));
    return { vms: payload, total: Number.isFinite(total) ? total : payload.length };
  }

  function depCells(d) {
    const link = el("a", { href: "/ui/queue?" + new URLSearchParams(
      allUsers ? { deployment: d.id, all: "1" } : { deployment: d.id }) }, d.name);
    const states = el("td", { class: "states" });
    for (const state of Object.keys(d.states).sort()) {
      states.append(el("span", { class: "badge " + state }, d.states[state] + " " + state), " ");
    }
    const actions = el("td", { class: "actions" });
    if (d.states.failed || d.states.expired) {
      actions.append(actionForm("/ui/deployments/" + d.id + "/redeploy-failed", "Redeploy failed",
        "secondary"));
    }
    if (Object.keys(d.states).some((s) => !FINAL.has(s))) {
      actions.append(actionForm("/ui/deployments/" + d.id + "/cancel", "Cancel", "danger",
        "Cancel deployment " + d.name + "? Its VMs that have not ended are terminated."));
    }
    return [
      el("td", {}, link, el("br"), el("span", { class: "muted" }, d.id)),
      ...(allUsers ? [el("td", {}, d.owner)] : []),
      el("td", { class: "num" }, String(d.count)),
      states,
      el("td", {}, when(d.created_at)),
      actions,
    ];
  }

  function updateDeployments(deployments) {
    const body = depTable.tBodies[0];
    for (const d of deployments) {
      let row = body.querySelector('tr[data-deployment-id="' + CSS.escape(d.id) + '"]');
      const cells = depCells(d);
      if (!row) {
        dropEmpty(depTable);
        row = el("tr", { "data-deployment-id": d.id });
        row.append(...cells);
        body.append(row);
        continue;
      }
      // The buttons change with the set of buttons that apply.
      const buttons = [...cells[cells.length - 1].querySelectorAll("button")];
      row.dataset.nextState = buttons.map((b) => b.textContent).join("|");
      sync(row, cells);
      row.dataset.state = row.dataset.nextState;
    }
  }

  async function poll() {
    try {
      let [page, deployments] = await Promise.all([
        fetchVms(),
        gridvm.api("/deployments" + (allUsers ? "?all=true" : "")),
      ]);
      // The page shown ran out of VMs (they ended, or the filter no longer holds them).
      const pages = Math.max(1, Math.ceil(page.total / pageSize));
      if (pageNumber > pages) {
        pageNumber = pages;
        vmTable.dataset.page = String(pageNumber);
        window.history.replaceState(null, "", pageUrl(pageNumber));
        page = await fetchVms();
      }
      updateVms(page.vms);
      updatePager(page.total);
      updateDeployments(deployments);
      if (failing) gridvm.announce("The queue is up to date again.", false);
      failing = false;
    } catch (error) {
      if (!failing) gridvm.announce("Could not update the queue: " + error.message, true);
      failing = true;
    }
  }

  // The buttons (plain forms) act through the REST API, then the tables are refreshed.
  gridvm.vmButtons.actInPlace([vmTable, depTable], poll);

  // Deployment rows rendered by the server: the buttons they show.
  for (const row of depTable.querySelectorAll("tr[data-deployment-id]")) {
    const buttons = [...row.querySelectorAll("td.actions button")];
    row.dataset.state = buttons.map((b) => b.textContent).join("|");
  }
  gridvm.every(PERIOD_MS, poll);
})();
