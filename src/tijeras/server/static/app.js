// The page: upload an image, prompt it (hover, clicks, box), choose a candidate, run
// Everything, keep named objects and download them. Talks to the server's /api only.
import { paintMask, paintMasks, rleContains } from "./mask.js";

const $ = (id) => document.getElementById(id);
const SELECT_COLOUR = [30, 111, 217, 255];
const HOVER_COLOUR = [255, 200, 0, 255];
const state = {
  image: null, tool: "hover", points: [], box: null, history: [], candidates: [],
  selected: null, objects: [], everything: [], everythingView: false, ws: null,
  hoverSeq: 0, hoverDrawn: 0, hoverSent: new Map(), segSeq: 0, drag: null, pendingMove: null,
};
// Round-trip times of hover (cursor position sent -> mask drawn), read by the benchmark.
window.tijerasStats = { hover: [], hoverServer: [] };

// --------------------------------------------------------------------------- helpers
async function api(path, options = {}) {
  const response = await fetch(`/api${path}`, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.detail || `${response.status} ${response.statusText}`);
  return body;
}
function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}
function setStatus(text) { $("status").textContent = text; }
function toImage(event) {
  const rect = $("image").getBoundingClientRect();
  const x = ((event.clientX - rect.left) * state.image.width) / rect.width;
  const y = ((event.clientY - rect.top) * state.image.height) / rect.height;
  return [Math.min(Math.max(x, 0), state.image.width - 1), Math.min(Math.max(y, 0), state.image.height - 1)];
}
function enable(ids, on) { ids.forEach((id) => { $(id).disabled = !on; }); }
function clearCanvas(id) { const c = $(id); c.getContext("2d").clearRect(0, 0, c.width, c.height); }
function download(url, filename) {
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
}

// ------------------------------------------------------------------------ server info
async function loadInfo() {
  const info = await api("/info");
  $("model-badge").textContent = `model: ${info.model}${info.fallback ? " (classical fallback)" : ""}`;
  $("model-badge").title = info.description;
  if (info.fallback) {
    $("fallback-banner").hidden = false;
    $("fallback-reason").textContent = `${info.fallback_reason}.`;
    $("fallback-hint").textContent = `To use SAM: ${info.how_to_add_weights}`;
  }
  info.samples.forEach((name) => {
    const button = document.createElement("button");
    button.textContent = name;
    button.className = "sample";
    button.onclick = async () => {
      const response = await fetch(`/api/samples/${encodeURIComponent(name)}`);
      await openImage(await response.blob(), name);
    };
    $("samples").appendChild(button);
  });
}

// ------------------------------------------------------------------------ image upload
async function openImage(blob, name) {
  showError("");
  await closeImage();
  setStatus(`Uploading ${name}…`);
  let status;
  try {
    status = await api("/images", { method: "POST", body: blob, headers: { "X-Filename": name } });
  } catch (err) { setStatus("No image."); showError(`Upload failed: ${err.message}`); return; }
  state.image = { ...status, url: URL.createObjectURL(blob) };
  $("image").src = state.image.url;
  for (const id of ["marks"]) $(id).setAttribute("viewBox", `0 0 ${status.width} ${status.height}`);
  $("stage").hidden = false;
  $("delete-image").disabled = false;
  $("progress").hidden = false;
  await waitForEmbedding(status.id);
}

async function waitForEmbedding(id) {
  for (;;) {
    if (!state.image || state.image.id !== id) return;
    const s = await api(`/images/${id}`);
    $("progress").value = s.progress;
    if (s.status === "ready") break;
    if (s.status === "failed") { showError(s.error); setStatus("Encoding failed."); return; }
    const where = s.queue_position ? ` (${s.queue_position} ahead in the queue)` : "";
    setStatus(`Computing the embedding: ${Math.round(s.progress * 100)}%${where}`);
    await new Promise((r) => setTimeout(r, 150));
  }
  $("progress").hidden = true;
  setStatus(`${state.image.name}: ${state.image.width} x ${state.image.height}, ready.`);
  $("stage").dataset.ready = "1";
  $("stage").dataset.imageId = id;
  enable(["everything", "dl-coco"], true);
  openHover(id);
}

