// The dashboard against an lbd that asks for tokens (LBD_URL, started with --token-file holding
// LBD_TOKEN as admin): the page asks for a token, refuses a wrong one, and with the right one
// loads and goes live (the event stream too, through the same-site cookie).

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.env.LBD_URL;
const token = process.env.LBD_TOKEN;
assert.ok(base && token, "LBD_URL and LBD_TOKEN must be set");
const WAIT = 15_000;

// The API itself refuses a call without the token.
assert.equal((await fetch(base + "/api/v1/status")).status, 401);

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
  console.log("-- without a token the page asks for one");
  await page.goto(base + "/");
  await page.locator("#login").waitFor({ state: "visible", timeout: WAIT });
  assert.equal(await page.locator("#live").textContent(), "connecting");
  console.log("-- a wrong token is refused");
  await page.fill("#login-token", "not-the-token-of-this-lbd");
  await page.click("#login button[type=submit]");
  await page.locator("#login-error", { hasText: "not valid" }).waitFor({ timeout: WAIT });
  console.log("-- the right one loads the dashboard and its live event stream");
  await page.fill("#login-token", token);
  await page.click("#login button[type=submit]");
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: WAIT });
  assert.ok(await page.locator("#login").isHidden());
  await page.locator("#node-name", { hasText: "lk01" }).waitFor({ timeout: WAIT });
  assert.deepEqual(problems, []);
  console.log("ok: login");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
