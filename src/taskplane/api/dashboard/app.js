// The taskplane dashboard: one page over the documented HTTP API (/api/v1), signed in by a session cookie.
// No framework and no build step: plain DOM, every URL relative (the API may be mounted under a prefix).
"use strict";

const API = "api/v1";
const REFRESH_MS = 2000;
const STATES = ["queued", "scheduled", "started", "progress", "retrying", "succeeded", "dead", "cancelled"];
const TERMINAL = new Set(["succeeded", "dead", "cancelled"]);
let session = null; // {name, scopes}
let timers = [];
let streams = [];

// ---- helpers ---------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function csrfToken() {
  const found = document.cookie.split("; ").find((part) => part.startsWith("taskplane_csrf="));
  return found ? decodeURIComponent(found.split("=")[1]) : "";
}

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${API}${path}`, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data.error || {};
    if (response.status === 401 && path !== "/session") {
      session = null;
      showSignIn("Your session ended (signed out, or the key was revoked). Sign in again.");
    }
    throw new ApiFailure(response.status, error.code || "error", error.message || `HTTP ${response.status}`);
  }
  return data;
}

function can(scope) {
  return !!session && (session.scopes.includes(scope) || session.scopes.includes("admin"));
}

function when(ms) {
  if (!ms) return "";
  const date = new Date(Number(ms));
  return date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function ago(seconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago`;
}

function stateBadge(state) {
  return el("span", { class: `state ${state}`, "data-state": state }, state);
}

function notice(text, isError = false) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = !text;
}

function every(ms, fn) {
  const run = () => fn().catch((err) => { if (!(err instanceof ApiFailure && err.status === 401)) notice(err.message, true); });
  run();
  timers.push(setInterval(run, ms));
}

function stopLive() {
  timers.forEach(clearInterval);
  timers = [];
  streams.forEach((stream) => stream.close());
  streams = [];
}

function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

function table(headers, rows, empty = "Nothing here.") {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el("div", { class: "scroll" },
    el("table", {},
      el("thead", {}, el("tr", {}, headers.map(([label, cls]) => el("th", { class: cls || null }, label)))),
      el("tbody", {}, rows)));
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

function hashParams() {
  const [, search = ""] = location.hash.split("?");
  return Object.fromEntries(new URLSearchParams(search));
}

// ---- sign-in -----------------------------------------------------------------------------------------

function showSignIn(message = "") {
  stopLive();
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  notice("");
  const input = el("input", { type: "password", id: "api-key", autocomplete: "off", placeholder: "API key", required: true });
  const error = el("p", { class: "bad", id: "sign-in-error" }, message);
  const form = el("form", {
    class: "signin", id: "sign-in",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        session = await api("POST", "/session", { key: input.value });
        input.value = "";
        start();
      } catch (err) {
        error.textContent = err.message;
      }
    },
  },
  el("h1", {}, "Sign in"),
  el("p", { class: "muted" }, "With an API key (taskplane api-key create). It is kept in an HttpOnly cookie, not in this page."),
  input, error, el("button", { class: "primary", type: "submit" }, "Sign in"));
  document.getElementById("main").replaceChildren(form);
  input.focus();
}

async function signOut() {
  await api("DELETE", "/session").catch(() => null);
  session = null;
  showSignIn("Signed out.");
}

// ---- overview ----------------------------------------------------------------------------------------

function barChart(values, { bad = false, max = null, label }) {
  const width = 600, height = 90, top = max ?? Math.max(1, ...values);
  const step = width / values.length;
  const bars = values.map((value, i) => {
    const h = Math.round((value / top) * (height - 4));
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("x", String(i * step + 1));
    rect.setAttribute("y", String(height - h));
    rect.setAttribute("width", String(Math.max(1, step - 2)));
    rect.setAttribute("height", String(h));
    if (bad) rect.setAttribute("class", "bad");
    return rect;
  });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.append(...bars);
  return svg;
}

