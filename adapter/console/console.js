// flash-sale console: plain JavaScript, no build step, nothing loaded from elsewhere.
// The admin token lives in sessionStorage (this tab only) and travels as a bearer
// token; the live view reads GET /api/v1/admin/stream with fetch (EventSource cannot
// send an Authorization header, and a token never goes into a URL).
"use strict";

const TOKEN_KEY = "flash-sale.console.token";
const API = "/api/v1";
const OUTCOMES = [
  ["sold", "sold", "#2e7d32"],
  ["sold_out", "sold out", "#c62828"],
  ["limit_exceeded", "limit", "#ef6c00"],
  ["not_on_sale", "not on sale", "#6a1b9a"],
  ["unavailable", "unavailable", "#455a64"],
  ["rate_limited", "rate limited", "#f9a825"],
];

const $ = (id) => document.getElementById(id);
let stream = null; // the AbortController of the open admin stream
let watching = null; // the product id on the live view
let shownEvent = null;
let unsettled = 0; // snapshots in a row whose views disagreed

// ---- API calls -------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** The signed-in admin's bearer token, as a header. */
const authorization = () => ({ Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` });

async function api(method, path, body) {
  const headers = authorization();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch (_) {
    parsed = { code: "UNREADABLE", message: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** The error envelope as one readable block: status, code, message, field details. */
function describe(error) {
  if (!(error instanceof ApiError)) return String(error);
  const body = error.body || {};
  const lines = [`${error.status} ${body.code || ""}: ${body.message || ""}`];
  for (const d of body.details || []) lines.push(`  ${d.field}: ${d.message}`);
  return lines.join("\n");
}

function showError(id, error) {
  const box = $(id);
  if (error === null) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.hidden = false;
  box.textContent = describe(error);
}

// ---- views -----------------------------------------------------------------------

function show(view) {
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.id !== `view-${view}`;
  }
  for (const button of document.querySelectorAll("#nav [data-view]")) {
    button.classList.toggle("current", button.dataset.view === view);
  }
  if (view === "events") loadEvents();
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    await api("GET", "/admin/events?page_size=1");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showError("sign-in-error", error);
    return;
  }
  showError("sign-in-error", null);
  $("nav").hidden = false;
  show("events");
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStream();
  $("nav").hidden = true;
  show("sign-in");
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

const utc = (t) => t.replace("T", " ").replace(/(\.\d+)?Z$/, "");

async function loadEvents() {
  const tbody = $("events-table").querySelector("tbody");
  try {
    const page = await api("GET", "/admin/events?page_size=100");
    showError("events-error", null);
    tbody.replaceChildren();
    for (const e of page.items) {
      const row = document.createElement("tr");
      row.dataset.id = e.id;
      cell(row, e.id);
      cell(row, e.title);
      cell(row, e.status);
      cell(row, `${utc(e.starts_at)} → ${utc(e.ends_at)}`);
      cell(row, e.strategy || "config");
      cell(row, e.effective_strategy);
      cell(row, "").appendChild(button("Products", () => loadEvent(e.id)));
      tbody.appendChild(row);
    }
  } catch (error) {
    showError("events-error", error);
  }
}

async function loadEvent(id) {
  shownEvent = id;
  try {
    const e = await api("GET", `/admin/events/${id}`);
    showError("event-detail-error", null);
    $("event-detail").hidden = false;
    $("event-detail-title").textContent = `#${e.id} ${e.title} — ${e.status}, ${e.effective_strategy}`;
    const tbody = $("products-table").querySelector("tbody");
    tbody.replaceChildren();
    for (const p of e.products) {
      const row = document.createElement("tr");
      cell(row, p.id);
      cell(row, p.title);
      cell(row, p.status);
      cell(row, p.stock_total);
      cell(row, p.stock_available);
      cell(row, p.bucket_count);
      cell(row, p.per_user_limit);
      const actions = cell(row, "");
      actions.appendChild(button("Watch live", () => watch(p.id)));
      const to = p.status === "online" ? "offline" : "online";
      actions.appendChild(button(`Take ${to}`, () => act(() => api("POST", `/admin/products/${p.id}/${to}`), "event-detail-error", () => loadEvent(id))));
      tbody.appendChild(row);
    }
  } catch (error) {
    showError("event-detail-error", error);
  }
}

