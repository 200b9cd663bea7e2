"use strict";
// The Continuum console: a framework-free app over the node's /v1 API (docs/console.md). It
// routes by the URL's fragment; every page asks the API as the logged-in caller, so it shows
// only what that caller may see and call. Text from the node is always set as text, never as
// markup.

const { el } = Forms;
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const logoutButton = document.getElementById("logout");

/** The logged-in session: {caller, owner, node}, or null. */
let session = null;
/** Where the session's token is kept: this origin's storage (per port, unlike the cookie). */
const TOKEN = "continuum-token";
/** The session's token, sent with every request beside the cookie. */
const token = () => localStorage.getItem(TOKEN);
/** Stops the current page's live streams when another page is opened. */
let leave = [];
/** Whether a page was shown before: the first one leaves the focus at the top (the skip link). */
let navigated = false;

/** Results over this many characters are cut in the page; the whole is a download. */
const RESULT_SHOWN = 200_000;

/** An API failure: its HTTP status and the node's error body. */
class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.value = body?.error?.value;
  }
}

/** Calls the API with the session cookie (and its CSRF token on anything that changes state). */
async function api(method, path, { body, rawBody, headers = {}, signal } = {}) {
  const h = { ...headers };
  if (token()) h["x-continuum-csrf"] = token();
  let payload;
  if (rawBody !== undefined) { payload = rawBody; h["content-type"] ??= "application/json"; }
  else if (body !== undefined) { payload = JSON.stringify(body); h["content-type"] = "application/json"; }
  const response = await fetch(path, { method, headers: h, body: payload, credentials: "same-origin", signal });
  if (response.status === 401 && path !== "/v1/console/session") {
    session = null;
    showLogin("Your session has ended: log in again.");
    throw new ApiError(401, await response.json().catch(() => null));
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response;
}

/** GETs JSON from the API. */
const getJson = async (path) => (await api("GET", path)).json();

/** Reads server-sent events from a fetch response, calling `onEvent(name, data)` for each. */
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, Forms.parseJson(data.join("\n")));
    }
  }
}

// ---------------------------------------------------------------- rendering results

/** A JSON value as a tree: objects and arrays fold open, leaves as text. */
function jsonTree(value, key) {
  const label = key === undefined ? "" : `${key}: `;
  if (value === null || typeof value !== "object") {
    return el("div", { class: "leaf" }, el("span", { class: "key", text: label }), el("span", { class: `v-${value === null ? "null" : typeof value === "bigint" ? "number" : typeof value}`, text: Forms.toJson(value) }));
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  return el("details", { open: true }, el("summary", {}, el("span", { class: "key", text: label }), summary),
    el("div", { class: "children" }, entries.map(([k, v]) => jsonTree(v, k))));
}

/** A list of records with the same keys, as a table. */
function asTable(value) {
  if (!Array.isArray(value) || value.length === 0 || !value.every((r) => r && typeof r === "object" && !Array.isArray(r))) return null;
  const keys = Object.keys(value[0]);
  if (!value.every((r) => Object.keys(r).join() === keys.join())) return null;
  const cell = (v) => (v !== null && typeof v === "object" ? Forms.toJson(v) : String(v));
  return el("table", {}, el("thead", {}, el("tr", {}, keys.map((k) => el("th", { scope: "col", text: k })))),
    el("tbody", {}, value.slice(0, 1000).map((r) => el("tr", {}, keys.map((k) => el("td", { text: cell(r[k]) }))))));
}

/** A result: text for a string, a table for a list of records, else a tree; huge ones cut, with a download. */
function renderResult(value) {
  const text = typeof value === "string" ? value : Forms.toJson(value, 2);
  const holder = el("div", { class: "result", id: "result-value" });
  holder.dataset.json = Forms.toJson(value).slice(0, RESULT_SHOWN);
  if (text.length > RESULT_SHOWN) {
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    holder.append(el("p", { class: "warn" }, `The result is ${text.length.toLocaleString()} characters; the first ${RESULT_SHOWN.toLocaleString()} are shown. `,
      el("a", { href: url, download: "result.json" }, "Download the whole result")), el("pre", { text: text.slice(0, RESULT_SHOWN) }));
    return holder;
  }
  if (typeof value === "string") holder.append(el("pre", { class: "text", text: value }));
  else holder.append(asTable(value) || jsonTree(value));
  return holder;
}

// ---------------------------------------------------------------- pages

/** Starts a page: its title (focused after a navigation, for keyboard and screen-reader users) and body. */
function page(title, ...children) {
  leave.forEach((stop) => stop());
  leave = [];
  const heading = el("h1", { tabindex: "-1", text: title });
  main.replaceChildren(heading, ...children);
  document.title = `${title} · Continuum`;
  if (navigated) heading.focus();
  navigated = true;
  return heading;
}

/** Offers `text` as a file download (the API needs the session's header, so no plain link). */
function saveAs(text, name, type) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

/** A failure shown in the page (the node's message, which says what to do). */
const failure = (e) => el("p", { class: "error", role: "alert", text: e.message });

async function commandsPage() {
  const search = el("input", { type: "search", id: "search", placeholder: "e.g. count words", autocomplete: "off" });
  const note = el("p", { class: "muted", id: "ranking" });
  const list = el("ul", { class: "catalog", id: "catalog", "aria-live": "polite" });
  page("Commands", el("div", { class: "field" }, el("label", { for: "search" }, "Search commands by what they do"), search), note, list);
  const show = (items) => list.replaceChildren(...items.map((c) =>
    el("li", {}, el("a", { href: `#/command/${c.name}` }, c.name), el("span", { class: "about", text: c.about || "" }),
      c.score !== undefined ? el("span", { class: "muted", text: ` ${c.score.toFixed(2)}` }) : "")));
  const all = async () => {
    const commands = await getJson("/v1/commands");
    note.textContent = `${commands.length} commands you may call.`;
    show(commands.map((c) => ({ name: c.name, about: (c.description || "").split("\n")[0] })));
  };
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = search.value.trim();
      try {
        if (!q) return all();
        const found = await getJson(`/v1/search/commands?q=${encodeURIComponent(q)}&top=10`);
        note.textContent = found.ranking.method === "embedding" ? `Ranked by meaning (${found.ranking.model}).` : "Ranked by shared words (no embedding model installed).";
        show(found.matches);
      } catch (e) { list.replaceChildren(failure(e)); }
    }, 250);
  });
  try { await all(); } catch (e) { list.replaceChildren(failure(e)); }
}