function overview(main) {
  const charts = el("div", { class: "cards", id: "charts" });
  const queues = el("div", { id: "queues" });
  const workers = el("div", { id: "workers" });
  const leader = el("p", { id: "leader", class: "muted" });
  main.replaceChildren(el("h1", {}, "Overview"), charts, el("h2", {}, "Queues"), queues,
    el("h2", {}, "Workers"), workers, el("h2", {}, "Scheduler"), leader);
  every(REFRESH_MS, async () => {
    const [queueRows, workerRows, history, schedules] = await Promise.all([
      api("GET", "/queues"), api("GET", "/workers"), api("GET", "/history?minutes=60"), api("GET", "/schedules"),
    ]);
    const serving = {};
    for (const worker of workerRows) for (const name of worker.queues) serving[name] = (serving[name] || 0) + 1;
    const tiers = [...new Set(queueRows.map((row) => row.tier))];
    queues.replaceChildren(...tiers.map((tier) => el("section", { "data-tier": tier },
      el("h3", {}, `Tier: ${tier}`),
      table([["Queue"], ["Ready", "num"], ["Delayed", "num"], ["Running", "num"], ["Dead", "num"], ["Workers", "num"]],
        queueRows.filter((row) => row.tier === tier).map((row) => el("tr", { "data-queue": row.queue },
          el("td", {}, el("a", { href: `#/tasks?queue=${encodeURIComponent(row.queue)}` }, row.queue)),
          el("td", { class: "num" }, row.ready), el("td", { class: "num" }, row.delayed),
          el("td", { class: "num" }, row.running),
          el("td", { class: "num" }, row.dead ? el("a", { href: `#/dead-letters?queue=${encodeURIComponent(row.queue)}` }, row.dead) : 0),
          el("td", { class: "num" }, serving[row.queue] || 0)))))));
    workers.replaceChildren(table(
      [["Worker"], ["Queues"], ["Concurrency", "num"], ["Active", "num"], ["Processed", "num"], ["Last heartbeat"]],
      workerRows.map((w) => el("tr", { "data-worker": w.hostname },
        el("td", { class: "mono" }, w.hostname), el("td", {}, w.queues.join(", ")),
        el("td", { class: "num" }, w.concurrency), el("td", { class: "num" }, w.active),
        el("td", { class: "num" }, w.processed), el("td", {}, ago(w.last_heartbeat)))),
      "No live worker."));
    const minutes = history.minutes;
    const done = minutes.map((m) => m.succeeded + m.failed);
    const rate = minutes.map((m) => (m.succeeded + m.failed ? (100 * m.failed) / (m.succeeded + m.failed) : 0));
    const total = done.reduce((a, b) => a + b, 0);
    const failed = minutes.reduce((a, m) => a + m.failed, 0);
    charts.replaceChildren(
      el("div", { class: "card" }, el("h3", {}, "Finished per minute, last hour"),
        el("div", { class: "big", id: "throughput" }, total), barChart(done, { label: "tasks finished per minute" })),
      el("div", { class: "card" }, el("h3", {}, "Failure rate, last hour"),
        el("div", { class: "big", id: "failure-rate" }, total ? `${((100 * failed) / total).toFixed(1)} %` : "0 %"),
        barChart(rate, { bad: true, max: 100, label: "failure rate per minute" })));
    const lead = schedules.leader;
    leader.textContent = lead ? `Leader: ${lead.owner} (term ${lead.epoch}, lease ${Math.round(lead.expires_in_ms / 1000)}s)` : "No scheduler leads.";
  });
}

// ---- tasks -------------------------------------------------------------------------------------------

