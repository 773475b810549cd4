// @ts-check
// Everything mode: every object of the image as a coloured overlay and as a list whose rows
// keep an object in one click. On the image, the result under the cursor is highlighted and a
// click chooses it (a click where there is none goes back to prompting). When nothing passes
// the thresholds the page says so and offers lower ones; it never sits in a mode that ignores
// the pointer.
import { api, sendJson } from "./api.js";
import { button, el, input, make, select } from "./dom.js";
import { drawEverything, highlight } from "./layers.js";
import { rleContains, thumbnail } from "./mask.js";
import { attempt, setStatus } from "./notify.js";
import { keepMask } from "./objects.js";
import { addPoint, choose } from "./prompts.js";
import { registerMode } from "./stage.js";
import { emit, rememberMask, session } from "./state.js";

/** @typedef {import("./api.js").Mask} Mask */

const LOWER = { iou: 0.5, stability: 0.8 };
const LISTED = 200; // rows in the list (the overlay shows every result)

/** The everything result under a point: the smallest one that contains it. @param {[number, number]} p */
function under(p) {
  const masks = session.active?.everything?.masks ?? [];
  const [x, y] = p.map(Math.floor);
  let best = null;
  for (const mask of masks) {
    if ((!best || mask.area < best.area) && rleContains(mask.rle, x, y)) best = mask;
  }
  return best;
}

export async function runEverything() {
  const tab = session.active;
  if (!tab?.ready) return;
  const options = {
    points_per_side: Number(select("points-per-side").value),
    pred_iou_thresh: Number(input("iou-thresh").value),
    stability_score_thresh: Number(input("stability-thresh").value),
  };
  button("everything").disabled = true;
  el("everything-note").replaceChildren();
  const bar = /** @type {HTMLProgressElement} */ (el("everything-progress"));
  bar.hidden = false;
  const done = await attempt("Everything", async () => {
    await sendJson(`/images/${tab.id}/everything`, "POST", options);
    for (;;) {
      const state = await api(`/images/${tab.id}/everything`);
      bar.value = state.progress || 0;
      el("everything-note").textContent = `${state.status} ${Math.round((state.progress || 0) * 100)}%`;
      if (state.status === "done") return state;
      if (state.status === "failed") throw new Error(state.error || "everything failed");
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  });
  bar.hidden = true;
  button("everything").disabled = false;
  if (!done) {
    el("everything-note").textContent = "Everything did not finish; see the message above.";
    return;
  }
  /** @type {Mask[]} */
  const masks = [...done.masks].sort((a, b) => b.area - a.area);
  masks.forEach((m) => rememberMask(tab, m));
  tab.everything = { status: "done", progress: 1, masks, options };
  tab.everythingView = masks.length > 0;
  if (masks.length) setStatus(`Everything: ${masks.length} object${masks.length === 1 ? "" : "s"} on ${tab.name}.`);
  emit("everything");
}

/** Say what Everything found, and offer lower thresholds when it found nothing. */
function renderNote() {
  const tab = session.active;
  const note = el("everything-note");
  note.replaceChildren();
  const found = tab?.everything;
  if (!found) return;
  const n = found.masks.length;
  if (n === 0) {
    const iou = found.options?.pred_iou_thresh;
    const stability = found.options?.stability_score_thresh;
    note.append(
      make("span", "", `Everything found no object with predicted IoU ≥ ${iou} and stability ≥ ${stability}. `),
    );
    const lower = make("button", "", `Try IoU ${LOWER.iou} / stability ${LOWER.stability}`);
    lower.id = "everything-lower";
    lower.onclick = () => {
      input("iou-thresh").value = String(Math.min(LOWER.iou, Number(iou ?? 1)));
      input("stability-thresh").value = String(Math.min(LOWER.stability, Number(stability ?? 1)));
      runEverything();
    };
    note.append(lower);
    setStatus("Everything found nothing above the thresholds; the image still takes clicks and hover.");
    return;
  }
  const shown = tab.everythingView ? "shown" : "hidden (E shows them)";
  note.textContent = `${n} object${n === 1 ? "" : "s"} ${shown}: click one on the image or in the list; Keep adds it; Esc hides them.`;
}

function renderList() {
  const tab = session.active;
  const list = el("everything-list");
  list.replaceChildren();
  const masks = tab?.everything?.masks ?? [];
  const kept = new Set(tab?.objects.map((o) => o.mask_id));
  const picture = /** @type {HTMLImageElement} */ (el("image"));
  for (const mask of masks.slice(0, LISTED)) {
    const item = make("li", "result");
    item.dataset.maskId = mask.id;
    item.append(thumbnail(picture, mask, 64, 48));
    const share = tab ? (100 * mask.area) / (tab.width * tab.height) : 0;
    item.append(make("span", "what", `${share.toFixed(1)}% · IoU ${mask.score.toFixed(2)}`));
    const keep = make("button", "", kept.has(mask.id) ? "kept" : "Keep");
    keep.disabled = kept.has(mask.id);
    keep.title = "keep this object under the name shown on the Keep button";
    keep.onclick = (event) => {
      event.stopPropagation();
      keepMask(mask);
    };
    item.append(keep);
    item.onclick = () => choose(mask);
    item.onmouseenter = () => highlight(mask);
    item.onmouseleave = () => highlight(null);
    list.append(item);
  }
  if (masks.length > LISTED) list.append(make("li", "more", `… and ${masks.length - LISTED} smaller ones (on the image)`));
}

export function renderEverything() {
  drawEverything();
  renderNote();
  renderList();
}

/** Show or hide the overlay (E / Esc). @param {boolean} on */
export function showEverything(on) {
  const tab = session.active;
  if (!tab?.everything?.masks.length) return;
  tab.everythingView = on;
  highlight(null);
  emit("everything");
}

registerMode({
  id: "everything",
  cursor: "pointer",
  move(_event, p) {
    highlight(under(p));
  },
  up(event, p) {
    if (event.button !== 0) return;
    const hit = under(p);
    if (hit) {
      choose(hit);
      return;
    }
    showEverything(false); // no result here: the click is a prompt
    addPoint(p, event.shiftKey ? 0 : 1);
  },
  context(_event, p) {
    showEverything(false);
    addPoint(p, 0);
  },
  leave() {
    highlight(null);
  },
});
