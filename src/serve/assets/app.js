// monitor's dashboard: one page that draws the route it finds from the JSON
// API. Everything the program stored (names, errors, fields) reaches the
// page as text nodes, never as HTML.
"use strict";

// ---- small helpers ----------------------------------------------------------

/** An element with attributes and children; strings become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmtDuration(ns) {
  if (ns === null || ns === undefined) return "";
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${ns} ns`;
  if (abs < 1e6) return `${(ns / 1e3).toFixed(abs < 1e4 ? 2 : 1)} µs`;
  if (abs < 1e9) return `${(ns / 1e6).toFixed(abs < 1e7 ? 2 : 1)} ms`;
  if (abs < 60e9) return `${(ns / 1e9).toFixed(2)} s`;
  return `${(ns / 60e9).toFixed(1)} min`;
}

function fmtTime(ns) {
  const d = new Date(ns / 1e6);
  return d.toISOString().replace("T", " ").replace("Z", "").slice(0, 23);
}

function fmtBytes(b) {
  if (b === null || b === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = b, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtCount(n) {
  return n === null || n === undefined ? "" : Number(n).toLocaleString("en-US");
}

function statusBadge(status) {
  return el("span", { class: `status ${status}` }, status);
}

/** The window in the address: `since` and `until`, how long ago. */
function windowParams() {
  const q = new URLSearchParams(location.search);
  const out = {};
  out.since = q.get("since") || "1h";
  if (q.get("until")) out.until = q.get("until");
  return out;
}

/** `1h30m`, `15m`, `7d` in seconds, as the server reads `since`; null when bad. */
function windowSeconds(text) {
  const parts = /^(\d+[smhd])+$/.test(text || "") ? text.match(/\d+[smhd]/g) : null;
  if (!parts) return null;
  const unit = { s: 1, m: 60, h: 3600, d: 86400 };
  return parts.reduce((sum, p) => sum + parseInt(p, 10) * unit[p[p.length - 1]], 0);
}

/** The window's bounds in Unix seconds, for a time axis over all of it. */
function windowRange() {
  const w = windowParams();
  const now = Date.now() / 1000;
  return [now - (windowSeconds(w.since) ?? 3600), now - (windowSeconds(w.until) ?? 0)];
}

/** A link to this page over another window (`since` ago until now). */
function windowLink(since) {
  const q = new URLSearchParams(location.search);
  q.set("since", since);
  q.delete("until");
  return el("a", { href: `${location.pathname}?${q}` }, since);
}

/** An internal link that keeps the window. */
function link(path, text, attrs) {
  const w = windowParams();
  const q = new URLSearchParams(w).toString();
  return el("a", Object.assign({ href: `${path}?${q}` }, attrs || {}), text);
}

class ApiError extends Error {}

/** A JSON integer past 2^53 (a u64 in a span's fields) kept as its digits,
 * where a JavaScript number would round it. Times and durations (`*_ns`,
 * the tail's `watermark`) stay numbers, for arithmetic: Unix ns are past
 * 2^53 too, and a quarter of a microsecond is below what the page shows. */
function keepBigIntegers(key, value, context) {
  if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value) &&
      !/_ns$|^watermark$/.test(key) && context && context.source) {
    return context.source;
  }
  return value;
}

