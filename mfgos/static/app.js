// mfgos console: vanilla JS, no build step. Polls the JSON API every 1.5 s.
"use strict";

const POLL_MS = 1500;
const EXAMPLES = [
  ["report (hi)", "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"],
  ["report (en)", "grinder 2 stopped, coolant pump leaking"],
  ["on my way", "on my way"],
  ["fixed", "fixed, replaced the hob arbor bearing, running again"],
  ["what is down?", "what is down right now?"],
  ["KPIs", "mttr this week?"],
];

const state = {
  plant: null,
  people: [],
  person: localStorage.getItem("mfgos.person") || "",
  thread: "",
  after: 0,
  afterSent: 0,
  items: [],          // chat items: {dir: "in"|"out", at, ...}
  exceptions: [],
  selected: null,     // exception code shown in the detail panel
  period: "today",
  pressed: new Set(), // "notificationId:button" already pressed here
  pending: null,      // {text, eventId} of a send that has not been answered yet
  polling: false,
  generation: 0,      // bumped when the chat switches person, so late answers are dropped
  rendered: {},       // last JSON per panel, to re-render only on change
};

// --- helpers -----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function newEventId() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function timeFormat(options) {
  const zone = state.plant ? state.plant.timezone : undefined;
  try {
    return new Intl.DateTimeFormat("en-GB", {timeZone: zone, ...options});
  } catch (_) {
    return new Intl.DateTimeFormat("en-GB", options);
  }
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = timeFormat({dateStyle: "short"}).format(new Date());
  const day = timeFormat({dateStyle: "short"}).format(date);
  const clock = timeFormat({hour: "2-digit", minute: "2-digit"}).format(date);
  return day === today ? clock : `${timeFormat({day: "numeric", month: "short"}).format(date)} ${clock}`;
}

function minutes(value) {
  return value === null || value === undefined ? "–" : `${value} min`;
}

function badge(status, label) {
  return h("span", {class: `badge st-${status}`}, label || words(status));
}

function codeTag(code) {
  return h("span", {class: "tag code", title: "open this thread", onclick: () => selectException(code, true)}, code);
}

function personName(id) {
  const person = state.people.find((p) => p.id === id);
  return person ? person.name : id || "system";
}

function changed(key, data) {
  const text = JSON.stringify(data);
  if (state.rendered[key] === text) return false;
  state.rendered[key] = text;
  return true;
}

function words(name) {
  return String(name || "").replaceAll("_", " ");  // "maintenance request" can wrap in a narrow column
}

// What a button does, as it reads on the button (the same titles the chat platforms show).
const BUTTON_LABELS = {
  ack: "Acknowledge", propose: "Propose fix", approve: "Approve", reject: "Reject",
  erp_retry: "Retry", erp_abandon: "Abandon",
};
const NOTE_KINDS = {
  alert: "alert", escalation: "escalation", approval_request: "approval request", erp_reference: "ERP reference",
  erp_rejected: "ERP refused", erp_retried: "ERP retried", erp_abandoned: "ERP abandoned",
  erp_auth_failed: "ERP login refused", buttons_update: "buttons changed",
  refusal: "refused", opened: "opened", joined: "joined", reply: "reply", question: "question",
  thread_root: "thread", thread_reply: "thread reply", not_registered: "not registered",
};

// The answer buttons of a "which one?" question name their exception: `choose:E-0042`.
function choiceCode(button) {
  const found = /^choose:(E-\d{1,6})$/.exec(button || "");
  return found ? found[1] : null;
}

// Retry / Abandon of a transaction the ERP refused name the transaction: `erp_retry:<public id>`.
function erpKind(button) {
  const found = /^(erp_retry|erp_abandon):[0-9a-f]{8,32}$/.exec(button || "");
  return found ? found[1] : null;
}

// A decision part's button names its part: `part:approve:7`, `part:option2:7` (the planner's options).
const PART_LABELS = {approve: "Approve", reject: "Reject", confirm: "Confirm", skip: "Not needed"};
function partLabel(button) {
  const found = /^part:(approve|reject|confirm|skip|option([1-9])):\d+$/.exec(button || "");
  if (!found) return null;
  return found[2] ? `Option ${found[2]}` : PART_LABELS[found[1]];
}

