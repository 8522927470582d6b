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
  return typeof value === "string" ? value : JSON.stringify(value);
}

function errorBlock(error) {
  if (!error) return null;
  const where = error.task_name ? ` (task ${error.task_name}, ${error.attempts} attempt(s))` : "";
  const box = el("div", {class: "error-box"}, el("b", {class: "error"}, `${error.type}: ${error.message}${where}`));
  if (error.traceback) box.append(el("pre", {class: "traceback"}, error.traceback));
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
      el("td", {}, errorBlock(a.error))));
  }
  return rows;
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
