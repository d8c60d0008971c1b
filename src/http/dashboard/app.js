// hookgate dashboard. Plain script, no build step and no dependencies: it is compiled into the
// gateway binary. Everything shown comes from the /v1 API with the key typed in; anything that
// came from outside (bodies, headers, names, URLs, error texts) reaches the page only as text
// (textContent), never as markup.
"use strict";

const KEY = "hookgate.api_key";
const PAGE = 50;

// --- API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY);
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + apiKey() };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network", "the gateway did not answer (" + e.message + ")");
  }
  let json = null;
  try {
    json = await res.json();
  } catch (_) {
    // A non-JSON answer (a proxy's error page, say) is reported by status below.
  }
  if (!res.ok) {
    const err = (json && json.error) || {};
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      render();
    }
    throw new ApiError(res.status, err.code || "http_" + res.status, err.message || res.statusText);
  }
  return json;
}

const get = (path) => api("GET", path);
const post = (path, body) => api("POST", path, body === undefined ? {} : body);

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

// Reads a list page after page (cursor to cursor) until it ends, `enough` says so, or
// `maxPages` were read; returns the items and whether the list went on.
async function collect(path, limit, enough, maxPages) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const page = await get(path + (path.includes("?") ? "&" : "?") + query({ limit, cursor }).slice(1));
    items.push(...page.data);
    cursor = page.next_cursor;
    if (!cursor || enough(items)) break;
  }
  return { items, more: Boolean(cursor) };
}

// Every item of a list (lists of configuration are short; events are paged by the user).
async function all(path) {
  return (await collect(path, 250, () => false, 100)).items;
}

// How many items a list has, counted up to `cap` ("250+" past it). Queue pages scan a bounded
// stretch of a queue shared by all accounts, so short pages are followed, a bounded number of
// times; a count that stopped early says so with "+".
async function countUpTo(path, cap) {
  const { items, more } = await collect(path, cap, (got) => got.length >= cap, 50);
  return Math.min(items.length, cap) + (more || items.length > cap ? "+" : "");
}

// After an action whose effect shows a moment later (a replay is queued, then attempted): draws
// the page again, unless the user has moved to another page since it was asked for.
function refreshSoon() {
  const turn = rendering;
  return () => setTimeout(() => {
    if (turn === rendering) render();
  }, 800);
}

// --- DOM helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const main = () => document.getElementById("main");

let rendering = 0;

// A view's way to put itself on the page, bound to the navigation that started it: a slow view
// finishing after the user has moved on must not replace the page they moved to. Call it
// before the view's first await.
function stage() {
  const turn = rendering;
  return (...nodes) => {
    if (turn === rendering) main().replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  };
}

function toast(message, bad) {
  const box = h("div", { class: bad ? "bad" : "" }, message);
  document.getElementById("toast").append(box);
  setTimeout(() => box.remove(), bad ? 8000 : 4000);
}

// API errors have a code; anything else (a bug here) still gets a readable line.
function describe(e) {
  return (e.code || "error") + ": " + e.message;
}

function errorBox(e) {
  const scope = e.status === 403 ? " (this key's scope does not allow it)" : "";
  return h("div", { class: "error" }, describe(e) + scope);
}

function badge(status) {
  return h("span", { class: "badge s-" + status }, String(status).replace("_", " "));
}

function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const d = new Date(iso);
  return h("span", { title: iso }, d.toLocaleString());
}

function link(href, text) {
  return h("a", { href }, text);
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty || "Nothing here.");
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c)))))));
}

const mono = (text) => h("td", { class: "mono" }, text);

