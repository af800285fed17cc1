// The dashboard below the console (docs/console.md, "Dashboard"): KPI trends and the Pareto of
// exception types as SVG charts drawn here with DOM APIs, the four outcomes against the plant's
// baseline, the ERP and MES outboxes with their failures, and the signal log.
// Self-contained beside app.js (it reads only the JSON API and the #person picker) and under the
// page's strict CSP: no inline style or script, no library; every text goes in by textContent.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 5000;
  const METRICS = {
    opened: ["Exceptions opened", ""], closed: ["Closed (of those opened)", ""],
    mtta_minutes: ["MTTA", " min"], mttr_minutes: ["MTTR (breakdowns)", " min"],
    downtime_minutes: ["Downtime (breakdowns)", " min"],
  };
  const OUTCOMES = [
    ["resolution_minutes", "Resolution time", " min"], ["schedule_adherence", "Schedule adherence", "%"],
    ["erp_correction_rate", "ERP corrections", "%"], ["coordination_per_week", "Coordination / week", ""],
  ];
  const dash = {period: "7d", metric: "opened", signals: [], nextBefore: null, filters: {source: "", machine: ""},
                rendered: {}, busy: false, person: null};

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  async function get(path) {
    const response = await fetch(path, {cache: "no-store"});
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
    return data;
  }

  function fresh(key, data) {
    const text = JSON.stringify(data);
    if (dash.rendered[key] === text) return false;
    dash.rendered[key] = text;
    return true;
  }

  function words(name) {
    return String(name || "").replaceAll("_", " ");
  }

  function shown(value, unit) {
    if (value === null || value === undefined) return "–";
    return unit === "%" ? `${Math.round(value * 1000) / 10}%` : `${value}${unit}`;
  }

  function clock(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return `${date.toISOString().slice(5, 10)} ${date.toISOString().slice(11, 16)}`;
  }

  // --- charts ------------------------------------------------------------------------------

  // Bars per day with the value above each, the day under every few bars; a missing value is a gap.
  function trendChart(days, metric) {
    const [label, unit] = METRICS[metric];
    const width = 640, height = 200, left = 34, bottom = 22, top = 16;
    const values = days.map((d) => d[metric]);
    const max = Math.max(1, ...values.filter((v) => v !== null));
    const step = (width - left) / Math.max(days.length, 1);
    const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "chart trend", role: "img",
                              "aria-label": `${label} per day`});
    chart.append(svg("title", {}, `${label} per day`));
    for (const fraction of [0, 0.5, 1]) {
      const y = top + (height - top - bottom) * (1 - fraction);
      chart.append(svg("line", {x1: left, x2: width, y1: y, y2: y, class: "grid-line"}));
      chart.append(svg("text", {x: left - 4, y: y + 4, class: "axis", "text-anchor": "end"},
                       Math.round(max * fraction * 10) / 10));
    }
    const every = Math.ceil(days.length / 10);
    days.forEach((day, i) => {
      const value = values[i];
      const x = left + i * step + step * 0.15;
      if (value !== null) {
        const h = (height - top - bottom) * (value / max);
        const bar = svg("rect", {x, y: height - bottom - h, width: step * 0.7, height: Math.max(h, value ? 1 : 0),
                                 class: "bar", "data-day": day.day, "data-value": value});
        bar.append(svg("title", {}, `${day.day}: ${shown(value, unit)}`));
        chart.append(bar);
        if (days.length <= 31 && value) {
          chart.append(svg("text", {x: x + step * 0.35, y: height - bottom - h - 3, class: "value",
                                    "text-anchor": "middle"}, value));
        }
      }
      if (i % every === 0) {
        chart.append(svg("text", {x: x + step * 0.35, y: height - 6, class: "axis", "text-anchor": "middle"},
                         day.day.slice(5)));
      }
    });
    return chart;
  }

  // Horizontal bars, largest first, with the running share of the whole: the few types that matter.
  function paretoChart(bars, unit, label) {
    const width = 320, row = 26, left = 96, right = 100;
    const height = Math.max(bars.length, 1) * row + 6;
    const max = Math.max(...bars.map((b) => b.value)) || 1;
    const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "chart pareto", role: "img", "aria-label": label});
    chart.append(svg("title", {}, label));
    bars.forEach((bar, i) => {
      const y = 4 + i * row;
      const w = (width - left - right) * (bar.value / max);
      chart.append(svg("text", {x: left - 6, y: y + 15, class: "axis name", "text-anchor": "end"}, bar.type_name));
      const rect = svg("rect", {x: left, y, width: Math.max(w, 1), height: row - 8, class: "bar",
                                "data-type": bar.type, "data-value": bar.value});
      rect.append(svg("title", {}, `${bar.type_name}: ${bar.value}${unit}`));
      chart.append(rect);
      chart.append(svg("text", {x: left + w + 4, y: y + 14, class: "value"},
                       `${bar.value}${unit} · ${Math.round(bar.cumulative_share * 100)}%`));
    });
    return chart;
  }

  // --- panels ------------------------------------------------------------------------------

  function renderTrends(data) {
    if (!fresh("trends", [data, dash.metric])) return;
    const box = document.getElementById("dash-trend");
    const any = data.days.some((d) => d.opened > 0);
    box.replaceChildren(any ? trendChart(data.days, dash.metric)
                            : el("div", {class: "empty"}, "No exception opened in this period."));
  }

  function renderPareto(data) {
    if (!fresh("pareto", data)) return;
    const count = document.getElementById("dash-pareto-count");
    const down = document.getElementById("dash-pareto-downtime");
    count.replaceChildren(data.by_count.length ? paretoChart(data.by_count, "", "Exception types by count")
                                               : el("div", {class: "empty"}, "Nothing opened."));
    down.replaceChildren(data.by_downtime.length ? paretoChart(data.by_downtime, " min", "Exception types by downtime")
                                                 : el("div", {class: "empty"}, "No breakdown downtime."));
  }

  function outcomeCell(figure, unit) {
    if (figure.current === null && figure.baseline === null) return el("td", {class: "muted"}, "–");
    const change = figure.change === null ? null
      : `${figure.change > 0 ? "+" : ""}${unit === "%" ? `${Math.round(figure.change * 1000) / 10} pts`
                                                    : `${figure.change_pct}%`}`;
    const trend = figure.better === null ? "same" : figure.better ? "better" : "worse";
    return el("td", {class: `outcome ${figure.change === null ? "" : trend}`,
                     title: figure.baseline_of ? `baseline: the ${figure.baseline_of === "type" ? "type's own" : "plant's overall"} figure` : null},
      el("span", {class: "current"}, shown(figure.current, unit)),
      el("span", {class: "base muted"}, ` was ${shown(figure.baseline, unit)}`),
      change ? el("span", {class: `change ${trend}`}, ` ${change}`) : null);
  }

  function renderOutcomes(data) {
    if (!fresh("outcomes", data)) return;
    document.getElementById("dash-no-baseline").hidden = Boolean(data.baseline);
    const rows = [["All types", data.overall], ...Object.entries(data.by_type).map(([t, f]) => [words(t), f])];
    document.querySelector("#dash-outcomes tbody").replaceChildren(...rows.map(([name, f]) =>
      el("tr", {"data-type": name}, el("td", {class: "type"}, name, el("span", {class: "muted small"}, ` (${f.count})`)),
        ...OUTCOMES.map(([key, , unit]) => outcomeCell(f[key], unit)))));
  }

  async function act(txn, action) {
    const person = dash.person || (document.getElementById("person") || {}).value;
    let text = "";
    if (action === "erp_abandon") {
      text = window.prompt(`Why give up ${words(txn.kind)} of ${txn.exception}?`) || "";
      if (!text.trim()) return;
    }
    const note = document.getElementById("dash-outbox-note");
    const response = await fetch("/api/actions", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({person_id: person || undefined, action: `${action}:${txn.public_id}`,
                            exception: txn.exception, text})});
    const data = await response.json().catch(() => ({}));
    note.textContent = response.ok ? `${action === "erp_retry" ? "Retry" : "Abandon"} sent for ${txn.exception}.`
                                   : `Refused: ${data.detail || response.status}`;
    note.className = response.ok ? "note ok" : "note bad";
    refresh();
  }

  // Retry or abandon a row the MES refused: the lifecycle decides who may (403 with its sentence).
  async function actOnMes(row, action) {
    const person = dash.person || (document.getElementById("person") || {}).value;
    let text = "";
    if (action === "abandon") {
      text = window.prompt(`Why give up ${words(row.kind)} of ${row.exception} in the MES?`) || "";
      if (!text.trim()) return;
    }
    const note = document.getElementById("dash-outbox-note");
    const response = await fetch(`/api/mes/${row.id}/${action}`, {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({person_id: person || undefined, text})});
    const data = await response.json().catch(() => ({}));
    note.textContent = response.ok ? `MES ${words(row.kind)} of ${row.exception}: ${data.status}.`
                                   : `Refused: ${data.detail || response.status}`;
    note.className = response.ok ? "note ok" : "note bad";
    refresh();
  }

  function renderOutboxes(erp, mes) {
    if (!fresh("outboxes", [erp, mes, dash.person])) return;
    const failed = erp.transactions.filter((t) => t.status === "rejected" || t.status === "failed" || t.status === "pending");
    document.getElementById("dash-no-erp").hidden = failed.length > 0;
    document.querySelector("#dash-erp tbody").replaceChildren(...failed.map((t) =>
      el("tr", {"data-id": t.public_id, class: t.status === "rejected" ? "refused" : null},
        el("td", {class: "code"}, t.exception || "–"), el("td", {}, t.kind_name || words(t.kind)),
        el("td", {}, el("span", {class: `badge st-${t.status}`}, t.status)),
        el("td", {class: "error-text"}, t.error || "–"), el("td", {}, t.attempts),
        el("td", {class: "buttons"}, ...(t.actions || []).map((button) => {
          const action = button.split(":")[0];
          return el("button", {type: "button", class: action, onclick: () => act(t, action)},
                    action === "erp_retry" ? "Retry" : "Abandon");
        })))));
    document.getElementById("dash-mes-state").textContent = mes.configured
      ? Object.entries(mes.counts).map(([s, n]) => `${n} ${s}`).join(" · ") || "nothing sent yet"
      : "no MES write-back for this plant";
    document.getElementById("dash-no-mes").hidden = mes.transactions.length > 0;
    document.querySelector("#dash-mes tbody").replaceChildren(...mes.transactions.map((t) =>
      el("tr", {class: t.status === "rejected" ? "refused" : null},
        el("td", {class: "code"}, t.exception || "–"), el("td", {}, t.kind_name || words(t.kind)),
        el("td", {}, el("span", {class: `badge st-${t.status}`}, t.status)),
        el("td", {class: "error-text"}, t.reference || t.error || "–"), el("td", {}, t.attempts),
        el("td", {class: "buttons"}, t.status === "rejected" ? [
          el("button", {type: "button", class: "mes_retry", onclick: () => actOnMes(t, "retry")}, "Retry"),
          el("button", {type: "button", class: "mes_abandon erp_abandon", onclick: () => actOnMes(t, "abandon")},
             "Abandon")] : null))));
  }

  function renderSignals() {
    document.getElementById("dash-no-signals").hidden = dash.signals.length > 0;
    document.querySelector("#dash-signals tbody").replaceChildren(...dash.signals.map((s) =>
      el("tr", {class: s.error ? "refused" : null, "data-id": s.id},
        el("td", {class: "nowrap"}, clock(s.at)), el("td", {}, s.source), el("td", {}, s.kind),
        el("td", {}, s.machine || s.person || "–"), el("td", {class: "what"}, s.what),
        el("td", {}, s.error ? el("span", {class: "badge st-failed", title: s.error}, "error")
                             : s.processed ? "✓" : el("span", {class: "badge st-pending"}, "waiting")))));
    document.getElementById("dash-older").hidden = dash.nextBefore === null;
  }

  function signalQuery(before) {
    const query = new URLSearchParams({limit: "25"});
    if (dash.filters.source) query.set("source", dash.filters.source);
    if (dash.filters.machine) query.set("machine", dash.filters.machine);
    if (before) query.set("before", before);
    return `/api/signals?${query}`;
  }

  async function loadSignals(older) {
    const note = document.getElementById("dash-signal-note");
    try {
      const data = await get(signalQuery(older ? dash.nextBefore : null));
      dash.signals = older ? [...dash.signals, ...data.signals] : data.signals;
      dash.nextBefore = data.next_before;
      note.textContent = "";
      renderSignals();
    } catch (error) {
      note.textContent = String(error.message || error);
    }
  }

  async function refresh() {
    if (dash.busy) return;
    dash.busy = true;
    const period = `since=${encodeURIComponent(dash.period)}`;
    try {
      const [trends, pareto, outcomes, erp, mes] = await Promise.all([
        get(`/api/trends?${period}`), get(`/api/pareto?${period}`), get(`/api/outcomes?${period}`),
        get("/api/erp"), get("/api/mes")]);
      renderTrends(trends);
      renderPareto(pareto);
      renderOutcomes(outcomes);
      renderOutboxes(erp, mes);
      if (dash.signals.length <= 25) await loadSignals(false);  // the first page stays live; older pages stay put
      document.getElementById("dash-error").textContent = "";
    } catch (error) {
      document.getElementById("dash-error").textContent = String(error.message || error);
    } finally {
      dash.busy = false;
    }
  }

  function start() {
    const root = document.getElementById("dashboard");
    if (!root) return;
    for (const button of root.querySelectorAll(".dash-period button")) {
      button.addEventListener("click", () => {
        dash.period = button.dataset.since;
        for (const other of root.querySelectorAll(".dash-period button")) other.classList.toggle("active", other === button);
        refresh();
      });
    }
    const metric = document.getElementById("dash-metric");
    metric.replaceChildren(...Object.entries(METRICS).map(([key, [label]]) => el("option", {value: key}, label)));
    metric.addEventListener("change", () => {
      dash.metric = metric.value;
      dash.rendered.trends = null;
      refresh();
    });
    document.getElementById("dash-signal-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      dash.filters.source = document.getElementById("dash-source").value.trim();
      dash.filters.machine = document.getElementById("dash-machine").value.trim();
      dash.signals = [];
      loadSignals(false);
    });
    document.getElementById("dash-older").addEventListener("click", () => loadSignals(true));
    fetch("/api/session", {cache: "no-store"}).then((r) => r.ok ? r.json() : null).then((session) => {
      if (session && session.person) dash.person = session.person.id;
    }).catch(() => {});
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  start();
})();
