// @ts-check
// The prompts mode: hover, clicks (foreground; right- or shift-click background), a box drag
// with the Box tool; the candidates the server answers, shown as thumbnails labelled whole /
// part / subpart by area with their predicted IoU. Every change (a point, a box, a reset, the
// chosen candidate) is an undoable step.
import { sendJson } from "./api.js";
import { button, el, input, make } from "./dom.js";
import { clearHover, hoverLeave, hoverMove } from "./hover.js";
import { drawMarks, drawSelected } from "./layers.js";
import { thumbnail } from "./mask.js";
import { attempt, setStatus } from "./notify.js";
import { displayScale, registerMode } from "./stage.js";
import { emit, emptyPrompt, rememberMask, selectedMask, session } from "./state.js";

/**
 * @typedef {import("./state.js").ImageTab} ImageTab
 * @typedef {import("./state.js").PromptState} PromptState
 * @typedef {import("./api.js").Mask} Mask
 */

/** @type {{start: [number, number], box: number[] | null} | null} */
let drag = null;
let segSeq = 0;

/** @param {PromptState} p @returns {PromptState} */
const copy = (p) => ({
  points: p.points.map((q) => /** @type {[number, number, number]} */ ([...q])),
  box: p.box ? [...p.box] : null,
  candidates: [...p.candidates],
  selectedId: p.selectedId,
});

/** Put a prompt state on a tab and redraw. @param {ImageTab} tab @param {PromptState} state */
export function applyPrompt(tab, state) {
  tab.prompt = copy(state);
  segSeq += 1; // answers still on their way belong to another state
  if (tab === session.active) {
    clearHover();
    drawMarks();
    drawSelected();
  }
  emit("prompt");
}

/**
 * Record a change of the prompt state as an undoable step.
 * @param {ImageTab} tab
 * @param {PromptState} before
 * @param {string} label
 */
export function recordPrompt(tab, before, label) {
  const after = copy(tab.prompt);
  const saved = copy(before);
  tab.history.push({
    label,
    undo: () => applyPrompt(tab, saved),
    redo: () => applyPrompt(tab, after),
  });
}

/**
 * Ask the server for the candidates of a new prompt; it becomes the tab's prompt (an undoable
 * step) when they arrive. Until then its marks are shown; a later change supersedes it.
 * @param {ImageTab} tab
 * @param {PromptState} next the points and box to segment
 * @param {string} label
 */
async function segment(tab, next, label) {
  const seq = ++segSeq;
  const before = copy(tab.prompt);
  const { points, box } = next;
  drawMarks(next);
  clearHover();
  if (!points.length && !box) {
    applyPrompt(tab, { ...next, candidates: [], selectedId: null });
    recordPrompt(tab, before, label);
    return;
  }
  /** @type {Record<string, unknown>} */
  const body = { multimask: input("multimask").checked };
  if (points.length) {
    body.points = points.map(([x, y]) => [x, y]);
    body.labels = points.map((p) => p[2]);
  }
  if (box) body.box = box;
  const previous = selectedMask();
  if (input("refine").checked && previous && previous.source === "prompt") body.mask_input = previous.id;
  setStatus("Segmenting…");
  const answer = await attempt("Segmenting", () => sendJson(`/images/${tab.id}/segment`, "POST", body));
  if (seq !== segSeq) return; // superseded by a later change
  if (!answer) {
    if (tab === session.active) drawMarks(); // the failed prompt is not applied
    setStatus("The prompt was not applied.");
    return;
  }
  /** @type {Mask[]} */
  const masks = answer.masks;
  masks.forEach((m) => rememberMask(tab, m));
  applyPrompt(tab, { ...next, candidates: masks, selectedId: masks[0]?.id ?? null });
  recordPrompt(tab, before, label);
  setStatus(
    masks.length > 1
      ? `${masks.length} candidates: press 1-${masks.length} or click one to choose; K keeps it.`
      : "1 candidate: K keeps it; add points to refine it.",
  );
}

/** Change the active tab's prompt and segment it. @param {(p: PromptState) => void} change @param {string} label */
export function changePrompt(change, label) {
  const tab = session.active;
  if (!tab?.ready) return;
  const next = copy(tab.prompt);
  change(next);
  return segment(tab, next, label);
}

