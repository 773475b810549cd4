// @ts-check
// The video mode: a video opened from the panel (or dropped anywhere) replaces the images in
// the workspace while it is shown; the open images and their objects stay, one click away.
// The scrubber (and ← / → anywhere in this mode) picks the frame; clicks, right- or
// shift-clicks and boxes prompt the chosen object on that frame, whose masks come back at
// once; hover previews a click on the frame shown. Tracking, its progress and the files are in
// video-track.js. The server holds the video in memory only.
import { api, sendJson } from "./api.js";
import { button, canvas, clearCanvas, el, image, input, make, select, svg } from "./dom.js";
import { paintMask, paintMasks } from "./mask.js";
import { fail, setStatus, toast } from "./notify.js";
import { on, session } from "./state.js";
import { colourOf, video } from "./video-state.js";
import { renderTrack, runTrack, wireTrack } from "./video-track.js";

/**
 * @typedef {import("./video-state.js").VideoStatus} VideoStatus
 * @typedef {import("./video-state.js").VideoLimits} VideoLimits
 * @typedef {import("./video-state.js").FrameMasks} FrameMasks
 * @typedef {import("./video-state.js").FramePrompt} FramePrompt
 */

const VIDEO_SUFFIXES = [".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".zip"];

const hover = {
  /** @type {WebSocket | null} */ socket: null,
  seq: 0,
  waiting: false,
  /** @type {{frame: number, x: number, y: number} | null} */ next: null,
};

/** @param {File} file */
export function isVideo(file) {
  const name = file.name.toLowerCase();
  return file.type.startsWith("video/") || VIDEO_SUFFIXES.some((s) => name.endsWith(s));
}

/** @returns {VideoLimits | null} */
function limits() {
  const info = /** @type {{video?: VideoLimits} | null} */ (/** @type {unknown} */ (session.info));
  return info?.video ?? null;
}

/**
 * Upload a video; a refused file changes nothing (the open video and images stay).
 * @param {File} file
 */
export async function openVideo(file) {
  const limit = limits()?.max_upload_bytes ?? Infinity;
  if (file.size > limit) {
    toast(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; this server takes videos up to ${(limit / 2 ** 20).toFixed(0)} MB.`);
    return;
  }
  const previous = video.open;
  if (previous && previous.objects.length && !window.confirm(`Close ${previous.name}? Its masks are lost unless downloaded.`)) return;
  setStatus(`${file.name}: uploading and reading the video…`);
  /** @type {VideoStatus} */
  let status;
  try {
    status = await api("/videos", {
      method: "POST",
      body: file,
      headers: { "X-Filename": encodeURIComponent(file.name) },
    });
  } catch (err) {
    fail(`Opening ${file.name}`, err);
    setStatus(video.open ? describe() : "The video was not opened; the images are as they were.");
    return;
  }
  if (previous) await api(`/videos/${previous.id}`, { method: "DELETE" }).catch(() => null);
  adopt(status);
}

/** @param {VideoStatus} status */
function adopt(status) {
  disconnectHover();
  video.open = status;
  video.frame = 0;
  video.prompts.clear();
  video.objects = status.objects.map((o) => o.id);
  if (!video.objects.length) video.objects = [1];
  video.object = video.objects[0];
  video.masks = null;
  const scrubber = input("video-scrubber");
  scrubber.max = String(status.num_frames - 1);
  input("video-frame-number").max = String(status.num_frames - 1);
  el("video-frame-count").textContent = `of ${status.num_frames}${status.fps ? ` · ${status.fps.toFixed(2)} fps` : ""}`;
  el("video-controls").hidden = false;
  el("video-stage").dataset.videoId = status.id;
  show(true);
  renderObjects();
  renderTrack(status.track);
  loadFrame(0);
  connectHover();
}

/** Show the video (true) or the images (false) in the workspace. @param {boolean} on */
export function show(on) {
  video.shown = on && Boolean(video.open);
  el("video-view").hidden = !video.shown;
  document.body.classList.toggle("video-mode", video.shown);
  button("video-view-toggle").textContent = video.shown ? "Show images" : "Show video";
  if (video.shown) {
    fitVideo();
    setStatus(describe());
  }
}

function describe() {
  const v = video.open;
  if (!v) return "No video open.";
  const where = `${v.name}: ${v.width} x ${v.height}, frame ${video.frame} of 0..${v.num_frames - 1}`;
  if (v.masked_frames > 1) return `${where}; ${v.masked_frames} frames have masks: scrub, correct, track again.`;
  return `${where}; click the object, then Track.`;
}

/** Size the video so the whole frame fits the free space. */
function fitVideo() {
  const v = video.open;
  if (!v || !video.shown) return;
  const room = el("video-wrap").getBoundingClientRect();
  const scale = Math.min((room.width - 16) / v.width, (room.height - 16) / v.height);
  const stage = el("video-stage");
  stage.style.width = `${Math.max(1, Math.floor(v.width * scale))}px`;
  stage.style.height = `${Math.max(1, Math.floor(v.height * scale))}px`;
  svg("video-marks").setAttribute("viewBox", `0 0 ${v.width} ${v.height}`);
}

/**
 * Show frame `frame`: its picture, every object's mask on it, and the prompts there.
 * @param {number} frame
 */
export async function loadFrame(frame) {
  const v = video.open;
  if (!v) return;
  const f = Math.min(Math.max(Math.round(frame), 0), v.num_frames - 1);
  video.frame = f;
  input("video-scrubber").value = String(f);
  input("video-frame-number").value = String(f);
  el("video-stage").dataset.frame = String(f);
  image("video-frame").src = `/api/videos/${v.id}/frames/${f}.jpg`;
  clearCanvas(canvas("video-hover"));
  drawMarks();
  if (video.shown) setStatus(describe());
  await refreshMasks();
}

/** Fetch and draw the masks of the frame shown (the newest request wins). */
export async function refreshMasks() {
  const v = video.open;
  if (!v) return;
  const ticket = ++video.loads;
  const frame = video.frame;
  try {
    /** @type {FrameMasks} */
    const masks = await api(`/videos/${v.id}/frames/${frame}/masks`);
    if (ticket !== video.loads || video.open !== v) return;
    drawMasks(masks);
  } catch (err) {
    if (ticket === video.loads) fail(`Masks of frame ${frame}`, err);
  }
}

/** @param {FrameMasks} masks */
function drawMasks(masks) {
  video.masks = masks;
  const target = canvas("video-masks");
  const stage = el("video-stage");
  stage.dataset.masks = String(masks.objects.length);
  stage.dataset.maskFrame = String(masks.frame);
  if (!masks.objects.length) {
    clearCanvas(target);
    return;
  }
  paintMasks(target, masks.objects.map((o) => o.rle), 255, masks.objects.map((o) => o.colour));
}

// ------------------------------------------------------------------------------- prompts
function promptKey() {
  return `${video.object}:${video.frame}`;
}

/** @returns {FramePrompt} */
function currentPrompt() {
  return video.prompts.get(promptKey()) ?? { points: [], box: null };
}

/** Send the chosen object's prompts on the frame shown; draw every object's masks there. */
async function sendPrompt() {
  const v = video.open;
  if (!v) return;
  const p = currentPrompt();
  /** @type {Record<string, unknown>} */
  const body = { frame: video.frame, object: video.object };
  if (p.points.length) {
    body.points = p.points.map(([x, y]) => [x, y]);
    body.labels = p.points.map(([, , label]) => label);
  }
  if (p.box) body.box = p.box;
  el("video-stage").dataset.busy = "1";
  try {
    /** @type {FrameMasks} */
    const masks = await sendJson(`/videos/${v.id}/prompts`, "POST", body);
    if (video.open !== v) return;
    video.loads += 1; // an older frame request must not draw over this answer
    if (masks.frame === video.frame) drawMasks(masks);
    await refreshStatus();
  } catch (err) {
    fail("Prompt", err);
  } finally {
    delete el("video-stage").dataset.busy;
  }
}

/**
 * Add a click to the chosen object on the frame shown.
 * @param {number} x @param {number} y @param {number} label 1 foreground, 0 background
 */
function addPoint(x, y, label) {
  const p = currentPrompt();
  video.prompts.set(promptKey(), { points: [...p.points, [x, y, label]], box: p.box });
  drawMarks();
  sendPrompt();
}

async function clearFrame() {
  const v = video.open;
  if (!v) return;
  const had = video.prompts.has(promptKey()) || video.masks?.prompted.includes(video.object);
  video.prompts.delete(promptKey());
  drawMarks();
  if (had) await sendPrompt();
}

/** Ask the server for the video's objects and tracking state. */
export async function refreshStatus() {
  const v = video.open;
  if (!v) return;
  try {
    /** @type {VideoStatus} */
    const status = await api(`/videos/${v.id}`);
    if (video.open?.id !== status.id) return;
    video.open = status;
    for (const o of status.objects) if (!video.objects.includes(o.id)) video.objects.push(o.id);
    renderObjects();
  } catch (err) {
    fail("Video status", err);
  }
}

function drawMarks() {
  const marks = svg("video-marks");
  marks.replaceChildren();
  const p = currentPrompt();
  const v = video.open;
  const r = v ? Math.max(v.width, v.height) / 140 : 4;
  const ns = "http://www.w3.org/2000/svg";
  if (p.box) {
    const rect = document.createElementNS(ns, "rect");
    const [x0, y0, x1, y1] = p.box;
    rect.setAttribute("x", String(x0));
    rect.setAttribute("y", String(y0));
    rect.setAttribute("width", String(x1 - x0));
    rect.setAttribute("height", String(y1 - y0));
    marks.append(rect);
  }
  for (const [x, y, label] of p.points) {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", String(x));
    dot.setAttribute("cy", String(y));
    dot.setAttribute("r", String(r));
    dot.setAttribute("class", label ? "fg" : "bg");
    marks.append(dot);
  }
}

function renderObjects() {
  const choice = select("video-object");
  choice.replaceChildren(
    ...video.objects.map((id) => {
      const frames = video.open?.objects.find((o) => o.id === id)?.frames ?? [];
      const option = make("option", "", `${id}${frames.length ? ` (frames ${frames.join(", ")})` : " (new)"}`);
      option.value = String(id);
      return option;
    }),
  );
  choice.value = String(video.object);
  const [r, g, b] = colourOf(video.object);
  el("video-object-swatch").style.background = `rgb(${r}, ${g}, ${b})`;
  button("video-remove-object").disabled = !video.open?.objects.some((o) => o.id === video.object);
}

function newObject() {
  if (!video.open) return;
  const next = Math.max(0, ...video.objects) + 1;
  if (next > 255) {
    toast("A video holds at most 255 objects.");
    return;
  }
  video.objects.push(next);
  video.object = next;
  renderObjects();
  drawMarks();
  setStatus(`Object ${next}: click it on any frame.`);
}

async function removeObject() {
  const v = video.open;
  if (!v) return;
  const id = video.object;
  try {
    await api(`/videos/${v.id}/objects/${id}`, { method: "DELETE" });
  } catch (err) {
    fail(`Removing object ${id}`, err);
    return;
  }
  for (const key of [...video.prompts.keys()]) if (key.startsWith(`${id}:`)) video.prompts.delete(key);
  video.objects = video.objects.filter((o) => o !== id);
  if (!video.objects.length) video.objects = [1];
  video.object = video.objects[0];
  await refreshStatus();
  drawMarks();
  await refreshMasks();
}

export async function closeVideo() {
  const v = video.open;
  if (!v) return;
  disconnectHover();
  video.open = null;
  video.prompts.clear();
  show(false);
  el("video-controls").hidden = true;
  delete el("video-stage").dataset.videoId;
  try {
    await api(`/videos/${v.id}`, { method: "DELETE" });
  } catch (err) {
    fail(`Closing ${v.name}`, err);
  }
  setStatus(`${v.name} closed; its memory is freed.`);
}

// --------------------------------------------------------------------------------- hover
function connectHover() {
  const v = video.open;
  if (!v) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/videos/${v.id}/hover`);
  hover.socket = socket;
  hover.waiting = false;
  socket.onmessage = (event) => {
    hover.waiting = false;
    const answer = JSON.parse(String(event.data));
    if (answer.rle && answer.frame === video.frame && video.tool === "hover" && hover.next === null) {
      const [r, g, b] = colourOf(video.object);
      paintMask(canvas("video-hover"), answer.rle, [r, g, b, 255]);
      el("video-stage").dataset.hover = String(answer.seq);
    }
    sendHover();
  };
  socket.onopen = sendHover;
  socket.onclose = () => {
    if (hover.socket === socket) hover.socket = null;
  };
}

function disconnectHover() {
  hover.socket?.close();
  hover.socket = null;
  hover.next = null;
}

function sendHover() {
  const socket = hover.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN || hover.waiting || !hover.next) return;
  hover.seq += 1;
  socket.send(JSON.stringify({ seq: hover.seq, ...hover.next }));
  hover.next = null;
  hover.waiting = true;
}

// ------------------------------------------------------------------------------- pointer
/** @param {MouseEvent} event @returns {[number, number]} */
function toFrame(event) {
  const v = video.open;
  if (!v) return [0, 0];
  const rect = image("video-frame").getBoundingClientRect();
  const x = ((event.clientX - rect.left) * v.width) / rect.width;
  const y = ((event.clientY - rect.top) * v.height) / rect.height;
  return [Math.min(Math.max(x, 0), v.width - 1), Math.min(Math.max(y, 0), v.height - 1)];
}

function wirePointer() {
  const stage = el("video-stage");
  /** @type {[number, number] | null} */
  let dragFrom = null;
  /** @type {number[] | null} the box before a drag (a click in the box tool keeps it) */
  let boxBefore = null;
  stage.addEventListener("pointerdown", (event) => {
    if (!video.open || event.button !== 0) return;
    stage.setPointerCapture(event.pointerId);
    if (video.tool === "box") {
      dragFrom = toFrame(event);
      boxBefore = currentPrompt().box;
    }
  });
  stage.addEventListener("pointermove", (event) => {
    if (!video.open) return;
    const [x, y] = toFrame(event);
    if (dragFrom) {
      const p = currentPrompt();
      const box = [Math.min(dragFrom[0], x), Math.min(dragFrom[1], y), Math.max(dragFrom[0], x), Math.max(dragFrom[1], y)];
      video.prompts.set(promptKey(), { points: p.points, box });
      drawMarks();
    } else if (video.tool === "hover" && event.buttons === 0) {
      hover.next = { frame: video.frame, x, y };
      sendHover();
    }
  });
  stage.addEventListener("pointerup", (event) => {
    if (!video.open || event.button !== 0) return;
    const [x, y] = toFrame(event);
    if (dragFrom) {
      const [x0, y0] = dragFrom;
      dragFrom = null;
      if (Math.abs(x - x0) > 3 && Math.abs(y - y0) > 3) {
        sendPrompt();
        return;
      }
      const p = currentPrompt();
      video.prompts.set(promptKey(), { points: p.points, box: boxBefore });
    }
    addPoint(x, y, event.shiftKey ? 0 : 1);
  });
  stage.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    if (!video.open) return;
    const [x, y] = toFrame(event);
    addPoint(x, y, 0);
  });
  stage.addEventListener("pointerleave", () => {
    hover.next = null;
    clearCanvas(canvas("video-hover"));
  });
}