async function closeImage() {
  if (!state.image) return;
  const id = state.image.id;
  if (state.ws) state.ws.close();
  state.ws = null;
  URL.revokeObjectURL(state.image.url);
  state.image = null;
  resetPrompts();
  state.objects = []; state.everything = []; state.everythingView = false;
  renderObjects(); clearCanvas("everything-canvas");
  $("stage").hidden = true; delete $("stage").dataset.ready;
  enable(["delete-image", "everything", "dl-coco"], false);
  setStatus("No image.");
  try { await api(`/images/${id}`, { method: "DELETE" }); } catch (err) { /* already gone */ }
}

// ------------------------------------------------------------------------------ hover
function openHover(id) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/images/${id}/hover`);
  ws.onmessage = (event) => {
    const answer = JSON.parse(event.data);
    if (answer.error) { if (answer.seq != null) showError(answer.error); return; }
    if (answer.seq <= state.hoverDrawn || !hoverActive()) return;
    state.hoverDrawn = answer.seq;
    paintMask($("hover-canvas"), answer.rle, HOVER_COLOUR);
    const sent = state.hoverSent.get(answer.seq);
    if (sent !== undefined) {
      window.tijerasStats.hover.push(performance.now() - sent);
      window.tijerasStats.hoverServer.push(answer.ms);
    }
    for (const seq of state.hoverSent.keys()) if (seq <= answer.seq) state.hoverSent.delete(seq);
    $("stage").dataset.hoverSeq = String(answer.seq);
  };
  state.ws = ws;
}
function hoverActive() {
  return state.tool === "hover" && !state.points.length && !state.box && !state.everythingView;
}
function sendHover(event) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || !hoverActive()) return;
  const [x, y] = toImage(event);
  state.hoverSeq += 1;
  state.hoverSent.set(state.hoverSeq, performance.now());
  state.ws.send(JSON.stringify({ seq: state.hoverSeq, x, y }));
}

// ---------------------------------------------------------------------------- prompts
function drawMarks() {
  const svg = $("marks");
  const r = Math.max(state.image?.width || 0, state.image?.height || 0) / 120;
  let html = "";
  if (state.box) {
    const [x0, y0, x1, y1] = state.box;
    html += `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#1e6fd9" stroke-width="${r / 2}"/>`;
  }
  for (const [x, y, label] of state.points) {
    const colour = label === 1 ? "#19a34a" : "#d62828";
    html += `<circle cx="${x}" cy="${y}" r="${r}" fill="${colour}" stroke="#fff" stroke-width="${r / 3}"/>`;
  }
  svg.innerHTML = html;
}

