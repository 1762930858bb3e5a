// lbd dashboard: the pair at a glance, virtual and real servers with live rates, recent
// events, and changes. Reads and writes only the public API (/api/v1/...).

import { Series, sparkline, perSecond, bytesPerSecond } from "/ui/chart.js";
import {
  api, ApiError, setRevision, openEditor,
  virtualServerForm, realServerForm, vrrpGroupForm,
} from "/ui/forms.js";

const IPVS_EVERY_MS = 2000;
/** In IPVS_EVERY_MS ticks: 30 s. */
const IPVS_UNAVAILABLE_EVERY = 15;
const STATUS_EVERY_MS = 5000;
const MAX_EVENTS = 500;

const state = {
  status: null,
  config: { revision: 0, virtual_servers: [], vrrp_groups: [] },
  ipvs: null,
  ipvsError: null,
  events: [],
};
const series = new Series();
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children.flat().filter((c) => c != null && c !== false));
  return e;
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind}`, text });
}

function ago(ms) {
  if (!ms) return "";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function showBanner(text, bad = false) {
  const b = $("banner");
  b.textContent = text;
  b.className = `banner${bad ? " bad" : ""}`;
  b.hidden = !text;
}

// ---- loading -----------------------------------------------------------------------------------

async function loadConfig() {
  const c = await api("GET", "/api/v1/config");
  state.config = c;
  setRevision(c.revision);
}

async function loadStatus() {
  state.status = await api("GET", "/api/v1/status");
}

async function loadIpvs() {
  try {
    state.ipvs = await api("GET", "/api/v1/ipvs");
    state.ipvsError = null;
    sample();
  } catch (e) {
    state.ipvs = null;
    state.ipvsError = e instanceof ApiError && e.status === 503
      ? `No IPVS table to show: ${e.message.replace(/[.?!]$/, "")}. Rates and counters appear once the kernel has IPVS.`
      : `Cannot read /api/v1/ipvs: ${e.message}`;
  }
}

async function refresh() {
  try {
    await Promise.all([loadConfig(), loadStatus()]);
    render();
  } catch (e) {
    showBanner(`Cannot reach lbd: ${e.message}`, true);
  }
}

let refreshTimer = null;
/** Many events in a burst are one reload. */
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 150);
}

// ---- IPVS rates --------------------------------------------------------------------------------

function serviceKey(vs) {
  if (vs.fwmark != null) return `fwm:${vs.fwmark}`;
  return `${vs.protocol || "tcp"}:${vs.address}:${vs.port ?? 0}`;
}

function ipvsServiceKey(s) {
  if (s.fwmark != null) return `fwm:${s.fwmark}`;
  return `${s.protocol}:${s.address}:${s.port ?? 0}`;
}

function sample() {
  for (const s of state.ipvs.services) {
    const k = ipvsServiceKey(s);
    series.push(`${k}|cps`, s.stats.cps);
    series.push(`${k}|bps`, s.stats.inbps + s.stats.outbps);
    for (const d of s.destinations) {
      const dk = `${k}|${d.address}:${d.port}`;
      series.push(`${dk}|cps`, d.stats.cps);
      series.push(`${dk}|bps`, d.stats.inbps + d.stats.outbps);
    }
  }
}

function ipvsService(vs) {
  if (!state.ipvs) return null;
  const k = serviceKey(vs);
  return state.ipvs.services.find((s) => ipvsServiceKey(s) === k) || null;
}

function charts(key) {
  return [
    sparkline("conn/s", series.get(`${key}|cps`), perSecond),
    sparkline("bytes/s", series.get(`${key}|bps`), bytesPerSecond),
  ];
}

// ---- rendering ---------------------------------------------------------------------------------

function vrrpBadge(s) {
  const kind = { master: "ok", backup: "info", fault: "bad", disabled: "warn" }[s] || "warn";
  return badge((s || "unknown").toUpperCase(), kind);
}

function dataplaneBadge(dp) {
  const kind = { running: "ok", degraded: "bad", not_running: "warn" }[dp.state] || "warn";
  const label = { running: "programming", degraded: "degraded", not_running: "not running" }[dp.state] || dp.state;
  return badge(label, kind);
}

/** Runs a re-render and puts the keyboard focus back on the same control. */
function keepingFocus(fn) {
  const a = document.activeElement;
  const label = a && a.tagName === "BUTTON" ? a.getAttribute("aria-label") || a.textContent : null;
  fn();
  if (label && !document.contains(a)) {
    const again = [...document.querySelectorAll("main button")]
      .find((b) => (b.getAttribute("aria-label") || b.textContent) === label);
    if (again) again.focus();
  }
}

function render() {
  keepingFocus(renderAll);
}

function renderAll() {
  const st = state.status;
  const cfg = state.config;
  $("revision").textContent = String(cfg.revision);
  if (st) {
    $("node-name").textContent = st.node;
    document.title = `lbd · ${st.node}`;
    $("dataplane").replaceChildren(dataplaneBadge(st.dataplane));
    $("dataplane").title = st.dataplane.reason || "";
  }
  renderPair();
  renderGroups();
  renderVirtualServers();
}

function renderPair() {
  const st = state.status;
  if (!st) return;
  const dp = st.dataplane;
  const groups = st.vrrp.groups;
  const held = groups.filter((g) => g.state === "master").flatMap((g) => g.virtual_addresses);
  $("this-node").replaceChildren(
    el("h3", { text: `This node: ${st.node}` }),
    el("dl", {},
      el("dt", { text: "Version" }), el("dd", { text: st.version }),
      el("dt", { text: "Revision" }), el("dd", { text: String(st.revision) }),
      el("dt", { text: "Data plane" }),
      el("dd", {}, dataplaneBadge(dp),
        dp.reason ? el("div", { class: "err", text: dp.reason }) : null,
        dp.applied_revision != null ? el("div", { class: "muted", text: `applied revision ${dp.applied_revision}, ${dp.services} services, ${dp.destinations} destinations` }) : null),
      el("dt", { text: "VRRP" }),
      el("dd", {}, groups.length
        ? groups.map((g) => el("div", {}, `${g.name} `, vrrpBadge(g.state)))
        : el("span", { class: "muted", text: `no groups (${st.vrrp.scheduling})` })),
      el("dt", { text: "Holds" }),
      el("dd", { class: "mono", text: held.length ? held.join(", ") : "no virtual addresses" }),
      el("dt", { text: "Connection sync" }),
      el("dd", { id: "connection-sync" }, ...connectionSync(dp.connection_sync)),
      el("dt", { text: "Up" }), el("dd", { text: uptime(st.uptime_secs) }),
    ),
  );
  // Peer sync: one block per configured peer (`/api/v1/status` `sync`).
  const sync = st.sync || { peers: [] };
  const peers = Array.isArray(sync.peers) ? sync.peers : [];
  $("peer-node").replaceChildren(...[
    el("h3", { text: "Peer" }),
    ...(peers.length ? [] : [el("p", { class: "muted", text: "no peers configured (lbd serve --peer)" })]),
    ...peers.map((p) => el("dl", { class: "peer", dataset: { address: p.address } },
          el("dt", { text: "Node" }), el("dd", { text: `${p.node || "?"} (${p.address})` }),
          el("dt", { text: "Link" }),
          el("dd", {}, el("span", {
            class: `badge ${p.reachable ? (p.in_sync ? "ok" : "warn") : "bad"}`,
            text: p.reachable ? (p.in_sync ? "in sync" : "out of sync") : "unreachable",
          }), p.master ? " master" : "",
          p.error ? el("div", { class: "err", text: p.error }) : null,
          p.refused ? el("div", { class: "err", text: `refused: ${p.refused}` }) : null),
          el("dt", { text: "Revision" }),
          el("dd", { text: `local ${p.local_revision}, peer ${p.peer_revision != null ? p.peer_revision : "–"}` }),
          el("dt", { text: "Health" }),
          el("dd", { text: p.health_disagreements.length
            ? p.health_disagreements.map((d) => `real server ${d.real_server_id}: ${d.local_up ? "up" : "down"} here, ${d.peer_up ? "up" : "down"} there`).join("; ")
            : "same view" }),
        )),
    sync.conflicts ? el("p", { class: "err", text: `${sync.conflicts} conflict record(s): GET /api/v1/conflicts` }) : null,
  ].filter((x) => x != null));
}

/** The IPVS sync daemons, the connections that came by sync and the failback gate
 * (`dataplane.connection_sync`). */
function connectionSync(cs) {
  if (!cs || (!cs.managed && !(cs.daemons || []).some((d) => d.state === "running"))) {
    return [el("span", { class: "muted", text: "not configured" })];
  }
  const out = (cs.daemons || []).map((d) => el("div", { class: "daemon", dataset: { role: d.role } },
    `${d.role} `, badge(d.state, d.state === "running" ? "ok" : d.state === "error" ? "bad" : "warn"),
    d.interface ? ` on ${d.interface}, sync id ${d.sync_id}` : "",
    d.reason ? el("div", { class: "err", text: `${d.reason.replace(/_/g, " ")}${d.detail ? `: ${d.detail}` : ""}` }) : null));
  if (cs.connections) {
    out.push(el("div", { class: "muted", text: `${cs.connections.total} connections, ${cs.connections.synced} by sync` }));
  }
  const f = cs.failback;
  if (f) {
    out.push(el("div", { class: "failback" }, "failback gate ",
      f.state === "open"
        ? badge("open", "ok")
        : badge("waiting", "warn"),
      f.state === "open"
        ? ` after ${(f.waited_ms / 1000).toFixed(1)} s (${(f.reason || "").replace(/_/g, " ")}, ${f.synced} by sync)`
        : ` for the sync stream: ${(f.waited_ms / 1000).toFixed(1)} of ${(f.bound_ms / 1000).toFixed(0)} s, ${f.synced} by sync`));
  }
  return out;
}

function uptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

function renderGroups() {
  const live = new Map((state.status ? state.status.vrrp.groups : []).map((g) => [g.name, g]));
  const node = state.status ? state.status.node : "";
  const rows = state.config.vrrp_groups.map((g) => {
    const s = live.get(g.name);
    // The master holds the addresses: this node, or the one whose adverts it hears.
    const holder = !s ? "–" : s.state === "master" ? `${node} (this node)` : s.master_address || "–";
    return el("tr", { dataset: { group: g.name } },
      el("td", { text: g.name }),
      el("td", { class: "num", text: String(g.vrid) }),
      el("td", {}, s ? vrrpBadge(s.state) : badge("not running", "warn"),
        s && s.error ? el("div", { class: "err", text: s.error }) : null),
      el("td", { class: "mono", text: g.virtual_addresses.map((v) => (typeof v === "string" ? v : [v.address, v.dev && `dev ${v.dev}`, v.label && `label ${v.label}`].filter(Boolean).join(" "))).join(", ") }),
      el("td", { text: holder }),
      el("td", {}, el("div", { class: "row-actions" },
        el("button", { type: "button", class: "small", text: "Edit", "aria-label": `Edit group ${g.name}`, onclick: () => editGroup(g) }),
        el("button", { type: "button", class: "small danger", text: "Delete", "aria-label": `Delete group ${g.name}`, onclick: () => remove(`/api/v1/vrrp-groups/${g.id}`, `VRRP group ${g.name}`) }),
      )),
    );
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No VRRP groups." })));
  $("groups").tBodies[0].replaceChildren(...rows);
}

function vsTitle(vs) {
  const where = vs.fwmark != null ? `fwmark ${vs.fwmark}` : `${vs.protocol || "tcp"} ${fmtAddr(vs.address, vs.port)}`;
  return vs.name ? `${vs.name} — ${where}` : where;
}

function fmtAddr(a, p) {
  if (p == null) return a;
  return a.includes(":") ? `[${a}]:${p}` : `${a}:${p}`;
}

function renderVirtualServers() {
  const note = $("ipvs-state");
  note.hidden = !state.ipvsError;
  note.textContent = state.ipvsError || "";
  const health = new Map((state.status ? state.status.health : []).map((h) => [h.real_server_id, h]));
  const box = $("virtual-servers");
  if (!state.config.virtual_servers.length) {
    box.replaceChildren(el("p", { class: "muted", text: "No virtual servers." }));
    return;
  }
  box.replaceChildren(...state.config.virtual_servers.map((vs) => {
    const svc = ipvsService(vs);
    const key = serviceKey(vs);
    const rows = vs.real_servers.map((rs) => {
      const h = health.get(rs.id);
      const port = rs.port ?? vs.port;
      const dest = svc ? svc.destinations.find((d) => d.address === rs.address && d.port === (port ?? 0)) : null;
      const drained = rs.weight === 0;
      return el("tr", { dataset: { rs: String(rs.id), address: fmtAddr(rs.address, port) } },
        el("td", { "data-label": "Real server", class: "mono", text: fmtAddr(rs.address, port) }),
        el("td", { "data-label": "Weight", class: `num${drained ? " drained" : ""}`, text: drained ? "0 (drained)" : String(rs.weight) }),
        el("td", { "data-label": "Health", class: "health" },
          !rs.health_check ? el("span", { class: "muted", text: "no check" })
            : !h ? badge("pending", "warn")
            : el("span", {}, badge(h.state.toUpperCase(), h.state === "up" ? "ok" : "bad"),
                el("span", { class: "muted", text: ` since ${clock(h.since_unix_ms)} (${ago(h.since_unix_ms)})` }))),
        el("td", { "data-label": "Last check error", class: "err", text: h && h.last_error ? h.last_error : "" }),
        el("td", { "data-label": "Active / inactive", class: "num", text: dest ? `${dest.active_conns} / ${dest.inactive_conns}` : "–" }),
        el("td", { "data-label": "Rates" }, dest ? charts(`${key}|${dest.address}:${dest.port}`) : el("span", { class: "muted", text: "–" })),
        el("td", { "data-label": "" }, el("div", { class: "row-actions" },
          el("button", {
            type: "button", class: "small", text: drained ? "Undrain" : "Drain",
            "aria-label": `${drained ? "Undrain" : "Drain"} ${fmtAddr(rs.address, port)}`,
            onclick: () => drain(vs, rs, !drained),
          }),
          el("button", { type: "button", class: "small", text: "Edit", "aria-label": `Edit ${fmtAddr(rs.address, port)}`, onclick: () => editRealServer(vs, rs) }),
          el("button", { type: "button", class: "small danger", text: "Delete", "aria-label": `Delete ${fmtAddr(rs.address, port)}`, onclick: () => remove(`/api/v1/virtual-servers/${vs.id}/real-servers/${rs.id}`, `real server ${fmtAddr(rs.address, port)}`) }),
        )),
      );
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No real servers." })));
    return el("article", { class: "vs", dataset: { vs: String(vs.id) }, "aria-label": vsTitle(vs) },
      el("header", {},
        el("div", {}, el("h3", { text: vsTitle(vs) }),
          el("div", { class: "meta", text: `${vs.scheduler} · ${vs.forwarding}${vs.persistence_timeout_secs ? ` · persistent ${vs.persistence_timeout_secs}s` : ""} · checks every ${vs.delay_loop_ms / 1000}s` })),
        el("div", { class: "row-actions" },
          el("button", { type: "button", class: "small", text: "Add real server", onclick: () => addRealServer(vs) }),
          el("button", { type: "button", class: "small", text: "Edit", "aria-label": `Edit ${vsTitle(vs)}`, onclick: () => editVirtualServer(vs) }),
          el("button", { type: "button", class: "small danger", text: "Delete", "aria-label": `Delete ${vsTitle(vs)}`, onclick: () => remove(`/api/v1/virtual-servers/${vs.id}`, `virtual server ${vsTitle(vs)}`) }),
        ),
      ),
      svc ? el("div", { class: "charts" }, el("span", { class: "muted", text: `${svc.stats.conns} connections in total` }), charts(key)) : null,
      el("div", { class: "rs-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Real server", "Weight", "Health", "Last check error", "Active / inactive", "Rates", ""].map((t) => el("th", { text: t })))),
        el("tbody", {}, rows),
      )),
    );
  }));
}

// ---- events ------------------------------------------------------------------------------------

function describe(e) {
  switch (e.type) {
    case "config_committed": return `revision ${e.revision} (${e.changes} change${e.changes === 1 ? "" : "s"})`;
    case "dataplane_applied": return `revision ${e.revision}: ${e.ops} kernel operation${e.ops === 1 ? "" : "s"}${e.drift ? " (drift repaired)" : ""}`;
    case "dataplane_degraded": return e.reason;
    case "vrrp_state_changed": return `${e.group} (VRID ${e.vrid}) ${e.from.toUpperCase()} → ${e.to.toUpperCase()}: ${e.reason.replaceAll("_", " ")}${e.detail ? ` (${e.detail})` : ""}`;
    case "vrrp_reconfigured": return `${e.group} (VRID ${e.vrid}) ${e.in_place ? "reconfigured in place" : "restarted"}: ${e.changes.join(", ")}`;
    case "health_changed": return `${e.target} is ${e.state.toUpperCase()}${e.error ? `: ${e.error}` : ""}`;
    case "peer_sync": return `peer ${e.peer}: ${e.kind.replaceAll("_", " ")}${e.revision != null ? ` (revision ${e.revision})` : ""}${e.detail ? `: ${e.detail}` : ""}`;
    case "vrrp_priority_changed": return `${e.group} (VRID ${e.vrid}) priority ${e.from} → ${e.to}: ${e.cause}`;
    case "vrrp_command": return `${e.group}: ${e.command} ${e.ok ? "ok" : "failed"} (${e.result})${e.output ? `: ${e.output}` : ""}`;
    case "vrrp_sync_group_changed": return `sync group ${e.sync_group} is ${e.to.toUpperCase()}`;
    case "failback_gate_opened": return `failback gate open (${e.reason.replaceAll("_", " ")}) after ${(e.waited_ms / 1000).toFixed(1)} s, ${e.synced} connection${e.synced === 1 ? "" : "s"} by sync`;
    case "quorum_changed": return `virtual server ${e.virtual_server_id} quorum ${e.up ? "UP" : "DOWN"} (alive weight ${e.alive_weight})`;
    case "quorum_command": return `virtual server ${e.virtual_server_id}: ${e.command.replaceAll("_", " ")} ${e.ok ? "ok" : "failed"} (${e.result})`;
    default: return JSON.stringify(e);
  }
}

const KIND = {
  config_committed: "committed", dataplane_applied: "applied", dataplane_degraded: "degraded",
  vrrp_state_changed: "VRRP", vrrp_reconfigured: "VRRP", health_changed: "health",
  peer_sync: "peer sync", vrrp_priority_changed: "VRRP", vrrp_command: "VRRP",
  vrrp_sync_group_changed: "VRRP", failback_gate_opened: "conn sync",
  quorum_changed: "quorum", quorum_command: "quorum",
};

function renderEvents() {
  const kind = $("event-kind").value;
  const text = $("event-text").value.trim().toLowerCase();
  const shownEvents = state.events.filter((e) =>
    (!kind || e.type === kind) && (!text || describe(e).toLowerCase().includes(text)));
  const items = shownEvents.slice(-200).reverse().map((e) =>
    el("li", { dataset: { seq: String(e.seq), type: e.type } },
      el("span", { class: "t", text: clock(e.time_unix_ms) }),
      el("span", { class: "k", text: KIND[e.type] || e.type }),
      el("span", { class: "d", text: describe(e) })));
  if (!items.length) items.push(el("li", { class: "empty", text: state.events.length ? "No event matches." : "No events yet." }));
  $("events").replaceChildren(...items);
}

function onEvent(e) {
  if (state.events.length && e.seq <= state.events[state.events.length - 1].seq) return;
  state.events.push(e);
  if (state.events.length > MAX_EVENTS) state.events.shift();
  renderEvents();
  if (e.type === "health_changed" && state.status) {
    // Shown at once; the status read that follows fills in the rest (since, last error).
    const h = state.status.health.find((x) => x.real_server_id === e.real_server_id);
    if (h) { h.state = e.state; h.since_unix_ms = e.time_unix_ms; h.last_error = e.error; }
    render();
  }
  refreshSoon();
}

function connect() {
  const live = $("live");
  // EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed.
  const since = state.events.length ? state.events[state.events.length - 1].seq : 0;
  const src = new EventSource(`/api/v1/events/stream?since=${since}`);
  src.onopen = () => { live.textContent = "live"; live.className = "badge ok"; };
  src.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch { /* not an event */ } };
  src.addEventListener("lagged", () => {
    // Dropped for falling behind: reconnect from the last event we have.
    src.close();
    live.textContent = "catching up"; live.className = "badge warn";
    setTimeout(connect, 500);
  });
  src.onerror = () => { live.textContent = "reconnecting"; live.className = "badge warn"; };
}

// ---- changes -----------------------------------------------------------------------------------

async function onConflict() {
  showBanner("Someone else changed the configuration first; the page has reloaded it. Check it and try again.", true);
  await refresh();
}

function editorDone() {
  showBanner("");
  return refresh();
}

function addVirtualServer() {
  openEditor({
    title: "Add virtual server", fields: virtualServerForm,
    base: { protocol: "tcp", scheduler: "wlc", forwarding: "dr", delay_loop_ms: 6000 },
    save: (b) => api("POST", "/api/v1/virtual-servers", b),
    done: editorDone, onConflict,
  });
}

function editVirtualServer(vs) {
  const base = structuredClone(vs);
  delete base.real_servers; // kept as they are
  openEditor({
    title: `Edit ${vsTitle(vs)}`, fields: virtualServerForm, base,
    save: (b) => api("PUT", `/api/v1/virtual-servers/${vs.id}`, b),
    done: editorDone, onConflict,
  });
}

function addRealServer(vs) {
  openEditor({
    title: `Add real server to ${vsTitle(vs)}`, fields: realServerForm,
    base: { weight: 1, health_check: { type: "tcp", connect_timeout_ms: 3000 } },
    save: (b) => api("POST", `/api/v1/virtual-servers/${vs.id}/real-servers`, b),
    done: editorDone, onConflict,
  });
}

function editRealServer(vs, rs) {
  openEditor({
    title: `Edit ${fmtAddr(rs.address, rs.port ?? vs.port)}`, fields: realServerForm, base: structuredClone(rs),
    save: (b) => api("PUT", `/api/v1/virtual-servers/${vs.id}/real-servers/${rs.id}`, b),
    done: editorDone, onConflict,
  });
}

function addGroup() {
  const node = state.status ? state.status.node : "";
  openEditor({
    title: "Add VRRP group", fields: vrrpGroupForm,
    base: { version: 2, advert_interval_ms: 1000, preempt: true, virtual_addresses: [],
      nodes: node ? [{ node, priority: 100, interface: "eth0", initial_state: "backup" }] : [] },
    save: (b) => api("POST", "/api/v1/vrrp-groups", b),
    done: editorDone, onConflict,
  });
}

function editGroup(g) {
  openEditor({
    title: `Edit VRRP group ${g.name}`, fields: vrrpGroupForm, base: structuredClone(g),
    save: (b) => api("PUT", `/api/v1/vrrp-groups/${g.id}`, b),
    done: editorDone, onConflict,
  });
}

async function write(fn) {
  try {
    await fn();
    showBanner("");
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) return onConflict();
    showBanner(e.message, true);
  }
  await refresh();
}

function remove(path, what) {
  if (!window.confirm(`Delete ${what}?`)) return;
  write(() => api("DELETE", path));
}

/** Weight 0 keeps connections but sends no new ones; undrain restores the weight it had. */
function drain(vs, rs, on) {
  const memo = `lbd.drained.${vs.id}.${rs.id}`;
  const body = structuredClone(rs);
  if (on) {
    localStorage.setItem(memo, String(rs.weight));
    body.weight = 0;
  } else {
    body.weight = Number(localStorage.getItem(memo)) || 1;
    localStorage.removeItem(memo);
  }
  write(() => api("PUT", `/api/v1/virtual-servers/${vs.id}/real-servers/${rs.id}`, body));
}

// ---- start -------------------------------------------------------------------------------------

// ---- sign-in -----------------------------------------------------------------------------------

/** The token goes in a same-site cookie, which every request of this page (the event stream's
 * too, which cannot carry an Authorization header) sends; lbd reads it only from pages of its
 * own origin. */
function showLogin(reason) {
  const f = $("login");
  f.hidden = false;
  $("login-error").textContent = reason || "";
  $("login-token").focus();
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("login-token").value.trim();
    if (!token || /[\s;,]/.test(token)) {
      $("login-error").textContent = "A token has no spaces, commas or semicolons.";
      return;
    }
    document.cookie = `lbd_token=${token}; path=/; SameSite=Strict`;
    location.reload();
  }, { once: true });
}

async function start() {
  // Without a valid token nothing else can load: ask for one first.
  try {
    await api("GET", "/api/v1/status");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showLogin(document.cookie.includes("lbd_token=") ? "That token is not valid here." : "");
      return;
    }
  }
  $("add-vs").addEventListener("click", addVirtualServer);
  $("add-group").addEventListener("click", addGroup);
  $("event-kind").addEventListener("change", renderEvents);
  $("event-text").addEventListener("input", renderEvents);
  try {
    state.events = (await api("GET", "/api/v1/events")).slice(-MAX_EVENTS);
  } catch { state.events = []; }
  renderEvents();
  await Promise.all([refresh(), loadIpvs()]);
  render();
  connect();
  // Where the kernel has no IPVS, asking every 2 s only fills the log with 503s.
  let ipvsWait = 0;
  setInterval(async () => {
    if (state.ipvsError && ++ipvsWait < IPVS_UNAVAILABLE_EVERY) return;
    ipvsWait = 0;
    await loadIpvs();
    keepingFocus(renderVirtualServers);
  }, IPVS_EVERY_MS);
  setInterval(async () => { try { await loadStatus(); render(); } catch { /* shown by refresh */ } }, STATUS_EVERY_MS);
}

start();