async function commandPage(name) {
  let schema;
  try { schema = await getJson(`/v1/commands/${name}`); } catch (e) { page(name, failure(e)); return; }
  const form = Forms.build(schema.params);
  const jsonBox = el("textarea", { id: "params-json", class: "mono", rows: 10, spellcheck: "false" });
  const jsonView = el("div", { class: "field", hidden: true }, el("label", { for: "params-json" }, "Parameters as JSON (sent as written)"), jsonBox);
  const formTab = el("button", { type: "button", "aria-pressed": "true", id: "tab-form" }, "Form");
  const jsonTab = el("button", { type: "button", "aria-pressed": "false", id: "tab-json" }, "JSON");
  const formError = el("p", { class: "error", role: "alert", id: "form-error" });
  const status = el("p", { id: "run-status", role: "status" });
  const live = el("pre", { id: "live", class: "live", hidden: true, "aria-live": "off" });
  const progress = el("progress", { id: "progress", max: 1, value: 0, hidden: true, "aria-label": "Progress" });
  const output = el("pre", { id: "output", class: "output", hidden: true });
  const result = el("div", { id: "result" });
  const runButton = el("button", { type: "submit", id: "run" }, "Run");
  const jobButton = el("button", { type: "button", id: "run-job" }, "Run as a job");
  const formNode = el("form", { id: "command-form", novalidate: true }, el("div", { id: "form-fields" }, form.node), jsonView, formError,
    el("div", { class: "actions" }, runButton, jobButton));
  page(name, el("pre", { class: "doc", text: schema.description || "No description (the plugin's WIT has none)." }),
    el("div", { class: "tabs", role: "group", "aria-label": "Edit the parameters as" }, formTab, jsonTab), formNode,
    el("section", { "aria-labelledby": "result-h" }, el("h2", { id: "result-h", text: "Result" }), status, progress, live, output, result));

  // The JSON tab shows what the form would send; switching back fills the form from it.
  const showJson = (on) => {
    formError.textContent = "";
    if (on) {
      const { value, errors } = form.read();
      if (errors.length && !jsonBox.value) jsonBox.value = "{}";
      else if (!errors.length) jsonBox.value = Forms.toJson(value);
    } else if (jsonBox.value.trim()) {
      try { form.set(Forms.parseJson(jsonBox.value)); } catch (e) { formError.textContent = `The JSON does not parse: ${e.message}`; return; }
    }
    jsonView.hidden = !on;
    document.getElementById("form-fields").hidden = on;
    formTab.setAttribute("aria-pressed", String(!on));
    jsonTab.setAttribute("aria-pressed", String(on));
  };
  formTab.addEventListener("click", () => showJson(false));
  jsonTab.addEventListener("click", () => showJson(true));

  /** The parameters' JSON text, or null when a field is not allowed (each such field says why). */
  const params = () => {
    form.clear();
    formError.textContent = "";
    if (!jsonView.hidden) return jsonBox.value.trim() || "{}";
    const { value, errors } = form.read();
    if (errors.length) {
      formError.textContent = `${errors.length} field${errors.length > 1 ? "s are" : " is"} not valid: ${errors[0].path} — ${errors[0].message}`;
      const first = document.querySelector("#form-fields .invalid input, #form-fields .invalid select, #form-fields .invalid textarea");
      if (first) first.focus();
      return null;
    }
    return Forms.toJson(value);
  };

  /** Shows a failed call: at its field when the node names one, and its error value. */
  const showFailure = (e) => {
    status.textContent = `Failed: ${e.code || "error"}`;
    status.className = "error";
    if (e.code === "invalid-params") {
      if (!jsonView.hidden) { try { form.set(Forms.parseJson(jsonBox.value)); showJson(false); } catch { /* stays in JSON */ } }
      if (form.showError(e.message)) { formError.textContent = "The node refused a field: see the field marked below."; return; }
    }
    result.replaceChildren(el("p", { class: "error", role: "alert", id: "call-error", text: e.message }), e.value !== undefined ? jsonTree(e.value, "error value") : "");
  };

  formNode.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = params();
    if (body === null) return;
    runButton.disabled = true;
    status.className = "";
    status.textContent = "Running…";
    live.textContent = ""; live.hidden = true; output.textContent = ""; output.hidden = true; progress.hidden = true;
    result.replaceChildren();
    const abort = new AbortController();
    leave.push(() => abort.abort());
    try {
      const response = await api("POST", `/v1/commands/${name}`, { rawBody: body, headers: { accept: "text/event-stream" }, signal: abort.signal });
      await readEvents(response, (kind, data) => {
        if (kind === "token") { live.hidden = false; live.append(data.text); }
        else if (kind === "progress") { progress.hidden = false; progress.value = data.fraction; status.textContent = `Running: ${Math.round(data.fraction * 100)} % ${data.message || ""}`; }
        else if (kind === "output") { output.hidden = false; output.append(data.text); }
        else if (kind === "end") {
          status.textContent = `Done in ${(data.elapsed_us / 1000).toFixed(1)} ms`;
          status.className = "ok";
          if (data.output && !output.textContent) { output.hidden = false; output.textContent = data.output; }
          result.replaceChildren(renderResult(data.result));
        } else if (kind === "error") showFailure(new ApiError(0, data));
      });
    } catch (e) {
      if (e.name !== "AbortError" && e.status !== 401) showFailure(e);
    } finally {
      runButton.disabled = false;
    }
  });

  jobButton.addEventListener("click", async () => {
    const body = params();
    if (body === null) return;
    try {
      const response = await api("POST", "/v1/jobs", { rawBody: `{"command":${JSON.stringify(name)},"params":${body}}` });
      const job = await response.json();
      location.hash = `#/job/${job.id}`;
    } catch (e) { showFailure(e); }
  });
}