// A table over a list whose pages scan a bounded stretch (events, the queue): a page can be
// empty and still have a cursor, so each load reads on until something shows or the list ends.
// `load` is the first load and the "Load more" button's.
function pagedTable(headers, path, params, row, empty) {
  const body = h("tbody");
  const more = h("button", { type: "button" }, "Load more");
  let cursor = null;
  const load = async () => {
    let added = 0;
    for (let i = 0; i < 20 && added === 0; i++) {
      const page = await get(path + query({ ...params, limit: PAGE, cursor }));
      for (const item of page.data) {
        added++;
        body.append(row(item));
      }
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    more.hidden = !cursor;
    placeholder(body, headers.length, cursor ? "Nothing yet in the stretch read so far." : empty);
  };
  more.addEventListener("click", () => act(more, load));
  const table = h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), body);
  return { table, more, load };
}

// The one row an empty table body shows, replaced as soon as rows arrive.
function placeholder(body, columns, text) {
  for (const row of body.querySelectorAll("tr.placeholder")) row.remove();
  if (!body.children.length) body.append(h("tr", { class: "placeholder" }, h("td", { colspan: columns, class: "muted" }, text)));
}

// Runs an action from a button: disables it meanwhile, reports the outcome.
async function act(button, fn, done) {
  button.disabled = true;
  try {
    const out = await fn();
    if (done) toast(done(out));
    return out;
  } catch (e) {
    toast(describe(e) + (e.status === 403 ? " (needs a full key)" : ""), true);
  } finally {
    button.disabled = false;
  }
}

// --- Names of sources and destinations ----------------------------------------------------

let names = null;

async function loadNames(force) {
  if (names && !force) return names;
  const turn = rendering;
  const [sources, destinations] = await Promise.all([all("/v1/sources"), all("/v1/destinations")]);
  const loaded = {
    sources: new Map(sources.map((s) => [s.id, s])),
    destinations: new Map(destinations.map((d) => [d.id, d])),
  };
  // Names read for a navigation since left (maybe with a key since forgotten) are not kept; the
  // view that asked for them is not shown either.
  if (turn === rendering) names = loaded;
  return loaded;
}

function sourceName(id) {
  if (id === "src_00000000000000000000000000") return h("span", { class: "muted" }, "hookgate");
  const s = names && names.sources.get(id);
  return s ? s.name : h("span", { class: "mono" }, id);
}

function destinationName(id) {
  const d = names && names.destinations.get(id);
  return d ? d.name : h("span", { class: "mono" }, id);
}

// A folded "New …" form: `fields` are labelled inputs, `submit` turns their values into the API
// call. On success the page is drawn again (with `after` shown above it, once).
let shownOnce = null;

function createPanel(title, fields, submit) {
  const button = h("button", { type: "submit", class: "primary" }, "Create");
  const form = h("form", {
    class: "card create", onsubmit: async (ev) => {
      ev.preventDefault();
      const out = await act(button, submit);
      if (out) {
        shownOnce = out;
        render();
      }
    },
  }, fields.map(([label, input]) => h("label", {}, h("span", {}, label), input)), h("div", {}, button));
  return h("details", { class: "panel" }, h("summary", {}, title), form);
}

// A message a create left for the page drawn after it.
function takeShownOnce() {
  const out = shownOnce;
  shownOnce = null;
  return out ? h("div", { class: "card notice" }, out) : null;
}

const input = (attrs) => h("input", attrs);
const options = (pairs, selected) => pairs.map(([value, label]) => h("option", { value, selected: value === selected }, label));

// --- Views ---------------------------------------------------------------------------------

