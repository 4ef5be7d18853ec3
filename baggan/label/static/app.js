// BagGAN annotator: paints a category-id mask (one byte per scan pixel) over a generated scan, in plain JS/canvas.
// The mask lives in S.ids (Uint8Array, row by row); every tool writes ids directly, so what is saved is exactly
// what was painted. window.baggan exposes the state (the browser tests read the view transform from it).
"use strict";

const S = {
  info: null, R: 0, ids: null, scan: null, sample: null, cat: 3, tool: "brush", size: 3, opacity: 0.6,
  undo: [], redo: [], view: { scale: 1, ox: 0, oy: 0 }, poly: [], drawing: false, last: null, pan: null,
  space: false, hover: null, lut: null, fits: 0, savedIds: null,
};
window.baggan = S;

const $ = (id) => document.getElementById(id);
const canvas = $("view");
const ctx = canvas.getContext("2d");
const maskCanvas = document.createElement("canvas");
const KEYS = { 0: "`", 1: "1", 2: "2", 3: "3", 4: "4", 5: "5", 6: "6", 7: "7", 8: "8", 9: "9", 10: "0", 11: "-", 12: "=",
  255: "n" };

// ---------------------------------------------------------------------------------------------------------
// Server calls.

function status(text, error) {
  const el = $("status");
  el.textContent = text;
  el.className = error ? "error" : "";
}

async function api(path, body, form) {
  const init = form ? { method: "POST", body: form }
    : body !== undefined ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }
    : {};
  const r = await fetch(path, init);
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok) throw new Error(data.error || `${r.status}`);
  return data;
}

async function runJob(job, barId, onDone) {
  const bar = $(barId);
  bar.hidden = false;
  for (;;) {
    bar.firstElementChild.style.width = `${Math.round(100 * job.progress)}%`;
    bar.lastElementChild.textContent = job.message || job.kind;
    if (job.state === "done") { onDone(job.result, job); return; }
    if (job.state === "failed") { status(job.error, true); bar.lastElementChild.textContent = job.error; return; }
    await new Promise((ok) => setTimeout(ok, 200));
    try { job = await api(`/api/jobs/${job.id}`); } catch (e) { status(e.message, true); return; }
  }
}

function b64encode(u8) {
  let s = "";
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

function b64decode(text) {
  const s = atob(text);
  const u8 = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
  return u8;
}

// ---------------------------------------------------------------------------------------------------------
// Drawing the view.

function refreshMask() {
  const R = S.R, img = maskCanvas.getContext("2d").createImageData(R, R);
  for (let i = 0; i < R * R; i++) {
    const c = S.lut[S.ids[i]];
    if (!c || S.ids[i] === 0) continue;
    img.data.set([c[0], c[1], c[2], 255], 4 * i);
  }
  maskCanvas.getContext("2d").putImageData(img, 0, 0);
}

function draw() {
  const { scale, ox, oy } = S.view, size = S.R * scale;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!S.scan) return;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(S.scan, ox, oy, size, size);
  ctx.globalAlpha = S.opacity;
  ctx.drawImage(maskCanvas, ox, oy, size, size);
  ctx.globalAlpha = 1;
  if (S.poly.length) {
    ctx.strokeStyle = "#fff";
    ctx.beginPath();
    S.poly.forEach(([x, y], k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, ox + (x + 0.5) * scale, oy + (y + 0.5) * scale));
    if (S.hover) ctx.lineTo(ox + (S.hover[0] + 0.5) * scale, oy + (S.hover[1] + 0.5) * scale);
    ctx.stroke();
  }
  if (S.hover && (S.tool === "brush" || S.tool === "eraser")) {
    const r = S.size / 2;
    ctx.strokeStyle = "rgba(255,255,255,0.8)";
    ctx.beginPath();
    ctx.arc(ox + (S.hover[0] + 0.5) * scale, oy + (S.hover[1] + 0.5) * scale, r * scale, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

function fitView() {
  const scale = Math.max(1, Math.floor(Math.min(canvas.width, canvas.height) / S.R));
  S.view = { scale, ox: Math.floor((canvas.width - S.R * scale) / 2), oy: Math.floor((canvas.height - S.R * scale) / 2) };
  draw();
}

function zoom(factor, cx, cy) {
  const v = S.view, scale = Math.min(Math.max(v.scale * factor, 0.25), 64);
  cx = cx === undefined ? canvas.width / 2 : cx;
  cy = cy === undefined ? canvas.height / 2 : cy;
  S.view = { scale, ox: cx - (cx - v.ox) * scale / v.scale, oy: cy - (cy - v.oy) * scale / v.scale };
  draw();
}

function canvasPoint(e) {
  const r = canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
}

function toPixel(e) {
  const [cx, cy] = canvasPoint(e);
  return [Math.floor((cx - S.view.ox) / S.view.scale), Math.floor((cy - S.view.oy) / S.view.scale)];
}

// ---------------------------------------------------------------------------------------------------------
// Tools: each writes ids into S.ids.

function inside(x, y) { return x >= 0 && y >= 0 && x < S.R && y < S.R; }

function stamp(x, y, id) {  // a disk of diameter S.size centred on pixel (x, y)
  const h = Math.floor(S.size / 2), r2 = S.size * S.size / 4;
  for (let dy = -h; dy <= h; dy++) for (let dx = -h; dx <= h; dx++) {
    if (dx * dx + dy * dy <= r2 && inside(x + dx, y + dy)) S.ids[(y + dy) * S.R + x + dx] = id;
  }
}

function line(x0, y0, x1, y1, plot) {  // Bresenham: every pixel of the segment, ends included
  const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  let err = dx + dy;
  for (;;) {
    plot(x0, y0);
    if (x0 === x1 && y0 === y1) return;
    const e2 = 2 * err;
    if (e2 >= dy) { err += dy; x0 += sx; }
    if (e2 <= dx) { err += dx; y0 += sy; }
  }
}

function fillPolygon(points, id) {  // pixel centres inside (even-odd) plus the outline, as LabelMe rasterises
  for (let y = 0; y < S.R; y++) for (let x = 0; x < S.R; x++) {
    let odd = false;
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i], [xj, yj] = points[j];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) odd = !odd;
    }
    if (odd) S.ids[y * S.R + x] = id;
  }
  points.forEach((p, k) => {
    const q = points[(k + 1) % points.length];
    line(p[0], p[1], q[0], q[1], (x, y) => { if (inside(x, y)) S.ids[y * S.R + x] = id; });
  });
}

