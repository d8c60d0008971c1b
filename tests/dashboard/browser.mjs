// The dashboard in a real browser against a real gateway:
//   node tests/dashboard/browser.mjs <hookgate binary>
// run by .ci/run after the Rust suite (it installs Debian's Chromium, and playwright-core from
// this folder's package-lock.json). A GitHub-signed event goes to two destinations, one
// answering 200 and one 500 (dead-lettered after two attempts); the page is then driven as a
// user would: log in, read the overview, open the event, replay, replay dead letters in bulk,
// disable a destination, and try an action with a read-only key. The event carries markup in
// its body, type and delivery id: it must show as text, and the page must log no error (a
// Content-Security-Policy refusal is one). Bounded: everything stops after 120 s.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import assert from "node:assert/strict";

import { chromium } from "playwright-core";

const binary = process.argv[2];
assert.ok(binary, "usage: browser.mjs <hookgate binary>");
const ADMIN = "dashboard-test-operator-key-0123456789";
const PROBE = "<img src=x onerror=\"window.__xss=1\">";
const deadline = setTimeout(() => {
  console.error("dashboard browser test: timed out after 120 s");
  process.exit(1);
}, 120_000);

const dir = mkdtempSync(join(tmpdir(), "hookgate-dashboard-"));
let gateway;
let browser;
const receiver = createServer((req, res) => {
  req.resume();
  res.statusCode = { "/ok": 200, "/gone": 410 }[req.url] || 500;
  res.end(req.url === "/ok" ? "thanks" : "down");
});

function cleanup() {
  if (gateway) gateway.kill("SIGKILL");
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}

async function startGateway() {
  const config = join(dir, "hookgate.toml");
  writeFileSync(config, [
    "[server]", 'listen = "127.0.0.1:0"',
    "[storage]", `data_dir = "${join(dir, "data")}"`,
    "[admin]", `api_key = "${ADMIN}"`,
    "[delivery]", "allow_private_networks = true",
    "[log]", 'level = "warn"', "",
  ].join("\n"));
  gateway = spawn(binary, ["serve", "--config", config], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: gateway.stdout });
  for await (const line of lines) {
    const m = line.match(/^hookgate ready listen=(.+)$/);
    if (m) return "http://" + m[1];
  }
  throw new Error("the gateway exited before it was ready");
}

async function call(base, key, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: "Bearer " + key, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
}

