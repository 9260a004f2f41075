// The Weft console: a page over the HTTP API, with no build step and no
// dependencies. Every figure it shows comes from a /v1 endpoint; every
// action is the API call a script would make, so the console gets the same
// validation and the same errors. Data reaches the page as text nodes only
// (never as HTML), so no stored payload can inject markup.
"use strict";

const TOKEN_KEY = "weft-api-token";
const LIVE_MS = 1000;
const PAGE = 25;

// ---------------------------------------------------------------- helpers

/** Builds an element: attributes (on*: listeners) and children (strings become text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An API failure, carrying the API's error code and message. */
class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() { return `${this.code}: ${this.message}`; }
}

/** Calls the API with the tab's token; JSON in, JSON out. */
async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({}, headers) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) init.headers["Authorization"] = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = body;
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const e = (json && json.error) || {};
    if (response.status === 401) showTokenForm();
    throw new ApiFailure(response.status, e.code || `http_${response.status}`, e.message || text);
  }
  return json;
}

const get = (path) => api("GET", path);

/** Replaces an element's children, skipping the absent ones. */
function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function showTokenForm() {
  const form = document.getElementById("token-form");
  form.hidden = false;
  document.getElementById("token-input").focus();
}

function flash(message, bad) {
  const el = document.getElementById("flash");
  el.textContent = message;
  el.className = bad ? "bad" : "";
}

function statusBadge(status) {
  return h("span", { class: `status status-${status}`, "data-status": status }, status);
}

function when(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  return d.toLocaleString(undefined, { hour12: false }) + `.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

function pretty(value) {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/** A payload as the API gives it: the value, or a link when it is too large to carry. */
function payload(view, key) {
  if (view[`${key}Url`]) {
    return h("p", {}, `${view[`${key}Bytes`]} bytes — `,
      h("a", { href: view[`${key}Url`], "data-payload-link": key }, "download"));
  }
  return h("pre", { "data-payload": key }, pretty(view[key]));
}

function runLink(id) {
  return h("a", { href: `#/runs/${id}`, class: "mono" }, id);
}

function errorText(e) {
  return e ? `${e.code}: ${e.message}` : "";
}

/**
 * A JSON text field's value as a request body, untouched: the API checks
 * it, so the console shows the API's own error for bad JSON.
 */
function jsonText(textarea) {
  return textarea.value.trim() === "" ? "null" : textarea.value;
}

