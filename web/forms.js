// The API client and the editor dialog: forms for virtual servers, real servers and VRRP
// groups. Every write carries If-Match with the revision the page shows; the API's own
// validation messages are shown next to the field its error names.

let revision = 0;
// While an editor saves: the revision the editor was opened at. The page reloads its data live
// while a form is open; the form's contents are still the older data, so its write must be
// conditional on the revision it showed, or it would silently undo a change made meanwhile.
let pinned = null;
export function setRevision(r) { revision = r; }
export function currentRevision() { return revision; }

/** The API's error, as thrown by `api`. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.field = e.field;
  }
}

/** Calls the public API; writes are conditional on the revision the page last read. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["If-Match"] = `"${pinned ?? revision}"`;
  const r = await fetch(path, {
    method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!r.ok) throw new ApiError(r.status, json);
  const tag = r.headers.get("ETag");
  if (tag && method !== "GET") {
    const n = Number(tag.replaceAll('"', ""));
    if (Number.isFinite(n)) revision = n;
  }
  return json;
}

// ---- form definitions ------------------------------------------------------------------------

const SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"];
const FORWARDING = ["dr", "nat", "tun"];

export const virtualServerForm = [
  { name: "name", label: "Name", hint: "optional" },
  { name: "address", label: "Address", hint: "IPv4 or IPv6; or use a firewall mark" },
  { name: "port", label: "Port", number: true },
  { name: "protocol", label: "Protocol", options: ["tcp", "udp", "sctp"] },
  { name: "fwmark", label: "Firewall mark", number: true, hint: "instead of address and port" },
  { name: "scheduler", label: "Scheduler", options: SCHEDULERS },
  { name: "forwarding", label: "Forwarding", options: FORWARDING },
  { name: "persistence_timeout_secs", label: "Persistence (s)", number: true, hint: "optional" },
  { name: "delay_loop_ms", label: "Check interval (ms)", number: true },
];

export const realServerForm = [
  { name: "address", label: "Address" },
  { name: "port", label: "Port", number: true, hint: "the virtual server's when empty" },
  { name: "weight", label: "Weight", number: true },
  { name: "forwarding", label: "Forwarding", options: ["", ...FORWARDING], hint: "the virtual server's when empty" },
  { name: "inhibit_on_failure", label: "Weight 0 instead of removal when down", checkbox: true },
  { name: "health_check.type", label: "Health check", options: ["", "tcp", "http"] },
  { name: "health_check.connect_port", label: "Check port", number: true },
  { name: "health_check.connect_timeout_ms", label: "Check timeout (ms)", number: true },
  { name: "health_check.path", label: "HTTP path", hint: "http checks" },
  { name: "health_check.expected_status", label: "Expected status", number: true, hint: "http checks" },
];

export const vrrpGroupForm = [
  { name: "name", label: "Name" },
  { name: "vrid", label: "VRID", number: true },
  { name: "version", label: "Version", options: ["2", "3"], number: true },
  { name: "advert_interval_ms", label: "Advert interval (ms)", number: true },
  { name: "virtual_addresses", label: "Virtual addresses", list: true, wide: true,
    hint: "separated by spaces or commas, e.g. 192.168.10.100/24" },
  { name: "preempt", label: "Preempt a lower-priority master", checkbox: true },
  { name: "nodes", label: "Nodes", nodes: true, wide: true,
    hint: "one a line: node priority interface master|backup" },
];

// ---- values in and out -----------------------------------------------------------------------

function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (o[k] == null || typeof o[k] !== "object") o[k] = {};
    o = o[k];
  }
  const last = keys[keys.length - 1];
  if (value === undefined) delete o[last]; else o[last] = value;
}

function shown(def, v) {
  if (v == null) return "";
  // A virtual address with keepalived's options is an object: the form shows its address.
  if (def.list) return v.map((x) => (typeof x === "string" ? x : x.address)).join(", ");
  if (def.nodes) return v.map((n) => `${n.node} ${n.priority} ${n.interface} ${n.initial_state || "backup"}`).join("\n");
  return String(v);
}

/** A number where it reads as one; anything else goes to the API as typed, for its message. */
function numberOrText(s) {
  return /^-?\d+$/.test(s) ? Number(s) : s;
}

function parsed(def, raw, checked) {
  if (def.checkbox) return checked;
  const s = raw.trim();
  if (def.list) return s ? s.split(/[\s,]+/).filter(Boolean) : [];
  if (def.nodes) {
    return s.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
      const [node, priority, iface, initial] = l.split(/\s+/);
      const n = { node, priority: numberOrText(priority || ""), interface: iface || "" };
      if (initial) n.initial_state = initial;
      return n;
    });
  }
  if (s === "") return undefined;
  return def.number ? numberOrText(s) : s;
}