async function until(what, f) {
  for (let i = 0; i < 200; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("timed out waiting for " + what);
}

try {
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const rx = "http://127.0.0.1:" + receiver.address().port;
  const base = await startGateway();

  // An account with a GitHub source routed to a healthy and a failing destination.
  const created = await call(base, ADMIN, "POST", "/v1/accounts", { name: "Acme <b>Corp</b>" });
  const key = created.api_key;
  const secret = "dashboard-secret";
  const source = await call(base, key, "POST", "/v1/sources", { name: "github", kind: "webhook", verification: { provider: "github", secret } });
  const ok = await call(base, key, "POST", "/v1/destinations", { name: "billing", url: rx + "/ok" });
  const failing = await call(base, key, "POST", "/v1/destinations", { name: "search", url: rx + "/fail", retry: { schedule: ["100ms"], jitter: false } });
  for (const d of [ok, failing]) {
    await call(base, key, "POST", "/v1/routes", { source_id: source.id, destination_id: d.id, event_type_pattern: "pull_request.*" });
  }
  const body = JSON.stringify({ action: "opened", title: PROBE });
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  const ingest = await fetch(base + source.ingest_path, {
    method: "POST",
    headers: { "content-type": "application/json", "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "<b>d-1</b>", "X-Hub-Signature-256": signature },
    body,
  });
  assert.equal(ingest.status, 200);
  const eventId = (await ingest.json()).data.event_id;
  await until("one delivery delivered and one dead-lettered", async () => {
    const ds = await call(base, key, "GET", `/v1/events/${eventId}/deliveries`);
    return ds.map((d) => d.status).sort().join() === "dead_letter,delivered";
  });
  // A destination that answers 410 Gone: hookgate disables it and leaves a notice.
  const gone = await call(base, key, "POST", "/v1/destinations", { name: "legacy", url: rx + "/gone" });
  await call(base, key, "POST", "/v1/routes", { source_id: source.id, destination_id: gone.id, event_type_pattern: "ping" });
  const ping = "{}";
  const pinged = await fetch(base + source.ingest_path, {
    method: "POST",
    headers: { "X-GitHub-Event": "ping", "X-GitHub-Delivery": "p-1", "X-Hub-Signature-256": "sha256=" + createHmac("sha256", secret).update(ping).digest("hex") },
    body: ping,
  });
  assert.equal(pinged.status, 200);
  await until("the 410 destination to be disabled", async () => !(await call(base, key, "GET", `/v1/destinations/${gone.id}`)).enabled);
  const readOnly = (await call(base, key, "POST", "/v1/api-keys", { name: "viewer", scope: "read-only" })).key;

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    // 401/403 answers the test provokes on purpose show as failed resource loads.
    if (m.type() === "error" && !/status of 40[13]/.test(m.text())) problems.push("console: " + m.text());
  });
  page.on("dialog", (d) => d.accept());
  const main = page.locator("#main");
  // SCREENSHOT_DIR=/some/dir keeps a picture of each page, for looking at the layout.
  const shot = async (name) => process.env.SCREENSHOT_DIR && page.screenshot({ path: join(process.env.SCREENSHOT_DIR, name + ".png"), fullPage: true });

  // A wrong key is refused and not kept.
  await page.goto(base + "/dashboard");
  assert.equal(await page.locator("#nav").isVisible(), false, "no navigation before a key is given");
  await page.fill("input[type=password]", "hk_wrong");
  await page.click("button[type=submit]");
  await main.getByText("That key was refused.").waitFor();

  // The overview.
  await page.fill("input[type=password]", key);
  await page.click("button[type=submit]");
  await main.locator("h1", { hasText: "Acme <b>Corp</b>" }).waitFor();
  const stat = (label) => main.locator(".stat").filter({ has: page.getByText(label, { exact: true }) }).locator("b").innerText();
  assert.equal(await stat("sources"), "1");
  assert.equal(await stat("destinations"), "3");
  assert.equal(await stat("disabled destinations"), "1");
  assert.equal(await stat("dead letters"), "1");
  await main.locator("tr", { hasText: "legacy" }).first().waitFor();
  await main.locator("td", { hasText: "endpoint.disabled" }).waitFor();
  assert.equal(await page.locator("#who").innerText(), "Acme <b>Corp</b>");
  assert.ok(!(await main.innerText()).includes("null"), "nothing renders as 'null'");
  await shot("overview");

  // The events list, then the event: body, delivery id and type as text, never as markup.
  await page.click("#nav >> text=Events");
  await main.locator("td", { hasText: "pull_request.opened" }).waitFor();
  await shot("events");
  // The provider's delivery id finds it (the other event is filtered out).
  await main.locator("input[name=dedupe_key]").fill("<b>d-1</b>");
  await main.locator("button", { hasText: "Filter" }).click();
  await main.locator("td", { hasText: "ping" }).waitFor({ state: "detached" });
  await main.locator("td", { hasText: "pull_request.opened" }).waitFor();
  assert.equal(await main.locator("tbody tr").count(), 1);
  await page.click(`a[href="#/events/${eventId}"]`);
  await main.locator("h2", { hasText: "Attempts" }).waitFor();
  assert.equal(await main.locator("pre.body").textContent(), body, "the exact body, as text");
  await main.locator("dd", { hasText: "<b>d-1</b>" }).waitFor();
  await shot("event");
  assert.equal(await main.locator("img, b:has-text('d-1')").count(), 0, "no markup from the event became elements");
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  const rows = main.locator("table").nth(0).locator("tbody tr");
  assert.equal(await rows.count(), 2);
  const searchRow = rows.filter({ hasText: "search" });
  await searchRow.locator(".badge", { hasText: "dead letter" }).waitFor();
  await rows.filter({ hasText: "billing" }).locator(".badge", { hasText: "delivered" }).waitFor();
  assert.equal(await main.locator("h2:has-text('Attempts') + table tbody tr").count(), 3, "one attempt to billing, two to search");

  // Replay of the dead letter: queued again, and tried again (the receiver still fails).
  const before = (await call(base, key, "GET", `/v1/events/${eventId}/attempts`)).length;
  await searchRow.locator("button", { hasText: "Replay" }).click();
  await page.locator("#toast").getByText("Replay: 1 queued").waitFor();
  await until("the replayed delivery to be attempted", async () => (await call(base, key, "GET", `/v1/events/${eventId}/attempts`)).length > before);

  // Dead letters list and the destinations page; disabling through the page reaches the API.
  await page.click("#nav >> text=Deliveries");
  await main.locator("a", { hasText: "dead letters" }).click();
  await main.locator("b", { hasText: "dead letters" }).waitFor();
  await shot("dead-letters");
  await until("the replayed delivery to be a dead letter again", async () =>
    (await call(base, key, "GET", `/v1/events/${eventId}/deliveries`)).some((d) => d.status === "dead_letter"));
  const attempts = (await call(base, key, "GET", `/v1/events/${eventId}/attempts`)).length;
  await main.locator("button", { hasText: "Replay these dead letters" }).click();
  await page.locator("#toast").getByText("1 delivery queued again").waitFor();
  await until("the bulk replay to be attempted", async () => (await call(base, key, "GET", `/v1/events/${eventId}/attempts`)).length > attempts);
  await page.click("#nav >> text=Destinations");
  const searchDest = main.locator("tr", { hasText: "search" });
  await searchDest.locator("button", { hasText: "Disable" }).click();
  await main.locator("tr", { hasText: "search" }).locator(".badge", { hasText: "disabled" }).waitFor();
  await shot("destinations");
  assert.equal((await call(base, key, "GET", `/v1/destinations/${failing.id}`)).enabled, false);
  await page.click("#nav >> text=Routes");
  await main.locator("h1", { hasText: "Routes" }).waitFor();
  assert.equal(await main.locator("tbody tr").count(), 3);
  await page.click("#nav >> text=Sources");
  await main.getByText(base + source.ingest_path).waitFor();

  // Set up a whole path through the forms: a source, a destination, a route; then an event
  // sent to the new source's URL reaches the receiver, and deleting the route is seen by the API.
  const form = (title) => main.locator("details.panel", { hasText: title });
  const field = (title, label) => form(title).locator("label", { hasText: label }).locator("input, select");
  await main.getByText("New source").click();
  await field("New source", "name").fill("shop");
  await field("New source", "signature").selectOption("none");
  await form("New source").locator("button", { hasText: "Create" }).click();
  const shopUrl = await main.locator(".notice .mono").innerText();
  assert.ok(shopUrl.startsWith(base + "/ingest/"), shopUrl);
  await page.click("#nav >> text=Destinations");
  await main.getByText("New destination").click();
  await field("New destination", "name").fill("orders");
  await field("New destination", "url").fill(rx + "/ok");
  await form("New destination").locator("button", { hasText: "Create" }).click();
  assert.match(await main.locator(".notice .mono").innerText(), /^whsec_/);
  await shot("destinations-created");
  await page.click("#nav >> text=Routes");
  await main.getByText("New route").click();
  await field("New route", "from").selectOption({ label: "shop" });
  await field("New route", "to").selectOption({ label: "orders" });
  await field("New route", "event types").fill("orders/*");
  await form("New route").locator("button", { hasText: "Create" }).click();
  await main.locator("td", { hasText: "orders/*" }).waitFor();
  await shot("routes");
  const sent = await fetch(shopUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "orders/create" }) });
  assert.equal(sent.status, 200);
  const shopEvent = (await sent.json()).data.event_id;
  await until("the event sent through the new route to be delivered", async () =>
    (await call(base, key, "GET", `/v1/events/${shopEvent}/deliveries`)).some((d) => d.status === "delivered"));
  const routesBefore = (await call(base, key, "GET", "/v1/routes")).length;
  await main.locator("tr", { hasText: "orders/*" }).locator("button", { hasText: "Delete" }).click();
  await main.locator("td", { hasText: "orders/*" }).waitFor({ state: "detached" });
  assert.equal((await call(base, key, "GET", "/v1/routes")).length, routesBefore - 1);

  // A read-only key can look but not act; the page says why.
  await page.click("#logout");
  await page.fill("input[type=password]", readOnly);
  await page.click("button[type=submit]");
  await page.click("#nav >> text=Destinations");
  await main.locator("tr", { hasText: "search" }).locator("button", { hasText: "Enable" }).click();
  await page.locator("#toast").getByText("needs a full key").waitFor();
  assert.equal((await call(base, key, "GET", `/v1/destinations/${failing.id}`)).enabled, false);

  assert.deepEqual(problems, [], "the page logged errors");
  console.log("dashboard browser test: ok");
} catch (e) {
  console.error("dashboard browser test failed:", e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  cleanup();
  clearTimeout(deadline);
}