function buttonLabel(action) {
  return choiceCode(action) || partLabel(action) || BUTTON_LABELS[erpKind(action) || action] || words(action);
}

function noteKind(kind) {
  return NOTE_KINDS[kind] || words(kind);
}

function isEmpty(value) {
  if (value === null || value === undefined || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === "object" && Object.keys(value).length === 0;
}

function fieldText(value) {
  if (Array.isArray(value)) return value.map(fieldText).join(", ");
  if (typeof value === "object") return Object.values(value).filter((v) => !isEmpty(v)).map(fieldText).join(" ");
  return String(value);
}

function fieldsText(fields, skip = ["description", "reason"]) {
  return Object.entries(fields || {})
    .filter(([key, value]) => !isEmpty(value) && !skip.includes(key))
    .map(([key, value]) => `${words(key)}: ${fieldText(value)}`)
    .join(" · ");
}

// --- plant, people, machines -------------------------------------------------------------

function renderPlant(data) {
  state.plant = data.plant;
  document.getElementById("plant-name").textContent = `${data.plant.name} (${data.plant.id})`;
  document.getElementById("plant-clock").textContent =
    `${timeFormat({weekday: "short", hour: "2-digit", minute: "2-digit"}).format(new Date())} ${data.plant.timezone}`;
  if (changed("machines", data.machines)) {
    document.getElementById("machines").replaceChildren(...data.machines.map((m) =>
      h("span", {class: `machine ${m.running ? "running" : "down"}`, title: `${m.name} · ${m.area}`},
        `${m.id}${m.running ? "" : " down"}`)));
  }
  if (changed("people", data.people)) {
    state.people = data.people;
    const select = document.getElementById("person");
    select.replaceChildren(...data.people.map((p) =>
      h("option", {value: p.id}, `${p.name} — ${p.roles.join(", ")} (${p.language})${p.on_shift ? "" : " · off shift"}`)));
    if (!state.people.some((p) => p.id === state.person)) state.person = data.people.length ? data.people[0].id : "";
    select.value = state.person;
  }
  renderPersonInfo();
}

function renderPersonInfo() {
  const person = state.people.find((p) => p.id === state.person);
  if (!person) return;
  const channels = person.channels.length ? person.channels.join(", ") : "console only";
  document.getElementById("person-info").textContent =
    `${person.id} · areas ${person.areas.join(", ") || "all"} · channels ${channels} · ${person.on_shift ? "on shift" : "off shift"}`;
}

function switchPerson(id) {
  state.person = id;
  state.generation += 1;
  localStorage.setItem("mfgos.person", id);
  state.after = 0;
  state.afterSent = 0;
  state.items = [];
  state.pending = null;
  document.getElementById("messages").replaceChildren();
  document.getElementById("send-error").textContent = "";
  renderPersonInfo();
  poll();
}

// --- chat --------------------------------------------------------------------------------

function renderThreadOptions() {
  const open = state.exceptions.filter((e) => e.status !== "closed");
  if (!changed("threads", open.map((e) => [e.code, e.status, e.machine]))) return;
  const select = document.getElementById("thread");
  const options = [h("option", {value: ""}, "none — a new message")];
  for (const e of open) options.push(h("option", {value: e.code}, `${e.code} · ${e.type_name} · ${e.machine || e.area || "-"} · ${e.status_name}`));
  if (state.thread && !open.some((e) => e.code === state.thread)) options.push(h("option", {value: state.thread}, state.thread));
  select.replaceChildren(...options);
  select.value = state.thread;
}

function setThread(code) {
  state.thread = code || "";
  state.rendered.threads = null;
  renderThreadOptions();
}

function messageItem(item) {
  if (item.dir === "out") {
    const text = item.action ? `▶ ${buttonLabel(item.action)}${item.text ? `: ${item.text}` : ""}` : item.text;
    return h("div", {class: `msg out${item.action ? " action" : ""}`},
      h("div", {class: "meta"}, "you", h("span", {class: `tag ch-${item.channel}`}, item.channel),
        item.exception ? codeTag(item.exception) : null, when(item.at)),
      h("div", {class: "body"}, text),
      item.error ? h("div", {class: "error"}, item.error) : null);
  }
  const buttons = (item.buttons || []).map((button) => {
    const key = `${item.id}:${button}`;
    return h("button", {
      type: "button", class: `${choiceCode(button) ? "choose" : erpKind(button) || button}${state.pressed.has(key) ? " pressed" : ""}`,
      disabled: state.pressed.has(key) || !(item.exception || choiceCode(button)),
      onclick: (event) => press(item, button, event.target),
    }, buttonLabel(button));
  });
  return h("div", {class: "msg in", "data-id": item.id},
    h("div", {class: "meta"}, "bot", h("span", {class: `tag ch-${item.channel}`, title: "channel"}, item.channel),
      item.exception ? codeTag(item.exception) : null, h("span", {class: "tag"}, noteKind(item.kind)), when(item.at),
      item.status === "failed" ? h("span", {class: "badge st-failed", title: item.error || ""}, "not delivered") : null),
    h("div", {class: "body"}, item.text),
    item.chart ? chartImage(item) : null,
    buttons.length ? h("div", {class: "buttons"}, buttons) : null,
    item.buttons_status ? h("div", {class: "buttons-status"}, item.buttons_status) : null);
}

// A trend or ranking answer carries its chart: the same PNG the chat platforms got, read with the
// session like the messages are (GET /api/people/{id}/charts/{notification}).
function chartImage(item) {
  return h("img", {class: "chart", src: item.chart, alt: "chart", loading: "lazy", width: 800, height: 450});
}

function addMessages(data) {
  const fresh = [];
  let updated = false;
  for (const m of data.messages) {
    state.after = Math.max(state.after, m.id);
    if (m.kind === "buttons_update") {
      // It edits an earlier message's buttons (as Slack and Telegram edit theirs): no bubble of its own.
      const original = state.items.find((item) => item.dir === "in" && item.id === m.updates_id);
      if (original) {
        original.buttons = m.buttons;
        original.buttons_status = m.text;
        updated = true;
      }
      continue;
    }
    fresh.push({dir: "in", ...m});
  }
  for (const s of data.sent) {
    state.afterSent = Math.max(state.afterSent, s.id);
    fresh.push({dir: "out", ...s});
  }
  if (!fresh.length && !updated) return;
  const box = document.getElementById("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  state.items.push(...fresh);
  state.items.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : (a.dir === "out" ? -1 : 1)));
  box.replaceChildren(...state.items.map(messageItem));
  if (atBottom || fresh.some((f) => f.dir === "out")) box.scrollTop = box.scrollHeight;
}

