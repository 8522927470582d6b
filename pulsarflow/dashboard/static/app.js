"use strict";
// The pulsarflow dashboard: a list with filters, one workflow's timeline, and actions.
// Talks only to the JSON API of pulsarflow.dashboard.server; builds the DOM without innerHTML.

const $ = (id) => document.getElementById(id);
let selected = null;
let cursor = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return ms + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

function show(value) {
  if (value === null || value === undefined) return "";
  // a payload the dashboard's codecs cannot read (encrypted, kept in a store, a wrong key): why, not bytes
  if (typeof value === "object" && Object.keys(value).length === 1 && "undecoded" in value) {
    return "<" + value.undecoded + ">";
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

// A traceback shows the user's own frames; pulsarflow's are one click away.
function tracebackBlock(text) {
  const lines = text.split("\n");
  const kept = [], hidden = [];
  for (let i = 0; i < lines.length; i++) {
    const frame = /^\s*File "([^"]+)"/.exec(lines[i]);
    if (!frame) { kept.push(lines[i]); continue; }
    const group = [lines[i]];  // the frame, its source line and its ^^^ markers
    while (i + 1 < lines.length && /^\s/.test(lines[i + 1]) && !/^\s*File "/.test(lines[i + 1])) group.push(lines[++i]);
    const engine = /[\\/]pulsarflow[\\/]|[\\/]site-packages[\\/]|[\\/]asyncio[\\/]/.test(frame[1]);
    (engine ? hidden : kept).push(...group);
  }
  const box = el("div", {class: "traceback-box"}, el("pre", {class: "traceback"}, kept.join("\n")));
  if (hidden.length) {
    box.append(el("details", {class: "engine-frames"},
      el("summary", {}, `${hidden.filter((l) => /^\s*File "/.test(l)).length} pulsarflow frame(s)`),
      el("pre", {class: "traceback"}, hidden.join("\n"))));
  }
  return box;
}

function errorBlock(error) {
  if (!error) return null;
  const where = error.task_name ? ` (task ${error.task_name}, ${error.attempts} attempt(s))` : "";
  const box = el("div", {class: "error-box"}, el("b", {class: "error"}, `${error.type}: ${error.message}${where}`));
  if (error.traceback) box.append(tracebackBlock(error.traceback));
  if (error.cause) box.append(el("div", {}, "caused by "), errorBlock(error.cause));
  return box;
}

// The token comes in the URL's fragment (#token=...), printed when the dashboard starts; it is
// kept in this tab's session storage and the fragment is removed from the address bar.
function token() {
  const found = new URLSearchParams(location.hash.slice(1)).get("token");
  if (found) {
    sessionStorage.setItem("pulsarflow-token", found);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("pulsarflow-token") || "";
}

async function api(path, body) {
  const headers = {"Authorization": "Bearer " + token()};
  const options = body === undefined ? {headers} :
    {method: "POST", headers: {...headers, "Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function filters() {
  const params = new URLSearchParams();
  const add = (key, value) => { if (value) params.set(key, value); };
  add("name", $("filter-name").value.trim());
  add("status", $("filter-status").value);
  add("tag", $("filter-tag").value.trim());
  const time = (id) => $(id).value ? new Date($(id).value + "Z").toISOString() : "";
  add("started_after", time("filter-started-after"));
  add("started_before", time("filter-started-before"));
  params.set("limit", "50");
  return params;
}

async function loadList(append) {
  const params = filters();
  if (append && cursor) params.set("cursor", cursor);
  $("list-error").textContent = "";
  try {
    const page = await api("/api/workflows?" + params);
    const body = $("workflows").tBodies[0];
    if (!append) body.replaceChildren();
    for (const w of page.workflows) {
      const row = el("tr", {"data-id": w.workflow_id, class: w.workflow_id === selected ? "selected" : ""},
        el("td", {}, w.workflow_id), el("td", {}, w.workflow_name),
        el("td", {class: "status-" + w.status}, w.status), el("td", {}, w.started_at),
        el("td", {}, duration(w.duration_ms)), el("td", {}, w.tags.join(", ")));
      row.addEventListener("click", () => select(w.workflow_id));
      body.append(row);
    }
    cursor = page.next_cursor;
    $("more").hidden = !cursor;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    $("list-error").textContent = error.message;
  }
}

function stepRows(step) {
  const rows = [el("tr", {class: "step", "data-position": step.position},
    el("td", {}, step.position), el("td", {}, step.kind), el("td", {}, step.name),
    el("td", {class: "outcome-" + step.outcome.split(" ")[0]}, step.outcome), el("td", {}, step.issued_at),
    el("td", {}, duration(step.duration_ms)), el("td", {}, step.attempts.length || ""),
    el("td", {}, step.error ? errorBlock(step.error) : show(step.value)))];
  for (const a of step.attempts) {
    rows.push(el("tr", {class: "attempt"}, el("td"), el("td"), el("td", {}, "attempt " + a.number),
      el("td", {}, a.error ? "failed" : ""), el("td", {}, a.started_at), el("td", {}, duration(a.duration_ms)),
      el("td", {}, a.retry_at_ms ? "retry at " + new Date(a.retry_at_ms).toISOString() : ""),
      el("td", {}, errorBlock(a.error) || "", a.heartbeat !== null && a.heartbeat !== undefined
        ? el("div", {class: "heartbeat"}, "last heartbeat ", el("code", {}, show(a.heartbeat))) : "")));
  }
  return rows;
}

// The timeline drawn: one bar per step on a time axis from the start (a Gantt chart), attempts
// as segments of their task's bar with failures marked, open steps running to now.
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function gantt(w, steps) {
  const start = w.started_at_ms ?? Math.min(...steps.map((s) => s.issued_at_ms ?? Date.now()));
  const ends = steps.map((s) => s.closed_at_ms ?? 0);
  const end = Math.max(w.closed_at_ms ?? Date.now(), ...ends, start + 1);
  const width = 760, left = 170, row = 20, span = end - start;
  const x = (ms) => left + (width - left - 10) * Math.min(1, Math.max(0, (ms - start) / span));
  const chart = svg("svg", {id: "gantt", width, height: steps.length * row + 26, role: "img",
    "aria-label": "timeline of the steps"});
  for (let i = 0; i <= 4; i++) {
    const t = start + (span * i) / 4;
    chart.append(svg("line", {class: "grid", x1: x(t), x2: x(t), y1: 0, y2: steps.length * row}),
      svg("text", {class: "tick", x: x(t), y: steps.length * row + 16,
        "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle"}, duration(t - start)));
  }
  steps.forEach((s, i) => {
    const y = i * row + 3, from = s.issued_at_ms ?? start, to = s.closed_at_ms ?? end;
    const outcome = s.outcome.split(" ")[0];
    chart.append(svg("text", {class: "label", x: 2, y: y + 12}, `${s.position} ${s.kind} ${s.name || ""}`.slice(0, 26)));
    const bar = svg("rect", {class: `bar kind-${s.kind.replace(/\W+/g, "-")} outcome-${outcome}${s.closed_at_ms == null ? " open" : ""}`,
      x: x(from), y, width: Math.max(3, x(to) - x(from)), height: row - 6, "data-position": s.position},
      svg("title", {}, `${s.kind} ${s.name || ""}: ${s.outcome}, ${duration(s.duration_ms)}`));
    bar.addEventListener("click", () => focusStep(s.position));
    chart.append(bar);
    for (const a of s.attempts) {
      if (!a.error || a.started_at_ms == null) continue;
      const at = x(a.started_at_ms + (a.duration_ms || 0));
      chart.append(svg("line", {class: "failed-attempt", x1: at, x2: at, y1: y - 1, y2: y + row - 5},
        svg("title", {}, `attempt ${a.number} failed: ${a.error.type}`)));
    }
  });
  return chart;
}

function focusStep(position) {
  for (const tr of $("steps").tBodies[0].rows) tr.classList.toggle("focused", tr.dataset.position === String(position));
  const row = $("steps").querySelector(`tr.step[data-position="${position}"]`);
  if (row) row.scrollIntoView({block: "nearest"});
}

async function loadDetail() {
  if (!selected) return;
  const data = await api("/api/workflow?id=" + encodeURIComponent(selected));
  const w = data.workflow;
  $("detail").hidden = false;
  $("detail-id").textContent = w.workflow_id;
  $("detail-name").textContent = w.workflow_name || "";
  $("detail-status").textContent = w.status;
  $("detail-status").className = "status-" + w.status;
  $("detail-started").textContent = w.started_at;
  $("detail-duration").textContent = w.closed_at ? "took " + duration(w.duration_ms) : "still open";
  $("detail-result").replaceChildren(w.result !== null ? el("p", {}, "result ", el("code", {}, show(w.result))) : "");
  $("detail-error").replaceChildren(errorBlock(w.error) || "");
  $("steps").tBodies[0].replaceChildren(...data.steps.flatMap(stepRows));
  $("gantt-box").replaceChildren(data.steps.length ? gantt(w, data.steps) : "");
  $("events").tBodies[0].replaceChildren(...data.events.map((e) => el("tr", {},
    el("td", {}, e.at), el("td", {}, e.type), el("td", {}, e.position ?? ""), el("td", {}, e.name ?? ""),
    el("td", {}, e.attempt || ""), el("td", {}, e.source))));
}

async function select(id) {
  selected = id;
  for (const row of $("workflows").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === id);
  $("action-result").textContent = "";
  await loadDetail();
}

async function act(action, body) {
  $("action-result").textContent = action + "…";
  try {
    const answer = await api("/api/workflow/" + action, {id: selected, ...body});
    $("action-result").textContent = answer.detail;
  } catch (error) {
    $("action-result").textContent = error.message;
  }
  await loadDetail();
  await loadList(false);
}

$("filters").addEventListener("submit", (event) => { event.preventDefault(); loadList(false); });
$("more").addEventListener("click", () => loadList(true));
$("send-signal").addEventListener("click", () => {
  let data = null;
  const text = $("signal-data").value.trim();
  try { data = text ? JSON.parse(text) : null; } catch (error) {
    $("action-result").textContent = "signal data is not JSON: " + error.message;
    return;
  }
  act("signal", {name: $("signal-name").value.trim(), data});
});
$("cancel").addEventListener("click", () => act("cancel", {}));
$("retry").addEventListener("click", () => act("retry", {}));

loadList(false);
setInterval(() => { loadList(false); loadDetail().catch(() => {}); }, 3000);