async function api(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const url = q.toString() ? `${path}?${q}` : path;
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  let body;
  try { body = JSON.parse(await response.text(), keepBigIntegers); } catch (_) { body = {}; }
  if (!response.ok) throw new ApiError(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function errorBox(error) {
  return el("div", { class: "error-box", role: "alert" }, String(error.message || error));
}

// ---- charts (uPlot) ---------------------------------------------------------

const charts = [];

function chart(title, xs, series, opts) {
  const box = el("div", { class: "panel chart" }, el("h3", {}, title));
  const target = el("div");
  box.append(target);
  requestAnimationFrame(() => {
    const width = Math.max(300, box.clientWidth - 24);
    const plot = new uPlot(Object.assign({
      width,
      height: 180,
      // Readings (not buckets) span the whole window: one stats row is a
      // point in the hour, not an axis of its own.
      scales: { x: opts && opts.whole ? { time: true, range: () => windowRange() } : { time: true } },
      legend: { show: true },
      // UTC, as the tables' times are.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      // Sparse series (a short run in a long window) show their points:
      // a line needs two neighbours to be seen.
      series: [{}].concat(series.map((s) => Object.assign({
        width: 1.5,
        points: { show: s.data.filter((v) => v !== null).length < 30 },
      }, s.opts))),
      axes: [{}, { size: 86, values: (u, vals) => vals.map((v) => (opts && opts.format ? opts.format(v) : v)) }],
    }, opts && opts.uplot), [xs].concat(series.map((s) => s.data)), target);
    charts.push(plot);
  });
  return box;
}

function clearCharts() {
  while (charts.length) charts.pop().destroy();
}

// ---- pages -------------------------------------------------------------------

const main = () => document.getElementById("main");

async function overviewPage() {
  const w = windowParams();
  const [summary, series] = await Promise.all([api("/api/summary", w), api("/api/series", w)]);
  // The last step may have only begun: a rate over the part that passed.
  const now_s = Date.now() / 1000;
  const seconds = (b) => Math.max(1, Math.min(series.step_ns / 1e9, now_s - b.ts_ns / 1e9));
  const xs = series.buckets.map((b) => b.ts_ns / 1e9);
  const page = el("div", {},
    el("h1", {}, "Overview"),
    el("div", { class: "tiles" },
      tile("spans", fmtCount(summary.spans)),
      tile("functions", fmtCount(summary.functions.length)),
      tile("errors", fmtCount(summary.functions.reduce((a, f) => a + f.errors, 0)))),
    el("div", { class: "charts" },
      chart("calls / s", xs, [{ data: series.buckets.map((b) => b.calls / seconds(b)), opts: { label: "calls/s", stroke: "#2f6fdf", fill: "rgba(47,111,223,0.08)" } }]),
      chart("error rate %", xs, [{ data: series.buckets.map((b) => (b.calls ? (100 * b.errors) / b.calls : null)), opts: { label: "error %", stroke: "#d64541" } }]),
      chart("p99", xs, [{ data: series.buckets.map((b) => (b.calls ? b.p99_ns : null)), opts: { label: "p99", stroke: "#8e2bbf", value: (u, v) => fmtDuration(v) } }], { format: fmtDuration })),
    el("h2", {}, "Functions"),
    functionTable(summary.functions));
  return page;
}

function tile(key, value) {
  return el("div", { class: "tile" }, el("div", { class: "v" }, value), el("div", { class: "k" }, key));
}

/** The function table's sort, filter and grouping, kept across redraws
 * (auto-refresh, another window). */
const tableState = { sortKey: "calls", filter: "", grouping: "" };

/** The function table: sorted by a header's click, filtered, grouped. */
function functionTable(functions) {
  const columns = [
    ["name", "function", false], ["kind", "kind", false], ["calls", "calls", true], ["errors", "errors", true],
    ["error_pct", "err %", true], ["p50_ns", "p50", true], ["p95_ns", "p95", true], ["p99_ns", "p99", true],
    ["max_ns", "max", true], ["items", "items", true],
  ];
  let sortKey = tableState.sortKey;
  const filter = el("input", { type: "search", placeholder: "filter functions", "aria-label": "filter functions", id: "fn-filter", value: tableState.filter });
  const grouping = el("select", { "aria-label": "group by", id: "fn-group" },
    el("option", { value: "" }, "no grouping"), el("option", { value: "group" }, "by group (module when none)"));
  const table = el("table", { id: "functions" });
  grouping.value = tableState.grouping;
  const draw = () => {
    Object.assign(tableState, { sortKey, filter: filter.value, grouping: grouping.value });
    const needle = filter.value.trim().toLowerCase();
    let rows = functions.filter((f) => !needle || f.name.toLowerCase().includes(needle) || f.module.toLowerCase().includes(needle));
    const numeric = columns.find((c) => c[0] === sortKey)[2];
    rows = rows.slice().sort((a, b) => (numeric ? (b[sortKey] || 0) - (a[sortKey] || 0) : String(a[sortKey]).localeCompare(String(b[sortKey]))));
    const head = el("tr", {}, columns.map(([key, label, num]) => el("th", {
      class: `sortable ${num ? "num" : ""} ${key === sortKey ? "sorted" : ""}`,
      onclick: () => { sortKey = key; draw(); },
    }, label)));
    const body = [];
    const line = (f) => el("tr", { dataset: { name: f.name } },
      el("td", {}, link(`/fn/${encodeURIComponent(f.name)}`, f.name), el("div", { class: "muted mono" }, f.module)),
      el("td", {}, f.kind),
      el("td", { class: "num" }, fmtCount(f.calls)),
      el("td", { class: "num" }, fmtCount(f.errors)),
      el("td", { class: "num" }, f.error_pct.toFixed(1)),
      el("td", { class: "num" }, fmtDuration(f.p50_ns)),
      el("td", { class: "num" }, fmtDuration(f.p95_ns)),
      el("td", { class: "num" }, fmtDuration(f.p99_ns)),
      el("td", { class: "num" }, fmtDuration(f.max_ns)),
      el("td", { class: "num" }, f.items === null ? "" : fmtCount(f.items)));
    if (grouping.value === "group") {
      const groups = new Map();
      for (const f of rows) {
        const g = f.group || f.module;
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(f);
      }
      for (const [g, members] of [...groups].sort((a, b) => a[0].localeCompare(b[0]))) {
        const calls = members.reduce((a, f) => a + f.calls, 0);
        const errors = members.reduce((a, f) => a + f.errors, 0);
        body.push(el("tr", { class: "group" }, el("td", { colspan: 2 }, g), el("td", { class: "num" }, fmtCount(calls)),
          el("td", { class: "num" }, fmtCount(errors)), el("td", { class: "num" }, calls ? ((100 * errors) / calls).toFixed(1) : ""), el("td", { colspan: 5 })));
        body.push(...members.map(line));
      }
    } else {
      body.push(...rows.map(line));
    }
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, body.length ? body : el("tr", {}, el("td", { colspan: columns.length, class: "muted", id: "no-spans" }, "No spans in this window. Longer: ",
      windowLink("24h"), " · ", windowLink("7d"), " · ", windowLink("365d")))));
  };
  filter.addEventListener("input", draw);
  grouping.addEventListener("change", draw);
  draw();
  return el("div", {}, el("div", { class: "filters" }, filter, grouping), table);
}