async function runSegment() {
  drawMarks();
  clearCanvas("hover-canvas");
  enable(["undo", "reset"], state.history.length > 0);
  if (!state.points.length && !state.box) { setCandidates([]); return; }
  const seq = ++state.segSeq;
  const body = { multimask: $("multimask").checked };
  if (state.points.length) {
    body.points = state.points.map(([x, y]) => [x, y]);
    body.labels = state.points.map((p) => p[2]);
  }
  if (state.box) body.box = state.box;
  if ($("refine").checked && state.selected?.source === "prompt") body.mask_input = state.selected.id;
  try {
    const answer = await api(`/images/${state.image.id}/segment`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (seq === state.segSeq) setCandidates(answer.masks);
  } catch (err) { showError(err.message); }
}

function setCandidates(masks) {
  state.candidates = masks;
  const list = $("candidates");
  list.innerHTML = "";
  masks.forEach((mask, index) => {
    const item = document.createElement("li");
    item.textContent = `score ${mask.score.toFixed(3)} · ${mask.area} px`;
    item.dataset.maskId = mask.id;
    item.onclick = () => select(mask);
    list.appendChild(item);
    if (index === 0) select(mask);
  });
  if (!masks.length) select(null);
}

function select(mask) {
  state.selected = mask;
  document.querySelectorAll("#candidates li, #objects li").forEach((li) => {
    li.classList.toggle("selected", mask !== null && li.dataset.maskId === mask.id);
  });
  if (mask) paintMask($("mask-canvas"), mask.rle, SELECT_COLOUR); else clearCanvas("mask-canvas");
  $("stage").dataset.selected = mask ? mask.id : "";
  enable(["keep", "dl-cutout", "dl-mask", "dl-inpaint"], mask !== null);
}

function addPoint(event, label) {
  const [x, y] = toImage(event);
  state.points.push([x, y, label]);
  state.history.push({ kind: "point" });
  runSegment();
}

function undo() {
  const last = state.history.pop();
  if (last?.kind === "point") state.points.pop();
  if (last?.kind === "box") state.box = last.prev;
  runSegment();
}

function resetPrompts() {
  state.points = []; state.box = null; state.history = []; state.segSeq += 1;
  setCandidates([]);
  drawMarks();
  clearCanvas("hover-canvas");
  enable(["undo", "reset"], false);
}

// ------------------------------------------------------------------------- everything
async function runEverything() {
  const id = state.image.id;
  $("everything").disabled = true;
  $("everything-progress").hidden = false;
  try {
    await api(`/images/${id}/everything`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        points_per_side: Number($("points-per-side").value),
        pred_iou_thresh: Number($("iou-thresh").value),
        stability_score_thresh: Number($("stability-thresh").value),
      }),
    });
    for (;;) {
      const s = await api(`/images/${id}/everything`);
      $("everything-progress").value = s.progress || 0;
      $("everything-status").textContent = `${s.status} ${Math.round((s.progress || 0) * 100)}%`;
      if (s.status === "done") { showEverything(s.masks); break; }
      if (s.status === "failed") throw new Error(s.error);
      await new Promise((r) => setTimeout(r, 300));
    }
  } catch (err) { showError(err.message); } finally {
    $("everything").disabled = false;
    $("everything-progress").hidden = true;
  }
}

function showEverything(masks) {
  state.everything = [...masks].sort((a, b) => b.area - a.area);
  state.everythingView = true;
  clearCanvas("hover-canvas");
  paintMasks($("everything-canvas"), state.everything.map((m) => m.rle), 255);
  $("everything-status").textContent = `${masks.length} masks: click one to select it (Esc hides them)`;
  $("stage").dataset.everything = String(masks.length);
}

function pickEverything(event) {
  const [x, y] = toImage(event).map(Math.floor);
  const hit = [...state.everything].reverse().find((m) => rleContains(m.rle, x, y));
  if (hit) setCandidates([hit]);
}

function hideEverything() {
  state.everythingView = false;
  clearCanvas("everything-canvas");
  $("everything-status").textContent = "";
}

// ---------------------------------------------------------------------------- objects
async function keep() {
  if (!state.selected) return;
  const name = $("object-name").value.trim() || "object";
  try {
    await api(`/images/${state.image.id}/objects`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ mask_id: state.selected.id, name }),
    });
    await refreshObjects();
  } catch (err) { showError(err.message); }
}

async function refreshObjects() {
  state.objects = (await api(`/images/${state.image.id}/objects`)).objects;
  renderObjects();
}

function renderObjects() {
  const list = $("objects");
  list.innerHTML = "";
  for (const obj of state.objects) {
    const item = document.createElement("li");
    item.dataset.maskId = obj.mask_id;
    const name = document.createElement("input");
    name.value = obj.name;
    name.setAttribute("aria-label", "object name");
    name.onchange = () => api(`/images/${state.image.id}/objects/${obj.id}`, {
      method: "PATCH", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: name.value || "object" }),
    }).catch((err) => showError(err.message));
    const remove = document.createElement("button");
    remove.textContent = "×";
    remove.title = "forget this object";
    remove.onclick = async (event) => {
      event.stopPropagation();
      await api(`/images/${state.image.id}/objects/${obj.id}`, { method: "DELETE" });
      await refreshObjects();
    };
    item.onclick = async () => select(await api(`/images/${state.image.id}/masks/${obj.mask_id}`));
    item.append(name, remove);
    list.appendChild(item);
  }
}

// ---------------------------------------------------------------------------- wiring
function maskUrl(kind) { return `/api/images/${state.image.id}/masks/${state.selected.id}/${kind}`; }
const base = () => (state.image?.name || "image").replace(/\.[^.]+$/, "");