/** A job's state as a line: state, progress bar, times. */
function jobRow(job, onCancel) {
  const bar = job.progress ? el("progress", { max: 1, value: job.progress.fraction, "aria-label": `Progress of job ${job.id.slice(0, 8)}` }) : "";
  const live = job.state === "queued" || job.state === "running";
  return el("tr", {}, el("td", {}, el("a", { href: `#/job/${job.id}` }, job.id.slice(0, 12))), el("td", { text: job.command }),
    el("td", { class: `state-${job.state}`, text: job.state }), el("td", {}, bar, job.progress?.message ? ` ${job.progress.message}` : ""),
    el("td", { text: new Date(job.submitted_ms).toLocaleString() }),
    el("td", {}, live ? el("button", { type: "button", class: "small", "aria-label": `Cancel job ${job.id.slice(0, 8)}`, onclick: onCancel }, "Cancel") : ""));
}

async function jobsPage() {
  const body = el("tbody");
  const table = el("table", { id: "jobs" }, el("thead", {}, el("tr", {}, ["Job", "Command", "State", "Progress", "Submitted", ""].map((h) => el("th", { scope: "col", text: h })))), body);
  const note = el("p", { class: "muted" });
  page("Jobs", note, table);
  const refresh = async () => {
    try {
      const jobs = await getJson("/v1/jobs");
      note.textContent = jobs.length ? `${jobs.length} jobs (newest first).` : "No jobs. Run a command as a job from its page.";
      body.replaceChildren(...jobs.map((j) => jobRow(j, async () => {
        if (!confirm(`Cancel job ${j.id.slice(0, 12)} (${j.command})?`)) return;
        try { await api("DELETE", `/v1/jobs/${j.id}`); } catch (e) { note.replaceChildren(failure(e)); }
        refresh();
      })));
    } catch (e) { note.replaceChildren(failure(e)); }
  };
  await refresh();
  const timer = setInterval(refresh, 2000);
  leave.push(() => clearInterval(timer));
}

async function jobPage(id) {
  const state = el("p", { id: "job-state", role: "status" });
  const progress = el("progress", { max: 1, value: 0, "aria-label": "Progress" });
  const live = el("pre", { class: "live", id: "live" });
  const result = el("div", { id: "result" });
  const cancel = el("button", { type: "button", id: "cancel", hidden: true }, "Cancel the job");
  page(`Job ${id.slice(0, 12)}`, state, progress, cancel, live, result);
  cancel.addEventListener("click", async () => {
    if (!confirm("Cancel this job?")) return;
    try { await api("DELETE", `/v1/jobs/${id}`); } catch (e) { result.replaceChildren(failure(e)); }
  });
  const show = (job) => {
    state.textContent = `${job.command}: ${job.state}`;
    if (job.progress) progress.value = job.progress.fraction;
    if (job.result !== undefined) result.replaceChildren(renderResult(job.result));
    if (job.error) result.replaceChildren(el("p", { class: "error", text: `${job.error.code}: ${job.error.message}` }));
    cancel.hidden = !(job.state === "queued" || job.state === "running");
  };
  const abort = new AbortController();
  leave.push(() => abort.abort());
  try {
    show(await getJson(`/v1/jobs/${id}`));
    const response = await api("GET", `/v1/jobs/${id}/stream`, { signal: abort.signal, headers: { accept: "text/event-stream" } });
    await readEvents(response, (kind, data) => {
      if (kind === "state") state.textContent = `state: ${data.state}`;
      else if (kind === "progress") progress.value = data.fraction;
      else if (kind === "token" || kind === "output") live.append(data.text);
      else if (kind === "end") show(data);
    });
  } catch (e) { if (e.name !== "AbortError") result.replaceChildren(failure(e)); }
}

