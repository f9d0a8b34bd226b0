// gridvm portal, Queue page: keeps the VM and deployment tables current without a reload.
// Every 2 s (while the tab is visible) it asks the REST API for the VMs and deployments the
// page shows, updates the rows in place (state, reason, host, times, buttons) and adds new
// ones. The buttons stay plain forms, as the server renders them.
"use strict";
(function () {
  const vmTable = document.getElementById("vms");
  const depTable = document.getElementById("deployments");
  if (!vmTable || !depTable || !window.gridvm) return;

  const PERIOD_MS = 2000;
  const FINAL = new Set(["done", "failed", "cancelled", "expired"]);
  const LIVE = (state) => !FINAL.has(state) && state !== "stopped";
  const allUsers = vmTable.dataset.all === "true";
  const deployment = vmTable.dataset.deployment;
  const here = window.location.pathname + window.location.search;
  let failing = false;

  // As the page's "moment" filter: MM-DD HH:MM (UTC, the column says so).
  const when = (iso) => (iso ? iso.slice(5, 16).replace("T", " ") : "");

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  function badge(state) {
    return el("span", { class: "badge " + state }, state);
  }

  // The same form the server renders for a button (works with or without this script).
  function actionForm(path, label, css, confirm) {
    const form = el("form", { class: "inline", method: "post", action: path });
    if (confirm) form.setAttribute("data-confirm", confirm);
    form.append(
      el("input", { type: "hidden", name: "csrf_token", value: gridvm.csrf() }),
      el("input", { type: "hidden", name: "back", value: here }),
      el("button", { type: "submit", class: css }, label),
    );
    return form;
  }

  function vmActions(vm) {
    const cell = el("td", { class: "actions" });
    cell.append(el("a", { href: "/ui/vms/" + vm.id + "/console" }, "Console log"));
    const base = "/ui/vms/" + vm.id;
    const forms = [];
    if (LIVE(vm.state) && vm.state !== "stopping") forms.push(actionForm(base + "/stop", "Stop", "secondary"));
    if (vm.state === "stopped") forms.push(actionForm(base + "/start", "Start", "secondary"));
    if (!FINAL.has(vm.state)) {
      forms.push(actionForm(base + "/terminate", "Terminate", "danger",
        "Terminate " + vm.name + "? It ends now and its disk is deleted."));
    }
    if (FINAL.has(vm.state)) forms.push(actionForm(base + "/redeploy", "Redeploy", "secondary"));
    for (const form of forms) cell.append(" ", form);
    return cell;
  }

  function vmCells(vm) {
    const name = el("td", { class: "name" }, vm.name, el("br"), el("span", { class: "muted" }, vm.id));
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
        if (row.dataset.state !== row.dataset.nextState) old.replaceWith(cell);
      } else if (old.textContent !== cell.textContent) old.replaceWith(cell);
    });
  }

  function dropEmpty(table) {
    const empty = table.tBodies[0].querySelector("tr.empty");
    if (empty) empty.remove();
  }

  function updateVms(vms) {
    const body = vmTable.tBodies[0];
    for (const vm of vms) {
      let row = body.querySelector('tr[data-vm-id="' + CSS.escape(vm.id) + '"]');
      if (!row) {
        dropEmpty(vmTable);
        row = el("tr", { "data-vm-id": vm.id, "data-state": vm.state });
        row.append(...vmCells(vm));
        body.append(row);
        continue;
      }
      row.dataset.nextState = vm.state;
      sync(row, vmCells(vm));
      row.dataset.state = vm.state;
    }
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
    const query = new URLSearchParams();
    if (allUsers) query.set("all", "true");
    if (deployment) query.set("deployment", deployment);
    try {
      const [vms, deployments] = await Promise.all([
        gridvm.api("/vms?" + query),
        gridvm.api("/deployments" + (allUsers ? "?all=true" : "")),
      ]);
      updateVms(vms);
      updateDeployments(deployments);
      if (failing) gridvm.announce("The queue is up to date again.", false);
      failing = false;
    } catch (error) {
      if (!failing) gridvm.announce("Could not update the queue: " + error.message, true);
      failing = true;
    }
  }

  // Deployment rows rendered by the server: the buttons they show.
  for (const row of depTable.querySelectorAll("tr[data-deployment-id]")) {
    const buttons = [...row.querySelectorAll("td.actions button")];
    row.dataset.state = buttons.map((b) => b.textContent).join("|");
  }
  gridvm.every(PERIOD_MS, poll);
})();
