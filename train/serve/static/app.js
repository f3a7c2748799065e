// xpnet serve: the drawing pad, the answer, and the run's figures. No library, no network but
// this server: the page must work offline and ship inside the Python package.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d");
const LIVE_EVERY_MS = 120;  // while a stroke is drawn, at most one reading this often

// ---- the drawing: strokes over an optional picture, so undo can redraw without the last one
let strokes = [], picture = null, current = null;

function redraw() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  if (picture) {
    const s = Math.min(pad.width / picture.width, pad.height / picture.height);
    const w = picture.width * s, h = picture.height * s;
    ctx.drawImage(picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  }
  for (const stroke of strokes) drawStroke(stroke, 0);
}

function drawStroke(stroke, from) {
  const p = stroke.points;
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineWidth = stroke.width;
  ctx.lineCap = ctx.lineJoin = "round";
  if (p.length === 1) {  // a dot
    ctx.beginPath();
    ctx.arc(p[0].x, p[0].y, stroke.width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(p[Math.max(from - 1, 0)].x, p[Math.max(from - 1, 0)].y);
  for (let i = Math.max(from, 1); i < p.length; i++) ctx.lineTo(p[i].x, p[i].y);
  ctx.stroke();
}

function at(e) {
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  try { pad.setPointerCapture(e.pointerId); } catch (err) { /* a pointer that is already gone */ }
  current = { width: Number($("width").value), points: [at(e)] };
  strokes.push(current);
  drawStroke(current, 0);
});

pad.addEventListener("pointermove", (e) => {
  if (!current) return;
  const from = current.points.length;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const ev of (events.length ? events : [e])) current.points.push(at(ev));
  drawStroke(current, from);
  if (!inFlight && performance.now() - lastSent > LIVE_EVERY_MS) read(false);
});

function endStroke() {
  if (!current) return;
  current = null;
  strokeEnded = performance.now();
  read(true);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", () => { strokes = []; picture = null; redraw(); showNothing(); });
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); }
});

function undo() {
  if (strokes.length) strokes.pop(); else picture = null;
  redraw();
  strokeEnded = performance.now();
  if (strokes.length || picture) read(true); else showNothing();
}

// ---- a picture from a file, chosen or dropped: the file's own bytes are read, at full size
$("file").addEventListener("change", (e) => { if (e.target.files[0]) readFile(e.target.files[0]); e.target.value = ""; });
pad.addEventListener("dragover", (e) => { e.preventDefault(); pad.classList.add("dropping"); });
pad.addEventListener("dragleave", () => pad.classList.remove("dropping"));
pad.addEventListener("drop", (e) => {
  e.preventDefault();
  pad.classList.remove("dropping");
  if (e.dataTransfer.files[0]) readFile(e.dataTransfer.files[0]);
});

async function readFile(file) {
  strokes = [];
  try { picture = await createImageBitmap(file); } catch (err) { picture = null; }  // the server says why
  redraw();
  strokeEnded = performance.now();
  send(file, true);
}

// ---- asking the server: one request in flight; a newer drawing waits for it, then goes
let inFlight = false, waiting = null, lastSent = 0, strokeEnded = null, cleared = 0;

function read(final) {
  if (!strokes.length && !picture) return;
  send(padPng(), final);
}

// The pad as PNG bytes, now. Not canvas.toBlob: Chromium encodes that in an idle period, and
// where none comes soon (a headless browser, a busy page) it waits up to a second first.
function padPng() {
  const text = atob(pad.toDataURL("image/png").split(",")[1]);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Blob([bytes], { type: "image/png" });
}

async function send(blob, final) {
  if (inFlight) { waiting = [blob, final]; return; }
  inFlight = true;
  lastSent = performance.now();
  const started = lastSent, ended = strokeEnded, since = cleared;
  try {
    const res = await fetch("/api/predict?top=5", { method: "POST", body: blob,
                                                   headers: { "Content-Type": blob.type || "application/octet-stream" } });
    const answer = await res.json();
    if (since === cleared && (!waiting || final)) {  // not cleared meanwhile, nor about to be redrawn
      if (res.ok) showAnswer(answer); else showError(answer.error || `the server answered ${res.status}`);
      if (final && ended !== null && started >= ended) showTiming(performance.now() - ended);
    }
  } catch (err) {
    showError(`no answer from the server (${err.message}); is xpnet serve still running?`);
  } finally {
    inFlight = false;
    if (waiting) { const [b, f] = waiting; waiting = null; send(b, f); }
  }
}

// ---- the answer
function showAnswer(a) {
  const status = $("status");
  status.className = "status";
  status.replaceChildren(el("span", "letter", a.letter), `${pct(a.probability)}${a.unsure ? " (unsure)" : ""}`);
  const rows = [[a.letter, a.probability], ...a.runners_up];
  $("top").replaceChildren(...rows.map(([name, p]) => bar(name, p)));
  drawSeen(a.input);
}

function bar(name, p) {
  const fill = el("div", "fill");
  fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  const track = el("div", "track");
  track.append(fill);
  const li = el("li");
  li.append(el("b", "", name), track, el("span", "value", pct(p)));
  return li;
}

function drawSeen(rows) {
  const seen = $("seen"), c = seen.getContext("2d"), img = c.createImageData(28, 28);
  rows.flat().forEach((v, i) => {
    const g = Math.round(255 * v);
    img.data.set([g, g, g, 255], 4 * i);
  });
  c.putImageData(img, 0, 0);
}

function showError(message) {
  const status = $("status");
  status.className = "status error";
  status.textContent = message;
  $("top").replaceChildren();
}

function showTiming(ms) {
  const t = $("timing");
  t.dataset.ms = ms.toFixed(1);
  t.textContent = `read in ${Math.round(ms)} ms`;
}

function showNothing() {
  waiting = null;
  cleared++;
  $("status").className = "status";
  $("status").textContent = "Draw a letter.";
  $("top").replaceChildren();
  $("timing").textContent = "";
  $("seen").getContext("2d").clearRect(0, 0, 28, 28);
}

const pct = (p) => `${(100 * p).toFixed(p > 0.999 || p < 0.001 ? 2 : 1)}%`;

function el(tag, cls = "", text = null) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== null) e.textContent = text;
  return e;
}

// ---- tabs; the run's figures (run.js) are fetched and drawn when first shown
function showTab(which) {
  for (const name of ["draw", "run"]) {
    $(`tab-${name}`).setAttribute("aria-selected", String(name === which));
    $(`${name}-panel`).hidden = name !== which;
  }
  if (which === "run" && !runShown) { runShown = true; loadRun(); }
}
let runShown = false;
$("tab-draw").addEventListener("click", () => showTab("draw"));
$("tab-run").addEventListener("click", () => showTab("run"));
redraw();