async function act(call, errorBox, then) {
  try {
    await call();
    showError(errorBox, null);
    if (then) await then();
  } catch (error) {
    showError(errorBox, error);
  }
}

// ---- the live view ---------------------------------------------------------------

function stopStream() {
  if (stream) stream.abort();
  stream = null;
  $("stream-state").textContent = "not connected";
}

function watch(productId) {
  watching = Number(productId);
  unsettled = 0;
  $("watch-id").value = watching;
  show("live");
  $("live").hidden = true;
  openStream();
}

/** Reads the admin stream with fetch and parses its Server-Sent Events. */
async function openStream() {
  if (stream) return;
  const controller = new AbortController();
  stream = controller;
  $("stream-state").textContent = "connecting…";
  try {
    const response = await fetch(`${API}/admin/stream`, {
      headers: { ...authorization(), Accept: "text/event-stream" },
      signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new ApiError(response.status, body);
    }
    showError("live-error", null);
    $("stream-state").textContent = "live";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
    throw new Error("the stream ended");
  } catch (error) {
    if (controller.signal.aborted) return;
    stream = null;
    showError("live-error", error);
    $("stream-state").textContent = "reconnecting…";
    setTimeout(() => { if (!stream && watching !== null) openStream(); }, 2000);
  }
}

function dispatch(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (name === "snapshot" && data.length) render(JSON.parse(data.join("\n")));
}

function render(snapshot) {
  $("live-at").textContent = utc(snapshot.at);
  const pulse = snapshot.products.find((p) => p.product_id === watching);
  if (!pulse) {
    $("live").hidden = true;
    showError("live-error", new Error(`product ${watching} is not in an online event`));
    return;
  }
  showError("live-error", null);
  $("live").hidden = false;
  const inv = pulse.inventory;
  $("live-title").textContent = `#${pulse.product_id} ${pulse.title} (${pulse.event_title})`;
  $("live-strategy").textContent = `${pulse.effective_strategy} · ${pulse.status}`;
  // The views are read one after another, so while orders flow they disagree by what
  // moved in between ("settling"); at rest they must agree, and a disagreement that
  // outlasts two quiet seconds is drift.
  const now = Math.floor(Date.parse(snapshot.at) / 1000);
  const moving = pulse.per_second.some((s) => now - s.second <= 2);
  unsettled = inv.consistent || moving ? 0 : unsettled + 1;
  const [flag, tone] = inv.consistent ? ["consistent", "ok"] : unsettled < 4 ? ["settling", ""] : ["drift", "bad"];
  $("live-consistent").textContent = flag;
  $("live-consistent").className = `tag ${tone}`;
  $("live-total").textContent = inv.stock_total;
  $("live-available").textContent = inv.cache_available;
  $("live-db-available").textContent = inv.db_available;
  $("live-held").textContent = inv.held;
  $("live-in-flight").textContent = inv.in_flight;
  const last = pulse.per_second[pulse.per_second.length - 1];
  $("live-rate").textContent = last && now - last.second <= 2 ? last.sold : 0;
  renderBuckets(inv);
  renderChart(pulse.per_second, now);
}

function renderBuckets(inv) {
  const box = $("live-buckets");
  const full = Math.max(1, Math.ceil(inv.stock_total / Math.max(1, inv.buckets.length)),
    ...inv.buckets.map((b) => b.cache_available));
  while (box.children.length > inv.buckets.length) box.lastChild.remove();
  while (box.children.length < inv.buckets.length) {
    const bar = document.createElement("div");
    bar.className = "bucket";
    bar.appendChild(document.createElement("div")).className = "fill";
    bar.appendChild(document.createElement("span")).className = "count";
    box.appendChild(bar);
  }
  inv.buckets.forEach((b, i) => {
    const bar = box.children[i];
    bar.title = `bucket ${b.bucket_no}: ${b.cache_available} available (database ${b.db_available})`;
    bar.firstChild.style.height = `${Math.round((100 * Math.max(0, b.cache_available)) / full)}%`;
    bar.lastChild.textContent = b.cache_available;
  });
}

function renderChart(seconds, now) {
  const canvas = $("live-chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  const pad = 30;
  ctx.clearRect(0, 0, w, h);
  const bySecond = new Map(seconds.map((s) => [s.second, s]));
  const span = 60;
  let top = 1;
  for (const s of seconds) top = Math.max(top, ...OUTCOMES.map(([k]) => s[k]));
  ctx.strokeStyle = "#999";
  ctx.beginPath();
  ctx.moveTo(pad, 5);
  ctx.lineTo(pad, h - pad);
  ctx.lineTo(w - 5, h - pad);
  ctx.stroke();
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.fillText(String(top), 2, 12);
  ctx.fillText("0", 2, h - pad);
  ctx.fillText("-60 s", pad, h - pad + 14);
  ctx.fillText("now", w - 30, h - pad + 14);
  const x = (i) => pad + ((w - pad - 5) * i) / (span - 1);
  const y = (n) => h - pad - ((h - pad - 5) * n) / top;
  for (const [key, , colour] of OUTCOMES) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (let i = 0; i < span; i++) {
      const s = bySecond.get(now - (span - 1) + i);
      const n = s ? s[key] : 0;
      if (i === 0) ctx.moveTo(x(i), y(n));
      else ctx.lineTo(x(i), y(n));
    }
    ctx.stroke();
  }
}

function legend() {
  const box = $("live-legend");
  for (const [, label, colour] of OUTCOMES) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colour;
    item.append(swatch, label);
    box.appendChild(item);
  }
}

