// The second tab: the run's config, its learning curves, the accuracy of each held-out group (groups.json) and
// each class, and the confusion matrix, all drawn here from GET /api/run.
"use strict";

async function loadRun() {
  const box = document.getElementById("run");
  try {
    const res = await fetch("/api/run");
    const run = await res.json();
    if (!res.ok) throw new Error(run.error || `the server answered ${res.status}`);
    box.replaceChildren(...runView(run));
  } catch (err) {
    box.textContent = `The run could not be read: ${err.message}`;
  }
}

function runView(run) {
  const parts = [node("h2", `${run.run}`),
                 node("p", `network ${run.sizes.join(" → ")}, ${run.classes.length} classes` +
                           (run.epochs != null ? `, ${run.epochs} epochs` : "") +
                           (run.accuracy != null ? `, held-out accuracy ${(100 * run.accuracy).toFixed(2)}%` : ""))];
  const h = run.history;
  parts.push(node("h2", "Learning curves"));
  if (h.length) {
    const charts = node("div", "", "charts");
    charts.append(chart("loss", h, [["loss", "train"], ["val_loss", "validation"]], 1),
                  chart("accuracy (%)", h, [["accuracy", "train"], ["val_accuracy", "validation"],
                                            ["test_accuracy", "test"]], 100));
    parts.push(charts);
  } else {
    parts.push(node("p", "This run has no history.json (a bare checkpoint file), so no curves.", "empty"));
  }
  const groups = (Array.isArray(run.groups) ? run.groups : []).filter((g) => g && typeof g.accuracy === "number");
  if (groups.length) parts.push(node("h2", "Accuracy per held-out group"), bars(groups.map((g) => [g.name, g.accuracy])));
  parts.push(node("h2", "Accuracy per class and the confusion matrix"));
  if (run.confusion && run.confusion.counts) {
    const { classes, counts } = run.confusion;
    parts.push(bars(classes.map((c, i) => [c, counts[i][i] / Math.max(1, sum(counts[i]))])), confusion(classes, counts));
  } else {
    parts.push(node("p", "This run has no confusion.json: xpnet evaluate RUN writes one.", "empty"));
  }
  parts.push(node("h2", "Config"), configTable(run.config));
  return parts;
}

function chart(title, history, series, scale) {
  const W = 340, H = 200, L = 44, B = 26, T = 18, R = 10;
  const svg = svgNode("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const lines = series.filter(([k]) => k in history[0]);
  const values = lines.flatMap(([k]) => history.map((r) => scale * r[k])).filter(Number.isFinite);
  if (!values.length) return svg;
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const epochs = history.map((r) => r.epoch);
  const x = (e) => L + (W - L - R) * (epochs.length > 1 ? (e - epochs[0]) / (epochs[epochs.length - 1] - epochs[0]) : 0.5);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  svg.append(svgNode("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#d5dae1" }));
  const label = (tx, ty, text, anchor = "end") => { const t = svgNode("text", { x: tx, y: ty, "text-anchor": anchor }); t.textContent = text; svg.append(t); };
  label(L - 4, T + 4, fmt(hi)); label(L - 4, H - B, fmt(lo));
  label(L, H - 8, `epoch ${epochs[0]}`, "start"); label(W - R, H - 8, `${epochs[epochs.length - 1]}`);
  label(L, 12, title, "start");
  lines.forEach(([k, name], i) => {
    const colour = ["#2f6fd6", "#e0713a", "#2a9d58"][i];
    const pts = history.map((r) => `${x(r.epoch)},${y(scale * r[k])}`).join(" ");
    svg.append(svgNode("polyline", { points: pts, fill: "none", stroke: colour, "stroke-width": 2 }));
    label(W - R - 70 * (lines.length - 1 - i), 12, name, "end");
    svg.lastChild.style.fill = colour;
  });
  return svg;
}

function confusion(classes, counts) {
  const table = node("table", "", "confusion");
  const caption = node("caption", "rows: the true letter; columns: what the network read (hover a cell for its count)");
  table.append(caption);
  const head = document.createElement("tr");
  head.append(node("th", ""));
  classes.forEach((c) => head.append(node("th", c)));
  table.append(head);
  counts.forEach((row, i) => {
    const tr = document.createElement("tr");
    tr.append(node("th", classes[i]));
    const total = Math.max(1, sum(row));
    row.forEach((n, j) => {
      const td = node("td", n ? String(n) : "");
      const share = n / total;
      td.style.background = i === j ? `rgba(47,111,214,${0.15 + 0.85 * share})` : `rgba(200,60,40,${Math.min(1, 4 * share)})`;
      if (share < 0.35) td.style.color = "#1d2430";
      td.title = `true ${classes[i]}, read ${classes[j]}: ${n}`;
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

function bars(rows) {
  const list = node("ol", "", "bars run-bars");
  list.append(...rows.map(([name, p]) => bar(name, p)));
  return list;
}

function configTable(config) {
  const table = document.createElement("table");
  for (const [k, v] of Object.entries(config || {})) {
    const tr = document.createElement("tr");
    tr.append(node("th", k), node("td", typeof v === "object" ? JSON.stringify(v) : String(v)));
    table.append(tr);
  }
  return table;
}

function node(tag, text = "", cls = "") {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function svgNode(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const sum = (a) => a.reduce((s, v) => s + v, 0);
const fmt = (v) => (Math.abs(v) >= 10 ? v.toFixed(0) : v.toPrecision(3));
