// gridvm portal: a VM's buttons for the pages that show them (the queue's rows, the VM's
// page), as templates/vm_buttons.html renders them for pages without JavaScript: which
// buttons apply in which state (as vm_actions in portal/queue.py), the forms themselves, and
// acting on a submitted one through the REST API instead of posting the form.
"use strict";
(function () {
  if (!window.gridvm) return;

  const FINAL = new Set(["done", "failed", "cancelled", "expired"]);
  const LIVE = (state) => !FINAL.has(state) && state !== "stopped";

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  // The buttons that apply to a VM in its state: as vm_actions in portal/queue.py.
  function actionsOf(vm) {
    const s = vm.state;
    const actions = [];
    if (LIVE(s) && s !== "stopping") actions.push("stop");
    if (s === "stopped") actions.push("start");
    if (s === "running") actions.push("suspend");
    if (s === "suspended") actions.push("resume");
    if (LIVE(s) && s !== "stopping") actions.push("extend");
    if (s === "stopped" && vm.mode === "single" && !vm.saving_as) actions.push("save");
    if (!FINAL.has(s)) actions.push("terminate");
    if (FINAL.has(s)) actions.push("redeploy");
    return actions;
  }

  // The same form the server renders for a button; ``here`` is the page to come back to.
  function actionForm(path, label, css, confirm, here) {
    const form = el("form", { class: "inline", method: "post", action: path });
    if (confirm) form.setAttribute("data-confirm", confirm);
    form.append(
      el("input", { type: "hidden", name: "csrf_token", value: gridvm.csrf() }),
      el("input", { type: "hidden", name: "back", value: here }),
      el("button", { type: "submit", class: css }, label),
    );
    return form;
  }

  // A button with one text field before it (Extend by "1h", Save as an image name).
  function fieldForm(path, field, id, label, placeholder, button, here) {
    const form = el("form", { class: "inline", method: "post", action: path });
    form.append(
      el("input", { type: "hidden", name: "csrf_token", value: gridvm.csrf() }),
      el("input", { type: "hidden", name: "back", value: here }),
      el("label", { for: id, class: "visually-hidden" }, label),
      el("input", { type: "text", id: id, name: field, placeholder: placeholder, size: "6",
        required: "" }),
      " ",
      el("button", { type: "submit", class: "secondary" }, button),
    );
    return form;
  }

  // The forms of the buttons that apply to ``vm``, spaces between them.
  function forms(vm, here) {
    const base = "/ui/vms/" + vm.id;
    const make = {
      stop: () => actionForm(base + "/stop", "Stop", "secondary", null, here),
      start: () => actionForm(base + "/start", "Start", "secondary", null, here),
      suspend: () => actionForm(base + "/suspend", "Suspend", "secondary", null, here),
      resume: () => actionForm(base + "/resume", "Resume", "secondary", null, here),
      extend: () => fieldForm(base + "/extend", "by", "extend-" + vm.id,
        "Extend the walltime of " + vm.name + " by", "1h", "Extend", here),
      save: () => fieldForm(base + "/save", "name", "save-" + vm.id,
        "Save " + vm.name + " as the image named", "image name", "Save", here),
      terminate: () => actionForm(base + "/terminate", "Terminate", "danger",
        "Terminate " + vm.name + "? It ends now and its disk is deleted.", here),
      redeploy: () => actionForm(base + "/redeploy", "Redeploy", "secondary", null, here),
    };
    const nodes = [];
    for (const action of actionsOf(vm)) nodes.push(" ", make[action]());
    return nodes;
  }

  // Seconds in a duration such as 90, 10m or 1h30m (as gridvm.common.units.parse_duration);
  // null when it is not one.
  function seconds(text) {
    const value = text.trim();
    if (/^\d+$/.test(value)) return Number(value);
    const parts = [...value.matchAll(/(\d+)([smhd])/g)];
    if (!parts.length || parts.map((p) => p[0]).join("") !== value) return null;
    const unit = { s: 1, m: 60, h: 3600, d: 86400 };
    return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]], 0);
  }

  // As gridvm.common.units.format_duration: 3725 -> 1h2m5s.
  function duration(total) {
    const whole = Math.floor(total);
    if (whole < 60) return whole + "s";
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = whole % 60;
    return (h ? h + "h" : "") + (m ? m + "m" : "") + (s ? s + "s" : "");
  }

  const DONE = {
    stop: "is stopping",
    start: "is starting again",
    terminate: "is being terminated",
    redeploy: "starts over",
    suspend: "is being suspended",
    resume: "is resuming",
    cancel: "is cancelled: its VMs that had not ended are ending",
    "redeploy-failed": "starts its failed and expired VMs over",
  };

  // What the API call for a posted button is: [path, body] (or throws why not).
  function request(form, path, verb) {
    if (verb === "extend") {
      const amount = form.elements.by.value.trim();
      const by = seconds(amount);
      if (!amount || by === null || by < 1) {
        throw new Error("'" + amount + "' is not a duration (write it like 90s, 10m, 1h30m or 2d)");
      }
      return [path, { by_s: by }];
    }
    if (verb === "save") return [path, { name: form.elements.name.value.trim() }];
    return [path, undefined];
  }

  function noticeOf(kind, verb, out, form) {
    const what = (kind === "deployments" ? "Deployment " : "VM ") + out.name + " (" + out.id + ") ";
    if (verb === "extend") return what + "may now run for " + duration(out.walltime_s) + " in all.";
    if (verb === "save") {
      return what + "is being saved as image " + form.elements.name.value.trim() +
        "; it appears in My images when its host has sent it.";
    }
    return what + DONE[verb] + ".";
  }

  // Buttons of VMs and deployments inside ``within`` (elements) act through the REST API when
  // submitted: the result (or the refusal) is announced, then ``after()`` refreshes the page's
  // data. portal.js asks data-confirm questions first (its listener was added before this one).
  function actInPlace(within, after) {
    document.addEventListener("submit", async (event) => {
      const form = event.target;
      if (event.defaultPrevented || !within.some((node) => node.contains(form))) return;
      const action = new URL(form.action, window.location.href).pathname;
      const found = action.match(/^\/ui(\/(vms|deployments)\/[^/]+\/([a-z-]+))$/);
      if (!found) return;
      event.preventDefault();
      const verb = found[3];
      const buttons = [...form.querySelectorAll("button")];
      buttons.forEach((b) => (b.disabled = true));
      try {
        const [path, json] = request(form, found[1], verb);
        const out = await gridvm.api(path, { method: "POST", json });
        gridvm.announce(noticeOf(found[2], verb, out, form), false);
        if (form.elements.by) form.elements.by.value = "";
        if (form.elements.name) form.elements.name.value = "";
      } catch (error) {
        gridvm.announce(error.message, true);
      } finally {
        buttons.forEach((b) => (b.disabled = false));
      }
      await after();
    });
  }

  gridvm.vmButtons = { FINAL, el, actionsOf, actionForm, forms, duration, actInPlace };
})();