async function tracesPage() {
  const w = windowParams();
  const q = new URLSearchParams(location.search);
  const name = el("input", { type: "search", placeholder: "contains function", value: q.get("name") || "", id: "tr-name" });
  const status = el("select", { id: "tr-status" }, ["", "ok", "error", "panic", "cancelled"].map((s) =>
    el("option", { value: s, selected: (q.get("status") || "") === s }, s || "any status")));
  const min = el("input", { placeholder: "min duration, e.g. 10ms", size: 18, value: q.get("min") || "", id: "tr-min" });
  const apply = el("button", { type: "button", id: "tr-apply" }, "filter");
  const params = Object.assign({}, w, { name: q.get("name"), status: q.get("status"), limit: 100 });
  const minNs = parseDuration(q.get("min"));
  if (minNs !== null) params.min_ns = minNs;
  apply.addEventListener("click", () => {
    const next = new URLSearchParams(location.search);
    for (const [k, v] of [["name", name.value.trim()], ["status", status.value], ["min", min.value.trim()]]) {
      if (v) next.set(k, v); else next.delete(k);
    }
    navigate(`/traces?${next}`);
  });
  const data = await api("/api/traces", params);
  const rows = data.traces.map((t) => el("tr", { dataset: { trace: t.trace_id } },
    el("td", {}, link(`/trace/${t.trace_id}`, t.root === null ? `(root not written) ${t.trace_id}` : t.root)),
    el("td", { class: "mono" }, fmtTime(t.start_ns)),
    el("td", { class: "num" }, fmtDuration(t.duration_ns)),
    el("td", { class: "num" }, fmtCount(t.spans)),
    el("td", {}, statusBadge(t.status))));
  return el("div", {},
    el("h1", {}, "Traces"),
    el("div", { class: "filters" }, name, status, min, apply),
    el("table", { id: "traces" },
      el("thead", {}, el("tr", {}, el("th", {}, "root"), el("th", {}, "start (UTC)"), el("th", { class: "num" }, "duration"), el("th", { class: "num" }, "spans"), el("th", {}, "status"))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no traces match")))));
}

/** `250ms`, `2s`, `1m`, `500us`, `100ns` in nanoseconds; null when empty or bad. */
function parseDuration(text) {
  if (!text) return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)\s*$/.exec(text);
  if (!m) return null;
  const unit = { ns: 1, us: 1e3, "µs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2]];
  return Math.round(parseFloat(m[1]) * unit);
}

const ROW_HEIGHT = 24;

async function tracePage(id) {
  const data = await api(`/api/trace/${encodeURIComponent(id)}`);
  const spans = data.spans;
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map();
  const tops = [];
  for (const s of spans) {
    if (s.parent_id !== null && byId.has(s.parent_id) && s.parent_id !== s.span_id) {
      if (!children.has(s.parent_id)) children.set(s.parent_id, []);
      children.get(s.parent_id).push(s);
    } else {
      tops.push(s);
    }
  }
  // Loops, not Math.min(...spans): an argument list of 100k+ overflows.
  let t0 = Infinity, t1 = -Infinity;
  for (const s of spans) {
    t0 = Math.min(t0, s.start_ns);
    t1 = Math.max(t1, s.start_ns + s.duration_ns);
  }
  const total = Math.max(1, t1 - t0);
  const collapsed = new Set();
  let selected = null;

  // Tree order, skipping collapsed subtrees; an explicit stack (depth is the program's).
  const visible = () => {
    const out = [];
    const seen = new Set();
    const stack = tops.slice().reverse().map((s) => [s, 0]);
    while (stack.length) {
      const [s, depth] = stack.pop();
      if (seen.has(s.span_id)) continue;
      seen.add(s.span_id);
      out.push([s, depth]);
      if (!collapsed.has(s.span_id)) {
        const kids = children.get(s.span_id) || [];
        for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
      }
    }
    return out;
  };
  let rows = visible();

  const scroller = el("div", { class: "waterfall", id: "waterfall" });
  const inner = el("div", { class: "wf-inner" });
  scroller.append(inner);
  const details = el("div", { class: "panel details", id: "details" }, el("p", { class: "muted" }, "Click a span to see its details."));

  // A time axis over the bars: offsets from the trace's start.
  const axisTrack = el("div", { class: "wf-track" });
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    const tick = el("span", { class: "wf-tick" }, fmtDuration(Math.round(total * share)));
    tick.style.left = `${share * 100}%`;
    axisTrack.append(tick);
  }
  const axis = el("div", { class: "wf-axis" }, el("div", { class: "wf-name muted" }, "span"), axisTrack, el("div", { class: "wf-dur muted" }, "duration"));

  const render = () => {
    inner.style.height = `${rows.length * ROW_HEIGHT}px`;
    scroller.style.height = `min(70vh, ${rows.length * ROW_HEIGHT + 2}px)`;
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_HEIGHT) - 10);
    const last = Math.min(rows.length, first + Math.ceil((scroller.clientHeight || 600) / ROW_HEIGHT) + 20);
    const nodes = [];
    for (let i = first; i < last; i++) {
      const [s, depth] = rows[i];
      const kids = children.get(s.span_id);
      const toggle = el("span", { class: "wf-toggle" }, kids ? (collapsed.has(s.span_id) ? "▸" : "▾") : "");
      if (kids) {
        toggle.addEventListener("click", (event) => {
          event.stopPropagation();
          if (collapsed.has(s.span_id)) collapsed.delete(s.span_id); else collapsed.add(s.span_id);
          rows = visible();
          render();
        });
      }
      const name = el("div", { class: "wf-name" }, toggle, s.name, kids && collapsed.has(s.span_id) ? el("span", { class: "muted" }, ` (+${kids.length})`) : "");
      name.style.paddingLeft = `${Math.min(depth, 40) * 14 + 4}px`;
      const bar = el("div", { class: `wf-bar ${s.status}`, title: `${s.name}: ${fmtDuration(s.duration_ns)}` });
      bar.style.left = `${((s.start_ns - t0) / total) * 100}%`;
      bar.style.width = `${(s.duration_ns / total) * 100}%`;
      const row = el("div", {
        class: `wf-row ${selected === s.span_id ? "selected" : ""}`,
        dataset: { span: s.span_id },
        onclick: () => { selected = s.span_id; showDetails(details, s); render(); },
      }, name, el("div", { class: "wf-track" }, bar), el("div", { class: "wf-dur" }, fmtDuration(s.duration_ns)));
      row.style.top = `${i * ROW_HEIGHT}px`;
      nodes.push(row);
    }
    inner.replaceChildren(...nodes);
  };
  scroller.addEventListener("scroll", () => requestAnimationFrame(render));
  requestAnimationFrame(render);

  const root = tops[0];
  return el("div", {},
    el("h1", {}, `Trace ${data.trace_id}`),
    el("div", { class: "tiles" },
      tile("root", root ? root.name : ""),
      tile("spans", el("span", { id: "span-count" }, fmtCount(spans.length))),
      tile("duration", fmtDuration(total)),
      tile("start (UTC)", fmtTime(t0)),
      tile("errors", fmtCount(spans.filter((s) => s.status === "error" || s.status === "panic").length))),
    el("div", { class: "split" }, el("div", {}, axis, scroller), details));
}

