// The dashboard in headless Chromium (Debian's /usr/bin/chromium, driven over the DevTools
// protocol by playwright-core) against a running lbd: LBD_URL=http://127.0.0.1:PORT.
// Exits non-zero on the first failed check. Screenshots go to $SHOTS (default ./out).

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import assert from "node:assert/strict";

const base = process.env.LBD_URL;
assert.ok(base, "LBD_URL must name the running lbd");
const shots = process.env.SHOTS || new URL("./out", import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const WAIT = 15_000;

async function json(path, init) {
  const r = await fetch(base + path, init);
  const body = await r.json();
  return { status: r.status, etag: r.headers.get("etag"), body };
}

/** A TCP listener the test owns: the real server's health check connects to it. */
function listen() {
  const sockets = new Set();
  const server = net.createServer((s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); s.end(); });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    port: server.address().port,
    close: () => new Promise((done) => { for (const s of sockets) s.destroy(); server.close(done); }),
  })));
}

function step(name) { console.log(`-- ${name}`); }

const profile = mkdtempSync(join(tmpdir(), "lbd-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic"],
});
let failed = false;
try {
  const page = context.pages()[0] || await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // The 412, the 422 and (without IPVS) the 503 are this test's doing; any other is not.
  const expected = /status of (412|422|503) /;
  page.on("console", (m) => {
    if (m.type() === "error" && !expected.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on("dialog", (d) => d.accept());
  // Nothing but lbd itself: no CDN, no internet.
  page.on("request", (r) => { if (!r.url().startsWith(base)) problems.push(`request outside lbd: ${r.url()}`); });

  step("the page loads and goes live");
  await page.goto(base + "/");
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: WAIT });
  await page.locator("#peer-node", { hasText: "no peers configured" }).waitFor();
  await page.locator("#this-node", { hasText: "This node: " }).waitFor();
  await page.evaluate(() => { window.__sameLoad = true; });

  step("a virtual server through the form");
  const backend = await listen();
  await page.getByRole("button", { name: "Add virtual server" }).click();
  const form = page.locator("#editor");
  await form.getByLabel("Name").fill("web");
  await form.getByLabel("Address").fill("192.168.10.100");
  await form.getByLabel("Port", { exact: true }).fill("80");
  await form.getByLabel("Check interval (ms)").fill("1000");
  await form.getByRole("button", { name: "Save" }).click();
  const vs = page.locator("article.vs", { hasText: "web — tcp 192.168.10.100:80" });
  await vs.waitFor({ timeout: WAIT });
  const vsId = Number(await vs.getAttribute("data-vs"));

  step("a validation error is shown next to its field");
  await vs.getByRole("button", { name: "Add real server" }).click();
  // The port stays the virtual server's (DR cannot change it); the check goes to the listener.
  await form.getByLabel("Address").fill("127.0.0.1");
  await form.getByLabel("Weight", { exact: true }).fill("70000");
  await form.getByLabel("Check port").fill(String(backend.port));
  await form.getByLabel("Check timeout (ms)").fill("500");
  await form.getByRole("button", { name: "Save" }).click();
  const weightField = form.locator('.field[data-field="weight"]');
  await weightField.locator(".field-error", { hasText: "weight must be in 0..=65535, got 70000" }).waitFor({ timeout: WAIT });
  assert.equal(await weightField.locator("input").getAttribute("aria-invalid"), "true");
  assert.equal(await form.locator(".field-error:visible").count(), 1, "only the weight is in error");

  step("the real server through the form, with a TCP check on the test's listener");
  await form.getByLabel("Weight", { exact: true }).fill("5");
  await form.getByRole("button", { name: "Save" }).click();
  const addr = "127.0.0.1:80";
  const row = vs.locator(`tr[data-address="${addr}"]`);
  await row.waitFor({ timeout: WAIT });
  await row.locator("td.health", { hasText: "UP" }).waitFor({ timeout: WAIT });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(shots, "desktop.png") });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, "phone.png") });
  await page.screenshot({ path: join(shots, "phone-full.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  step("a health change arrives live, without a reload");
  await backend.close();
  await row.locator("td.health", { hasText: "DOWN" }).waitFor({ timeout: WAIT });
  await page.locator("#events li[data-type=health_changed]", { hasText: `127.0.0.1:${backend.port} is DOWN` }).waitFor({ timeout: WAIT });
  assert.equal(await page.evaluate(() => window.__sameLoad), true, "the page was not reloaded");

  step("the event list filters");
  await page.getByLabel("Kind").selectOption("health_changed");
  assert.ok(await page.locator("#events li[data-type]").count() >= 1);
  assert.equal(await page.locator("#events li[data-type=config_committed]").count(), 0);
  await page.getByLabel("Kind").selectOption("");

  step("drain in one click: weight 0 in /api/v1/config");
  await row.getByRole("button", { name: `Drain ${addr}` }).click();
  await row.locator("td", { hasText: "0 (drained)" }).waitFor({ timeout: WAIT });
  let cfg = (await json("/api/v1/config")).body;
  let rs = cfg.virtual_servers.find((v) => v.id === vsId).real_servers.find((r) => r.address === "127.0.0.1");
  assert.equal(rs.weight, 0);
  assert.equal(rs.health_check.connect_port, backend.port, "the drain changed the weight only");
  await row.getByRole("button", { name: `Undrain ${addr}` }).click();
  await row.locator("td.num", { hasText: /^5$/ }).waitFor({ timeout: WAIT });
  cfg = (await json("/api/v1/config")).body;
  rs = cfg.virtual_servers.find((v) => v.id === vsId).real_servers.find((r) => r.address === "127.0.0.1");
  assert.equal(rs.weight, 5, "undrain restores the weight");

  step("someone else's change first: 412, the page says so and reloads");
  await vs.getByRole("button", { name: "Edit web — tcp 192.168.10.100:80" }).click();
  const other = await json("/api/v1/vrrp-groups", {
    method: "POST",
    body: JSON.stringify({ name: "VI_1", vrid: 51, virtual_addresses: ["192.168.10.100/24"],
      // An interface that does not exist: the group is shown, and never sends an advert.
      nodes: [{ node: "lk01", priority: 100, interface: "lbdtest0", initial_state: "backup" }] }),
  });
  assert.equal(other.status, 201);
  await form.getByLabel("Name").fill("web2");
  await form.getByRole("button", { name: "Save" }).click();
  await page.locator("#banner", { hasText: "Someone else changed the configuration first" }).waitFor({ timeout: WAIT });
  await page.locator("#groups tr[data-group=VI_1]").waitFor({ timeout: WAIT });
  cfg = (await json("/api/v1/config")).body;
  assert.equal(cfg.virtual_servers.find((v) => v.id === vsId).name, "web", "the stale edit was refused");
  assert.equal(await page.locator("#revision").textContent(), String(cfg.revision));

  step("edit and delete after a reload of the data");
  await vs.getByRole("button", { name: "Edit web — tcp 192.168.10.100:80" }).click();
  await form.getByLabel("Scheduler").selectOption("wrr");
  await form.getByRole("button", { name: "Save" }).click();
  await vs.locator(".meta", { hasText: "wrr" }).waitFor({ timeout: WAIT });
  cfg = (await json("/api/v1/config")).body;
  const edited = cfg.virtual_servers.find((v) => v.id === vsId);
  assert.equal(edited.scheduler, "wrr");
  assert.equal(edited.real_servers.length, 1, "editing a virtual server keeps its real servers");
  await page.getByRole("button", { name: "Delete group VI_1" }).click();
  await page.locator("#groups", { hasText: "No VRRP groups." }).waitFor({ timeout: WAIT });

  step("connection sync: the daemons and the connections by sync on this node's card");
  const sync = page.locator("#connection-sync");
  await sync.filter({ hasText: "not configured" }).waitFor({ timeout: WAIT });
  const put = await json("/api/v1/connection-sync", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ interface: "lo", sync_id: 7 }),
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  // Both roles, each running (a kernel with IPVS) or in error with the kernel's reason.
  for (const role of ["master", "backup"]) {
    const d = sync.locator(`.daemon[data-role=${role}]`);
    await d.waitFor({ timeout: WAIT });
    const text = await d.textContent();
    assert.match(text, /running on lo, sync id 7|error/, text);
  }
  const del = await fetch(base + "/api/v1/connection-sync", { method: "DELETE" });
  assert.equal(del.status, 200);
  await sync.filter({ hasText: "not configured" }).waitFor({ timeout: WAIT });

  step("without IPVS the page says so; with it, rates become small live charts");
  const ipvs = await fetch(base + "/api/v1/ipvs");
  if (ipvs.status === 503) {
    await page.locator("#ipvs-state", { hasText: "No IPVS table to show" }).waitFor({ timeout: WAIT });
  } else {
    assert.equal(ipvs.status, 200);
    assert.equal(await page.locator("#ipvs-state").isVisible(), false);
  }
  // The rates come from a table the test serves in place of /api/v1/ipvs: this checks the
  // page's drawing of them, wherever the test runs (the API's own answers are tested in Rust).
  let tick = 0;
  await page.route("**/api/v1/ipvs", (route) => {
    tick++;
    const stats = (k) => ({ conns: 1000 * k + tick, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0,
      cps: k * (5 + (tick % 4)), inpps: 0, outpps: 0, inbps: k * 20000 * (1 + (tick % 3)), outbps: k * 3000 });
    route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ services: [{
      protocol: "tcp", address: "192.168.10.100", port: 80, family: "ipv4", scheduler: "wrr", flags: 0,
      timeout_secs: 0, netmask_prefix: 32, stats: stats(2),
      destinations: [{ address: "127.0.0.1", port: 80, forwarding: "dr", weight: 5, upper_threshold: 0,
        lower_threshold: 0, active_conns: 12, inactive_conns: 30, persistent_conns: 0, stats: stats(1) }],
    }] }) });
  });
  // A group again for the picture (its interface does not exist: it is shown disabled).
  const group = await json("/api/v1/vrrp-groups", {
    method: "POST",
    body: JSON.stringify({ name: "VI_1", vrid: 51, virtual_addresses: ["192.168.10.100/24"],
      nodes: [{ node: "lk01", priority: 100, interface: "lbdtest0", initial_state: "backup" }] }),
  });
  assert.equal(group.status, 201);
  await page.reload();
  await page.locator("#groups tr[data-group=VI_1]", { hasText: "DISABLED" }).waitFor({ timeout: WAIT });
  await vs.locator(".charts svg polyline").first().waitFor({ timeout: WAIT });
  await row.locator("svg polyline").first().waitFor({ timeout: WAIT });
  assert.equal(await row.locator("td.num", { hasText: "12 / 30" }).count(), 1);
  assert.match(await row.locator(".chart .val").first().textContent(), /\/s$/);
  await page.waitForTimeout(10000); // a few more points
  await page.screenshot({ path: join(shots, "desktop-charts.png") });
  await page.screenshot({ path: join(shots, "desktop-full.png"), fullPage: true });

  assert.deepEqual(problems, [], "no page errors, nothing fetched from outside lbd");
  console.log("ok: dashboard");
} catch (e) {
  failed = true;
  console.error(e);
  try {
    const p = context.pages()[0];
    if (p) await p.screenshot({ path: join(shots, "failure.png"), fullPage: true });
  } catch { /* the failure is what matters */ }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