async function send(event) {
  event.preventDefault();
  const area = document.getElementById("text");
  const text = area.value.trim();
  const errorBox = document.getElementById("send-error");
  if (!text || !state.person) return;
  // A retry of the same text after a failed request reuses its id, so the server stores it once.
  if (!state.pending || state.pending.text !== text) state.pending = {text, eventId: newEventId()};
  const button = document.getElementById("send");
  button.disabled = true;
  try {
    await api("/api/messages", {person_id: state.person, text, event_id: state.pending.eventId, exception: state.thread || null});
    area.value = "";
    state.pending = null;
    errorBox.textContent = "";
  } catch (error) {
    errorBox.textContent = `Not sent: ${error.message}`;
  } finally {
    button.disabled = false;
    area.focus();
    poll();
  }
}

async function press(item, button, element, repeatable = false) {
  let text = "";
  if (button === "reject") {
    const reason = window.prompt(`Reject ${item.exception}: why?`, "");
    if (reason === null) return;
    text = reason;
  } else if (erpKind(button) === "erp_abandon") {
    // Left empty, the bot asks for the reason in the chat (the next message is the reason).
    const reason = window.prompt(`Abandon what the ERP refused for ${item.exception}: why?`, "");
    if (reason === null) return;
    text = reason;
  } else if (button === "propose") {
    text = document.getElementById("text").value.trim();
    if (!text) {
      const fix = window.prompt(`Propose a fix for ${item.exception}:`, "");
      if (fix === null) return;
      text = fix;
    }
  }
  element.disabled = true;
  const key = `${item.id}:${button}`;
  try {
    const exception = choiceCode(button) || item.exception;  // an answer to "which one?" belongs to no thread yet
    await api("/api/actions", {person_id: state.person, action: button, exception, text, event_id: `${key}:${newEventId()}`});
    if (repeatable) {
      element.disabled = false;
    } else {
      state.pressed.add(key);
      element.classList.add("pressed");
    }
    if (button === "propose") document.getElementById("text").value = "";
  } catch (error) {
    element.disabled = false;
    document.getElementById("send-error").textContent = `${buttonLabel(button)} failed: ${error.message}`;
  }
  poll();
}