function setTool(tool) {
  state.tool = tool;
  document.querySelectorAll(".tool").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === tool)));
  if (!hoverActive()) clearCanvas("hover-canvas");
}

function wireStage() {
  const stage = $("stage");
  stage.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    if (state.image && !state.everythingView) addPoint(event, 0);
  });
  stage.addEventListener("mousedown", (event) => {
    if (event.button !== 0 || !$("stage").dataset.ready) return;
    state.drag = { start: toImage(event), prevBox: state.box };
  });
  stage.addEventListener("mousemove", (event) => {
    if (!state.image) return;
    if (state.drag && state.tool === "box") {
      const [x0, y0] = state.drag.start;
      const [x1, y1] = toImage(event);
      state.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      drawMarks();
      return;
    }
    if (!state.pendingMove) requestAnimationFrame(() => { sendHover(state.pendingMove); state.pendingMove = null; });
    state.pendingMove = event;
  });
  window.addEventListener("mouseup", (event) => {
    const drag = state.drag;
    state.drag = null;
    if (!drag || event.button !== 0 || !state.image) return;
    const [x0, y0] = drag.start;
    const [x1, y1] = toImage(event);
    const moved = Math.hypot(x1 - x0, y1 - y0) * ($("image").clientWidth / state.image.width);
    if (state.tool === "box" && moved > 4) {
      state.history.push({ kind: "box", prev: drag.prevBox });
      runSegment();
      return;
    }
    if (state.tool === "box") { state.box = drag.prevBox; drawMarks(); }
    if (state.everythingView) { pickEverything(event); return; }
    addPoint(event, event.shiftKey ? 0 : 1);
  });
}

function wireControls() {
  $("file-input").onchange = (event) => { const f = event.target.files[0]; if (f) openImage(f, f.name); };
  const zone = $("drop-zone");
  zone.ondragover = (event) => { event.preventDefault(); zone.classList.add("over"); };
  zone.ondragleave = () => zone.classList.remove("over");
  zone.ondrop = (event) => {
    event.preventDefault(); zone.classList.remove("over");
    const f = event.dataTransfer.files[0]; if (f) openImage(f, f.name);
  };
  document.body.ondragover = (event) => event.preventDefault();
  document.body.ondrop = (event) => {
    event.preventDefault(); const f = event.dataTransfer.files[0]; if (f) openImage(f, f.name);
  };
  document.querySelectorAll(".tool").forEach((b) => { b.onclick = () => setTool(b.dataset.tool); });
  $("undo").onclick = undo;
  $("reset").onclick = resetPrompts;
  $("multimask").onchange = runSegment;
  $("everything").onclick = runEverything;
  $("keep").onclick = keep;
  $("delete-image").onclick = closeImage;
  $("dl-cutout").onclick = () => download(maskUrl("cutout.png"), `${base()}-cutout.png`);
  $("dl-mask").onclick = () => download(maskUrl("mask.png"), `${base()}-mask.png`);
  $("dl-inpaint").onclick = () => download(`${maskUrl("inpaint.png")}?dilate=${Number($("dilate").value) || 0}`, `${base()}-inpaint.png`);
  $("dl-coco").onclick = () => download(`/api/images/${state.image.id}/coco.json`, `${base()}.coco.json`);
}

function wireKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" && event.target.type !== "checkbox") return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") { event.preventDefault(); if (state.history.length) undo(); return; }
    if (!state.image) return;
    if (key === "h") setTool("hover");
    else if (key === "b") setTool("box");
    else if (key === "m") { $("multimask").checked = !$("multimask").checked; runSegment(); }
    else if (key === "r") resetPrompts();
    else if (key === "e" && !$("everything").disabled) runEverything();
    else if (key === "escape") hideEverything();
    else if (key === "k") keep();
    else if (key === "d" && state.selected) $("dl-cutout").click();
    else if (["1", "2", "3"].includes(key) && state.candidates[Number(key) - 1]) select(state.candidates[Number(key) - 1]);
  });
}

wireStage();
wireControls();
wireKeys();
loadInfo().catch((err) => showError(`Cannot reach the server: ${err.message}`));