function floodFill(x, y, id) {  // the 4-connected region of equal ids under (x, y)
  const R = S.R, from = S.ids[y * R + x];
  if (from === id) return;
  const stack = [y * R + x];
  while (stack.length) {
    const i = stack.pop();
    if (S.ids[i] !== from) continue;
    S.ids[i] = id;
    const px = i % R, py = (i - px) / R;
    if (px > 0) stack.push(i - 1);
    if (px < R - 1) stack.push(i + 1);
    if (py > 0) stack.push(i - R);
    if (py < R - 1) stack.push(i + R);
  }
}

function pushUndo() {
  S.undo.push(S.ids.slice());
  if (S.undo.length > 200) S.undo.shift();
  S.redo = [];
}

function undo(steps) {
  const [from, to] = steps > 0 ? [S.redo, S.undo] : [S.undo, S.redo];
  if (!from.length) return;
  to.push(S.ids);
  S.ids = from.pop();
  refreshMask();
  draw();
}

function paintId() { return S.tool === "eraser" ? 0 : S.cat; }

function closePolygon() {
  if (S.poly.length >= 3) {
    pushUndo();
    fillPolygon(S.poly, S.cat);
    refreshMask();
  }
  S.poly = [];
  draw();
}

// ---------------------------------------------------------------------------------------------------------
// Mouse and keyboard.

canvas.addEventListener("contextmenu", (e) => e.preventDefault());
canvas.addEventListener("mousedown", (e) => {
  canvas.focus();
  if (!S.ids) return;
  if (e.button === 2 || e.button === 1 || S.space) {
    S.pan = { at: canvasPoint(e), ox: S.view.ox, oy: S.view.oy };
    return;
  }
  if (e.button !== 0) return;
  const [x, y] = toPixel(e);
  if (S.tool === "brush" || S.tool === "eraser") {
    pushUndo();
    S.drawing = true;
    S.last = [x, y];
    stamp(x, y, paintId());
    refreshMask();
    draw();
  } else if (S.tool === "fill" && inside(x, y)) {
    pushUndo();
    floodFill(x, y, S.cat);
    refreshMask();
    draw();
  } else if (S.tool === "polygon") {
    S.poly.push([x, y]);
    draw();
  }
});
window.addEventListener("mousemove", (e) => {
  if (!S.ids) return;
  if (S.pan) {
    const [cx, cy] = canvasPoint(e);
    S.view.ox = S.pan.ox + cx - S.pan.at[0];
    S.view.oy = S.pan.oy + cy - S.pan.at[1];
    draw();
    return;
  }
  const [x, y] = toPixel(e);
  S.hover = [x, y];
  if (S.drawing) {
    const id = paintId();
    line(S.last[0], S.last[1], x, y, (px, py) => stamp(px, py, id));
    S.last = [x, y];
    refreshMask();
  }
  draw();
});
window.addEventListener("mouseup", () => { S.drawing = false; S.pan = null; });
canvas.addEventListener("dblclick", (e) => { if (S.tool === "polygon") { S.poly.pop(); closePolygon(); e.preventDefault(); } });
canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  const [cx, cy] = canvasPoint(e);
  zoom(e.deltaY < 0 ? 1.25 : 0.8, cx, cy);
}, { passive: false });

