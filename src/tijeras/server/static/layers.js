// @ts-check
// What is drawn over the image: the selected mask (fill and outline), the kept objects (each
// in its colour, outlined, with its name), a highlighted object, the everything overlay, and
// the prompt marks. Fills are painted at the mask's size and stretched by CSS; outlines are
// drawn at the displayed size so they stay sharp whatever the zoom.
import { canvas, clearCanvas, context, el, svg } from "./dom.js";
import { PALETTE, paintMask, paintMasks, paintOutlines } from "./mask.js";
import { displayScale, onResize } from "./stage.js";
import { selectedMask, session } from "./state.js";

const SELECT_COLOUR = [30, 111, 217, 255];
const HIGHLIGHT_COLOUR = [255, 255, 255, 255];
const SVG_NS = "http://www.w3.org/2000/svg";

/** Colour of the i-th kept object. @param {number} index */
export function objectColour(index) {
  return PALETTE[index % PALETTE.length];
}

/** Size a displayed-resolution canvas to the stage. @param {HTMLCanvasElement} target */
function fitToStage(target) {
  const rect = el("stage").getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  target.width = Math.max(1, Math.round(rect.width * ratio));
  target.height = Math.max(1, Math.round(rect.height * ratio));
}

export function drawSelected() {
  const mask = selectedMask();
  const fill = canvas("mask-canvas");
  const outline = canvas("mask-outline");
  el("stage").dataset.selected = mask ? mask.id : "";
  if (!mask) {
    clearCanvas(fill);
    clearCanvas(outline);
    return;
  }
  paintMask(fill, mask.rle, SELECT_COLOUR);
  fitToStage(outline);
  paintOutlines(fill, outline, 2 * (window.devicePixelRatio || 1));
}

export function drawObjects() {
  const tab = session.active;
  const fill = canvas("objects-canvas");
  const outline = canvas("objects-outline");
  const labels = svg("labels");
  labels.replaceChildren();
  /** @type {{id: string, name: string, mask: import("./api.js").Mask, colour: number[]}[]} */
  const kept = [];
  tab?.objects.forEach((obj, index) => {
    const mask = tab.masks.get(obj.mask_id);
    if (mask) kept.push({ id: obj.id, name: obj.name, mask, colour: objectColour(index) });
  });
  el("stage").dataset.objects = String(kept.length);
  if (!tab || !kept.length) {
    clearCanvas(fill);
    clearCanvas(outline);
    return;
  }
  paintMasks(fill, kept.map((k) => k.mask.rle), 255, kept.map((k) => k.colour));
  fitToStage(outline);
  paintOutlines(fill, outline, 2 * (window.devicePixelRatio || 1));
  labels.setAttribute("viewBox", `0 0 ${tab.width} ${tab.height}`);
  const size = 13 / displayScale();
  for (const obj of kept) {
    const [x, y] = obj.mask.bbox;
    const [r, g, b] = obj.colour;
    const text = document.createElementNS(SVG_NS, "text");
    text.setAttribute("x", String(x + size * 0.3));
    text.setAttribute("y", String(Math.max(y + size * 1.1, size)));
    text.setAttribute("font-size", String(size));
    text.setAttribute("fill", `rgb(${r},${g},${b})`);
    text.setAttribute("stroke-width", String(size / 5));
    text.dataset.objectId = obj.id;
    text.textContent = obj.name;
    labels.append(text);
  }
}

/**
 * Emphasise one mask (an object or everything result the cursor is over in a list).
 * @param {import("./api.js").Mask | null} mask
 * @param {string | null} [objectId]
 */
export function highlight(mask, objectId = null) {
  const layer = canvas("highlight-canvas");
  if (mask) paintMask(layer, mask.rle, HIGHLIGHT_COLOUR);
  else clearCanvas(layer);
  el("stage").dataset.highlight = mask ? mask.id : "";
  for (const label of svg("labels").querySelectorAll("text")) {
    label.classList.toggle("hot", objectId !== null && label.dataset.objectId === objectId);
  }
}

export function drawEverything() {
  const tab = session.active;
  const layer = canvas("everything-canvas");
  const shown = tab?.everythingView && tab.everything?.masks.length;
  if (!tab || !shown || !tab.everything) {
    clearCanvas(layer);
    delete el("stage").dataset.everything;
    return;
  }
  paintMasks(layer, tab.everything.masks.map((m) => m.rle), 255);
  el("stage").dataset.everything = String(tab.everything.masks.length);
}

/** The points and box of the prompt (or of one waiting for its answer). @param {import("./state.js").PromptState} [prompt] */
export function drawMarks(prompt) {
  const tab = session.active;
  const marks = svg("marks");
  marks.replaceChildren();
  if (!tab) return;
  const shown = prompt ?? tab.prompt;
  marks.setAttribute("viewBox", `0 0 ${tab.width} ${tab.height}`);
  const r = 6 / displayScale();
  const box = shown.box;
  if (box) {
    const rect = document.createElementNS(SVG_NS, "rect");
    const [x0, y0, x1, y1] = box;
    for (const [k, v] of Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 })) {
      rect.setAttribute(k, String(v));
    }
    rect.setAttribute("fill", "none");
    rect.setAttribute("stroke", "#1e6fd9");
    rect.setAttribute("stroke-width", String(r / 2.5));
    marks.append(rect);
  }
  for (const [x, y, label] of shown.points) {
    const dot = document.createElementNS(SVG_NS, "circle");
    dot.setAttribute("cx", String(x));
    dot.setAttribute("cy", String(y));
    dot.setAttribute("r", String(r));
    dot.setAttribute("fill", label === 1 ? "#19a34a" : "#d62828");
    dot.setAttribute("stroke", "#fff");
    dot.setAttribute("stroke-width", String(r / 3));
    marks.append(dot);
  }
}

export function drawAll() {
  drawEverything();
  drawObjects();
  drawSelected();
  drawMarks();
  highlight(null);
}

// The outlines are read back as they are drawn: say so before any other use of the canvases.
for (const id of ["mask-outline", "objects-outline"]) context(canvas(id), true);

onResize(() => {
  drawObjects();
  drawSelected();
  drawMarks();
});