function showDetails(box, s) {
  const item = (k, v) => (v === null || v === undefined || v === "" ? [] : [el("dt", {}, k), el("dd", {}, v)]);
  const fields = s.fields === null || s.fields === undefined ? null : JSON.stringify(s.fields, null, 2);
  const events = (s.events || []).map((e) => el("li", {}, `${e.level} ${e.message || ""} ${e.fields ? JSON.stringify(e.fields) : ""}`));
  box.replaceChildren(
    el("h2", {}, s.name),
    el("dl", {},
      item("function", link(`/fn/${encodeURIComponent(s.name)}`, s.name)),
      item("status", statusBadge(s.status)),
      item("error", s.error),
      item("kind", s.kind),
      item("duration", fmtDuration(s.duration_ns)),
      item("busy", fmtDuration(s.busy_ns)),
      item("start (UTC)", fmtTime(s.start_ns)),
      item("items", s.items === null ? null : fmtCount(s.items)),
      item("module", s.module),
      item("group", s.group_name),
      item("at", `${s.file}:${s.line}`),
      item("thread", s.thread),
      item("pid", String(s.pid)),
      item("span id", s.span_id),
      item("parent id", s.parent_id),
      item("RSS at end", fmtBytes(s.rss_bytes)),
      item("CPU", s.cpu_ns === null ? null : fmtDuration(s.cpu_ns)),
      item("allocated", fmtBytes(s.alloc_bytes)),
      item("fields", fields ? el("code", { class: "text" }, fields) : null)),
    events.length ? el("div", {}, el("h2", {}, "events"), el("ul", {}, events)) : "");
}

