// @ts-check
// Hover: the object under the cursor lights up. One position is in flight at a time; while
// the server works the cursor shows it is busy and only the newest position waits to be sent.
// An answer is drawn only if the cursor is still near the point it was asked for (or came
// quickly): a slow backend never shows a mask for a place the cursor left long ago, and the
// mask is cleared as soon as the cursor has been away from it for a moment or leaves the image.
import { canvas, clearCanvas, el } from "./dom.js";
import { paintMask } from "./mask.js";
import { fail } from "./notify.js";
import { resetCursor, setCursor } from "./stage.js";
import { session } from "./state.js";

const HOVER_COLOUR = [255, 200, 0, 255];
const NEAR_PX = 12; // screen pixels: an answer for a point this close to the cursor is current
const STALE_MS = 300; // an answer this old, for a point the cursor left, is not drawn
const BUSY_MS = 150; // waiting longer than this shows the busy cursor

/** @typedef {{seq: number, x: number, y: number, cx: number, cy: number, at: number}} Sent */

/** Round trips (position sent -> mask drawn) and server times, read by the benchmark. */
const stats = { hover: /** @type {number[]} */ ([]), hoverServer: /** @type {number[]} */ ([]) };
Object.assign(window, { tijerasStats: stats });

const hover = {
  /** @type {WebSocket | null} */ ws: null,
  /** @type {string | null} */ imageId: null,
  seq: 0,
  /** @type {Sent | null} */ inflight: null,
  /** @type {{x: number, y: number, cx: number, cy: number} | null} */ pending: null,
  /** @type {{cx: number, cy: number, at: number}} */ cursor: { cx: -1e9, cy: -1e9, at: 0 },
  /** @type {{cx: number, cy: number} | null} */ drawn: null,
  inside: false,
  reported: false,
  /** @type {number | undefined} */ clearTimer: undefined,
  /** @type {number | undefined} */ busyTimer: undefined,
};

/** Whether hovering shows masks now: no prompt placed, hover tool, no overlay. */
export function hoverActive() {
  const tab = session.active;
  return Boolean(
    tab?.ready && session.tool === "hover" && !tab.prompt.points.length && !tab.prompt.box &&
      !tab.everythingView,
  );
}

/** @param {number} ax @param {number} ay @param {number} bx @param {number} by */
const far = (ax, ay, bx, by) => Math.hypot(ax - bx, ay - by) > NEAR_PX;

/** Open the hover socket of the active image (closing any other). */
export function connectHover() {
  const tab = session.active;
  if (hover.ws && hover.imageId === tab?.id) return;
  disconnectHover();
  if (!tab?.ready) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/images/${tab.id}/hover`);
  ws.onmessage = (event) => answered(JSON.parse(event.data));
  ws.onclose = () => {
    if (hover.ws === ws) {
      hover.ws = null;
      hover.inflight = null;
      resetCursor();
    }
  };
  hover.ws = ws;
  hover.imageId = tab.id;
  hover.reported = false;
}

export function disconnectHover() {
  hover.ws?.close();
  hover.ws = null;
  hover.imageId = null;
  hover.inflight = null;
  hover.pending = null;
  clearHover();
}

export function clearHover() {
  clearCanvas(canvas("hover-canvas"));
  hover.drawn = null;
  window.clearTimeout(hover.clearTimer);
}

/**
 * The cursor moved over the image.
 * @param {PointerEvent} event
 * @param {[number, number]} p image pixels
 */
export function hoverMove(event, p) {
  hover.inside = true;
  hover.cursor = { cx: event.clientX, cy: event.clientY, at: performance.now() };
  if (hover.drawn && far(hover.drawn.cx, hover.drawn.cy, event.clientX, event.clientY)) {
    window.clearTimeout(hover.clearTimer);
    hover.clearTimer = window.setTimeout(clearIfAway, STALE_MS);
  }
  if (!hoverActive()) return;
  if (!hover.ws) connectHover();
  hover.pending = { x: p[0], y: p[1], cx: event.clientX, cy: event.clientY };
  if (!hover.inflight) sendPending();
}

/** The cursor left the image: nothing stays lit, nothing waits to be sent. */
export function hoverLeave() {
  hover.inside = false;
  hover.pending = null;
  clearHover();
  if (!hover.inflight) resetCursor();
}

function clearIfAway() {
  const { drawn, cursor } = hover;
  if (drawn && far(drawn.cx, drawn.cy, cursor.cx, cursor.cy)) clearHover();
}

function sendPending() {
  const ws = hover.ws;
  const next = hover.pending;
  if (!ws || ws.readyState !== WebSocket.OPEN || !next || !hoverActive()) {
    if (ws && ws.readyState === WebSocket.CONNECTING) ws.addEventListener("open", sendPending, { once: true });
    return;
  }
  hover.pending = null;
  hover.seq += 1;
  hover.inflight = { seq: hover.seq, ...next, at: performance.now() };
  ws.send(JSON.stringify({ seq: hover.seq, x: next.x, y: next.y }));
  window.clearTimeout(hover.busyTimer);
  hover.busyTimer = window.setTimeout(() => {
    if (hover.inflight) setCursor("progress");
  }, BUSY_MS);
}

/** @param {{seq: number | null, error?: string, rle?: import("./api.js").Rle, ms?: number}} answer */
function answered(answer) {
  const sent = hover.inflight;
  if (answer.seq === null || !sent || answer.seq !== sent.seq) {
    if (answer.error && !hover.reported) {
      hover.reported = true;
      fail("Hover", answer.error);
    }
    return;
  }
  hover.inflight = null;
  window.clearTimeout(hover.busyTimer);
  const now = performance.now();
  const { cursor } = hover;
  const left = far(sent.cx, sent.cy, cursor.cx, cursor.cy) && now - sent.at > STALE_MS;
  if (answer.error) {
    if (!hover.reported) fail("Hover", answer.error);
    hover.reported = true;
  } else if (answer.rle && hover.inside && hoverActive() && !left) {
    paintMask(canvas("hover-canvas"), answer.rle, HOVER_COLOUR);
    hover.drawn = { cx: sent.cx, cy: sent.cy };
    stats.hover.push(now - sent.at);
    stats.hoverServer.push(answer.ms ?? 0);
    el("stage").dataset.hoverSeq = String(answer.seq);
    window.clearTimeout(hover.clearTimer);
    if (far(sent.cx, sent.cy, cursor.cx, cursor.cy)) {
      hover.clearTimer = window.setTimeout(clearIfAway, STALE_MS);
    }
  } else {
    el("stage").dataset.hoverDropped = String(answer.seq);
  }
  if (hover.pending) sendPending();
  else resetCursor();
}