// --- exceptions --------------------------------------------------------------------------

function renderExceptions(data) {
  state.exceptions = data.exceptions;
  renderThreadOptions();
  const showClosed = document.getElementById("show-closed").checked;
  const rows = data.exceptions.filter((e) => showClosed || e.status !== "closed");
  if (!changed("exceptions", [rows, state.selected])) return;
  document.getElementById("no-exceptions").hidden = rows.length > 0;
  document.querySelector("#exceptions tbody").replaceChildren(...rows.map((e) =>
    h("tr", {class: e.code === state.selected ? "selected" : null, "data-code": e.code,
      onclick: () => selectException(e.code, false)},
      h("td", {class: "nowrap"}, h("strong", {}, e.code)), h("td", {}, badge(e.status, e.status_name)),
      h("td", {}, h("span", {class: `sev sev-${e.severity}`, title: "severity"}, e.severity_name)),
      h("td", {}, e.type_name), h("td", {title: e.machine_name || ""}, e.machine || e.area || "–"),
      h("td", {class: "holder", title: e.acknowledged_by ? "acknowledged" : "paged, nobody acknowledged yet"},
        e.holder ? (e.acknowledged_by ? e.holder : `paged: ${e.holder}`) : "–"),
      h("td", {class: "age nowrap", title: `opened ${when(e.opened_at)}`}, e.age),
      h("td", {class: "markers"}, markers(e)),
      h("td", {}, idList(e.work_orders)), h("td", {}, idList(e.customer_orders_at_risk)))));
}

function idList(ids) {
  // WO-1042 stays on one line in a narrow column; the list wraps between ids.
  if (!ids.length) return "–";
  return ids.flatMap((id, i) => [i ? ", " : null, h("span", {class: "nowrap"}, id)]);
}

function markers(e) {
  return [
    e.escalated ? h("span", {class: "marker escalated", title: "an escalation was sent"}, "escalated") : null,
    e.overdue ? h("span", {class: "marker overdue", title: "not acknowledged in time"}, "overdue") : null,
    e.erp_refused ? h("span", {class: "marker erp-refused", title: "the ERP refused a transaction: the approver retries or abandons it"},
      "ERP refused") : null,
    e.open_decisions ? h("span", {class: "marker decisions", title: "decision parts still open"},
      `${e.open_decisions} open decision${e.open_decisions > 1 ? "s" : ""}`) : null,
  ];
}

function selectException(code, asThread) {
  state.selected = code;
  if (asThread) setThread(code);
  state.rendered.exceptions = null;
  state.rendered.detail = null;
  poll();
}