async function functionPage(name) {
  const w = windowParams();
  const [f, series] = await Promise.all([
    api(`/api/fn/${encodeURIComponent(name)}`, w),
    api("/api/series", Object.assign({ name }, w)),
  ]);
  const st = f.stats;
  const xs = series.buckets.map((b) => b.ts_ns / 1e9);
  const bins = f.histogram;
  const page = el("div", {},
    el("h1", {}, name),
    el("div", { class: "muted" }, f.sites.map((s) => el("div", { class: "mono" }, `${s.module} · ${s.file}:${s.line} · ${s.kind} · group ${s.group}`))),
    st ? el("div", { class: "tiles", id: "fn-tiles" },
      tile("calls", el("span", { id: "fn-calls" }, fmtCount(st.calls))), tile("errors", fmtCount(st.errors)), tile("err %", st.error_pct.toFixed(1)),
      tile("p50", fmtDuration(st.p50_ns)), tile("p95", fmtDuration(st.p95_ns)), tile("p99", fmtDuration(st.p99_ns)),
      tile("max", fmtDuration(st.max_ns)), st.items === null ? "" : tile("items", fmtCount(st.items)))
      : el("p", { class: "muted" }, "No calls in this window."),
    el("div", { class: "charts" },
      bins.length ? chart("latency histogram (spans per bin, up to the bin's bound)", bins.map((_, i) => i), [{
        data: bins.map((b) => b.count),
        opts: { label: "spans", stroke: "#2f6fdf", fill: "rgba(47,111,223,0.35)", paths: uPlot.paths.bars({ size: [0.9, 80] }), points: { show: false } },
      }], { uplot: { scales: { x: { time: false, range: [-0.5, bins.length - 0.5] } }, axes: [{ values: (u, vals) => vals.map((v) => (bins[v] ? `≤${fmtDuration(bins[v].le_ns)}` : "")) }, { size: 60 }] } }) : "",
      chart("p50 / p95 / p99 over time", xs, [
        { data: series.buckets.map((b) => (b.calls ? b.p50_ns : null)), opts: { label: "p50", stroke: "#3a9a5b", value: (u, v) => fmtDuration(v) } },
        { data: series.buckets.map((b) => (b.calls ? b.p95_ns : null)), opts: { label: "p95", stroke: "#e0a100", value: (u, v) => fmtDuration(v) } },
        { data: series.buckets.map((b) => (b.calls ? b.p99_ns : null)), opts: { label: "p99", stroke: "#8e2bbf", value: (u, v) => fmtDuration(v) } },
      ], { format: fmtDuration }),
      chart("calls and errors per step", xs, [
        { data: series.buckets.map((b) => b.calls), opts: { label: "calls", stroke: "#2f6fdf" } },
        { data: series.buckets.map((b) => b.errors), opts: { label: "errors", stroke: "#d64541" } },
      ])),
    el("h2", {}, "Recent errors"),
    f.recent_errors.length ? el("table", { id: "fn-errors" },
      el("thead", {}, el("tr", {}, el("th", {}, "time (UTC)"), el("th", {}, "status"), el("th", {}, "message"), el("th", {}, "trace"))),
      el("tbody", {}, f.recent_errors.map((e) => el("tr", {},
        el("td", { class: "mono" }, fmtTime(e.start_ns)), el("td", {}, statusBadge(e.status)),
        el("td", { class: "text" }, e.error || ""), el("td", {}, link(`/trace/${e.trace_id}`, e.trace_id))))))
      : el("p", { class: "muted" }, "None in this window."),
    el("div", { class: "charts" },
      el("div", {}, el("h2", {}, "Callers"), links(f.callers, "fn-callers")),
      el("div", {}, el("h2", {}, "Callees"), links(f.callees, "fn-callees"))));
  return page;
}