async function eventsPage() {
  const verifyBox = el("div", { id: "verify", role: "status", class: "panel" }, "Verifying…");
  const kind = el("input", { type: "text", id: "f-kind", placeholder: "call. or call.completed" });
  const subject = el("input", { type: "text", id: "f-subject", placeholder: "text/stats" });
  const caller = el("input", { type: "text", id: "f-caller", placeholder: "owner or a key prefix" });
  const body = el("tbody");
  const exportLink = el("button", { type: "button", id: "export" }, "Export shown entries (JSON lines)");
  page("Event log", verifyBox,
    el("form", { class: "filters", id: "filters", onsubmit: (e) => e.preventDefault() },
      el("div", { class: "field" }, el("label", { for: "f-kind" }, "Kind"), kind),
      el("div", { class: "field" }, el("label", { for: "f-subject" }, "Command (subject)"), subject),
      el("div", { class: "field" }, el("label", { for: "f-caller" }, "Caller"), caller)),
    exportLink,
    el("table", { id: "events" }, el("thead", {}, el("tr", {}, ["Seq", "Kind", "Subject", "Caller", "Payload"].map((h) => el("th", { scope: "col", text: h })))), body));
  getJson("/v1/events/verify").then((v) => {
    verifyBox.className = v.ok ? "panel ok" : "panel error";
    verifyBox.textContent = v.ok ? `Verified: ${v.entries} entries, ${v.checkpoints} signed checkpoints.`
      : `Does not verify: first bad entry is seq ${v.first_bad_seq}: ${v.problem}`;
  }, (e) => verifyBox.replaceChildren(failure(e)));
  const entries = [];
  const callerOf = (e) => { try { return JSON.parse(e.payload).caller || ""; } catch { return ""; } };
  const passes = (e) => (!kind.value || (kind.value.endsWith(".") ? e.kind.startsWith(kind.value) : e.kind === kind.value))
    && (!subject.value || e.subject.includes(subject.value)) && (!caller.value || callerOf(e).startsWith(caller.value));
  const row = (e) => el("tr", {}, el("td", { text: e.seq }), el("td", { text: e.kind }),
    el("td", { text: e.subject }), el("td", { text: callerOf(e).slice(0, 16) }), el("td", { class: "mono", text: String(e.payload).slice(0, 200) }));
  const redraw = () => body.replaceChildren(...entries.filter(passes).slice(-500).reverse().map(row));
  [kind, subject, caller].forEach((input) => input.addEventListener("input", redraw));
  exportLink.addEventListener("click", () => {
    saveAs(entries.filter(passes).map((e) => JSON.stringify(e)).join("\n") + "\n", "events.jsonl", "application/x-ndjson");
  });
  try {
    const recent = await getJson("/v1/events?limit=200&after=0");
    entries.push(...recent);
    redraw();
    const after = entries.length ? entries[entries.length - 1].seq : 0;
    const abort = new AbortController();
    leave.push(() => abort.abort());
    const stream = await api("GET", `/v1/events/stream?after=${after}`, { signal: abort.signal, headers: { accept: "text/event-stream" } });
    readEvents(stream, (name, entry) => {
      if (name !== "entry") return;
      entries.push(entry);
      if (entries.length > 5000) entries.splice(0, entries.length - 5000);
      redraw();
    }).catch(() => {});
  } catch (e) { if (e.name !== "AbortError") body.replaceChildren(el("tr", {}, el("td", { colspan: 5 }, failure(e)))); }
}

