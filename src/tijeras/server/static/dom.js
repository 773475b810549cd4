// @ts-check
// Typed element lookups: a missing element is a clear error at start-up, not a null later.

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new (...args: any[]) => T} kind
 * @returns {T}
 */
function typed(id, kind) {
  const found = document.getElementById(id);
  if (!(found instanceof kind)) throw new Error(`the page has no ${kind.name} #${id}`);
  return found;
}

/** @param {string} id */
export const el = (id) => typed(id, HTMLElement);
/** @param {string} id */
export const input = (id) => typed(id, HTMLInputElement);
/** @param {string} id */
export const button = (id) => typed(id, HTMLButtonElement);
/** @param {string} id */
export const canvas = (id) => typed(id, HTMLCanvasElement);
/** @param {string} id */
export const image = (id) => typed(id, HTMLImageElement);
/** @param {string} id */
export const select = (id) => typed(id, HTMLSelectElement);
/** @param {string} id */
export const dialog = (id) => typed(id, HTMLDialogElement);

/** @param {string} id */
export function svg(id) {
  const found = document.getElementById(id);
  if (!(found instanceof SVGSVGElement)) throw new Error(`the page has no svg #${id}`);
  return found;
}

/**
 * A new element with a class and text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {string[]} ids @param {boolean} on */
export function enable(ids, on) {
  for (const id of ids) button(id).disabled = !on;
}

/** @param {HTMLCanvasElement} target */
export function clearCanvas(target) {
  const ctx = target.getContext("2d");
  if (ctx) ctx.clearRect(0, 0, target.width, target.height);
}

/**
 * @param {HTMLCanvasElement} target
 * @param {boolean} [readBack] the canvas's pixels will be read (outlines)
 * @returns {CanvasRenderingContext2D}
 */
export function context(target, readBack = false) {
  const ctx = target.getContext("2d", readBack ? { willReadFrequently: true } : undefined);
  if (!ctx) throw new Error("this browser cannot draw on a canvas");
  return ctx;
}