function renderDetail(d) {
  if (!changed("detail", [d, state.person])) return;
  const facts = [
    ["Summary", d.summary], ["Severity", d.severity_name], ["Reporter", personName(d.reporter)],
    ["Age", d.age], ["Who has it", d.holder ? (d.acknowledged_by ? d.holder : `paged: ${d.holder}`) : "–"],
    ["Machine", d.machine ? `${d.machine}${d.machine_name ? ` (${d.machine_name})` : ""}` : "–"],
    ["Work orders", d.work_orders.join(", ") || "–"],
    ["Customer orders at risk", d.customer_orders_at_risk.join(", ") || "–"],
    ["Staging conflict", d.staging_conflict ? fieldsText(d.staging_conflict) : "–"],
    ["Approver role", d.approver_role_name],
    ["Proposal", d.proposal ? `${personName(d.proposal.by)}: ${d.proposal.text || ""}` : "–"],
  ];
  // One sentence per event, written by the server in the reader's language; events that say
  // nothing (an impact analysis that found nothing) have none and get no row.
  const timeline = d.timeline.filter((t) => t.sentence).map((t) =>
    h("li", {class: `k-${t.kind}`}, h("span", {class: "when"}, when(t.at)), h("span", {class: "sentence"}, t.sentence)));
  const notes = d.notifications.map((n) => h("tr", {},
    h("td", {}, when(n.at)), h("td", {}, personName(n.to)), h("td", {}, n.role_name || "–"),
    h("td", {}, h("span", {class: `tag ch-${n.channel}`}, n.channel)), h("td", {}, noteKind(n.kind)),
    h("td", {}, badge(n.status))));
  // Decision parts (planner, materials, customer service): open ones first, each with its state.
  const parts = [...d.decisions].sort((a, b) => b.open - a.open).map((p) => h("tr", {class: p.open ? "open" : ""},
    h("td", {}, p.kind_name), h("td", {}, p.text), h("td", {}, p.role_name),
    h("td", {}, badge(p.status, p.status_name))));
  // A refused transaction shows the ERP's reason and, to the approver role, Retry and Abandon.
  const person = state.people.find((p) => p.id === state.person);
  const decides = Boolean(person && person.roles.includes(d.approver_role));
  const txns = d.erp_transactions.map((t) => h("tr", {class: t.status === "rejected" ? "refused" : null},
    h("td", {}, t.kind_name || words(t.kind)), h("td", {}, badge(t.status)), h("td", {}, t.reference || t.error || "–"),
    h("td", {class: "buttons"}, decides ? t.actions.map((action) => h("button", {
      type: "button", class: erpKind(action),
      onclick: (event) => press({id: `txn-${t.public_id}`, exception: d.code}, action, event.target),
    }, buttonLabel(action))) : null)));
  document.getElementById("detail").replaceChildren(...[
    h("h2", {}, d.code, badge(d.status, d.status_name), h("span", {class: "muted"}, `${d.type_name} on ${d.machine || d.area || "–"}`),
      markers(d),
      h("button", {type: "button", class: "tag code", onclick: () => setThread(d.code)}, "write in this thread")),
    d.status === "closed" ? null : h("div", {class: "actions"}, `As ${personName(state.person)}:`,
      ["ack", "propose", "approve", "reject"].map((action) => h("button", {
        type: "button", class: action,
        onclick: (event) => press({id: `detail-${d.code}`, exception: d.code}, action, event.target, true),
      }, buttonLabel(action)))),
    h("dl", {class: "facts"}, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "–")])),
    h("h3", {}, "Decisions"),
    parts.length ? h("div", {class: "table-wrap"}, h("table", {class: "table decisions"}, h("tbody", {}, parts)))
      : h("div", {class: "empty"}, "None yet."),
    h("h3", {}, "Timeline"), h("ul", {class: "timeline"}, timeline),
    h("h3", {}, "Notifications"),
    h("div", {class: "table-wrap"}, h("table", {class: "table"},
      h("thead", {}, h("tr", {}, ["At", "To", "Role", "Channel", "Kind", "Status"].map((c) => h("th", {}, c)))),
      h("tbody", {}, notes))),
    h("h3", {}, "ERP transactions"),
    txns.length ? h("table", {class: "table"}, h("tbody", {}, txns)) : h("div", {class: "empty"}, "None yet."),
  ].filter(Boolean));
}

// --- ERP and KPIs ------------------------------------------------------------------------

function renderErp(data) {
  if (!changed("erp", data)) return;
  document.getElementById("erp-name").textContent = data.erp;
  renderErpCheck(data.check);
  document.getElementById("no-txns").hidden = data.transactions.length > 0;
  document.querySelector("#erp-txns tbody").replaceChildren(...data.transactions.map((t) =>
    h("tr", {title: fieldsText(t.fields)}, h("td", {}, t.id), h("td", {}, t.exception ? codeTag(t.exception) : "–"),
      h("td", {}, t.kind_name || words(t.kind)), h("td", {}, badge(t.status)),
      h("td", {class: t.reference ? "nowrap" : null}, t.reference ? h("strong", {}, t.reference) : (t.error || "–")))));
  document.getElementById("no-docs").hidden = data.ledger_documents.length > 0;
  document.querySelector("#ledger tbody").replaceChildren(...data.ledger_documents.map((d) =>
    h("tr", {}, h("td", {class: "nowrap"}, h("strong", {}, d.reference)),
      h("td", {}, words(d.kind), h("div", {class: "fields"}, fieldsText(d.fields))), h("td", {}, when(d.posted_at)))));
}