function links(list, id) {
  if (!list.length) return el("p", { class: "muted" }, "None in this window.");
  return el("table", { id }, el("thead", {}, el("tr", {}, el("th", {}, "function"), el("th", { class: "num" }, "spans"))),
    el("tbody", {}, list.map((l) => el("tr", {}, el("td", {}, link(`/fn/${encodeURIComponent(l.name)}`, l.name)), el("td", { class: "num" }, fmtCount(l.calls))))));
}

async function resourcesPage() {
  const data = await api("/api/resources", windowParams());
  if (!data.processes.length) {
    return el("div", {}, el("h1", {}, "Resources"),
      el("p", { class: "muted" }, "No resource samples in this window (the sampler writes them when [resources] interval_ms > 0)."));
  }
  return el("div", {}, el("h1", {}, "Resources"), data.processes.map((p) => {
    const xs = p.samples.map((s) => s.ts_ns / 1e9);
    return el("div", {}, el("h2", {}, `process ${p.pid} · ${fmtCount(p.samples.length)} samples`),
      el("div", { class: "charts" },
        chart("CPU %", xs, [{ data: p.samples.map((s) => s.cpu_percent), opts: { label: "CPU %", stroke: "#2f6fdf" } }], { whole: true }),
        chart("RSS", xs, [{ data: p.samples.map((s) => s.rss_bytes), opts: { label: "RSS", stroke: "#3a9a5b", value: (u, v) => fmtBytes(v) } }], { format: fmtBytes, whole: true })));
  }));
}

/** An alert rule's value or threshold in its metric's unit. */
function fmtAlertValue(metric, v) {
  if (v === null || v === undefined) return "";
  if (metric === "error_rate") return `${(100 * v).toFixed(2)}%`;
  if (metric === "calls") return fmtCount(v);
  if (metric === "rss") return fmtBytes(v);
  return fmtDuration(v);
}

/** `ok`, `firing`, `no data`. */
function alertBadge(state) {
  return el("span", { class: `status alert-${state.replace(" ", "-")}` }, state);
}

/** The alert rules' last recorded states and the window's changes. */
function alertsSection(a) {
  if (a.error) return el("p", { class: "muted", id: "alerts" }, `The alert states could not be read: ${a.error.message}`);
  if (!a.latest.length) {
    return el("p", { class: "muted", id: "alerts" },
      "No alert state recorded: `monitor check --record` keeps the [[alerts]] rules' changes of state here (run it from cron).");
  }
  const head = (...names) => el("thead", {}, el("tr", {}, names.map((n) => el("th", { class: n === "value" || n === "threshold" ? "num" : "" }, n))));
  const row = (e) => el("tr", { dataset: { rule: e.rule } },
    el("td", { class: "mono" }, fmtTime(e.ts_ns)),
    el("td", { class: "text" }, e.rule),
    el("td", {}, alertBadge(e.state)),
    el("td", {}, e.metric || ""),
    el("td", { class: "num" }, fmtAlertValue(e.metric, e.value)),
    el("td", { class: "num" }, fmtAlertValue(e.metric, e.threshold)));
  return el("div", { id: "alerts" },
    el("table", { id: "alerts-latest" }, head("since (UTC)", "rule", "state", "metric", "value", "threshold"),
      el("tbody", {}, a.latest.map(row))),
    el("h3", {}, "Changes in this window"),
    a.events.length
      ? el("table", { id: "alerts-history" }, head("time (UTC)", "rule", "state", "metric", "value", "threshold"),
        el("tbody", {}, a.events.slice().reverse().map(row)))
      : el("p", { class: "muted" }, "None in this window."));
}

