// @ts-check
// The text box: "Find: every …" a noun phrase, for models that take text prompts (SAM 3). Every
// instance found is drawn on the image with its outline and listed with its score; a row's Keep
// (or Keep all) keeps instances as objects named by the phrase, so a COCO file has one category
// per phrase ("tomato"), while the list and the image number them (tomato 1, tomato 2). A
// phrase that matches nothing says so (not an error); errors reach a toast. With a model
// without text prompts the box is disabled and says which models take them.
import { sendJson } from "./api.js";
import { button, canvas, clearCanvas, el, input, make } from "./dom.js";
import { bind } from "./keys.js";
import { highlight } from "./layers.js";
import { PALETTE, paintMasks, paintOutlines, rleContains, thumbnail } from "./mask.js";
import { attempt, setStatus } from "./notify.js";
import { keepMask } from "./objects.js";
import { addPoint, choose } from "./prompts.js";
import { onResize, registerMode } from "./stage.js";
import { on, rememberMask, session } from "./state.js";

/**
 * @typedef {import("./api.js").Mask & {box: number[]}} Instance
 * @typedef {{phrase: string, threshold: number, presence: number, instances: Instance[],
 *   shown: boolean}} Found
 */

const UNSUPPORTED =
  "Find needs a model that takes text prompts: SAM 3 (tijeras serve --model sam3).";

/** What the last phrase found, per image id. @type {Map<string, Found>} */
const found = new Map();
let findSeq = 0;

/** The active image's results, if any. @returns {Found | null} */
function current() {
  const tab = session.active;
  return tab ? found.get(tab.id) ?? null : null;
}

/** Whether the active image's instances are drawn (the pointer then picks among them). */
export function textShown() {
  const result = current();
  return Boolean(result?.shown && result.instances.length);
}

/** The label of the i-th instance (0-based): "tomato 1", or the phrase when it is the only one. */
function label(/** @type {Found} */ result, /** @type {number} */ index) {
  return result.instances.length === 1 ? result.phrase : `${result.phrase} ${index + 1}`;
}

/** Whether the server's model takes text prompts. */
function supported() {
  return Boolean(session.info?.text);
}

/** Find every instance of the phrase in the box, on the active image. */
export async function findText() {
  const tab = session.active;
  const phrase = input("text-phrase").value.trim().split(/\s+/).join(" ");
  if (!tab?.ready || !supported()) return;
  if (!phrase) {
    setStatus("Type what to find first (a noun phrase, e.g. tomato).");
    input("text-phrase").focus();
    return;
  }
  const threshold = Number(input("text-threshold").value);
  const seq = ++findSeq;
  button("text-find").disabled = true;
  el("text-note").textContent = `Finding every ${phrase}…`;
  setStatus(`Finding every ${phrase}…`);
  const answer = await attempt(`Finding “${phrase}”`, () =>
    sendJson(`/images/${tab.id}/text`, "POST", { text: phrase, threshold }),
  );
  button("text-find").disabled = false;
  if (seq !== findSeq) return; // a later phrase supersedes this one
  if (!answer) {
    el("text-note").textContent = `“${phrase}” was not searched; see the message.`;
    setStatus(`“${phrase}” was not searched.`);
    return;
  }
  /** @type {Instance[]} */
  const instances = answer.instances;
  instances.forEach((m) => rememberMask(tab, m));
  found.set(tab.id, { phrase: answer.text, threshold: answer.threshold, presence: answer.presence, instances, shown: true });
  const n = instances.length;
  setStatus(
    n
      ? `Found ${n} ${answer.text}: click one on the image or in the list; Keep all keeps them; Esc hides them.`
      : noneText(answer.text, answer.threshold),
  );
  renderText();
}

/** @param {string} phrase @param {number} threshold */
function noneText(phrase, threshold) {
  return `No ${phrase} found (score above ${threshold}): try a lower score or another phrase.`;
}

/** The instance under a point of the image: the smallest one holding it. @param {[number, number]} p */
function under(p) {
  const [x, y] = p.map(Math.floor);
  /** @type {Instance | null} */
  let best = null;
  for (const mask of current()?.instances ?? []) {
    if ((!best || mask.area < best.area) && rleContains(mask.rle, x, y)) best = mask;
  }
  return best;
}

/** Show or hide the instances on the image (Esc hides them). @param {boolean} on */
export function showText(on) {
  const result = current();
  if (!result || result.shown === on) return;
  result.shown = on;
  highlight(null);
  renderText();
}