function tasks(main) {
  const params = hashParams();
  const field = (name, attrs = {}) => el("input", { name, value: params[name] || "", ...attrs });
  const stateSelect = el("select", { name: "state" }, el("option", { value: "" }, "any state"),
    STATES.map((s) => el("option", { value: s, selected: params.state === s }, s)));
  const form = el("form", {
    class: "filters", id: "task-filters",
    onsubmit: (event) => {
      event.preventDefault();
      const values = Object.fromEntries(new FormData(form));
      for (const key of ["since", "until"]) if (values[key]) values[key] = new Date(values[key]).toISOString();
      location.hash = `#/tasks${query(values)}`;
    },
  },
  el("label", {}, "State", stateSelect),
  el("label", {}, "Task", field("name", { placeholder: "name" })),
  el("label", {}, "Queue", field("queue", { placeholder: "queue" })),
  el("label", {}, "Created from", field("since", { type: "datetime-local", value: (params.since || "").slice(0, 16) })),
  el("label", {}, "to", field("until", { type: "datetime-local", value: (params.until || "").slice(0, 16) })),
  el("label", {}, "Id starts with", field("id_prefix", { placeholder: "id prefix", class: "mono" })),
  el("button", { class: "primary", type: "submit" }, "Search"));
  const list = el("div", { id: "task-list" });
  const pager = el("div", { class: "pager" });
  main.replaceChildren(el("h1", {}, "Tasks"), form, list, pager);
  const filters = { state: params.state, name: params.name, queue: params.queue, since: params.since, until: params.until, id_prefix: params.id_prefix };
  const cursors = params.cursor ? params.cursor.split(",") : [];
  const load = async () => {
    const page = await api("GET", `/tasks${query({ ...filters, limit: 50, cursor: cursors[cursors.length - 1] })}`);
    list.replaceChildren(table(
      [["Id"], ["Task"], ["Queue", "hide-sm"], ["State"], ["Created"], ["Attempts", "num hide-sm"]],
      page.tasks.map((t) => el("tr", { "data-task": t.id },
        el("td", { class: "mono" }, el("a", { href: `#/task/${encodeURIComponent(t.id)}` }, t.id)),
        el("td", {}, t.name), el("td", { class: "hide-sm" }, t.queue), el("td", {}, stateBadge(t.state)),
        el("td", {}, when(t.created_ms)), el("td", { class: "num hide-sm" }, t.attempts ?? 0))),
      page.next_cursor ? "None on this stretch: older tasks may match." : "No task matches."));
    const go = (list) => { location.hash = `#/tasks${query({ ...filters, cursor: list.join(",") })}`; };
    pager.replaceChildren(
      el("button", { type: "button", disabled: !cursors.length, onclick: () => go(cursors.slice(0, -1)) }, "← Newer"),
      el("button", { type: "button", id: "older", disabled: !page.next_cursor, onclick: () => go([...cursors, page.next_cursor]) }, "Older →"));
  };
  // The first page follows new tasks live; an older page stays put.
  if (cursors.length) load().catch((err) => notice(err.message, true));
  else every(REFRESH_MS * 2, load);
}

function progressOf(record) {
  const current = Number(record.progress_current ?? 0);
  const total = Number(record.progress_total ?? 0);
  if (record.state === "succeeded") return 100;
  return total > 0 ? Math.min(100, Math.round((100 * current) / total)) : 0;
}

