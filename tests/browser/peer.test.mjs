// The dashboard of the second director of a peered pair (LBD_URL: lk02, LBD_PEER_URL: lk01, both
// started with --peer): the peer panel shows lk01 in sync, a virtual server created through
// lk01's API appears on lk02's page by the live stream, and the event list says where it came
// from.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.env.LBD_URL;
const peer = process.env.LBD_PEER_URL;
assert.ok(base && peer, "LBD_URL and LBD_PEER_URL must be set");
const WAIT = 15_000;

const profile = mkdtempSync(join(tmpdir(), "lbd-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic"],
});
let failed = false;
try {
  const page = context.pages()[0] || await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(base + "/");
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: WAIT });
  console.log("-- the peer panel shows lk01, in sync");
  await page.locator("#peer-node", { hasText: "lk01" }).waitFor({ timeout: WAIT });
  await page.locator("#peer-node .badge", { hasText: "in sync" }).waitFor({ timeout: WAIT });
  console.log("-- a virtual server created on lk01 appears on lk02's page");
  const r = await fetch(peer + "/api/v1/virtual-servers", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ address: "192.168.10.100", port: 8443, real_servers: [{ address: "192.168.10.103" }] }),
  });
  assert.equal(r.status, 201);
  await page.locator("#virtual-servers", { hasText: "192.168.10.100:8443" }).waitFor({ timeout: WAIT });
  await page.locator("#events", { hasText: "peer" }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: "out/peer.png", fullPage: true });
  assert.deepEqual(problems, []);
  console.log("ok: peer");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