// The last check of the plant's erp: settings against the ERP (`mfgos check-erp`, run by serve).
function renderErpCheck(check) {
  const box = document.getElementById("erp-check");
  const problems = check ? check.problems : [];
  box.hidden = !check || (!problems.length && !check.error);
  if (box.hidden) return;
  box.replaceChildren(...[
    h("strong", {}, problems.length ? `ERP settings: ${problems.length} problem(s)` : "ERP settings not checked"),
    check.error ? h("div", {class: "muted small"}, `The ERP could not be asked (${check.error}); last problems found:`) : null,
    problems.length ? h("ul", {}, problems.map((p) => h("li", {}, p))) : null,
    h("div", {class: "muted small"}, `checked ${when(check.checked_at)}`),
  ].filter(Boolean));
}

function renderKpis(k) {
  if (!changed("kpis", k)) return;
  const tiles = [
    ["Opened", k.opened], ["Open now", k.open_now], ["Closed", k.closed],
    ["MTTA", minutes(k.mtta_minutes)], ["MTTR", minutes(k.mttr_minutes)],
    ["Escalations", k.escalations],
    ["Msgs / exception", k.messages_per_exception === null ? "–" : k.messages_per_exception],
  ];
  document.getElementById("kpi-tiles").replaceChildren(...tiles.map(([label, value]) =>
    h("div", {class: "tile"}, h("div", {class: "value"}, value), h("div", {class: "label"}, label))));
}

// --- the loop ----------------------------------------------------------------------------

async function poll() {
  if (state.polling) return;
  state.polling = true;
  const conn = document.getElementById("conn");
  try {
    const [plant, exceptions, erp, kpis] = await Promise.all([
      api("/api/plant"), api("/api/exceptions"), api("/api/erp"), api(`/api/kpis?period=${state.period}`),
    ]);
    renderPlant(plant);
    renderExceptions(exceptions);
    renderErp(erp);
    renderKpis(kpis);
    if (state.person) {
      const generation = state.generation;
      const data = await api(`/api/people/${encodeURIComponent(state.person)}/messages?after=${state.after}&after_sent=${state.afterSent}`);
      if (generation === state.generation) addMessages(data);  // the person changed meanwhile: drop it
    }
    if (state.selected) {
      try {
        renderDetail(await api(`/api/exceptions/${encodeURIComponent(state.selected)}`));
      } catch (error) {
        if (error.status === 404) state.selected = null; else throw error;
      }
    }
    conn.className = "conn ok";
    conn.textContent = "live";
  } catch (error) {
    conn.className = "conn down";
    conn.textContent = "offline";
    conn.title = String(error.message || error);
  } finally {
    state.polling = false;
  }
}

function start() {
  document.getElementById("person").addEventListener("change", (e) => switchPerson(e.target.value));
  document.getElementById("thread").addEventListener("change", (e) => setThread(e.target.value));
  document.getElementById("composer").addEventListener("submit", send);
  document.getElementById("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      document.getElementById("composer").requestSubmit();
    }
  });
  document.getElementById("show-closed").addEventListener("change", () => { state.rendered.exceptions = null; poll(); });
  for (const button of document.querySelectorAll(".period button")) {
    button.addEventListener("click", () => {
      state.period = button.dataset.period;
      for (const other of document.querySelectorAll(".period button")) other.classList.toggle("active", other === button);
      poll();
    });
  }
  document.getElementById("examples").replaceChildren(...EXAMPLES.map(([label, text]) =>
    h("button", {type: "button", title: text, onclick: () => {
      const area = document.getElementById("text");
      area.value = text;
      area.focus();
    }}, label)));
  // Signed in, the page reads only the person's own messages: learn who before the first poll,
  // so it never asks for someone else's (a 403) while session.js is still finding out.
  fetch("/api/session", {cache: "no-store"}).then((r) => (r.ok ? r.json() : null)).then((session) => {
    if (session && session.person) state.person = session.person.id;
  }).catch(() => {}).finally(() => {
    poll();
    setInterval(poll, POLL_MS);
  });
}

start();