function taskPage(main, taskId) {
  const head = el("h1", {}, "Task ", el("span", { class: "mono" }, taskId));
  const bar = el("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, id: "progress" }, el("div"));
  bar.firstChild.style.width = "0%"; // through the CSSOM: the page's CSP refuses inline style attributes
  const progressText = el("p", { class: "muted", id: "progress-text" });
  const fields = el("dl", { class: "record", id: "record" });
  const outcome = el("div", { id: "outcome" });
  const actions = el("div", { class: "actions" });
  main.replaceChildren(head, bar, progressText, actions, fields, outcome);
  let shownState = null;
  const show = async (record) => {
    const percent = progressOf(record);
    bar.setAttribute("aria-valuenow", String(percent));
    bar.firstChild.style.width = `${percent}%`;
    progressText.textContent = `${percent} %` + (record.progress_message ? ` · ${record.progress_message}` : "")
      + (record.progress_step ? ` · ${record.progress_step}` : "");
    const skip = new Set(["args", "kwargs", "traceback", "result"]);
    fields.replaceChildren(...Object.entries(record).filter(([k]) => !skip.has(k)).flatMap(([key, value]) => [
      el("dt", {}, key),
      el("dd", { "data-field": key }, key === "state" ? stateBadge(value) : key.endsWith("_ms") ? when(value) : typeof value === "object" ? JSON.stringify(value) : String(value)),
    ]));
    if (record.state !== shownState) {
      shownState = record.state;
      const parts = [el("h2", {}, "Arguments"), el("pre", {}, JSON.stringify({ args: record.args ?? [], kwargs: record.kwargs ?? {} }, null, 2))];
      if (record.state === "succeeded") {
        const result = await api("GET", `/tasks/${encodeURIComponent(taskId)}/result`).catch((err) => ({ result: err.message }));
        parts.push(el("h2", {}, "Result"), el("pre", { id: "result" }, JSON.stringify(result.result, null, 2)));
      }
      if (record.error_type || record.traceback) {
        parts.push(el("h2", {}, "Error"), el("p", { class: "bad" }, `${record.error_type || ""}: ${record.error_message || ""}`),
          record.traceback ? el("pre", {}, record.traceback) : null);
      }
      outcome.replaceChildren(...parts);
      const canCancel = can("enqueue") && !TERMINAL.has(record.state);
      const terminate = el("input", { type: "checkbox", id: "terminate" });
      actions.replaceChildren(...(canCancel ? [
        el("button", { type: "button", class: "danger", id: "cancel", onclick: async () => {
          if (!(await confirmAction(`Cancel task ${taskId}?${terminate.checked ? " A running task is terminated after 5 s." : ""}`))) return;
          const path = `/tasks/${encodeURIComponent(taskId)}${terminate.checked ? "?terminate_after=5" : ""}`;
          const done = await api("DELETE", path).catch((err) => notice(err.message, true));
          if (done) notice(`Cancel requested: the task is ${done.state}.`);
        } }, "Cancel"),
        el("label", {}, terminate, " terminate if running"),
      ] : []));
    }
  };
  api("GET", `/tasks/${encodeURIComponent(taskId)}`).then((record) => {
    show(record);
    if (TERMINAL.has(record.state)) return;
    const stream = new EventSource(`${API}/tasks/${encodeURIComponent(taskId)}/events`, { withCredentials: true });
    streams.push(stream);
    for (const kind of ["state", "progress", "update"]) {
      stream.addEventListener(kind, (event) => {
        const next = JSON.parse(event.data);
        show(next);
        if (TERMINAL.has(next.state)) stream.close();
      });
    }
    stream.addEventListener("error", (event) => {
      if (event.data) notice(JSON.parse(event.data).message, true);
      stream.close();
    });
  }).catch((err) => {
    main.replaceChildren(head, el("p", { class: "bad" }, err.message));
  });
}

// ---- dead letters ------------------------------------------------------------------------------------

function deadLetters(main) {
  const params = hashParams();
  const offset = Number(params.offset || 0);
  const queueSelect = el("select", { name: "queue", id: "dlq-queue" });
  const form = el("form", {
    class: "filters", id: "dlq-filters",
    onsubmit: (event) => { event.preventDefault(); location.hash = `#/dead-letters${query(Object.fromEntries(new FormData(form)))}`; },
  },
  el("label", {}, "Queue", queueSelect),
  el("label", {}, "Task", el("input", { name: "task", value: params.task || "", placeholder: "name" })),
  el("label", {}, "Reason", el("input", { name: "reason", value: params.reason || "", placeholder: "e.g. retries_exhausted" })),
  el("button", { class: "primary", type: "submit" }, "Filter"));
  const list = el("div", { id: "dlq-list" });
  const actions = el("div", { class: "actions", id: "dlq-actions" });
  const pager = el("div", { class: "pager" });
  const detail = el("div", { id: "dlq-detail" });
  main.replaceChildren(el("h1", {}, "Dead letters"), form, actions, list, pager, detail);
  const selected = new Set();
  const filter = { queue: params.queue, task: params.task, reason: params.reason };

  const act = async (verb, ids) => {
    const count = ids ? ids.length : (await api("GET", `/dead-letters/count${query(filter)}`)).count;
    const scope = ids ? "selected" : `matching the filter (queue ${filter.queue}${filter.task ? `, task ${filter.task}` : ""}${filter.reason ? `, reason ${filter.reason}` : ""})`;
    if (!count) { notice("Nothing to do: no dead letter matches."); return; }
    if (!(await confirmAction(`${verb === "requeue" ? "Requeue" : "Delete for good"} ${count} dead letter${count === 1 ? "" : "s"} ${scope}?`))) return;
    try {
      if (verb === "requeue") {
        const body = ids ? { ids, queue: filter.queue } : { ...Object.fromEntries(Object.entries(filter).filter(([, v]) => v)), all: !filter.task && !filter.reason };
        const done = await api("POST", "/dead-letters/requeue", body);
        notice(`Requeued ${done.requeued.length} task(s).`);
      } else {
        const done = await api("DELETE", `/dead-letters${ids ? query({ queue: filter.queue }) + "&" + ids.map((id) => `id=${encodeURIComponent(id)}`).join("&") : query({ ...filter, all: !filter.task && !filter.reason ? "true" : "" })}`);
        notice(`Deleted ${done.purged} dead letter(s).`);
      }
      selected.clear();
      await load();
    } catch (err) {
      notice(err.message, true);
    }
  };

  const showDetail = async (id) => {
    const letter = await api("GET", `/dead-letters/${encodeURIComponent(id)}`);
    detail.replaceChildren(el("h2", {}, `Dead letter ${letter.id}`),
      el("p", {}, `${letter.name} on ${letter.queue}: ${letter.reason}, ${letter.attempts} attempt(s), last at ${when(letter.last_failure_ms)}`),
      el("pre", {}, JSON.stringify({ args: letter.args, kwargs: letter.kwargs }, null, 2)),
      el("p", { class: "bad" }, `${letter.exception_type}: ${letter.exception_message}`),
      letter.traceback ? el("pre", { id: "dlq-traceback" }, letter.traceback) : null);
  };

  const load = async () => {
    const page = await api("GET", `/dead-letters${query({ ...filter, limit: 50, offset })}`);
    list.replaceChildren(table(
      [[""], ["Id"], ["Task"], ["Reason"], ["Error", "hide-sm"], ["Attempts", "num"], ["Last failure", "hide-sm"]],
      page.dead_letters.map((d) => el("tr", { "data-letter": d.id },
        el("td", {}, can("admin") ? el("input", { type: "checkbox", "aria-label": `select ${d.id}`, checked: selected.has(d.id),
          onchange: (e) => { if (e.target.checked) selected.add(d.id); else selected.delete(d.id); } }) : ""),
        el("td", { class: "mono" }, el("a", { href: "#", onclick: (e) => { e.preventDefault(); showDetail(d.id); } }, d.id)),
        el("td", {}, d.name), el("td", {}, d.reason),
        el("td", { class: "hide-sm" }, `${d.exception_type}: ${d.exception_message}`.slice(0, 120)),
        el("td", { class: "num" }, d.attempts), el("td", { class: "hide-sm" }, when(d.last_failure_ms)))),
      "No dead letter here."));
    const go = (next) => { location.hash = `#/dead-letters${query({ ...filter, offset: next || "" })}`; };
    pager.replaceChildren(
      el("button", { type: "button", disabled: offset === 0, onclick: () => go(Math.max(0, offset - 50)) }, "← Newer"),
      el("button", { type: "button", disabled: page.next_offset === null, onclick: () => go(page.next_offset) }, "Older →"));
  };

  api("GET", "/queues").then((rows) => {
    if (!filter.queue && rows.length) {
      const first = rows.find((row) => row.dead) || rows[0];
      filter.queue = first.queue;
    }
    queueSelect.replaceChildren(...rows.map((row) => el("option", { value: row.queue, selected: row.queue === filter.queue }, `${row.queue} (${row.dead})`)));
    if (can("admin")) {
      actions.replaceChildren(
        el("button", { type: "button", class: "primary", id: "requeue-selected", onclick: () => act("requeue", [...selected]) }, "Requeue selected"),
        el("button", { type: "button", id: "requeue-all", onclick: () => act("requeue", null) }, "Requeue all matching"),
        el("button", { type: "button", class: "danger", id: "purge-selected", onclick: () => act("purge", [...selected]) }, "Delete selected"),
        el("button", { type: "button", class: "danger", id: "purge-all", onclick: () => act("purge", null) }, "Delete all matching"));
    }
    return load();
  }).catch((err) => notice(err.message, true));
}

// ---- schedules ---------------------------------------------------------------------------------------

function schedules(main) {
  const list = el("div", { id: "schedule-list" });
  const log = el("div", { id: "fires" });
  const leader = el("p", { class: "muted", id: "schedule-leader" });
  main.replaceChildren(el("h1", {}, "Schedules"), leader, list, log);
  const act = async (name, verb) => {
    try {
      const done = await api("POST", `/schedules/${encodeURIComponent(name)}/${verb}`);
      notice(verb === "run" ? `Fired ${name}: task ${done.task_id}.` : `${name} ${verb === "pause" ? "paused" : "resumed"}.`);
      await refresh();
    } catch (err) {
      notice(err.message, true);
    }
  };
  const showFires = async (name) => {
    const data = await api("GET", `/schedules/${encodeURIComponent(name)}/fires?limit=50`);
    log.replaceChildren(el("h2", {}, `Firing log: ${name}`), table([["Kind"], ["Slot"], ["Fired"], ["Task"], ["Term", "num"]],
      data.fires.map((f) => el("tr", {}, el("td", {}, f.kind), el("td", {}, when(f.slot_ms)), el("td", {}, when(f.fired_ms)),
        el("td", { class: "mono" }, f.task_id ? el("a", { href: `#/task/${encodeURIComponent(f.task_id)}` }, f.task_id) : ""),
        el("td", { class: "num" }, f.epoch ?? ""))), "Never fired yet."));
  };
  const refresh = async () => {
    const data = await api("GET", "/schedules");
    leader.textContent = data.leader ? `Leader: ${data.leader.owner} (term ${data.leader.epoch})` : "No scheduler leads: nothing fires.";
    list.replaceChildren(table(
      [["Schedule"], ["Task", "hide-sm"], ["When"], ["Next run"], ["Last run", "hide-sm"], ["Last state"], ["Fired", "num hide-sm"], [""]],
      data.schedules.map((s) => el("tr", { "data-schedule": s.name, "data-paused": String(s.paused) },
        el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); showFires(s.name); } }, s.name),
          s.paused ? el("span", { class: "state cancelled" }, " paused") : ""),
        el("td", { class: "hide-sm" }, s.task), el("td", {}, s.schedule), el("td", {}, s.paused ? "paused" : when(s.next_run_ms)),
        el("td", { class: "hide-sm" }, when(s.last_run_ms)),
        el("td", {}, s.last_state ? el("a", { href: `#/task/${encodeURIComponent(s.last_task_id)}` }, stateBadge(s.last_state)) : ""),
        el("td", { class: "num hide-sm" }, s.fired),
        el("td", {}, can("admin") ? el("button", { type: "button", class: "pause-resume", onclick: () => act(s.name, s.paused ? "resume" : "pause") }, s.paused ? "Resume" : "Pause") : "",
          can("enqueue") ? el("button", { type: "button", class: "run-now", onclick: () => act(s.name, "run") }, "Run now") : ""))),
      "No schedule is declared."));
  };
  every(REFRESH_MS * 2, refresh);
}

// ---- routing -----------------------------------------------------------------------------------------

const VIEWS = { "": overview, tasks, "dead-letters": deadLetters, schedules };

function render() {
  if (!session) return;
  stopLive();
  notice("");
  const main = document.getElementById("main");
  const path = location.hash.replace(/^#\/?/, "").split("?")[0];
  const [view, ...rest] = path.split("/");
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.view === (view || "overview") || (view === "task" && link.dataset.view === "tasks"));
  if (view === "task" && rest.length) taskPage(main, decodeURIComponent(rest.join("/")));
  else (VIEWS[view] || overview)(main);
}

function start() {
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  document.getElementById("who").textContent = `${session.name} (${session.scopes.join(", ")})`;
  document.body.dataset.scopes = session.scopes.join(" ");
  render();
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", render);
  try {
    session = await api("GET", "/session");
    start();
  } catch {
    if (!session) showSignIn();
  }
});
