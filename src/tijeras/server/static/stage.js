// @ts-check
// The stage: the image scaled to fit the space beside the panel (small images up, large ones
// down), the layers stretched over it, pointer positions in image pixels, and the modes that
// handle the pointer (prompts, brush, everything; a video or text mode registers the same way).
import { el, image } from "./dom.js";
import { session } from "./state.js";

/**
 * A way of handling the pointer on the image. `p` is the position in image pixels.
 * @typedef {{
 *   id: string,
 *   cursor?: string,
 *   down?: (event: PointerEvent, p: [number, number]) => void,
 *   move?: (event: PointerEvent, p: [number, number]) => void,
 *   up?: (event: PointerEvent, p: [number, number]) => void,
 *   leave?: () => void,
 *   context?: (event: MouseEvent, p: [number, number]) => void,
 * }} Mode
 */

/** @type {Map<string, Mode>} */
const modes = new Map();
/** @type {() => string} */
let choose = () => "prompts";
/** @type {Set<() => void>} */
const resized = new Set();

/** @param {Mode} mode */
export function registerMode(mode) {
  modes.set(mode.id, mode);
}

/** Which mode handles the pointer now (asked on every event). @param {() => string} chooser */
export function chooseModeWith(chooser) {
  choose = chooser;
}

/** @returns {Mode | undefined} */
function mode() {
  return modes.get(choose());
}

/** Call `listener` whenever the displayed size of the image changes. @param {() => void} listener */
export function onResize(listener) {
  resized.add(listener);
}

/** Size the stage so the whole image fits the free space, scaled up or down. */
export function fitStage() {
  const tab = session.active;
  const stage = el("stage");
  if (!tab) return;
  const wrap = el("stage-wrap");
  const room = wrap.getBoundingClientRect();
  const scale = Math.min((room.width - 16) / tab.width, (room.height - 16) / tab.height);
  const width = Math.max(1, Math.floor(tab.width * scale));
  const height = Math.max(1, Math.floor(tab.height * scale));
  if (stage.style.width === `${width}px` && stage.style.height === `${height}px`) return;
  stage.style.width = `${width}px`;
  stage.style.height = `${height}px`;
  stage.dataset.scale = scale.toFixed(4);
  for (const listener of resized) listener();
}

/** Displayed pixels per image pixel. */
export function displayScale() {
  const tab = session.active;
  if (!tab) return 1;
  return el("stage").getBoundingClientRect().width / tab.width;
}

/**
 * The pointer's position in image pixels (clamped inside the image).
 * @param {MouseEvent} event
 * @returns {[number, number]}
 */
export function toImage(event) {
  const tab = session.active;
  if (!tab) return [0, 0];
  const rect = image("image").getBoundingClientRect();
  const x = ((event.clientX - rect.left) * tab.width) / rect.width;
  const y = ((event.clientY - rect.top) * tab.height) / rect.height;
  return [Math.min(Math.max(x, 0), tab.width - 1), Math.min(Math.max(y, 0), tab.height - 1)];
}

/** Set the stage's cursor (a mode's own, or busy while the server works). @param {string} cursor */
export function setCursor(cursor) {
  el("stage").style.cursor = cursor;
}

export function resetCursor() {
  setCursor(mode()?.cursor ?? "crosshair");
}

/** Route pointer events on the stage to the active mode. */
export function wireStage() {
  const stage = el("stage");
  const ready = () => Boolean(session.active?.ready);
  stage.addEventListener("pointerdown", (event) => {
    if (!ready()) return;
    if (event.button === 0) stage.setPointerCapture(event.pointerId);
    mode()?.down?.(event, toImage(event));
  });
  stage.addEventListener("pointermove", (event) => {
    if (ready()) mode()?.move?.(event, toImage(event));
  });
  stage.addEventListener("pointerup", (event) => {
    if (ready()) mode()?.up?.(event, toImage(event));
  });
  stage.addEventListener("pointerleave", () => mode()?.leave?.());
  stage.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    if (ready()) mode()?.context?.(event, toImage(event));
  });
  new ResizeObserver(() => fitStage()).observe(el("stage-wrap"));
}