async function healthPage() {
  // The alerts' table is the CLI's to make: a damaged one costs its own
  // section, not the page.
  const [s, alerts] = await Promise.all([
    api("/api/stats", windowParams()),
    api("/api/alerts", windowParams()).catch((error) => ({ error })),
  ]);
  const h = s.history;
  const xs = h.map((r) => r.ts_ns / 1e9);
  const figures = [
    ["enqueued", s.enqueued], ["written", s.written], ["dropped", s.dropped], ["errors written", s.errors_written],
    ["failed", s.failed], ["sampled out", s.sampled_out], ["spilled", s.spilled], ["replayed", s.replayed],
    ["queue depth (last)", s.queue_depth], ["queue depth (largest)", s.queue_depth_max], ["batches", s.batches],
    ["slowest batch", fmtDuration(s.batch_us_max * 1000)], ["file size", fmtBytes(s.file_bytes)],
    ["spill file waiting", s.spill_file.lines ? `${s.spill_file.lines} lines, ${fmtBytes(s.spill_file.bytes)}` : "none"],
  ];
  return el("div", {},
    el("h1", {}, "Health"),
    el("div", { class: "tiles", id: "health-tiles" }, figures.map(([k, v]) => tile(k, typeof v === "number" ? fmtCount(v) : v))),
    h.length ? el("div", { class: "charts" },
      chart("records per stats period", xs, [
        { data: h.map((r) => r.written), opts: { label: "written", stroke: "#3a9a5b" } },
        { data: h.map((r) => r.dropped), opts: { label: "dropped", stroke: "#d64541" } },
        { data: h.map((r) => r.spilled), opts: { label: "spilled", stroke: "#e0a100" } },
        { data: h.map((r) => r.replayed), opts: { label: "replayed", stroke: "#8e2bbf" } },
      ], { whole: true }),
      chart("queue depth", xs, [
        { data: h.map((r) => r.queue_depth), opts: { label: "last", stroke: "#2f6fdf" } },
        { data: h.map((r) => r.queue_depth_max), opts: { label: "largest", stroke: "#9aa0a6" } },
      ], { whole: true })) : el("p", { class: "muted" }, "No stats rows in this window."),
    el("h2", {}, "Alerts"),
    alertsSection(alerts),
    el("h2", {}, "Monitor events"),
    s.events.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "time (UTC)"), el("th", {}, "pid"), el("th", {}, "event"), el("th", {}, "what happened"))),
      el("tbody", {}, s.events.map((e) => el("tr", {}, el("td", { class: "mono" }, fmtTime(e.ts_ns)), el("td", {}, String(e.pid)), el("td", {}, e.kind), el("td", { class: "text" }, e.message)))))
      : el("p", { class: "muted" }, "None: the writer has had nothing to report."),
    el("h2", {}, "Partitions"),
    el("p", { class: "muted", id: "retention" },
      `Retention keeps ${s.retention.hours} hours: a partition whose hour ended before ${fmtTime(s.retention.cutoff_ns)} UTC is dropped whole at the next pass.`),
    el("table", { id: "partitions" }, el("thead", {}, el("tr", {}, el("th", {}, "table"), el("th", { class: "num" }, "rows"), el("th", { class: "num" }, "size"), el("th", {}, "retention"))),
      el("tbody", {}, s.partitions.map((p) => el("tr", {}, el("td", { class: "mono" }, p.table), el("td", { class: "num" }, fmtCount(p.rows)), el("td", { class: "num" }, fmtBytes(p.bytes)),
        el("td", {}, p.hour_start_ns + 3600e9 <= s.retention.cutoff_ns ? "dropped at the next pass" : "kept"))))));
}

let liveTimer = null;