/** A form whose submit runs `action`, showing its error in the form. */
function actionForm(attrs, fields, label, action) {
  const problem = h("p", { class: "form-error", role: "alert" });
  const button = h("button", { type: "submit" }, label);
  const form = h("form", attrs, ...fields, button, problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    button.disabled = true;
    try {
      await action(form);
    } catch (e) {
      problem.textContent = e instanceof ApiFailure ? e.toString() : String(e);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function field(id, text, control) {
  control.id = id;
  return h("div", {}, h("label", { for: id }, text), control);
}

// ---------------------------------------------------------------- router

/** Increases on every navigation: a live refresh of an older page stops. */
let generation = 0;

function route() {
  generation += 1;
  flash("");
  const hash = location.hash.replace(/^#/, "") || "/runs";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const section = parts[0] || "runs";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = document.getElementById("main");
  put(main, h("p", { class: "muted" }, "Loading…"));
  const page =
    section === "runs" && parts[1] ? runPage(main, decodeURIComponent(parts[1]), generation)
    : section === "runs" ? runsPage(main, params)
    : section === "start" ? startPage(main, params)
    : section === "modules" ? modulesPage(main)
    : section === "schedules" ? schedulesPage(main)
    : Promise.resolve(put(main, h("h1", {}, "Not found")));
  page.catch((e) => {
    put(main, h("h1", {}, "Could not load this page"),
      h("p", { class: "form-error", role: "alert", "data-load-error": "" }, String(e)));
  });
}

// ---------------------------------------------------------------- runs list

async function workflowNames() {
  const { modules } = await get("/v1/modules");
  return modules.filter((m) => m.kind === "workflow").map((m) => m.name).sort();
}

async function runsPage(main, params) {
  const status = params.get("status") || "";
  const workflow = params.get("workflow") || "";
  const after = params.get("after") || "";
  const limit = params.get("limit") || String(PAGE);
  const query = new URLSearchParams({ limit });
  if (status) query.set("status", status);
  if (workflow) query.set("workflow", workflow);
  if (after) query.set("after", after);
  const [page, names] = await Promise.all([get(`/v1/runs?${query}`), workflowNames()]);

  const go = (changes) => {
    const next = new URLSearchParams({ status, workflow, limit: params.get("limit") || "" });
    for (const [k, v] of Object.entries(changes)) next.set(k, v);
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    location.hash = `#/runs?${next}`;
  };
  const statusSelect = h("select", { onchange: (e) => go({ status: e.target.value }) },
    ["", "running", "completed", "failed", "cancelled"].map((s) =>
      h("option", { value: s, selected: s === status }, s || "any")));
  const workflowSelect = h("select", { onchange: (e) => go({ workflow: e.target.value }) },
    ["", ...names].map((n) => h("option", { value: n, selected: n === workflow }, n || "any")));
  const search = h("input", { type: "search", placeholder: "run id", size: 38, spellcheck: "false" });
  const searchForm = actionForm({ class: "inline-search", "aria-label": "Find a run" },
    [field("run-search", "Find a run by id", search)], "Open",
    async () => {
      const id = search.value.trim();
      await get(`/v1/runs/${encodeURIComponent(id)}`);
      location.hash = `#/runs/${id}`;
    });

  const rows = page.runs.map((r) => h("tr", { "data-run": r.runId },
    h("td", {}, runLink(r.runId)),
    h("td", {}, r.workflow),
    h("td", {}, statusBadge(r.status)),
    h("td", {}, String(r.steps)),
    h("td", {}, when(r.createdAt)),
    h("td", {}, when(r.updatedAt)),
    h("td", { class: "muted" }, errorText(r.error))));
  const table = rows.length
    ? h("table", { "aria-label": "Runs, newest first" },
      h("thead", {}, h("tr", {}, ["Run", "Workflow", "Status", "Steps", "Started", "Updated", "Error"]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows))
    : h("p", { class: "muted", "data-empty": "" }, "No runs match.");
  const pager = h("div", { class: "pager" },
    after ? h("button", { type: "button", class: "quiet", onclick: () => go({ after: "" }) }, "Newest") : null,
    page.next ? h("button", { type: "button", "data-next-page": "", onclick: () => go({ after: page.next }) }, "Older runs") : null,
    h("span", { class: "muted" }, `${page.runs.length} shown`));
  put(main, 
    h("h1", {}, "Runs"),
    h("div", { class: "filters" },
      field("filter-status", "Status", statusSelect),
      field("filter-workflow", "Workflow", workflowSelect),
      searchForm),
    table, pager);
}

// ---------------------------------------------------------------- one run

async function loadRun(id) {
  const enc = encodeURIComponent(id);
  const [run, steps, children, logs, events] = await Promise.all([
    get(`/v1/runs/${enc}`), get(`/v1/runs/${enc}/steps`), get(`/v1/runs/${enc}/children`),
    get(`/v1/runs/${enc}/logs`), get(`/v1/runs/${enc}/events`),
  ]);
  return { run, steps: steps.steps, children: children.children, logs: logs.logs, events: events.events };
}

async function runPage(main, id, gen) {
  const data = await loadRun(id);
  const view = h("div", { id: "run-view" });
  const actions = runActions(id, () => refresh());
  put(main, view, actions);
  renderRun(view, data);
  actions.hidden = data.run.status !== "running";

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    if (gen !== generation) return;
    try {
      const fresh = await loadRun(id);
      if (gen !== generation) return;
      renderRun(view, fresh);
      actions.hidden = fresh.run.status !== "running";
      if (fresh.run.status === "running") timer = setTimeout(refresh, LIVE_MS);
    } catch (e) {
      flash(`Live update failed: ${e}`, true);
      timer = setTimeout(refresh, LIVE_MS * 3);
    }
  }
  if (data.run.status === "running") timer = setTimeout(refresh, LIVE_MS);
}

function renderRun(view, { run, steps, children, logs, events }) {
  const facts = [
    ["Workflow", run.workflow],
    ["Status", statusBadge(run.status)],
    ["Module", h("span", { class: "mono" }, run.moduleDigest)],
    ["Started", when(run.createdAt)],
    ["Updated", when(run.updatedAt)],
    ["Steps", String(run.steps)],
  ];
  if (run.parent) facts.push(["Parent", h("span", {}, runLink(run.parent.runId), ` (step ${run.parent.step})`)]);
  if (run.deadline) facts.push(["Deadline", when(run.deadline)]);
  if (run.expiresAt) facts.push(["Kept until", when(run.expiresAt)]);
  if (run.waitingOn) {
    const w = run.waitingOn;
    facts.push(["Waiting on", h("span", { "data-waiting-on": w.step },
      `${w.step} (${w.kind}, ${w.status}, ${w.attempts} attempt${w.attempts === 1 ? "" : "s"})`,
      w.wakeAt ? ` until ${when(w.wakeAt)}` : "",
      w.lastError ? ` — last error ${errorText(w.lastError)}` : "")]);
  }
  const live = run.status === "running"
    ? h("p", { class: "muted", "data-live": "" }, "Running: this page updates by itself.") : null;

  put(view, 
    h("h1", {}, "Run ", h("span", { class: "mono", "data-run-id": run.runId }, run.runId)),
    live,
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    run.error ? runError(run.error) : null,
    h("div", { class: "panels" },
      h("section", { "aria-labelledby": "input-h" }, h("h2", { id: "input-h" }, "Input"), payload(run, "input")),
      h("section", { "aria-labelledby": "output-h" }, h("h2", { id: "output-h" }, "Output"),
        run.status === "completed" ? payload(run, "output") : h("p", { class: "muted" }, "—"))),
    h("section", { "aria-labelledby": "timeline-h" }, h("h2", { id: "timeline-h" }, "Timeline"),
      timeline(run, steps, events)),
    h("section", { "aria-labelledby": "steps-h" }, h("h2", { id: "steps-h" }, `Steps (${steps.length})`),
      stepsTable(steps)),
    children.length ? h("section", { "aria-labelledby": "children-h" },
      h("h2", { id: "children-h" }, `Child runs (${children.length})`), childrenTable(children)) : null,
    events.length ? h("section", { "aria-labelledby": "events-h" },
      h("h2", { id: "events-h" }, `Events (${events.length})`), eventsTable(events)) : null,
    h("section", { "aria-labelledby": "logs-h" }, h("h2", { id: "logs-h" }, `Logs (${logs.length})`),
      logsTable(logs)));
}

/** A run's error; a replay divergence as the journal and the replay side by side. */
function runError(error) {
  const box = h("section", { class: "error-box", "aria-labelledby": "error-h", "data-error-code": error.code },
    h("h2", { id: "error-h" }, `Error: ${error.code}`),
    h("pre", {}, error.message));
  const d = error.details;
  if (error.code === "non_deterministic" && d && "journal" in d && "replay" in d) {
    box.append(h("div", { class: "diff", "data-diff": "" },
      h("div", { class: "journal" }, h("h3", {}, `Journal (recorded) at step #${d.position}`),
        h("pre", { "data-diff-side": "journal" }, d.journal)),
      h("div", { class: "replay" }, h("h3", {}, "Replay (this module)"),
        h("pre", { "data-diff-side": "replay" }, d.replay))));
  } else if (d !== undefined && d !== null) {
    box.append(h("h3", {}, "Details"), h("pre", {}, pretty(d)));
  }
  return box;
}

const ms = (ts) => (ts ? Date.parse(ts) : null);

/**
 * One bar per step on a shared time axis: the step's whole span (light),
 * each attempt on top of it coloured by its outcome, so retries and the
 * backoff between them show. Steps started while another was in flight
 * are drawn as one group: the members of a fan-out side by side.
 */
function timeline(run, steps, events) {
  const now = Date.now();
  const start = ms(run.createdAt);
  const ends = [ms(run.updatedAt), start + 1];
  for (const s of steps) {
    ends.push(ms(s.completedAt) || (s.status === "succeeded" || s.status === "failed" ? ms(s.createdAt) : now));
    for (const a of s.history) ends.push(ms(a.endedAt) || now);
  }
  for (const e of events) ends.push(ms(e.sentAt));
  const end = Math.max(...ends.filter((x) => x !== null));
  const span = Math.max(end - start, 1);
  const pos = (t) => `${Math.min(100, Math.max(0, ((t - start) / span) * 100)).toFixed(3)}%`;
  const width = (a, b) => `${Math.max(0.4, ((b - a) / span) * 100).toFixed(3)}%`;

  const axis = h("div", { class: "tl-row tl-axis", "aria-hidden": "true" }, h("div", {}),
    h("div", { class: "tl-track" }, [0, 0.25, 0.5, 0.75, 1].map((f) =>
      h("span", { class: "tl-tick", style: `left:${f * 100}%` }, duration(f * span)))));

  const row = (s) => {
    const from = ms(s.createdAt);
    const to = ms(s.completedAt) || (s.status === "succeeded" || s.status === "failed" ? from : now);
    const track = h("div", { class: "tl-track" },
      h("div", { class: "tl-span", style: `left:${pos(from)};width:${width(from, to)}` }));
    for (const a of s.history) {
      const a0 = ms(a.startedAt);
      const a1 = ms(a.endedAt) || now;
      track.append(h("div", {
        class: `tl-attempt ${a.status}`, style: `left:${pos(a0)};width:${width(a0, a1)}`,
        title: `attempt ${a.attempt}: ${a.status}${a.error ? ` (${errorText(a.error)})` : ""}, ${duration(a1 - a0)}`,
      }));
    }
    const label = `${s.name} — ${s.kind}, ${s.status}, ${s.attempts} attempt${s.attempts === 1 ? "" : "s"}, ${duration(to - from)}`;
    return h("div", { class: "tl-row", role: "listitem", "aria-label": label, "data-timeline-step": s.name },
      h("div", { class: "tl-name", title: s.name }, s.name, h("span", { class: "muted" }, ` ${s.kind}`)),
      track);
  };

  // Group steps whose spans overlap the group's (started while it ran).
  const groups = [];
  for (const s of steps) {
    const from = ms(s.createdAt);
    const to = ms(s.completedAt) || now;
    const last = groups[groups.length - 1];
    if (last && from < last.end && s.kind !== "join") {
      last.steps.push(s);
      last.end = Math.max(last.end, to);
    } else {
      groups.push({ steps: [s], end: to });
    }
  }
  const body = h("div", { role: "list", "aria-label": "Steps on a time axis" });
  for (const g of groups) {
    if (g.steps.length > 1) {
      body.append(h("div", { class: "tl-group", "data-parallel": g.steps.length },
        h("div", { class: "tl-group-label" }, `in parallel (${g.steps.length})`), g.steps.map(row)));
    } else {
      body.append(row(g.steps[0]));
    }
  }
  if (events.length) {
    const track = h("div", { class: "tl-track" }, events.map((e) => h("div", {
      class: "tl-mark", style: `left:${pos(ms(e.sentAt))}`, title: `event ${e.event} #${e.seq} at ${when(e.sentAt)}`,
    })));
    body.append(h("div", { class: "tl-row", role: "listitem", "aria-label": `${events.length} events arrived` },
      h("div", { class: "tl-name" }, "events arrived"), track));
  }
  const legend = h("div", { class: "legend", "aria-hidden": "true" },
    h("span", { style: "--c: var(--wait)" }, "step open"),
    h("span", { style: "--c: var(--attempt-ok)" }, "attempt succeeded"),
    h("span", { style: "--c: var(--attempt-failed)" }, "attempt failed"),
    h("span", { style: "--c: var(--attempt-run)" }, "attempt running"),
    h("span", { style: "--c: var(--accent)" }, "event arrived"));
  return h("div", { class: "timeline" }, axis, body, legend);
}

function stepsTable(steps) {
  if (!steps.length) return h("p", { class: "muted" }, "No steps yet.");
  const rows = steps.map((s) => {
    const from = ms(s.createdAt);
    const to = ms(s.completedAt);
    const attempts = s.history.length
      ? h("ol", { class: "attempts" }, s.history.map((a) => h("li", { "data-attempt": a.attempt, value: a.attempt },
        `${a.status}`, a.error ? ` — ${errorText(a.error)}` : "",
        ` (${duration((ms(a.endedAt) || Date.now()) - ms(a.startedAt))})`)))
      : h("span", { class: "muted" }, "—");
    const details = h("details", {},
      h("summary", {}, "input and result"),
      h("h3", {}, "Input"), payload(s, "input"),
      h("h3", {}, "Result"), payload(s, "result"));
    return h("tr", { "data-step": s.name },
      h("td", {}, String(s.seq)),
      h("td", { class: "mono" }, s.name),
      h("td", {}, s.kind, s.rpcName ? h("div", { class: "muted" }, s.rpcName) : null,
        s.childRunId ? h("div", {}, "child ", runLink(s.childRunId)) : null),
      h("td", {}, statusBadge(s.status)),
      h("td", { "data-attempts": s.attempts }, String(s.attempts),
        s.hostLosses ? h("div", { class: "muted" }, `${s.hostLosses} host loss${s.hostLosses === 1 ? "" : "es"}`) : null),
      h("td", {}, attempts),
      h("td", {}, when(s.createdAt)),
      h("td", {}, to ? duration(to - from) : s.wakeAt ? `until ${when(s.wakeAt)}` : "—"),
      h("td", {}, s.error ? h("span", { class: "form-error" }, errorText(s.error)) : null, details));
  });
  return h("table", { "aria-label": "Steps in journal order" },
    h("thead", {}, h("tr", {}, ["#", "Step", "Kind", "Status", "Attempts", "History", "Started", "Took", "Outcome"]
      .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows));
}

function childrenTable(children) {
  return h("table", { "aria-label": "Child runs" },
    h("thead", {}, h("tr", {}, ["Step", "Workflow", "Run", "Status", "Detached"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, children.map((c) => h("tr", { "data-child": c.step },
      h("td", { class: "mono" }, c.step), h("td", {}, c.workflow || ""),
      h("td", {}, c.runId ? runLink(c.runId) : "—"),
      h("td", {}, c.status ? statusBadge(c.status) : statusBadge(c.stepStatus)),
      h("td", {}, c.detached ? "yes" : "no")))));
}

function eventsTable(events) {
  return h("table", { "aria-label": "Events sent to the run" },
    h("thead", {}, h("tr", {}, ["Event", "#", "Sent", "Taken by", "Id", "Payload"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, events.map((e) => h("tr", { "data-event": `${e.event}#${e.seq}` },
      h("td", {}, e.event), h("td", {}, String(e.seq)), h("td", {}, when(e.sentAt)),
      h("td", { class: "mono" }, e.takenBy || "not yet"), h("td", { class: "mono" }, e.eventId),
      h("td", {}, "payload" in e ? h("code", {}, JSON.stringify(e.payload)) : `${e.payloadBytes} bytes`)))));
}

function logsTable(logs) {
  if (!logs.length) return h("p", { class: "muted" }, "No log lines.");
  return h("table", { class: "logs", "aria-label": "Log lines" },
    h("thead", {}, h("tr", {}, ["At", "Level", "Message"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, logs.map((l, i) => h("tr", { "data-log": i },
      h("td", {}, when(l.at)), h("td", { class: `level-${l.level}` }, l.level), h("td", { class: "mono" }, l.message)))));
}

/** Cancel, send an event, complete a callback: shown while the run runs. */
function runActions(id, refresh) {
  const enc = encodeURIComponent(id);
  const reason = h("input", { type: "text", placeholder: "cancelled from the console" });
  const cancel = actionForm({ "aria-label": "Cancel the run", "data-action": "cancel" },
    [h("h3", {}, "Cancel"), field("cancel-reason", "Reason", reason)], "Cancel run",
    async () => {
      if (!confirm("Cancel this run? Its open steps are abandoned.")) return;
      const body = reason.value.trim() ? JSON.stringify({ reason: reason.value.trim() }) : undefined;
      await api("POST", `/v1/runs/${enc}/cancel`, body);
      flash("Run cancelled.");
      await refresh();
    });
  cancel.querySelector("button").className = "danger";

  const eventName = h("input", { type: "text", required: true, spellcheck: "false" });
  const eventBody = h("textarea", { spellcheck: "false" }, "{}");
  const send = actionForm({ "aria-label": "Send an event", "data-action": "event" },
    [h("h3", {}, "Send an event"), field("event-name", "Event name", eventName),
      field("event-payload", "Payload (JSON)", eventBody)], "Send event",
    async () => {
      const sent = await api("POST", `/v1/runs/${enc}/events/${encodeURIComponent(eventName.value.trim())}`,
        jsonText(eventBody));
      flash(`Event ${sent.event} #${sent.seq} sent${sent.duplicate ? " (a repeat)" : ""}.`);
      await refresh();
    });

  const token = h("input", { type: "text", required: true, spellcheck: "false", autocomplete: "off" });
  const result = h("textarea", { spellcheck: "false" }, "{}");
  const failCode = h("input", { type: "text", spellcheck: "false", placeholder: "leave empty to succeed" });
  const complete = actionForm({ "aria-label": "Complete a callback", "data-action": "callback" },
    [h("h3", {}, "Complete a callback"), field("callback-token", "Callback token", token),
      field("callback-result", "Result (JSON)", result),
      field("callback-error", "Or fail it with error code", failCode)], "Complete callback",
    async () => {
      const code = failCode.value.trim();
      const body = code
        ? JSON.stringify({ error: { code, message: "failed from the console" } })
        : `{"result": ${jsonText(result)}}`;
      const done = await api("POST", `/v1/callbacks/${encodeURIComponent(token.value.trim())}`, body);
      flash(`Callback of step ${done.step} ${done.state}.`);
      await refresh();
    });
  return h("section", { "aria-labelledby": "actions-h", id: "run-actions" },
    h("h2", { id: "actions-h" }, "Actions"), h("div", { class: "actions" }, cancel, send, complete));
}

// ---------------------------------------------------------------- start a run

async function startPage(main, params) {
  const names = await workflowNames();
  const workflow = h("select", { required: true },
    names.map((n) => h("option", { value: n, selected: n === params.get("workflow") }, n)));
  const input = h("textarea", { spellcheck: "false", rows: 10 }, "{}");
  const form = actionForm({ "aria-label": "Start a run", "data-action": "start" },
    [field("start-workflow", "Workflow", workflow), field("start-input", "Input (JSON)", input)], "Start run",
    async () => {
      const started = await api("POST", `/v1/workflows/${encodeURIComponent(workflow.value)}/runs`,
        jsonText(input));
      location.hash = `#/runs/${started.runId}`;
    });
  put(main, h("h1", {}, "Start a run"),
    names.length ? h("div", { class: "actions" }, form)
      : h("p", {}, "No workflow is deployed yet: ", h("code", {}, "weft deploy <name> <file.wasm>")));
}

// ---------------------------------------------------------------- modules

async function modulesPage(main) {
  const { modules } = await get("/v1/modules");
  const all = await Promise.all(modules.map((m) => get(`/v1/modules/${encodeURIComponent(m.name)}`)));
  const sections = all.map(({ name, versions }) => {
    const latest = Math.max(...versions.map((v) => v.version));
    return h("section", { "data-module": name, "aria-labelledby": `module-${name}` },
      h("h2", { id: `module-${name}` }, name, h("span", { class: "muted" }, ` ${versions[0] ? versions[0].kind : ""}`)),
      h("table", { "aria-label": `Versions of ${name}` },
        h("thead", {}, h("tr", {}, ["Version", "Digest", "Size", "Uploaded", "Running runs", "Allowed hosts"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, versions.slice().sort((a, b) => b.version - a.version).map((v) =>
          h("tr", { "data-version": v.version },
            h("td", {}, `v${v.version}`, v.version === latest ? h("span", { class: "muted" }, " (latest)") : null),
            h("td", { class: "mono", title: v.digest }, v.digest.slice(0, 19) + "…"),
            h("td", {}, `${(v.size / 1024).toFixed(0)} KB`),
            h("td", {}, when(v.uploadedAt)),
            h("td", { "data-running": v.runningRuns }, v.runningRuns
              ? h("a", { href: `#/runs?status=running&workflow=${encodeURIComponent(name)}` }, String(v.runningRuns))
              : "0"),
            h("td", {}, (v.allowedHosts || []).join(", ") || "—"))))));
  });
  put(main, h("h1", {}, "Modules"),
    sections.length ? sections : h("p", { class: "muted" }, "No modules deployed."));
}

// ---------------------------------------------------------------- schedules

async function schedulesPage(main) {
  const { schedules } = await get("/v1/schedules");
  const table = schedules.length
    ? h("table", { "aria-label": "Schedules" },
      h("thead", {}, h("tr", {}, ["Name", "Workflow", "Cron", "State", "Next fire", "Last fire", "Last run", "Skipped"]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, schedules.map((s) => h("tr", { "data-schedule": s.name },
        h("td", {}, s.name), h("td", {}, s.workflow), h("td", { class: "mono" }, s.cron),
        h("td", {}, s.paused ? "paused" : "active"),
        h("td", { "data-next-fire": s.nextFireAt || "" }, when(s.nextFireAt)),
        h("td", {}, when(s.lastFireAt)),
        h("td", {}, s.lastRunId ? runLink(s.lastRunId) : "—"),
        h("td", {}, String(s.skipped))))))
    : h("p", { class: "muted" }, "No schedules.");
  put(main, h("h1", {}, "Schedules"), table);
}

// ---------------------------------------------------------------- start

document.getElementById("token-button").addEventListener("click", showTokenForm);
document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
  document.getElementById("token-form").hidden = true;
  flash("");
  route();
});
window.addEventListener("hashchange", route);
route();