/** @param {[number, number]} p @param {number} label */
export function addPoint(p, label) {
  return changePrompt((s) => s.points.push([p[0], p[1], label]), label ? "point" : "background point");
}

export function resetPrompt() {
  const tab = session.active;
  if (!tab || (!tab.prompt.points.length && !tab.prompt.box && !tab.prompt.candidates.length)) return;
  const before = copy(tab.prompt);
  applyPrompt(tab, emptyPrompt());
  recordPrompt(tab, before, "reset");
}

/** Segment again with the same prompt (multimask toggled). */
export function resegment() {
  return changePrompt(() => {}, "multimask");
}

/** Choose a candidate (or an everything result) as the selected mask. @param {Mask} mask */
export function choose(mask) {
  const tab = session.active;
  if (!tab || tab.prompt.selectedId === mask.id) return;
  const before = copy(tab.prompt);
  rememberMask(tab, mask);
  if (!tab.prompt.candidates.some((m) => m.id === mask.id)) {
    tab.prompt = { ...emptyPrompt(), candidates: [mask] };
  }
  tab.prompt.selectedId = mask.id;
  applyPrompt(tab, tab.prompt);
  recordPrompt(tab, before, "choose");
}

/** Names of candidates by area: the largest is the whole, then part, then subpart. @param {Mask[]} masks */
export function candidateLabels(masks) {
  const prompted = masks.filter((m) => m.source === "prompt");
  const byArea = [...prompted].sort((a, b) => b.area - a.area);
  const names = byArea.length >= 3 ? ["whole", "part", "subpart"] : byArea.length === 2 ? ["whole", "part"] : ["object"];
  /** @type {Map<string, string>} */
  const labels = new Map();
  byArea.forEach((m, i) => labels.set(m.id, names[Math.min(i, names.length - 1)]));
  for (const m of masks) if (!labels.has(m.id)) labels.set(m.id, m.source === "edited" ? "brushed" : m.source);
  return labels;
}

export function renderCandidates() {
  const tab = session.active;
  const list = el("candidates");
  list.replaceChildren();
  const masks = tab?.prompt.candidates ?? [];
  const labels = candidateLabels(masks);
  const picture = /** @type {HTMLImageElement} */ (el("image"));
  masks.forEach((mask, index) => {
    const item = make("li", mask.id === tab?.prompt.selectedId ? "candidate selected" : "candidate");
    item.dataset.maskId = mask.id;
    item.title = `choose this candidate (${index + 1})`;
    item.append(thumbnail(picture, mask));
    const share = tab ? (100 * mask.area) / (tab.width * tab.height) : 0;
    const text = make("div", "what");
    text.append(make("strong", "", `${index + 1} · ${labels.get(mask.id)}`));
    text.append(make("span", "", `IoU ${mask.score.toFixed(2)} · ${share < 0.1 ? "<0.1" : share.toFixed(1)}%`));
    item.append(text);
    item.onclick = () => choose(mask);
    list.append(item);
  });
  el("candidates-empty").hidden = masks.length > 0;
  button("reset").disabled = !masks.length && !tab?.prompt.points.length && !tab?.prompt.box;
}

registerMode({
  id: "prompts",
  cursor: "crosshair",
  down(event, p) {
    if (event.button === 0) drag = { start: p, box: null };
  },
  move(event, p) {
    const tab = session.active;
    if (drag && tab && session.tool === "box") {
      const [x0, y0] = drag.start;
      const [x1, y1] = p;
      drag.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      drawMarks({ ...tab.prompt, box: drag.box });
      return;
    }
    hoverMove(event, p);
  },
  up(event, p) {
    const start = drag;
    drag = null;
    const tab = session.active;
    if (!start || event.button !== 0 || !tab) return;
    const moved = Math.hypot(p[0] - start.start[0], p[1] - start.start[1]) * displayScale();
    if (session.tool === "box") {
      const box = start.box;
      if (moved > 4 && box) changePrompt((s) => { s.box = box; }, "box");
      else drawMarks();
      return;
    }
    addPoint(p, event.shiftKey ? 0 : 1);
  },
  context(_event, p) {
    addPoint(p, 0);
  },
  leave() {
    hoverLeave();
  },
});
