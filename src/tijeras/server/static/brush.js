// @ts-check
// The brush: paint pixels into the selected mask (left drag) or erase them (right drag, Alt
// drag, or the Erase setting). Each stroke makes a new mask on the server (the old one stays),
// which becomes the selection: an undoable step like any other.
import { sendJson } from "./api.js";
import { input, select, svg } from "./dom.js";
import { attempt, setStatus, toast } from "./notify.js";
import { applyPrompt, recordPrompt } from "./prompts.js";
import { displayScale, registerMode } from "./stage.js";
import { rememberMask, selectedMask, session } from "./state.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** @type {{mode: "add" | "erase", radius: number, points: number[][], line: SVGPolylineElement} | null} */
let stroke = null;

/** Brush radius in image pixels (the size field is in screen pixels). */
function radius() {
  const screen = Math.max(1, Number(input("brush-size").value) || 12);
  return Math.max(0.5, screen / 2 / displayScale());
}

/** @param {MouseEvent} event @returns {"add" | "erase"} */
function modeOf(event) {
  if (event.button === 2 || event.altKey) return "erase";
  return select("brush-mode").value === "erase" ? "erase" : "add";
}

/** @param {"add" | "erase"} mode @param {[number, number]} p */
function begin(mode, p) {
  if (!selectedMask()) {
    toast("Select a mask first (click the object, or choose an object's mask), then brush it.", "info");
    return;
  }
  const r = radius();
  const line = /** @type {SVGPolylineElement} */ (document.createElementNS(SVG_NS, "polyline"));
  line.setAttribute("class", `stroke ${mode}`);
  line.setAttribute("stroke-width", String(2 * r));
  svg("marks").append(line);
  stroke = { mode, radius: r, points: [p], line };
  extend(p);
}

/** @param {[number, number]} p */
function extend(p) {
  if (!stroke) return;
  const last = stroke.points[stroke.points.length - 1];
  if (stroke.points.length > 1 && Math.hypot(p[0] - last[0], p[1] - last[1]) < stroke.radius / 3) return;
  if (stroke.points.length < 5000) stroke.points.push(p);
  stroke.line.setAttribute("points", stroke.points.map(([x, y]) => `${x},${y}`).join(" "));
}

async function finish() {
  const done = stroke;
  stroke = null;
  const tab = session.active;
  const base = selectedMask();
  if (!done || !tab || !base) {
    done?.line.remove();
    return;
  }
  const before = { ...tab.prompt, candidates: [...tab.prompt.candidates] };
  const body = { strokes: [{ mode: done.mode, radius: done.radius, points: done.points }] };
  /** @type {import("./api.js").Mask | undefined} */
  const edited = await attempt("Brushing the mask", () => sendJson(`/images/${tab.id}/masks/${base.id}/edit`, "POST", body));
  done.line.remove();
  if (!edited) return;
  rememberMask(tab, edited);
  const candidates = [...tab.prompt.candidates.filter((m) => m.id !== base.id || m.source !== "edited"), edited];
  applyPrompt(tab, { ...tab.prompt, candidates, selectedId: edited.id });
  recordPrompt(tab, before, done.mode === "add" ? "brush" : "erase");
  setStatus(`Brushed: the mask now has ${edited.area} pixels (Ctrl+Z undoes the stroke).`);
}

registerMode({
  id: "brush",
  cursor: "cell",
  down(event, p) {
    begin(modeOf(event), p);
  },
  move(_event, p) {
    extend(p);
  },
  up() {
    finish();
  },
  leave() {
    if (stroke) finish();
  },
});