async function livePage() {
  const mine = generation;
  // Span id -> its end: what is shown, forgotten once older than any poll
  // looks back.
  const seen = new Map();
  let watermark = null;
  const errorsOnly = el("input", { type: "checkbox", id: "live-errors" });
  const state = el("span", { class: "muted", id: "live-state" }, "following…");
  const body = el("tbody", {});
  const table = el("table", { id: "live" },
    el("thead", {}, el("tr", {}, el("th", {}, "end (UTC)"), el("th", {}, "function"), el("th", { class: "num" }, "duration"), el("th", {}, "status"), el("th", {}, "error"), el("th", {}, "trace"))),
    body);
  const poll = async () => {
    try {
      const data = await api("/api/tail", { after: watermark, errors: errorsOnly.checked ? 1 : 0 });
      watermark = data.watermark;
      const fresh = data.spans.filter((s) => !seen.has(s.span_id));
      // Newest on top. A reader scrolled down keeps their place: the
      // browser's scroll anchoring holds the rows they look at.
      for (const s of fresh) {
        seen.set(s.span_id, s.start_ns + s.duration_ns);
        body.prepend(el("tr", { class: "live-new", dataset: { span: s.span_id } },
          el("td", { class: "mono" }, fmtTime(s.start_ns + s.duration_ns)),
          el("td", {}, link(`/fn/${encodeURIComponent(s.name)}`, s.name)),
          el("td", { class: "num" }, fmtDuration(s.duration_ns)),
          el("td", {}, statusBadge(s.status)),
          el("td", { class: "text" }, s.error || ""),
          el("td", {}, link(`/trace/${s.trace_id}`, s.trace_id))));
      }
      while (body.rows.length > 1000) body.deleteRow(-1);
      for (const [id, end] of seen) if (end < watermark - 120e9) seen.delete(id);
      state.textContent = `following · ${fmtCount(body.rows.length)} shown` +
        (data.more ? " · busy: each poll shows the latest 500" : "");
    } catch (error) {
      state.textContent = `paused: ${error.message}`;
    }
  };
  // One poll at a time, and none once another page is drawn.
  const tick = async () => {
    if (mine !== generation) return;
    await poll();
    if (mine === generation) liveTimer = setTimeout(tick, 1000);
  };
  await poll();
  if (mine === generation) liveTimer = setTimeout(tick, 1000);
  return el("div", {}, el("h1", {}, "Live"), el("div", { class: "filters" }, el("label", {}, errorsOnly, " errors and panics only"), state), table);
}

// ---- routing -----------------------------------------------------------------

const routes = [
  [/^\/$/, "overview", () => overviewPage()],
  [/^\/traces$/, "traces", () => tracesPage()],
  [/^\/trace\/([^/]+)$/, "traces", (m) => tracePage(decodeURIComponent(m[1]))],
  [/^\/fn\/([^/]+)$/, "overview", (m) => functionPage(decodeURIComponent(m[1]))],
  [/^\/resources$/, "resources", () => resourcesPage()],
  [/^\/health$/, "health", () => healthPage()],
  [/^\/live$/, "live", () => livePage()],
];

let generation = 0;

async function route() {
  const mine = ++generation;
  if (liveTimer) { clearTimeout(liveTimer); liveTimer = null; }
  syncControls();
  clearCharts();
  const path = location.pathname;
  const found = routes.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", !!found && a.dataset.page === found[1]);
  const navQuery = new URLSearchParams(windowParams()).toString();
  for (const a of document.querySelectorAll("#nav a, a.brand")) a.href = `${new URL(a.href).pathname}?${navQuery}`;
  document.body.dataset.ready = "";
  let content;
  try {
    content = found ? await found[2](path.match(found[0])) : el("p", {}, "No such page.");
  } catch (error) {
    content = el("div", {}, errorBox(error));
  }
  if (mine !== generation) return;
  main().replaceChildren(content);
  document.body.dataset.ready = path;
}

function navigate(url) {
  history.pushState(null, "", url);
  route();
}

/** The window picker as the address says (a link or Back may change it). */
function syncControls() {
  const select = document.getElementById("window");
  const custom = document.getElementById("custom");
  const w = windowParams();
  const preset = [...select.options].some((o) => o.value === w.since) && !w.until;
  select.value = preset ? w.since : "custom";
  custom.hidden = preset;
  if (!preset) {
    document.getElementById("since").value = w.since;
    document.getElementById("until").value = w.until || "";
  }
}

function setupControls() {
  const select = document.getElementById("window");
  const custom = document.getElementById("custom");
  const go = (since, until) => {
    const q = new URLSearchParams(location.search);
    q.set("since", since);
    if (until) q.set("until", until); else q.delete("until");
    navigate(`${location.pathname}?${q}`);
  };
  select.addEventListener("change", () => {
    custom.hidden = select.value !== "custom";
    if (select.value !== "custom") go(select.value, null);
  });
  document.getElementById("apply").addEventListener("click", () => {
    go(document.getElementById("since").value.trim() || "1h", document.getElementById("until").value.trim());
  });
  let timer = null;
  document.getElementById("refresh").addEventListener("change", (event) => {
    if (timer) clearInterval(timer);
    // Not the live page (it follows on its own) nor a trace (a trace does
    // not change, and redrawing it would lose what was collapsed).
    const refreshes = () => location.pathname !== "/live" && !location.pathname.startsWith("/trace/");
    timer = event.target.checked ? setInterval(() => { if (refreshes()) route(); }, 10000) : null;
  });
}

// Internal links move without a reload.
document.addEventListener("click", (event) => {
  const a = event.target.closest("a");
  if (!a || a.target || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/") || url.pathname === "/metrics") return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", route);
setupControls();
route();