// ---- the dialog ------------------------------------------------------------------------------

const dialog = () => document.getElementById("editor");

/**
 * Opens the editor. `base` is the entity as the API has it (edits change only the fields the
 * form shows and keep every other); `save(body)` sends it; `done()` runs after a success.
 */
export function openEditor({ title, fields, base, save, done, onConflict }) {
  const opened = revision;
  const dlg = dialog();
  const form = document.getElementById("editor-form");
  const box = document.getElementById("editor-fields");
  document.getElementById("editor-title").textContent = title;
  const formErr = document.getElementById("form-error");
  formErr.hidden = true;
  box.replaceChildren();
  for (const def of fields) {
    const id = `f-${def.name.replace(/\W/g, "-")}`;
    const wrap = document.createElement("div");
    wrap.className = `field${def.wide ? " wide" : ""}${def.checkbox ? " check" : ""}`;
    wrap.dataset.field = def.name;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = def.label;
    let input;
    if (def.options) {
      input = document.createElement("select");
      for (const o of def.options) {
        const opt = document.createElement("option");
        opt.value = o;
        opt.textContent = o === "" ? "—" : o;
        input.append(opt);
      }
    } else if (def.nodes) {
      input = document.createElement("textarea");
      input.rows = 3;
    } else {
      input = document.createElement("input");
      input.type = def.checkbox ? "checkbox" : "text";
      if (def.number) input.inputMode = "numeric";
    }
    input.id = id;
    input.name = def.name;
    const v = getPath(base, def.name);
    if (def.checkbox) input.checked = Boolean(v);
    else input.value = shown(def, v);
    const err = document.createElement("p");
    err.className = "field-error";
    err.id = `${id}-error`;
    err.hidden = true;
    if (def.checkbox) wrap.append(input, label); else wrap.append(label, input);
    if (def.hint) {
      const hint = document.createElement("span");
      hint.className = "hint";
      hint.id = `${id}-hint`;
      hint.textContent = def.hint;
      input.setAttribute("aria-describedby", hint.id);
      wrap.append(hint);
    }
    wrap.append(err);
    box.append(wrap);
  }

  const clearErrors = () => {
    formErr.hidden = true;
    for (const e of box.querySelectorAll(".field-error")) e.hidden = true;
    for (const i of box.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  };

  form.onsubmit = async (ev) => {
    ev.preventDefault();
    clearErrors();
    const body = structuredClone(base);
    for (const def of fields) {
      const input = form.elements.namedItem(def.name);
      let value = parsed(def, input.value, input.checked);
      // An address still listed keeps the options it had (dev, scope, label, broadcast).
      const before = getPath(base, def.name);
      if (def.list && Array.isArray(before) && Array.isArray(value)) {
        value = value.map((a) => before.find((x) => typeof x === "object" && x && x.address === a) || a);
      }
      setPath(body, def.name, value);
    }
    if (body.health_check && !body.health_check.type) delete body.health_check;
    const saveBtn = document.getElementById("editor-save");
    saveBtn.disabled = true;
    try {
      pinned = opened;
      try {
        await save(body);
      } finally {
        pinned = null;
      }
      dlg.close();
      await done();
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        dlg.close();
        await onConflict();
      } else {
        showError(box, formErr, e);
      }
    } finally {
      saveBtn.disabled = false;
    }
  };
  document.getElementById("editor-cancel").onclick = () => dlg.close();
  dlg.showModal();
  const first = box.querySelector("input, select, textarea");
  if (first) first.focus();
}

/** Puts the API's message next to the input its `field` names (or the nearest one). */
function showError(box, formErr, e) {
  const field = e instanceof ApiError ? e.field : undefined;
  let wrap = null;
  if (field) {
    const candidates = [field, field.replace(/\[\d+\].*$/, "")];
    for (let p = field; p.includes("."); ) {
      p = p.slice(0, p.lastIndexOf("."));
      candidates.push(p, p.replace(/\[\d+\].*$/, ""));
    }
    for (const c of candidates) {
      wrap = box.querySelector(`.field[data-field="${CSS.escape(c)}"]`);
      if (wrap) break;
    }
  }
  if (wrap) {
    const input = wrap.querySelector("input, select, textarea");
    const err = wrap.querySelector(".field-error");
    err.textContent = e.message;
    err.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), err.id].filter(Boolean).join(" "));
    input.focus();
  } else {
    formErr.textContent = field ? `${field}: ${e.message}` : e.message;
    formErr.hidden = false;
  }
}