/** Keep every instance not kept yet, in the order listed. */
async function keepAll() {
  const tab = session.active;
  const result = current();
  if (!tab || !result) return;
  const kept = new Set(tab.objects.map((o) => o.mask_id));
  for (const mask of result.instances) {
    if (!kept.has(mask.id)) await keepMask(mask, result.phrase);
  }
}

function drawText() {
  const result = current();
  const fill = canvas("text-canvas");
  const outline = canvas("text-outline");
  const stage = el("stage");
  if (!result || !textShown()) {
    clearCanvas(fill);
    clearCanvas(outline);
    delete stage.dataset.text;
    return;
  }
  // the largest first, so small instances stay visible over the large ones
  const order = [...result.instances.keys()].sort((a, b) => result.instances[b].area - result.instances[a].area);
  paintMasks(fill, order.map((i) => result.instances[i].rle), 255, order.map((i) => PALETTE[i % PALETTE.length]));
  const rect = stage.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  outline.width = Math.max(1, Math.round(rect.width * ratio));
  outline.height = Math.max(1, Math.round(rect.height * ratio));
  paintOutlines(fill, outline, 2 * ratio);
  stage.dataset.text = String(result.instances.length);
}

function renderList() {
  const tab = session.active;
  const result = current();
  const list = el("text-list");
  list.replaceChildren();
  const note = el("text-note");
  const keepAllButton = button("text-keep-all");
  keepAllButton.hidden = true;
  if (!tab || !result) {
    note.textContent = "";
    return;
  }
  const n = result.instances.length;
  if (!n) {
    note.textContent = noneText(result.phrase, result.threshold);
    note.className = "empty";
    return;
  }
  note.className = "";
  const shown = result.shown ? "" : " (hidden: Find shows them again)";
  note.textContent = `${n} ${result.phrase} found${shown}; presence ${result.presence.toFixed(2)}.`;
  const kept = new Set(tab.objects.map((o) => o.mask_id));
  keepAllButton.hidden = false;
  keepAllButton.disabled = result.instances.every((m) => kept.has(m.id));
  keepAllButton.textContent = `Keep all as “${result.phrase}”`;
  const picture = /** @type {HTMLImageElement} */ (el("image"));
  result.instances.forEach((mask, index) => {
    const item = make("li", "result");
    item.dataset.maskId = mask.id;
    const [r, g, b] = PALETTE[index % PALETTE.length];
    const swatch = make("span", "swatch");
    swatch.style.background = `rgb(${r},${g},${b})`;
    item.append(swatch, thumbnail(picture, mask, 64, 48));
    item.append(make("span", "what", `${label(result, index)} · score ${mask.score.toFixed(2)}`));
    const keep = make("button", "", kept.has(mask.id) ? "kept" : "Keep");
    keep.disabled = kept.has(mask.id);
    keep.title = `keep this instance as an object named “${result.phrase}”`;
    keep.onclick = (event) => {
      event.stopPropagation();
      keepMask(mask, result.phrase);
    };
    item.append(keep);
    item.title = "select this instance (to download or brush it)";
    item.onclick = () => choose(mask);
    item.onmouseenter = () => highlight(mask);
    item.onmouseleave = () => highlight(null);
    list.append(item);
  });
}

/** Enable the box for models with text prompts; otherwise say which models have them. */
function renderBox() {
  const ok = supported();
  const tab = session.active;
  const row = el("text-row");
  input("text-phrase").disabled = !ok;
  input("text-threshold").disabled = !ok;
  button("text-find").disabled = !ok || !tab?.ready;
  const why = session.info ? `${UNSUPPORTED} ${session.info.model} does not take them.` : "";
  row.title = ok ? "find every instance of a noun phrase (Enter)" : why;
  input("text-phrase").title = row.title;
  const hint = el("text-unsupported");
  hint.hidden = ok || !session.info;
  hint.textContent = why;
}

export function renderText() {
  renderBox();
  drawText();
  renderList();
}

export function wireText() {
  const field = input("text-phrase");
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      findText();
    }
  });
  button("text-find").onclick = () => findText();
  button("text-keep-all").onclick = () => keepAll();
  bind([{ key: "f", when: supported, run: () => { field.focus(); field.select(); } }]);
  on("tabs", renderText);
  on("objects", renderList);
  onResize(drawText);
  renderText();
}

registerMode({
  id: "text",
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
    showText(false); // no instance here: the click is a prompt
    addPoint(p, event.shiftKey ? 0 : 1);
  },
  context(_event, p) {
    showText(false);
    addPoint(p, 0);
  },
  leave() {
    highlight(null);
  },
});