/** @param {"hover" | "box"} tool */
function setTool(tool) {
  video.tool = tool;
  for (const b of document.querySelectorAll("button.video-tool")) {
    b.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (b).dataset.tool === tool));
  }
  clearCanvas(canvas("video-hover"));
}

// ---------------------------------------------------------------------------------- keys
/** @param {EventTarget | null} target */
function typing(target) {
  if (target instanceof HTMLInputElement) return !["checkbox", "radio", "button", "range"].includes(target.type);
  return target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
}

function wireKeys() {
  // Capture phase: in the video mode these keys are the video's (← / → step frames), before
  // the page's own bindings (← / → step images).
  document.addEventListener(
    "keydown",
    (event) => {
      if (!video.shown || typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (document.querySelector("dialog[open]")) return;
      const step = event.shiftKey ? 10 : 1;
      /** @type {Record<string, () => unknown>} */
      const actions = {
        arrowright: () => loadFrame(video.frame + step),
        arrowleft: () => loadFrame(video.frame - step),
        home: () => loadFrame(0),
        end: () => loadFrame((video.open?.num_frames ?? 1) - 1),
        h: () => setTool("hover"),
        b: () => setTool("box"),
        o: newObject,
        t: runTrack,
      };
      const action = actions[event.key.toLowerCase()];
      if (!action) return;
      event.preventDefault();
      event.stopPropagation();
      action();
    },
    true,
  );
}

// ---------------------------------------------------------------------------------- wire
function wireFiles() {
  const chosen = input("video-input");
  chosen.onchange = async () => {
    const file = chosen.files?.[0];
    chosen.value = "";
    if (file) await openVideo(file);
  };
  // A video dropped anywhere opens here (before the images' drop handler sees it).
  window.addEventListener(
    "drop",
    (event) => {
      const files = [...(event.dataTransfer?.files ?? [])];
      const first = files.find(isVideo);
      if (!first) return;
      event.preventDefault();
      event.stopPropagation();
      el("video-drop").classList.remove("over");
      el("drop-zone").classList.remove("over");
      openVideo(first);
    },
    true,
  );
  const zone = el("video-drop");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
}

function renderLimits() {
  const l = limits();
  if (!l) return;
  el("video-limits").textContent = `Up to ${(l.max_upload_bytes / 2 ** 20).toFixed(0)} MB, ${l.max_frames} frames, ${l.max_seconds} s; tracked with ${l.model}. Held in memory only.`;
}

export function wireVideo() {
  wireFiles();
  wirePointer();
  wireKeys();
  wireTrack(refreshMasks, refreshStatus);
  const scrubber = input("video-scrubber");
  scrubber.addEventListener("input", () => loadFrame(Number(scrubber.value)));
  const number = input("video-frame-number");
  number.addEventListener("change", () => loadFrame(Number(number.value)));
  for (const b of document.querySelectorAll("button.video-tool")) {
    const tool = /** @type {"hover" | "box"} */ (/** @type {HTMLElement} */ (b).dataset.tool);
    /** @type {HTMLButtonElement} */ (b).onclick = () => setTool(tool);
  }
  select("video-object").onchange = () => {
    video.object = Number(select("video-object").value);
    renderObjects();
    drawMarks();
  };
  button("video-new-object").onclick = newObject;
  button("video-remove-object").onclick = removeObject;
  button("video-clear-frame").onclick = clearFrame;
  button("video-close").onclick = closeVideo;
  button("video-view-toggle").onclick = () => show(!video.shown);
  new ResizeObserver(() => fitVideo()).observe(el("video-wrap"));
  let active = session.active;
  on("tabs", () => {
    // an image opened or chosen: show the images
    if (session.active !== active) {
      active = session.active;
      if (active && video.shown) show(false);
    }
  });
  const waitInfo = setInterval(() => {
    if (!session.info) return;
    clearInterval(waitInfo);
    renderLimits();
  }, 200);
  setInterval(() => {
    if (video.open && !document.hidden) refreshStatus();
  }, 5 * 60_000);
  // Leaving the page closes its video: the server frees it at once (no page could reopen it).
  window.addEventListener("pagehide", () => {
    if (video.open) fetch(`/api/videos/${video.open.id}`, { method: "DELETE", keepalive: true });
  });
}