async function pluginsPage() {
  const list = el("div", { id: "plugins" });
  const file = el("input", { type: "file", accept: ".alloy" });
  const untrusted = el("input", { type: "checkbox" });
  const approveAll = el("input", { type: "checkbox" });
  const steps = el("ol", { id: "install-steps", class: "steps", "aria-live": "polite" });
  const outcome = el("div", { id: "install-outcome", "aria-live": "polite" });
  const upload = el("form", { id: "install", onsubmit: async (event) => {
    event.preventDefault();
    if (!file.files[0]) { outcome.replaceChildren(el("p", { class: "error", text: "Choose an .alloy file first." })); return; }
    steps.replaceChildren();
    outcome.replaceChildren(el("p", { text: "Verifying…" }));
    const query = `allow_untrusted=${untrusted.checked}${approveAll.checked ? "&allow=all" : ""}`;
    try {
      const response = await api("POST", `/v1/plugins/installed?${query}`, { rawBody: file.files[0], headers: { accept: "text/event-stream", "content-type": "application/x-continuum-alloy" } });
      await readEvents(response, (kind, data) => {
        if (kind === "step") steps.append(el("li", { class: "ok" }, el("strong", { text: `✓ ${data.step}` }), `: ${data.detail}`));
        else if (kind === "end") { outcome.replaceChildren(el("p", { class: "ok", role: "status", text: `Installed ${data.name} ${data.version || ""}.` })); refresh(); }
        else if (kind === "error") outcome.replaceChildren(el("p", { class: "error", role: "alert", text: `Refused: ${data.error.message}` }));
      });
    } catch (e) { outcome.replaceChildren(failure(e)); }
  } }, el("div", { class: "field" }, el("label", { for: "alloy-file" }, "Alloy file"), Object.assign(file, { id: "alloy-file" })),
    el("div", { class: "check" }, Object.assign(untrusted, { id: "alloy-untrusted" }), el("label", { for: "alloy-untrusted" }, "Install even if its publisher is not in the trust store")),
    el("div", { class: "check" }, Object.assign(approveAll, { id: "alloy-approve" }), el("label", { for: "alloy-approve" }, "Approve every host capability it requests")),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Verify and install")));
  page("Plugins", el("p", { class: "muted", text: "Installed plugins: publisher, chain of custody, the host capabilities each requests and whether you approved them." }),
    el("section", { class: "panel" }, el("h2", { text: "Install an alloy" }), upload, steps, outcome), list);
  const refresh = async () => {
    try {
      const plugins = await getJson("/v1/plugins/installed");
      list.replaceChildren(...plugins.map((p) => {
        const status = el("p", { class: "muted", "aria-live": "polite" });
        const change = async (kind, capability) => {
          const verb = kind === "allow" ? "Approve" : "Withdraw";
          if (!confirm(`${verb} ${capability} for ${p.name}? It takes effect at its next call.`)) return;
          try { await api("POST", `/v1/plugins/installed/${encodeURIComponent(p.name)}/approvals`, { body: { [kind]: [capability] } }); refresh(); }
          catch (e) { status.replaceChildren(failure(e)); }
        };
        const custody = Array.isArray(p.custody) ? p.custody : p.custody?.entries;
        return el("section", { class: "panel plugin", "data-plugin": p.name }, el("h2", { text: `${p.name}${p.version ? ` ${p.version}` : ""}` }),
          el("p", {}, p.publisher ? `Published by ${p.publisher}` : "A development install (unsigned)", `; sha256 `, el("code", { text: p.digest.slice(0, 16) }), `; from ${p.source}`),
          custody ? el("details", {}, el("summary", {}, `Chain of custody (${custody.length} signatures)`), jsonTree(custody)) : "",
          p.capabilities.length
            ? el("table", { class: "caps" }, el("thead", {}, el("tr", {}, ["Capability", "State", ""].map((h) => el("th", { scope: "col", text: h })))),
              el("tbody", {}, p.capabilities.map((c) => el("tr", {}, el("td", {}, el("code", { text: c.capability })), el("td", { class: c.approved ? "ok" : "error", text: c.approved ? "approved" : "not approved" }),
                el("td", {}, el("button", { type: "button", class: "small", "aria-label": `${c.approved ? "Withdraw" : "Approve"} ${c.capability} for ${p.name}`,
                  onclick: () => change(c.approved ? "deny" : "allow", c.capability) }, c.approved ? "Withdraw" : "Approve"))))))
            : el("p", { class: "muted", text: "Requests no host capabilities (WASI only)." }),
          el("details", {}, el("summary", {}, `${p.commands.length} commands`), el("ul", {}, p.commands.map((n) => el("li", {}, el("a", { href: `#/command/${n}` }, n))))),
          status);
      }));
    } catch (e) { list.replaceChildren(failure(e)); }
  };
  await refresh();
}

async function gridPage() {
  const peers = el("tbody");
  const offers = el("tbody");
  const discovered = el("tbody");
  const head = (cols) => el("thead", {}, el("tr", {}, cols.map((h) => el("th", { scope: "col", text: h }))));
  page("Grid",
    el("h2", { text: "Peers" }), el("table", { id: "peers" }, head(["Peer", "Name", "Addresses", "Path", "Grant"]), peers),
    el("h2", { text: "Offers" }), el("table", { id: "offers" }, head(["Node", "Via", "Plugins", "Commands", "Load", "Served in (p50 / p95)", "Prices"]), offers),
    el("h2", { text: "Discovered (not yet peers)" }), el("table", { id: "discovered" }, head(["Node", "Source", "Addresses"]), discovered));
  const short = (id) => (id || "").slice(0, 16);
  try {
    const [p, o, d] = await Promise.all([getJson("/v1/peers"), getJson("/v1/offers"), getJson("/v1/peers/discovered")]);
    peers.replaceChildren(...p.map((v) => el("tr", {}, el("td", {}, el("code", { text: short(v.peer.id) })), el("td", { text: v.peer.name || "" }),
      el("td", { text: [...v.peer.addrs, ...v.peer.relays].join(", ") }), el("td", { text: v.path || "" }), el("td", { text: v.peer.grant ? "held" : "none" }))));
    offers.replaceChildren(...o.map((k) => {
      const offer = k.offer || {};
      const commands = (offer.plugins || []).flatMap((pl) => pl.commands || []);
      const priced = commands.filter((c) => c.price && Object.values(c.price).some((x) => x));
      const cap = offer.capacity;
      const load = cap ? `${cap.cores} cores, ${cap.load.calls_running} calls, ${cap.load.jobs_running} jobs running, ${cap.load.free_slots}/${cap.load.slots} slots free` : "";
      return el("tr", {}, el("td", {}, el("code", { text: short(offer.node) })), el("td", { text: k.via }), el("td", { text: (offer.plugins || []).length }),
        el("td", { text: commands.length }), el("td", { text: load }),
        el("td", { text: cap?.latency?.samples ? `${cap.latency.p50_ms} / ${cap.latency.p95_ms} ms (${cap.latency.samples} calls)` : "no calls yet" }),
        el("td", { text: priced.length ? `${priced.length} priced` : "free" }));
    }));
    discovered.replaceChildren(...d.map((n) => el("tr", {}, el("td", {}, el("code", { text: short(n.id) })), el("td", { text: n.source || "" }), el("td", { text: (n.addrs || []).join(", ") }))));
  } catch (e) { peers.replaceChildren(el("tr", {}, el("td", { colspan: 5 }, failure(e)))); }
}

/** A labelled field for a page's own forms. */
function labelled(id, label, control, hint) {
  control.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), control, hint ? el("p", { class: "field-desc", text: hint }) : "");
}