// ---- the action forms --------------------------------------------------------------

const number = (v) => (v === "" || v === undefined ? undefined : Number(v));
const instant = (v) => (v ? `${v.length === 16 ? `${v}:00` : v}Z` : undefined);

const ACTIONS = {
  "create-event": (f) => api("POST", "/admin/events", {
    title: f.title,
    description: f.description || undefined,
    starts_at: instant(f.starts_at),
    ends_at: instant(f.ends_at),
    strategy: f.strategy || undefined,
  }),
  "create-product": (f) => api("POST", `/admin/events/${f.event_id}/products`, {
    title: f.title,
    original_price: number(f.original_price),
    flash_price: number(f.flash_price),
    stock: number(f.stock),
    per_user_limit: number(f.per_user_limit),
    bucket_count: number(f.bucket_count),
  }),
  "event-status": (f) => api("POST", `/admin/events/${f.id}/${f.to}`),
  "product-status": (f) => api("POST", `/admin/products/${f.id}/${f.to}`),
  stock: (f) => api("POST", `/admin/products/${f.id}/stock`, { delta: number(f.delta) }),
  buckets: (f) => api("POST", `/admin/products/${f.id}/buckets`, { count: number(f.count) }),
  reconcile: (f) => api("POST", `/admin/products/${f.id}/reconcile`),
};

async function submitAction(form) {
  const out = $("action-result");
  const fields = Object.fromEntries(new FormData(form).entries());
  out.className = "result";
  out.textContent = "…";
  try {
    const answer = await ACTIONS[form.dataset.action](fields);
    out.textContent = JSON.stringify(answer, null, 2);
  } catch (error) {
    out.className = "result error";
    out.textContent = describe(error);
  }
}

// ---- wiring ------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  legend();
  $("sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  for (const b of document.querySelectorAll("#nav [data-view]")) {
    b.addEventListener("click", () => show(b.dataset.view));
  }
  $("events-refresh").addEventListener("click", loadEvents);
  $("event-online").addEventListener("click", () => act(() => api("POST", `/admin/events/${shownEvent}/online`), "event-detail-error", () => loadEvent(shownEvent).then(loadEvents)));
  $("event-offline").addEventListener("click", () => act(() => api("POST", `/admin/events/${shownEvent}/offline`), "event-detail-error", () => loadEvent(shownEvent).then(loadEvents)));
  $("watch-form").addEventListener("submit", (e) => {
    e.preventDefault();
    watch($("watch-id").value);
  });
  for (const form of document.querySelectorAll("form.action")) {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      submitAction(form);
    });
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else show("sign-in");
});