function setTool(tool) {
  S.tool = tool;
  S.poly = [];
  document.querySelectorAll("#tools button").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
  draw();
}

function setCategory(id) {
  S.cat = id;
  document.querySelectorAll(".cat").forEach((b) => b.classList.toggle("active", Number(b.dataset.id) === id));
}

function setSize(size) {
  S.size = Math.min(Math.max(size, 1), 25);
  $("size").value = S.size;
  $("size-label").textContent = S.size;
  draw();
}

document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") return;
  const k = e.key.toLowerCase(), mod = e.ctrlKey || e.metaKey;
  if (mod && k === "z") { undo(e.shiftKey ? 1 : -1); e.preventDefault(); return; }
  if (mod && k === "y") { undo(1); e.preventDefault(); return; }
  if (mod && k === "s") { save(); e.preventDefault(); return; }
  if (mod) return;
  if (e.key === " ") { S.space = true; e.preventDefault(); return; }
  const tools = { b: "brush", p: "polygon", e: "eraser", f: "fill" };
  if (tools[k]) { setTool(tools[k]); return; }
  if (k === "[") return setSize(S.size - 1);
  if (k === "]") return setSize(S.size + 1);
  if (k === "z") return zoom(1.25);
  if (k === "x") return zoom(0.8);
  if (k === "r") return fitView();
  if (k === "enter") return closePolygon();
  if (k === "escape") { S.poly = []; draw(); return; }
  const cat = Object.keys(KEYS).find((id) => KEYS[id] === k && S.lut[id]);
  if (cat !== undefined) setCategory(Number(cat));
});
document.addEventListener("keyup", (e) => { if (e.key === " ") S.space = false; });

// ---------------------------------------------------------------------------------------------------------
// Samples, masks, fit, export.

function loadSample(view) {
  S.sample = view;
  S.ids = view.mask ? b64decode(view.mask) : new Uint8Array(S.R * S.R);
  S.savedIds = view.mask_from === "saved" ? S.ids.slice() : null;
  S.undo = [];
  S.redo = [];
  S.poly = [];
  refreshMask();
  const img = new Image();
  img.onload = () => { S.scan = img; fitView(); canvas.dataset.sample = view.name; };
  img.src = view.scan;
  if (view.source.source === "seed") { $("seed").value = view.source.seed; $("psi").value = view.source.psi; }
  const src = view.source.source === "seed" ? `seed ${view.source.seed}, ψ ${view.source.psi}`
    : `projected ${view.source.original} (PSNR ${view.source.psnr} dB)`;
  $("sample-name").textContent = `${view.name}: ${src}`;
  status(view.mask_from === "prediction" ? "mask from the segmenter's prediction: correct it and Save to add a shot"
    : view.mask_from === "saved" ? "saved mask loaded" : "paint the threat items, then Save");
}

async function loadSeed() {
  try {
    loadSample(await api("/api/sample", { seed: Number($("seed").value), psi: Number($("psi").value) }));
  } catch (e) { status(e.message, true); }
}

async function save() {
  if (!S.sample) return;
  try {
    const r = await api("/api/mask", { sample: S.sample.name, ids: b64encode(S.ids) });
    S.savedIds = S.ids.slice();
    showShots(r.shots);
    status(`saved ${r.mask} (${r.categories.join(", ") || "no category"}) and ${r.sidecar}`);
  } catch (e) { status(e.message, true); }
}

function showShots(shots) {
  S.info.shots = shots;
  $("shots").innerHTML = "";
  shots.forEach((name) => {
    const a = document.createElement("a");
    a.href = "#";
    a.textContent = name;
    a.onclick = async (e) => { e.preventDefault(); loadSample(await api("/api/sample", { name })); };
    $("shots").appendChild(a);
  });
  $("fit").textContent = `${S.fits ? "Refit" : "Fit"} (${shots.length} shot${shots.length === 1 ? "" : "s"})`;
}