/** Capabilities typed one per line or comma-separated. */
const capsOf = (text) => text.split(/[\n,]/).map((c) => c.trim()).filter(Boolean);

async function grantsPage() {
  const grants = el("tbody");
  const keys = el("tbody");
  const issued = el("div", { id: "issued", "aria-live": "polite" });
  const head = (cols) => el("thead", {}, el("tr", {}, cols.map((h) => el("th", { scope: "col", text: h }))));
  const shown = (title, secret) => issued.replaceChildren(el("div", { class: "panel ok" }, el("p", { text: title }),
    el("textarea", { readonly: true, rows: 3, class: "mono", id: "secret", "aria-label": title }, secret)));
  const refresh = async () => {
    try {
      const [g, k] = await Promise.all([getJson("/v1/grants"), getJson("/v1/apikeys")]);
      grants.replaceChildren(...g.map((x) => el("tr", {}, el("td", {}, el("code", { text: x.id.slice(0, 12) })), el("td", {}, el("code", { text: x.grantee.slice(0, 16) })),
        el("td", { text: x.caps.join(", ") }), el("td", { text: new Date(x.expires * 1000).toLocaleString() }), el("td", { text: x.superseded ? "superseded" : "in force" }),
        el("td", {}, x.superseded ? "" : el("button", { type: "button", class: "small", "aria-label": `Revoke every grant to ${x.grantee.slice(0, 16)}`, onclick: async () => {
          if (!confirm(`Revoke every grant to ${x.grantee.slice(0, 16)}…? Its holders lose access at once.`)) return;
          try { await api("POST", "/v1/grants/revoke", { body: { grantee: x.grantee } }); } catch (e) { issued.replaceChildren(failure(e)); }
          refresh();
        } }, "Revoke")))));
      keys.replaceChildren(...k.map((x) => el("tr", {}, el("td", {}, el("code", { text: x.id })), el("td", {}, el("code", { text: x.grantee.slice(0, 16) })),
        el("td", { text: x.granted ? "with a grant" : "public commands only" }), el("td", { text: x.label || "" }),
        el("td", {}, el("button", { type: "button", class: "small", "aria-label": `Revoke API key ${x.id}`, onclick: async () => {
          if (!confirm(`Revoke API key ${x.id}? Its clients and console sessions stop at once.`)) return;
          try { await api("DELETE", `/v1/apikeys/${encodeURIComponent(x.id)}`); } catch (e) { issued.replaceChildren(failure(e)); }
          refresh();
        } }, "Revoke")))));
    } catch (e) { issued.replaceChildren(failure(e)); }
  };
  const to = el("input", { type: "text", autocomplete: "off" });
  const caps = el("textarea", { rows: 2 });
  const expires = el("input", { type: "text", value: "30days" });
  const issueForm = el("form", { id: "issue-grant", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const g = await (await api("POST", "/v1/grants", { body: { to: to.value.trim(), caps: capsOf(caps.value), expires: expires.value.trim() } })).json();
      shown(`Grant for ${g.grantee.slice(0, 16)}… (give this token to its holder):`, g.token);
      refresh();
    } catch (e) { issued.replaceChildren(failure(e)); }
  } }, labelled("g-to", "Grantee public key", to, "64 hex digits: `continuum key export node` on the grantee's node."),
    labelled("g-caps", "Capabilities", caps, "One per line or comma-separated: plugin/command, plugin/ or *."),
    labelled("g-expires", "Expires after", expires, "e.g. 1h, 7days"), el("button", { type: "submit" }, "Issue the grant"));
  const aToken = el("textarea", { rows: 2, class: "mono" });
  const aKey = el("input", { type: "text", value: "node" });
  const aTo = el("input", { type: "text", autocomplete: "off" });
  const aCaps = el("textarea", { rows: 2 });
  const aExpires = el("input", { type: "text", value: "1day" });
  const attenuateForm = el("form", { id: "attenuate-grant", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const g = await (await api("POST", "/v1/grants/attenuate", { body: { token: aToken.value.trim(), key: aKey.value.trim(), to: aTo.value.trim(), caps: capsOf(aCaps.value), expires: aExpires.value.trim() } })).json();
      shown(`Narrowed grant for ${g.grantee.slice(0, 16)}…:`, g.token);
    } catch (e) { issued.replaceChildren(failure(e)); }
  } }, labelled("a-token", "A grant this node holds", aToken), labelled("a-key", "Holder's key (name in this node's key store)", aKey),
    labelled("a-to", "New grantee public key", aTo), labelled("a-caps", "Narrower capabilities", aCaps), labelled("a-expires", "Expires after", aExpires),
    el("button", { type: "submit" }, "Attenuate"));
  const kFor = el("textarea", { rows: 2, class: "mono" });
  const kLabel = el("input", { type: "text" });
  const keyForm = el("form", { id: "create-key", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const k = await (await api("POST", "/v1/apikeys", { body: { for: kFor.value.trim(), label: kLabel.value.trim() || null } })).json();
      shown(`API key ${k.id} (shown only now; clients send Authorization: Bearer <key>):`, k.key);
      refresh();
    } catch (e) { issued.replaceChildren(failure(e)); }
  } }, labelled("k-for", "For a grant token (or a bare public key: public commands only)", kFor), labelled("k-label", "Label", kLabel),
    el("button", { type: "submit" }, "Create the API key"));
  page("Grants and API keys", issued,
    el("h2", { text: "Grants issued" }), el("table", { id: "grants" }, head(["Id", "Grantee", "Capabilities", "Expires", "State", ""]), grants),
    el("h2", { text: "Issue a grant" }), issueForm,
    el("h2", { text: "Attenuate a grant this node holds" }), attenuateForm,
    el("h2", { text: "API keys" }), el("table", { id: "apikeys" }, head(["Id", "Grantee", "Calls with", "Label", ""]), keys),
    el("h2", { text: "Create an API key" }), keyForm);
  await refresh();
}

