// The debug listener's page: the list of sampled traces and a waterfall of
// one. Self-contained (no CDN, no external files): it reads the JSON API it
// is served next to, with relative URLs so it also works behind a proxy.
// Every value from a trace is set with textContent, never as HTML: heads
// and targets are whatever the traced programs sent.
#include "exporter/debug_api.h"

namespace redmap {

std::string_view TracePageHtml() {
  static constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redmap traces</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header h1{font-size:16px;margin:0}
form{display:flex;gap:8px;flex-wrap:wrap;padding:8px 16px;background:#fff;border-bottom:1px solid #dde}
input{font:inherit;padding:2px 4px}
main{padding:8px 16px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef;white-space:nowrap}
tr.trace:hover{background:#eef3ff;cursor:pointer}
tr.sel{background:#dfe8ff}
.err{color:#b00020;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
#list{max-height:36vh;overflow:auto;border:1px solid #dde}
#detail{margin-top:16px}
.warn{background:#fff6d6;border:1px solid #e8d27a;padding:6px 8px;margin:6px 0}
.wf{background:#fff;border:1px solid #dde}
.row{display:flex;align-items:center;border-bottom:1px solid #f0f0f4;height:24px;cursor:pointer}
.row:hover{background:#f3f6ff}
.name{width:38%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding-left:4px}
.lane{position:relative;flex:1;height:16px;margin-right:8px}
.bar{position:absolute;height:14px;top:1px;border-radius:2px;min-width:2px}
.server{background:#4e79a7}.client{background:#f28e2b}.bar.e{background:#d62728}
.dur{position:absolute;top:0;font-size:11px;white-space:nowrap;padding-left:4px}
pre{background:#f3f3f6;padding:6px;overflow:auto;max-height:240px;margin:4px 0}
.kv td{border:none;padding:1px 8px 1px 0}
.muted{color:#667}
</style></head>
<body>
<header><h1>redmap &mdash; sampled traces</h1><span class="muted" id="status"></span></header>
<form id="filters">
<label>service <input name="service" size="14"></label>
<label>route <input name="route" size="18"></label>
<label>min ms <input name="min_duration_ms" size="5"></label>
<label><input type="checkbox" name="error"> errors only</label>
<label>limit <input name="limit" size="4" value="50"></label>
<button>Search</button>
</form>
<main>
<div id="list"><table id="traces"><thead><tr><th>start</th><th>root</th><th>services</th>
<th class="num">spans</th><th class="num">duration</th><th>status</th><th>kept</th></tr></thead>
<tbody></tbody></table></div>
<div id="detail"></div>
</main>
<script>
"use strict";
const $ = (s) => document.querySelector(s);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function ms(us) { return us >= 1000 ? (us / 1000).toFixed(2) + " ms" : us.toFixed(0) + " \u00b5s"; }
function when(us) { return new Date(us / 1000).toISOString().replace("T", " ").slice(0, 23); }
async function getJson(url) {
  const r = await fetch(url, {cache: "no-store"});
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}
async function loadList() {
  const p = new URLSearchParams();
  for (const i of $("#filters").elements) {
    if (!i.name) continue;
    if (i.type === "checkbox") { if (i.checked) p.set(i.name, "true"); }
    else if (i.value) p.set(i.name, i.value);
  }
  const body = $("#traces tbody");
  try {
    const data = await getJson("debug/traces?" + p.toString());
    body.replaceChildren();
    for (const t of data.traces) {
      const tr = el("tr", "trace");
      tr.dataset.id = t.trace_id;
      tr.append(el("td", "", when(t.start_unix_us)),
                el("td", "", t.root.service + ": " + t.root.method + " " + t.root.route),
                el("td", "", t.services.join(", ")),
                el("td", "num", t.span_count), el("td", "num", ms(t.duration_us)),
                el("td", t.error ? "err" : "", t.root.status || "-"),
                el("td", "", t.keep_reason + (t.partial ? " (partial)" : "")));
      tr.onclick = () => { location.hash = "trace=" + t.trace_id; };
      body.append(tr);
    }
    $("#status").textContent = data.count + " traces";
  } catch (e) { $("#status").textContent = String(e); }
}
function depthOf(spans) {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const d = new Map();
  const depth = (s) => {
    if (d.has(s.span_id)) return d.get(s.span_id);
    const p = byId.get(s.parent_span_id);
    const v = p && p !== s ? depth(p) + 1 : 0;
    d.set(s.span_id, v);
    return v;
  };
  spans.forEach(depth);
  return d;
}
function spanDetail(s) {
  const box = el("div");
  const kv = el("table", "kv");
  const add = (k, v) => { const tr = el("tr"); tr.append(el("td", "muted", k), el("td", "", v)); kv.append(tr); };
  add("span", s.span_id + (s.parent_span_id ? " \u2190 " + s.parent_span_id + " (" + s.link + ")" : " (root)"));
  add("process", s.service + " pid " + s.process.pid + " tid " + s.process.tid + " (" + s.process.comm + ")");
  add("connection", s.connection.client + " \u2192 " + s.connection.server +
      (s.connection.request_tcp_seq !== undefined ? "  seq " + s.connection.request_tcp_seq : ""));
  add("request", s.http.method + " " + s.http.target + " \u2192 " + s.http.status);
  add("bytes", s.http.request_bytes + " in request, " + s.http.response_bytes + " in response");
  if (s.propagation) add("propagation", s.propagation.format + " " + s.propagation.trace_id);
  box.append(kv);
  if (s.http.request_head) { box.append(el("div", "muted", "request head (redacted)"), el("pre", "", s.http.request_head)); }
  if (s.http.response_head) { box.append(el("div", "muted", "response head (redacted)"), el("pre", "", s.http.response_head)); }
  return box;
}
async function showTrace(id) {
  document.querySelectorAll("tr.trace").forEach((r) => {
    r.classList.toggle("sel", r.dataset.id === id);
    if (r.dataset.id === id) r.scrollIntoView({block: "nearest"});
  });
  const d = $("#detail");
  let t;
  try { t = await getJson("debug/traces/" + encodeURIComponent(id)); }
  catch (e) { d.replaceChildren(el("div", "warn", String(e))); return; }
  const head = el("h2", "", "trace " + t.trace_id);
  const sub = el("div", "muted", when(t.start_unix_us) + " \u2014 " + ms(t.duration_us) + ", " +
                 t.span_count + " spans, kept: " + t.keep_reason);
  d.replaceChildren(head, sub);
  for (const w of t.warnings) d.append(el("div", "warn", "warning: " + w));
  const wf = el("div", "wf");
  const depth = depthOf(t.spans);
  const total = Math.max(t.duration_us, 1);
  const info = el("div");
  for (const s of t.spans) {
    const row = el("div", "row");
    const name = el("div", "name", s.service + " " + s.side + ": " + s.operation);
    name.style.paddingLeft = (4 + 16 * depth.get(s.span_id)) + "px";
    const lane = el("div", "lane");
    const bar = el("div", "bar " + s.side + (s.error ? " e" : ""));
    const left = 100 * s.offset_us / total, width = 100 * s.duration_us / total;
    bar.style.left = left + "%";
    bar.style.width = width + "%";
    const dur = el("div", "dur", ms(s.duration_us) + (s.http.status ? "  " + s.http.status : ""));
    dur.style.left = Math.min(left + width, 85) + "%";
    lane.append(bar, dur);
    row.append(name, lane);
    row.onclick = () => info.replaceChildren(spanDetail(s));
    wf.append(row);
  }
  d.append(wf, info);
  if (t.spans.length) info.append(spanDetail(t.spans[0]));
}
function route() {
  const m = /trace=([0-9a-fA-F]+)/.exec(location.hash);
  if (m) showTrace(m[1]);
}
$("#filters").onsubmit = (e) => { e.preventDefault(); loadList(); };
window.onhashchange = route;
loadList().then(route);
</script>
</body></html>
)HTML";
  return kPage;
}

}  // namespace redmap
