// The live board's script (servicescore/app/board.py). It asks the service's own JSON routes
// (/kpis, /backlog, /kpis/daily, /appraisals/latest) every few seconds and redraws the tables
// and the charts (inline SVG drawn here: no charting library, nothing fetched from elsewhere).
// KPI names, units, ranges and number formats come from GET /kpis/registry; every other word
// from the page's configuration (board.py's dictionary). Nothing is written to the console:
// trouble is shown in the status line.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("board-config").textContent);
  const t = config.words;
  const DAY_MS = 86400000;
  const TOKEN_KEY = "servicescore.token";
  const SVG = "http://www.w3.org/2000/svg";
  const DEPARTMENT_COLOUR = "#1565c0";
  const TEAM_COLOURS = ["#2e7d32", "#f9a825", "#c62828", "#6a1b9a", "#00838f", "#ef6c00",
                        "#5d4037", "#546e7a"];
  let registry = null; // KPI name -> its registry entry
  let formats = null; // unit -> format
  let refreshes = 0;
  let timer = null;
  let running = false;
  let again = false;

  let refused = false; // the token given was refused

  // A route that needs the bearer token; ``refused`` when one was sent and not accepted.
  class Locked extends Error {
    constructor(path, refusedToken) {
      super(path);
      this.refused = refusedToken;
    }
  }

  // ------------------------------------------------------------ words and numbers

  // a value in its unit's format (static/format.js: the printed sheets' rules)
  const format = (spec, value) => BoardFormat.format(spec, value, t.none);

  function kpiText(kpi, value) {
    return format(registry[kpi].format, value);
  }

  function words(text, values) {
    return text.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? values[key] : whole));
  }

  function byKey(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // ------------------------------------------------------------ the API

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function ask(path, params) {
    // A route that wants the token is not asked without one: a refused request would be a
    // console error in the browser, and the answer is known.
    if (config.needs_token[path] && !token()) throw new Locked(path, false);
    const query = params ? `?${new URLSearchParams(params)}` : "";
    const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
    const response = await fetch(path + query, { headers, cache: "no-store" });
    if (response.status === 401) throw new Locked(path, Boolean(token()));
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.json();
  }

  async function loadRegistry() {
    const found = await ask("/kpis/registry", { lang: config.lang });
    registry = Object.fromEntries(found.kpis.map((k) => [k.name, k]));
    formats = found.formats;
  }

  // The charts end with the window's end (today for a rolling window or one still open) and
  // cover chart_days whole days in the business timezone; the service rounds out to days.
  function chartWindow() {
    const now = Date.now();
    const end = Math.min(config.bounds ? config.bounds[1] : now, now);
    const last = end - 1;
    return { from_ms: String(last - (config.chart_days - 1) * DAY_MS), to_ms: String(last + 1) };
  }

  // ------------------------------------------------------------ refreshing

  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    clearTimeout(timer);
    try {
      const got = await fetchAll();
      if (got) draw(got);
    } finally {
      // a drawing bug still surfaces (uncaught, in the console); the board keeps refreshing
      running = false;
      timer = setTimeout(refresh, again ? 0 : config.refresh_s * 1000);
      again = false;
    }
  }

  // Every answer of one refresh, by name ({status, value | reason}); null, and the status line
  // says so, when the service does not answer (the last view stays).
  async function fetchAll() {
    try {
      if (!registry) await loadRegistry();
      const calls = {
        engineers: ["/kpis", { ...config.window }],
        teams: ["/kpis", { ...config.window, group: "team" }],
        backlog: ["/backlog", null],
        teamBacklog: ["/backlog", { group: "team" }],
        daily: ["/kpis/daily", chartWindow()],
        grades: ["/appraisals/latest", null],
      };
      const names = Object.keys(calls);
      const settled = await Promise.allSettled(names.map((n) => ask(...calls[n])));
      const failed = settled.find((s) => s.status === "rejected" && !(s.reason instanceof Locked));
      if (failed) throw failed.reason;
      return Object.fromEntries(names.map((name, i) => [name, settled[i]]));
    } catch {
      status(words(t.offline, { seconds: config.refresh_s }), true);
      return null;
    }
  }

  function draw(got) {
    const value = (name) => (got[name].status === "fulfilled" ? got[name].value : null);
    const locked = Object.values(got).filter((s) => s.status === "rejected").map((s) => s.reason);
    if (locked.some((l) => l.refused)) {
      refused = true;
      sessionStorage.removeItem(TOKEN_KEY);
    }
    tokenForm(locked.length > 0);
    // each part drawn from its own answers; a part whose route wants the token stays empty
    if (value("engineers") && value("backlog")) {
      drawTable("engineer-table", "engineer", value("engineers"), value("backlog"));
    }
    if (value("teams") && value("teamBacklog")) {
      drawTable("team-table", "team", value("teams"), value("teamBacklog"));
    }
    if (value("daily")) drawCharts(value("daily"));
    drawGrades(value("grades"));
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    status(words(t.updated, { time: clock(), seconds: config.refresh_s }), false);
  }

  function status(text, offline) {
    const line = document.getElementById("status");
    line.textContent = text;
    line.classList.toggle("offline", offline);
    document.body.dataset.state = offline ? "offline" : "ok";
  }

  function clock() {
    return new Date().toLocaleTimeString(config.lang === "zh" ? "zh-CN" : "en-GB",
                                         { timeZone: config.timezone, hour12: false });
  }

  // ------------------------------------------------------------ tables

  // One row per engineer (or team) with KPIs in the window or open tickets now.
  function drawTable(id, group, kpis, backlog) {
    const keyOf = group === "engineer" ? (r) => r.engineer_id : (r) => r.team_id ?? "";
    const rows = new Map();
    for (const r of kpis) rows.set(keyOf(r), { key: keyOf(r), team: r.team_id, kpis: r });
    for (const b of backlog) {
      const row = rows.get(keyOf(b)) ?? { key: keyOf(b), team: b.team_id, kpis: null };
      row.backlog = b;
      row.team = row.team ?? b.team_id;
      rows.set(row.key, row);
    }
    // the unassigned open tickets (no engineer, no team) last
    const ordered = [...rows.values()].sort((a, b) => (a.key === "") - (b.key === "")
                                                      || byKey(a.key, b.key));
    const table = document.getElementById(id);
    const head = document.createElement("tr");
    const columns = [[group, group === "engineer" ? t.engineer : t.team, ""]];
    if (group === "engineer") columns.push(["team_id", t.team, ""]);
    columns.push(["open_tickets", t.open_tickets, "num"], ["overdue_tickets", t.overdue_tickets, "num"],
                 ["oldest_open_age_s", t.oldest_open_age_s, "num"]);
    for (const kpi of config.table) columns.push([kpi, registry[kpi].label, "num"]);
    for (const [field, label, cls] of columns) {
      const th = document.createElement("th");
      th.dataset.field = field;
      th.textContent = label;
      th.title = field;
      if (cls) th.className = cls;
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    const body = document.createElement("tbody");
    for (const row of ordered) {
      const tr = body.insertRow();
      tr.dataset.key = row.key;
      const empty = group === "engineer" ? t.unassigned : t.no_team;
      cell(tr, group, row.key === "" ? empty : row.key);
      if (group === "engineer") cell(tr, "team_id", row.team || t.no_team);
      const open = row.backlog ?? { open_tickets: 0, overdue_tickets: 0, oldest_open_age_s: null };
      cell(tr, "open_tickets", format(formats.count, open.open_tickets), open.open_tickets, "num");
      cell(tr, "overdue_tickets", format(formats.count, open.overdue_tickets),
           open.overdue_tickets, open.overdue_tickets > 0 ? "num overdue" : "num");
      cell(tr, "oldest_open_age_s", format(formats.seconds, open.oldest_open_age_s),
           open.oldest_open_age_s, "num");
      for (const kpi of config.table) {
        const value = row.kpis ? row.kpis[kpi] : null;
        cell(tr, kpi, kpiText(kpi, value), value, "num");
      }
    }
    table.tBodies[0].replaceWith(body);
  }

  function cell(tr, field, text, value, cls) {
    const td = tr.insertCell();
    td.dataset.field = field;
    td.textContent = text;
    if (value !== undefined) td.dataset.value = value === null ? "" : String(value);
    if (cls) td.className = cls;
    return td;
  }

  // ------------------------------------------------------------ charts

  function drawCharts(daily) {
    const list = document.getElementById("chart-list");
    const teams = [...new Set(daily.teams.map((r) => r.team_id ?? ""))].sort(byKey);
    const series = [{ name: "department", label: t.department, colour: DEPARTMENT_COLOUR,
                      width: 3, rows: daily.department }];
    teams.forEach((team, i) => series.push({
      name: `team:${team}`, label: team || t.no_team, colour: TEAM_COLOURS[i % TEAM_COLOURS.length],
      width: 1.5, rows: daily.teams.filter((r) => (r.team_id ?? "") === team) }));
    list.replaceChildren(...config.charts.map((kpi) => chart(kpi, daily.days, series)));
  }

  const BOX = { left: 64, top: 12, right: 470, bottom: 192, width: 480, height: 222 };

  function chart(kpi, days, series) {
    const figure = document.createElement("figure");
    figure.dataset.kpi = kpi;
    const caption = document.createElement("figcaption");
    caption.textContent = registry[kpi].label;
    figure.append(caption);
    const lines = series.map((s) => {
      const values = new Map(s.rows.map((r) => [r.day, r[kpi]]));
      return { ...s, values: days.map((d) => (values.has(d) ? values.get(d) : null)) };
    });
    const seen = lines.flatMap((s) => s.values).filter((v) => v !== null);
    const [low, high] = scale(kpi, seen);
    const x = (i) => (days.length === 1 ? (BOX.left + BOX.right) / 2
                      : BOX.left + (i * (BOX.right - BOX.left)) / (days.length - 1));
    const y = (v) => BOX.bottom - ((v - low) / (high - low || 1)) * (BOX.bottom - BOX.top);
    const svg = node("svg", { viewBox: `0 0 ${BOX.width} ${BOX.height}`, role: "img",
                              "aria-label": registry[kpi].label });
    for (const v of [low, (low + high) / 2, high]) {
      svg.append(node("line", { x1: BOX.left, x2: BOX.right, y1: y(v), y2: y(v),
                                stroke: "#ddd" }));
      svg.append(text(BOX.left - 6, y(v) + 4, kpiText(kpi, v), "end"));
    }
    // the first, middle and last day (MM-DD), the outer two kept inside the picture
    const marks = new Set([0, Math.floor((days.length - 1) / 2), days.length - 1]);
    for (const i of marks) {
      const anchor = days.length > 1 && i === 0 ? "start"
        : days.length > 1 && i === days.length - 1 ? "end" : "middle";
      svg.append(text(x(i), BOX.height - 10, days[i].slice(5), anchor));
    }
    for (const s of lines) {
      const group = node("g", { "data-series": s.name });
      for (const run of runs(s.values)) {
        const points = run.map((i) => `${x(i).toFixed(1)},${y(s.values[i]).toFixed(1)}`);
        group.append(node("polyline", { points: points.join(" "), fill: "none",
                                        stroke: s.colour, "stroke-width": s.width }));
      }
      s.values.forEach((v, i) => {
        if (v === null) return;
        const dot = node("circle", { class: "point", cx: x(i).toFixed(1), cy: y(v).toFixed(1),
                                     r: s.width + 1, fill: s.colour, "data-day": days[i],
                                     "data-value": String(v) });
        const tip = node("title", {});
        tip.textContent = `${s.label} ${days[i]}: ${kpiText(kpi, v)}`;
        dot.append(tip);
        group.append(dot);
      });
      svg.append(group);
    }
    if (!seen.length) svg.append(text(BOX.width / 2, BOX.height / 2, t.no_data, "middle"));
    figure.append(svg, legend(lines));
    return figure;
  }

  // The unit's range when it has one (a ratio 0..1, CSAT 1..5); else 0 up to the largest value.
  function scale(kpi, values) {
    if (registry[kpi].range) return registry[kpi].range;
    const top = Math.max(0, ...values);
    if (top === 0) return [0, 1];
    const step = 10 ** Math.floor(Math.log10(top));
    return [0, Math.ceil(top / step) * step];
  }

  // Runs of consecutive days with a value: a day without one breaks the line.
  function runs(values) {
    const out = [[]];
    values.forEach((v, i) => (v === null ? out.push([]) : out[out.length - 1].push(i)));
    return out.filter((run) => run.length);
  }

  function legend(lines) {
    const list = document.createElement("ul");
    list.className = "legend";
    for (const s of lines) {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.colour;
      item.append(swatch, s.label);
      list.append(item);
    }
    return list;
  }

  function node(name, attributes) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    return element;
  }

  function text(x, y, content, anchor) {
    const element = node("text", { x, y, "text-anchor": anchor, "font-size": 11, fill: "#555" });
    element.textContent = content;
    return element;
  }

  // ------------------------------------------------------------ grades

  function tokenForm(shown) {
    document.getElementById("token-form").hidden = !shown;
    document.getElementById("token-wrong").hidden = !(shown && refused);
  }

  function drawGrades(found) {
    const table = document.getElementById("grade-table");
    const period = document.getElementById("grade-period");
    const counts = document.getElementById("grade-counts");
    if (!found) { // the token is needed
      period.textContent = "";
      counts.replaceChildren();
      table.tHead.replaceChildren();
      table.tBodies[0].replaceChildren();
      return;
    }
    const rows = [...found.appraisals].sort((a, b) => (a.score === null) - (b.score === null)
      || Number(b.score) - Number(a.score) || byKey(a.engineer_id, b.engineer_id));
    if (!found.period) {
      period.textContent = t.no_close;
      counts.replaceChildren();
      table.tHead.replaceChildren();
      table.tBodies[0].replaceChildren();
      return;
    }
    period.dataset.period = found.period;
    period.textContent = `${t.period}: ${found.period}`
      + (rows.length ? ` · ${t.closed_at}: ${moment(rows[0].closed_at)}` : "");
    const tally = new Map();
    for (const r of rows) tally.set(gradeName(r), (tally.get(gradeName(r)) ?? 0) + 1);
    counts.replaceChildren(...[...tally].map(([name, count]) => {
      const item = document.createElement("span");
      item.dataset.grade = name;
      const number = document.createElement("b");
      number.textContent = String(count);
      item.append(name, number);
      return item;
    }));
    const head = document.createElement("tr");
    for (const [field, label, cls] of [["engineer", t.engineer, ""], ["role", t.role, ""],
                                       ["score", t.score, "num"], ["grade", t.grade, ""]]) {
      const th = document.createElement("th");
      th.dataset.field = field;
      th.textContent = label;
      if (cls) th.className = cls;
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    const body = document.createElement("tbody");
    for (const r of rows) {
      const tr = body.insertRow();
      tr.dataset.key = r.engineer_id;
      cell(tr, "engineer", r.engineer_id);
      cell(tr, "role", t.roles[r.role] ?? r.role);
      cell(tr, "score", r.score ?? t.none, r.score, "num");
      cell(tr, "grade", gradeName(r), r.grade);
    }
    table.tBodies[0].replaceWith(body);
  }

  // An RFC 3339 instant as the printed report writes it: "2026-12-08 09:30 +08:00".
  function moment(instant) {
    if (!instant) return t.none;
    const [day, rest] = instant.split("T");
    return `${day} ${rest.slice(0, 5)} ${rest.slice(8)}`.trim();
  }

  // Chinese: the label frozen with the grade (the scheme's own); English: the report's names.
  function gradeName(row) {
    if (config.lang === "zh" && row.grade_label) return row.grade_label;
    return t.grades_names[row.grade] ?? row.grade;
  }

  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token-input");
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    refused = false;
    refresh();
  });

  refresh();
})();