async function overview() {
  const show = stage();
  const [acct, n, queued, dead, recent] = await Promise.all([
    get("/v1/account"),
    loadNames(true),
    countUpTo("/v1/deliveries", 250),
    countUpTo("/v1/deliveries?status=dead_letter", 250),
    get("/v1/notices"),
  ]);
  const destinations = [...n.destinations.values()];
  const disabled = destinations.filter((d) => !d.enabled);
  const blocked = destinations.filter((d) => d.blocked_by);
  const stat = (value, label, href) => h("a", { class: "card stat", href }, h("b", {}, value), h("span", {}, label));
  show(
    h("h1", {}, acct.data.name),
    h("div", { class: "grid" },
      stat(n.sources.size, "sources", "#/sources"),
      stat(destinations.length, "destinations", "#/destinations"),
      stat(disabled.length, "disabled destinations", "#/destinations"),
      stat(queued, "deliveries queued", "#/deliveries"),
      stat(dead, "dead letters", "#/deliveries/dead_letter")),
    disabled.length ? [h("h2", {}, "Disabled destinations"),
      table(["destination", "reason", "url"], disabled.map((d) => [link("#/destinations", d.name), d.disabled_reason || "disabled by hand", mono(d.url)]))] : null,
    blocked.length ? [h("h2", {}, "FIFO destinations waiting on a failing head"),
      table(["destination", "head event", "next attempt"], blocked.map((d) => [d.name, link("#/events/" + d.blocked_by.event_id, d.blocked_by.event_id), when(d.blocked_by.next_attempt_at)]))] : null,
    h("h2", {}, "Latest notices"),
    noticeTable(recent.data.slice(0, 5)),
    h("p", { class: "muted" }, "Account ", h("span", { class: "mono" }, acct.data.id), ", created ", when(acct.data.created_at),
      ". Retention: ", acct.data.retention_days == null ? "the gateway's default" : acct.data.retention_days + " days", "."),
  );
}

function noticeTable(items) {
  return table(["when", "kind", "destination", "message"],
    items.map((x) => [when(x.created_at), x.type, x.destination_id ? destinationName(x.destination_id) : "", x.message]),
    "No notices: hookgate has not had to act on its own.");
}

async function notices() {
  const show = stage();
  await loadNames();
  // The newest 100; the API keeps no older page.
  const items = (await get("/v1/notices")).data;
  show(h("h1", {}, "Notices"), noticeTable(items));
}