const SVG = "http://www.w3.org/2000/svg";
/** An SVG element with attributes. */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/**
 * A chart of `series` (one value per bucket per named series), as bars (stacked) or a line,
 * described for screen readers, with its data as a table beside it.
 */
function chart(title, buckets, series, { line = false, unit = "" } = {}) {
  const W = 720, H = 180, left = 48, bottom = 22, top = 8;
  const totals = buckets.map((_, i) => (line ? Math.max(...series.map((s) => s.values[i])) : series.reduce((a, s) => a + s.values[i], 0)));
  const max = Math.max(1e-9, ...totals);
  const x = (i) => left + ((W - left - 4) * i) / buckets.length;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const bw = Math.max(1, (W - left - 4) / buckets.length - 1);
  const marks = [];
  if (line) {
    for (const s of series) {
      const points = s.values.map((v, i) => `${x(i) + bw / 2},${y(v)}`).join(" ");
      marks.push(svg("polyline", { points, fill: "none", stroke: s.color, "stroke-width": 2 }));
    }
  } else {
    buckets.forEach((_, i) => {
      let base = 0;
      for (const s of series) {
        const v = s.values[i];
        if (v > 0) marks.push(svg("rect", { x: x(i), y: y(base + v), width: bw, height: y(base) - y(base + v), fill: s.color }));
        base += v;
      }
    });
  }
  const fmt = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2));
  const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const axis = [
    svg("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "#8a939e" }),
    svg("text", { x: left - 4, y: top + 10, "text-anchor": "end", "font-size": 11 }, `${fmt(max)}${unit}`),
    svg("text", { x: left - 4, y: H - bottom, "text-anchor": "end", "font-size": 11 }, "0"),
    svg("text", { x: left, y: H - 6, "font-size": 11 }, time(buckets[0].start_ms)),
    svg("text", { x: W - 4, y: H - 6, "text-anchor": "end", "font-size": 11 }, "now"),
  ];
  const sums = series.map((s) => `${s.name}: ${fmt(line ? Math.max(...s.values) : s.values.reduce((a, b) => a + b, 0))}${line ? `${unit} at most` : ""}`).join(", ");
  const figure = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}. ${sums}.`, class: "chart" }, svg("title", {}, `${title}: ${sums}`), ...axis, ...marks);
  const legend = el("p", { class: "legend" }, series.map((s) => el("span", {}, svg("svg", { width: 12, height: 12, "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, rx: 2, fill: s.color })), ` ${s.name} `)));
  const table = el("details", {}, el("summary", {}, `${title}: the data`), el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "From" }), series.map((s) => el("th", { scope: "col", text: s.name })))),
    el("tbody", {}, buckets.map((b, i) => el("tr", {}, el("td", { text: time(b.start_ms) }), series.map((s) => el("td", { text: fmt(s.values[i]) })))))));
  return el("section", { class: "panel chart-box" }, el("h2", { text: title }), figure, legend, table);
}

async function usagePage() {
  const windowPick = el("select", {}, [["60", "the last hour"], ["1440", "the last day"], ["10080", "the last week"]].map(([v, t]) => el("option", { value: v }, t)));
  const charts = el("div", { id: "charts" });
  page("Usage", labelled("u-window", "Show", windowPick), charts);
  const draw = async () => {
    try {
      const b = await getJson(`/v1/usage/series?minutes=${windowPick.value}&buckets=60`);
      const of = (k) => b.map((x) => x[k]);
      charts.replaceChildren(
        chart("Calls", b, [{ name: "succeeded", values: b.map((x) => x.calls - x.failed), color: "#0b5cad" }, { name: "failed", values: of("failed"), color: "#b3261e" }]),
        chart("Latency", b, [{ name: "mean", values: of("mean_ms"), color: "#156a2f" }, { name: "slowest", values: of("max_ms"), color: "#8a3b00" }], { line: true, unit: " ms" }),
        chart("Credits", b, [{ name: "earned", values: b.map((x) => x.earned_millicredits / 1000), color: "#156a2f" }, { name: "spent", values: b.map((x) => x.spent_millicredits / 1000), color: "#6a2ca0" }]));
    } catch (e) { charts.replaceChildren(failure(e)); }
  };
  windowPick.addEventListener("change", draw);
  await draw();
}

/** The API reference: every operation of the caller's OpenAPI document, with its schemas. */
async function apiPage() {
  const list = el("div", { id: "operations" });
  const download = el("button", { type: "button", class: "small", id: "openapi-download" }, "Download the OpenAPI document");
  page("API reference", el("p", {}, "The node's HTTP API as this caller sees it: one typed operation per command you may call, beside the node's own routes. ", download), list);
  try {
    const doc = await getJson("/v1/openapi.json");
    download.addEventListener("click", () => saveAs(JSON.stringify(doc, null, 2), "openapi.json", "application/json"));
    const resolve = (s) => (s && s.$ref ? doc.components.schemas[s.$ref.split("/").pop()] : s);
    list.replaceChildren(...Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).filter(([m]) => ["get", "post", "delete", "put"].includes(m)).map(([method, op]) => {
      const request = op.requestBody?.content?.["application/json"]?.schema;
      const ok = op.responses?.["200"]?.content?.["application/json"]?.schema;
      return el("details", { class: "operation" }, el("summary", {}, el("span", { class: `method m-${method}`, text: method.toUpperCase() }), el("code", { text: path }), " ", el("span", { class: "muted", text: (op.summary || op.description || "").split("\n")[0] })),
        op.description ? el("pre", { class: "doc", text: op.description }) : "",
        request ? el("div", {}, el("h3", { text: "Request body" }), jsonTree(resolve(request))) : "",
        ok ? el("div", {}, el("h3", { text: "200 response" }), jsonTree(resolve(ok))) : "",
        el("p", { class: "muted", text: `Answers: ${Object.keys(op.responses || {}).join(", ")}` }));
    })));
  } catch (e) { list.replaceChildren(failure(e)); }
}

// ---------------------------------------------------------------- login and routing

function showLogin(message) {
  nav.replaceChildren();
  who.textContent = "";
  logoutButton.hidden = true;
  const key = el("input", { type: "password", id: "api-key", autocomplete: "off" });
  const error = el("p", { class: "error", role: "alert", id: "login-error", text: message || "" });
  page("Log in",
    el("p", {}, "The node's owner logs in with a one-time link: run ", el("code", { text: "continuum console" }), " on this machine and open the link it prints."),
    el("form", { id: "login", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const response = await fetch("/console/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: key.value }), credentials: "same-origin" });
        if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
        localStorage.setItem(TOKEN, (await response.json()).token);
        await start();
      } catch (e) { error.textContent = e.message; }
    } }, el("div", { class: "field" }, el("label", { for: "api-key" }, "Or log in with an API key"), key), el("button", { type: "submit" }, "Log in")),
    error);
}

const PAGES = [
  { hash: "#/commands", title: "Commands", owner: false },
  { hash: "#/jobs", title: "Jobs", owner: false },
  { hash: "#/events", title: "Event log", owner: true },
  { hash: "#/plugins", title: "Plugins", owner: true },
  { hash: "#/grid", title: "Grid", owner: true },
  { hash: "#/grants", title: "Grants", owner: true },
  { hash: "#/usage", title: "Usage", owner: true },
  { hash: "#/api", title: "API", owner: false },
];

async function route() {
  if (!session) return;
  const hash = location.hash || "#/commands";
  for (const a of nav.querySelectorAll("a")) a.toggleAttribute("aria-current", hash.startsWith(a.getAttribute("href")));
  const [, name, ...rest] = hash.split("/");
  let arg = "";
  try { arg = decodeURIComponent(rest.join("/")); } catch { /* a malformed escape names nothing */ }
  // Only names that are what they claim: the page puts them into API paths.
  const valid = { command: /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)+$/, job: /^[A-Za-z0-9-]+$/ }[name];
  if (valid && !valid.test(arg)) return page("Not found", el("p", { text: `No such ${name}: ${arg}` }));
  const owner = (f) => (session.owner ? f() : page("Not available", el("p", { text: "Only the node's owner sees this page." })));
  switch (name) {
    case "command": return commandPage(arg);
    case "jobs": return jobsPage();
    case "job": return jobPage(arg);
    case "events": return owner(eventsPage);
    case "plugins": return owner(pluginsPage);
    case "grid": return owner(gridPage);
    case "grants": return owner(grantsPage);
    case "usage": return owner(usagePage);
    case "api": return apiPage();
    default: return commandsPage();
  }
}

async function start() {
  // Arriving from a login link: keep the session's token, and show a clean address.
  const given = document.querySelector('meta[name="continuum-token"]').content;
  if (given) {
    localStorage.setItem(TOKEN, given);
    document.querySelector('meta[name="continuum-token"]').content = "";
    history.replaceState(null, "", `/${location.hash}`);
  }
  const response = await fetch("/v1/console/session", { credentials: "same-origin", headers: token() ? { "x-continuum-csrf": token() } : {} });
  if (!response.ok) { session = null; showLogin(); return; }
  session = await response.json();
  who.textContent = session.owner ? "owner" : `caller ${session.caller.slice(0, 16)}`;
  logoutButton.hidden = false;
  nav.replaceChildren(...PAGES.filter((p) => session.owner || !p.owner).map((p) => el("a", { href: p.hash }, p.title)));
  await route();
}

logoutButton.addEventListener("click", async () => {
  try { await api("POST", "/v1/console/logout"); } finally { session = null; localStorage.removeItem(TOKEN); showLogin("Logged out."); }
});
window.addEventListener("hashchange", route);
start();