function showPreviews(result) {
  S.fits += 1;
  S.lastFit = result;
  const box = $("previews");
  box.innerHTML = "";
  result.previews.forEach((p) => {
    const div = document.createElement("div");
    div.className = "preview";
    div.innerHTML = `<img alt="seed ${p.seed}" src="${p.overlay}"><div class="cap">seed ${p.seed}</div>`;
    const fix = document.createElement("button");
    fix.textContent = "Fix";
    fix.title = "Load this seed with the prediction as its mask: correct it, Save, Refit";
    fix.onclick = async () => { try { loadSample(await api("/api/sample", { name: p.name })); } catch (e) { status(e.message, true); } };
    div.appendChild(fix);
    box.appendChild(div);
  });
  box.dataset.fit = String(S.fits);
  $("fit-info").innerHTML = `${result.shots.length} shot(s): ${result.categories.join(", ")}; training IoU `
    + `${result.training_iou.join(", ")}; ${result.seconds} s. <a href="${result.sheet}" target="_blank">fit sheet</a>`;
  showShots(S.info.shots);
  status(`fitted in ${result.seconds} s; predictions on ${result.previews.length} other seeds`);
}

async function fit() {
  try {
    if (S.sample && S.savedIds === null && S.ids.some((v) => v !== 0)) status("note: the mask on screen is not saved");
    runJob(await api("/api/fit", {}), "fit-bar", showPreviews);
  } catch (e) { status(e.message, true); }
}

async function exportSet() {
  try {
    const job = await api("/api/export", { n: Number($("export-n").value), shard_size: Number($("export-shard").value) });
    runJob(job, "export-bar", (r) => {
      $("export-info").innerHTML = `${r.images} scans in ${r.shards} shard(s) under ${r.outdir} (${r.seconds} s). `
        + `<a id="contact-link" href="${r.contact}" target="_blank">contact sheet</a>`;
      status(`exported ${r.images} scans to ${r.outdir}`);
    });
  } catch (e) { status(e.message, true); }
}

async function uploadScan(file) {
  const form = new FormData();
  form.append("scan", file);
  try {
    runJob(await api("/api/upload", undefined, form), "upload-bar", loadSample);
  } catch (e) { status(e.message, true); }
}

async function importMask(file) {
  if (!S.sample) { status("load a scan first", true); return; }
  const form = new FormData();
  form.append("file", file);
  form.append("sample", S.sample.name);
  try {
    const r = await api("/api/import", undefined, form);
    pushUndo();
    S.ids = b64decode(r.mask);
    refreshMask();
    draw();
    status(`imported ${file.name}: Save to keep it`);
  } catch (e) { status(e.message, true); }
}

async function start() {
  S.info = await api("/api/info");
  S.R = S.info.resolution;
  maskCanvas.width = maskCanvas.height = S.R;
  S.lut = {};
  const box = $("categories");
  S.info.categories.forEach((c) => {
    S.lut[c.id] = c.colour;
    const b = document.createElement("button");
    b.className = "cat";
    b.dataset.id = c.id;
    b.innerHTML = `<span class="swatch" style="background: rgb(${c.colour.join(",")})"></span>${c.name}`
      + `<span class="key">${KEYS[c.id] || ""}</span>`;
    b.onclick = () => setCategory(c.id);
    box.appendChild(b);
  });
  $("netinfo").textContent = `${S.info.network}, ${S.R}×${S.R}, ${S.info.method}, label set ${S.info.label_set}`;
  document.querySelectorAll("#tools button").forEach((b) => { b.onclick = () => setTool(b.dataset.tool); });
  $("size").oninput = () => setSize(Number($("size").value));
  $("opacity").oninput = () => { S.opacity = Number($("opacity").value) / 100; draw(); };
  $("load").onclick = loadSeed;
  $("seed").onkeydown = (e) => { if (e.key === "Enter") loadSeed(); };
  $("undo").onclick = () => undo(-1);
  $("redo").onclick = () => undo(1);
  const fillAll = (id) => { if (S.ids) { pushUndo(); S.ids.fill(id); refreshMask(); draw(); } };
  $("clear").onclick = () => fillAll(0);
  $("clear-ignore").onclick = () => fillAll(S.info.ignore);
  $("zoom-in").onclick = () => zoom(1.25);
  $("zoom-out").onclick = () => zoom(0.8);
  $("zoom-fit").onclick = fitView;
  $("save").onclick = save;
  $("fit").onclick = fit;
  $("export").onclick = exportSet;
  $("upload").onchange = (e) => { if (e.target.files[0]) uploadScan(e.target.files[0]); e.target.value = ""; };
  $("import").onchange = (e) => { if (e.target.files[0]) importMask(e.target.files[0]); e.target.value = ""; };
  setTool("brush");
  setCategory(3);
  setSize(3);
  showShots(S.info.shots);
  canvas.dataset.ready = "1";
}

start().catch((e) => status(e.message, true));