async function events(params) {
  const show = stage();
  await loadNames();
  const filters = {
    status: params.get("status") || "",
    source_id: params.get("source_id") || "",
    event_type: params.get("event_type") || "",
    dedupe_key: params.get("dedupe_key") || "",
  };
  const status = h("select", { name: "status" }, ["", "received", "queued", "retry_scheduled", "delivered", "dead_letter"]
    .map((s) => h("option", { value: s, selected: s === filters.status }, s ? s.replace("_", " ") : "any status")));
  const source = h("select", { name: "source_id" }, h("option", { value: "" }, "any source"),
    [...names.sources.values()].map((s) => h("option", { value: s.id, selected: s.id === filters.source_id }, s.name)));
  const type = h("input", { name: "event_type", placeholder: "event type (exact)", value: filters.event_type });
  const delivery = h("input", { name: "dedupe_key", placeholder: "provider delivery id", value: filters.dedupe_key });
  const apply = () => {
    location.hash = "#/events" + query({ status: status.value, source_id: source.value, event_type: type.value.trim(), dedupe_key: delivery.value.trim() });
  };
  const list = pagedTable(["received", "event", "type", "source", "origin", "status"], "/v1/events", filters,
    (e) => h("tr", {}, h("td", {}, when(e.received_at)), h("td", { class: "mono" }, link("#/events/" + e.id, e.id)),
      h("td", {}, e.event_type || h("span", { class: "muted" }, "—")), h("td", {}, sourceName(e.source_id)),
      h("td", {}, e.origin), h("td", {}, badge(e.status))),
    "No events match.");
  show(h("h1", {}, "Events"),
    h("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); apply(); } }, status, source, type, delivery, h("button", { type: "submit" }, "Filter")),
    list.table, h("p", {}, list.more));
  status.addEventListener("change", apply);
  source.addEventListener("change", apply);
  await list.load();
}

// The exact stored bytes. Reformatting JSON here would show something else than what was
// received and forwarded (JavaScript numbers lose 64-bit ids, duplicate keys vanish), and what
// was received is the point of this page.
function exactBody(e) {
  if (e.body === null || e.body === undefined) {
    return [h("p", { class: "muted" }, "The body is not UTF-8; base64 of its exact bytes:"), h("pre", { class: "body" }, e.body_base64 || "")];
  }
  return h("pre", { class: "body" }, e.body);
}

async function eventDetail(id) {
  const show = stage();
  await loadNames();
  const [event, deliveries, attempts] = await Promise.all([
    get("/v1/events/" + encodeURIComponent(id)),
    get("/v1/events/" + encodeURIComponent(id) + "/deliveries"),
    get("/v1/events/" + encodeURIComponent(id) + "/attempts"),
  ]);
  const e = event.data;
  const replay = (destinationId) => {
    const b = h("button", { type: "button" }, destinationId ? "Replay" : "Replay to every destination");
    b.addEventListener("click", () => act(b, () => post("/v1/events/" + encodeURIComponent(id) + "/replay", destinationId ? { destination_id: destinationId } : {}),
      (r) => "Replay: " + r.data.replayed + " queued" + (r.data.created ? ", " + r.data.created + " new" : "")).then(refreshSoon()));
    return b;
  };
  const otherDestination = h("select", {}, [...names.destinations.values()].map((d) => h("option", { value: d.id }, d.name)));
  const backfill = h("button", { type: "button" }, "Send to this destination");
  backfill.addEventListener("click", () => act(backfill, () => post("/v1/events/" + encodeURIComponent(id) + "/replay", { destination_id: otherDestination.value }),
    (r) => "Queued: " + r.data.replayed).then(refreshSoon()));
  show(
    h("h1", {}, "Event ", h("span", { class: "mono" }, e.id)),
    h("div", { class: "card" }, h("dl", { class: "kv" },
      h("dt", {}, "status"), h("dd", {}, badge(e.status)),
      h("dt", {}, "type"), h("dd", {}, e.event_type || "—"),
      h("dt", {}, "source"), h("dd", {}, sourceName(e.source_id)),
      h("dt", {}, "origin"), h("dd", {}, e.origin),
      h("dt", {}, "received"), h("dd", {}, when(e.received_at)),
      h("dt", {}, "provider delivery id"), h("dd", { class: "mono" }, e.dedupe_key || "—"),
      h("dt", {}, "content type"), h("dd", {}, e.content_type || "—"))),
    h("h2", {}, "Deliveries"),
    h("div", { class: "row" }, replay(null), otherDestination, backfill),
    table(["destination", "status", "attempts", "next attempt", "last status", ""],
      deliveries.data.map((d) => [destinationName(d.destination_id), badge(d.status), d.attempts, when(d.next_attempt_at), d.last_status_code || "—", replay(d.destination_id)]),
      "No deliveries: no route matched this event."),
    h("h2", {}, "Attempts"),
    table(["#", "destination", "started", "duration", "status", "error", "response"],
      attempts.data.map((a) => [a.attempt, destinationName(a.destination_id), when(a.started_at), a.duration_ms + " ms",
        a.status_code || "—", a.error ? a.error + (a.error_message ? ": " + a.error_message : "") : "",
        a.response_body ? h("details", {}, h("summary", {}, a.response_body.length + " bytes"), h("pre", {}, a.response_body)) : ""]),
      "No attempts yet."),
    h("h2", {}, "Headers"),
    table(["name", "value"], Object.entries(e.headers || {}).map(([k, v]) => [mono(k), mono(v)]), "No headers kept."),
    h("h2", {}, "Body"),
    exactBody(e),
  );
}

async function deliveries(status, params) {
  const show = stage();
  await loadNames();
  const destination = params.get("destination_id") || "";
  const tabs = [["", "queued"], ["retry_scheduled", "retry scheduled"], ["dead_letter", "dead letters"]];
  const pick = h("select", {}, h("option", { value: "" }, "any destination"),
    [...names.destinations.values()].map((d) => h("option", { value: d.id, selected: d.id === destination }, d.name)));
  pick.addEventListener("change", () => { location.hash = "#/deliveries/" + status + query({ destination_id: pick.value }); });
  const list = pagedTable(["event", "destination", "status", "attempts", "next attempt", "last status"], "/v1/deliveries",
    { status, destination_id: destination },
    (d) => h("tr", {}, h("td", { class: "mono" }, link("#/events/" + d.event_id, d.event_id)), h("td", {}, destinationName(d.destination_id)),
      h("td", {}, badge(d.status)), h("td", {}, d.attempts), h("td", {}, when(d.next_attempt_at)), h("td", {}, d.last_status_code || "—")),
    status === "dead_letter" ? "No dead letters." : "Nothing queued.");
  let bulk = null;
  if (status === "dead_letter") {
    bulk = h("button", { type: "button", class: "primary" }, "Replay these dead letters");
    bulk.addEventListener("click", () => act(bulk, async () => {
      const filter = { status: "dead_letter", destination_id: destination || undefined };
      const dry = await post("/v1/replay", { ...filter, dry_run: true });
      if (!dry.data.matched) return { data: { replayed: 0 } };
      const known = names.destinations.get(destination);
      const scope = destination ? "to " + (known ? known.name : destination) : "to every destination";
      if (!confirm("Send " + dry.data.matched + (dry.data.truncated ? "+" : "") + " dead-lettered deliveries again, " + scope + "?")) return { data: { replayed: 0 } };
      return post("/v1/replay", filter);
    }, (r) => r.data.replayed + (r.data.replayed === 1 ? " delivery" : " deliveries") + " queued again").then(refreshSoon()));
  }
  show(h("h1", {}, "Deliveries"),
    h("div", { class: "row" }, tabs.map(([s, label]) => (s === status ? h("b", {}, label) : link("#/deliveries/" + s + query({ destination_id: destination }), label))), pick, bulk),
    list.table, h("p", {}, list.more));
  await list.load();
}

async function sources() {
  const show = stage();
  const items = [...(await loadNames(true)).sources.values()];
  const name = input({ required: true, placeholder: "stripe-live" });
  const kind = h("select", {}, options([["webhook", "webhook (providers POST to its ingest URL)"], ["api", "api (your code calls POST /v1/messages)"]]));
  const provider = h("select", {}, options([["github", "GitHub"], ["stripe", "Stripe"], ["shopify", "Shopify"], ["standard_webhooks", "Standard Webhooks / Svix"], ["slack", "Slack"], ["none", "none (no signature check)"]]));
  const secret = input({ type: "password", autocomplete: "off", placeholder: "the provider's signing secret" });
  const sync = () => {
    provider.disabled = kind.value !== "webhook";
    secret.disabled = provider.disabled || provider.value === "none";
    secret.required = !secret.disabled;
  };
  kind.addEventListener("change", sync);
  provider.addEventListener("change", sync);
  sync();
  const panel = createPanel("New source", [["name", name], ["kind", kind], ["signature", provider], ["secret", secret]], async () => {
    const body = { name: name.value.trim(), kind: kind.value };
    if (kind.value === "webhook") {
      body.verification = provider.value === "none" ? { provider: "none" } : { provider: provider.value, secret: secret.value.trim() };
    }
    const created = (await post("/v1/sources", body)).data;
    return created.ingest_path
      ? ["Source ", created.name, " created. Give the provider this URL: ", h("span", { class: "mono" }, location.origin + created.ingest_path)]
      : ["Source ", created.name, " created: POST /v1/messages with \"source\": \"" + created.name + "\"."];
  });
  show(h("h1", {}, "Sources"), takeShownOnce(), panel,
    table(["name", "kind", "verification", "ingest URL", "rate limit", "created"], items.map((s) => [
      h("td", {}, s.name, s.warnings && s.warnings.length ? h("div", { class: "muted" }, s.warnings.join(" ")) : null),
      s.kind,
      s.verification ? s.verification.provider : "—",
      s.ingest_path ? mono(location.origin + s.ingest_path) : h("span", { class: "muted" }, "send API (POST /v1/messages)"),
      s.rate_limit_per_s ? s.rate_limit_per_s + "/s" : "—",
      when(s.created_at),
    ]), "No sources yet."));
}

async function destinations() {
  const show = stage();
  const items = [...(await loadNames(true)).destinations.values()];
  const toggle = (d) => {
    const b = h("button", { type: "button", class: d.enabled ? "danger" : "" }, d.enabled ? "Disable" : "Enable");
    b.addEventListener("click", () => act(b, () => api("PATCH", "/v1/destinations/" + encodeURIComponent(d.id), { enabled: !d.enabled }),
      () => d.name + (d.enabled ? " disabled" : " enabled")).then(() => render()));
    return b;
  };
  const test = (d) => {
    const b = h("button", { type: "button" }, "Send test");
    b.addEventListener("click", () => act(b, () => post("/v1/destinations/" + encodeURIComponent(d.id) + "/test"),
      (r) => d.name + ": " + (r.data.status_code ? "HTTP " + r.data.status_code : r.data.error || "no answer") + " in " + r.data.duration_ms + " ms"));
    return b;
  };
  const secret = (d) => h("details", {}, h("summary", {}, "signing secret"), h("span", { class: "mono" }, d.signing_secret));
  const name = input({ required: true, placeholder: "billing-service" });
  const url = input({ required: true, type: "url", placeholder: "https://billing.internal/hooks" });
  const ordering = h("select", {}, options([["none", "any order (concurrent)"], ["fifo", "FIFO (one at a time, in event order)"]]));
  const concurrency = input({ type: "number", min: 1, placeholder: "10" });
  // A FIFO destination runs one delivery at a time whatever max_in_flight says.
  ordering.addEventListener("change", () => {
    concurrency.disabled = ordering.value === "fifo";
  });
  const rate = input({ type: "number", min: 1, placeholder: "none" });
  const panel = createPanel("New destination", [["name", name], ["url", url], ["ordering", ordering], ["max in flight", concurrency], ["rate limit /s", rate]], async () => {
    const body = { name: name.value.trim(), url: url.value.trim(), ordering: ordering.value };
    if (concurrency.value) body.max_in_flight = Number(concurrency.value);
    if (rate.value) body.rate_limit_per_s = Number(rate.value);
    const created = (await post("/v1/destinations", body)).data;
    return ["Destination ", created.name, " created. Its receiver verifies hookgate's signatures with ",
      h("span", { class: "mono" }, created.signing_secret), " (also under \"signing secret\" below). Add a route to send it events."];
  });
  show(h("h1", {}, "Destinations"), takeShownOnce(), panel,
    table(["name", "url", "state", "ordering", "concurrency", "rate limit", ""], items.map((d) => [
      d.name,
      mono(d.url),
      h("td", {}, badge(d.enabled ? "enabled" : "disabled"), d.disabled_reason ? h("div", { class: "muted" }, d.disabled_reason) : null,
        d.blocked_by ? h("div", {}, "waiting on ", link("#/events/" + d.blocked_by.event_id, "its head")) : null),
      d.ordering === "fifo" ? "FIFO" : "any order",
      d.ordering === "fifo" ? 1 : d.max_in_flight,
      d.rate_limit_per_s ? d.rate_limit_per_s + "/s" : "—",
      h("td", {}, h("div", { class: "row" }, toggle(d), test(d), link("#/deliveries/" + query({ destination_id: d.id }), "queue")), secret(d)),
    ]), "No destinations yet."));
}

async function routes() {
  const show = stage();
  const known = await loadNames(true);
  const items = await all("/v1/routes");
  const source = h("select", {}, options([["", "every source of the account (catch-all)"], ...[...known.sources.values()].map((x) => [x.id, x.name])]));
  const destination = h("select", { required: true }, options([...known.destinations.values()].map((x) => [x.id, x.name])));
  const pattern = input({ placeholder: "invoice.*, customer.created (empty: every type)" });
  const panel = createPanel("New route", [["from", source], ["event types", pattern], ["to", destination]], async () => {
    const body = { destination_id: destination.value };
    if (source.value) body.source_id = source.value;
    if (pattern.value.trim()) body.event_type_pattern = pattern.value.trim();
    await post("/v1/routes", body);
    return "Route created: matching events received from now on are delivered.";
  });
  const remove = (r) => {
    const b = h("button", { type: "button", class: "danger" }, "Delete");
    b.addEventListener("click", () => {
      if (!confirm("Delete this route? Events already queued through it are still delivered.")) return;
      act(b, () => api("DELETE", "/v1/routes/" + encodeURIComponent(r.id)), () => "Route deleted").then(() => render());
    });
    return b;
  };
  const newRoute = known.destinations.size
    ? panel
    : h("p", {}, "A route sends events to a destination: ", link("#/destinations", "create a destination"), " first.");
  show(h("h1", {}, "Routes"), takeShownOnce(), newRoute,
    table(["source", "event types", "destination", "created", ""], items.map((r) => [
      r.source_id ? sourceName(r.source_id) : h("i", {}, "every source"),
      r.event_type_pattern ? mono(r.event_type_pattern) : h("span", { class: "muted" }, "all"),
      destinationName(r.destination_id),
      when(r.created_at),
      remove(r),
    ]), "No routes yet: events are stored but go nowhere."));
}

// --- Login and routing --------------------------------------------------------------------

let account = null;

async function whoami() {
  if (account) return;
  const turn = rendering;
  try {
    const mine = (await get("/v1/account")).data;
    if (turn !== rendering) return;
    account = mine;
    document.getElementById("who").textContent = account.name;
  } catch (_) {
    // The view reports what is wrong.
  }
}

function login(message) {
  // Whatever view is still loading belongs to the key being replaced: it must not show.
  rendering++;
  names = null;
  account = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", { type: "password", autocomplete: "off", placeholder: "hk_…", "aria-label": "API key", required: true });
  main().replaceChildren(h("form", {
    class: "card login", onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      names = null;
      account = null;
      try {
        await get("/v1/account");
        if (!location.hash || location.hash === "#/") location.hash = "#/overview";
        render();
      } catch (e) {
        sessionStorage.removeItem(KEY);
        login(e.status === 401 ? "That key was refused." : e.message);
      }
    },
  },
  h("h1", {}, "hookgate"),
  h("p", {}, "An account's API key. A read-only key is enough to look; replays, enabling and test sends need a full key. It is kept in this tab only and forgotten when the tab closes."),
  message ? h("div", { class: "error" }, message) : null,
  input,
  h("button", { type: "submit", class: "primary" }, "Open")));
  input.focus();
}

const views = [
  [/^#\/events\/([A-Za-z0-9_]+)$/, (m) => eventDetail(m[1])],
  [/^#\/events(?:\?(.*))?$/, (m) => events(new URLSearchParams(m[1] || ""))],
  [/^#\/deliveries(?:\/([a-z_]*))?(?:\?(.*))?$/, (m) => deliveries(m[1] || "", new URLSearchParams(m[2] || ""))],
  [/^#\/sources$/, sources],
  [/^#\/destinations$/, destinations],
  [/^#\/routes$/, routes],
  [/^#\/notices$/, notices],
  [/^/, overview],
];

async function render() {
  if (!apiKey()) {
    login();
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  const hash = location.hash || "#/overview";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
  }
  const turn = ++rendering;
  main().replaceChildren(h("p", { class: "muted" }, "Loading…"));
  whoami();
  for (const [pattern, view] of views) {
    const m = hash.match(pattern);
    if (!m) continue;
    try {
      await view(m);
    } catch (e) {
      if (turn === rendering && apiKey()) main().replaceChildren(errorBox(e));
    }
    break;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    names = null;
    account = null;
    render();
  });
  window.addEventListener("hashchange", render);
  render();
});
