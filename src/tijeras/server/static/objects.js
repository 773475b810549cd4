// @ts-check
// Kept objects: keep the selected mask (Enter in the name field, K, or a Keep button of an
// everything result) under the name shown on the Keep button; names used before are suggested;
// rename and delete in place; an object is highlighted on the image while its row is hovered.
// Keeping, renaming and deleting are undoable steps (an undone delete restores the object under
// its own id).
import { api, sendJson } from "./api.js";
import { button, el, input, make } from "./dom.js";
import { drawObjects, highlight, objectColour } from "./layers.js";
import { attempt, setStatus, toast } from "./notify.js";
import { choose } from "./prompts.js";
import { emit, noteName, rememberMask, selectedMask, session } from "./state.js";

/**
 * @typedef {import("./state.js").ImageTab} ImageTab
 * @typedef {import("./api.js").Mask} Mask
 * @typedef {import("./api.js").KeptObject} KeptObject
 */

/** The name the next object gets: the field's text, else the last name used, else "object". */
export function nextName() {
  return input("object-name").value.trim() || session.recentNames[0] || "object";
}

/** @param {ImageTab} tab @param {{mask_id: string, name: string, id?: string}} obj */
async function post(tab, obj) {
  /** @type {KeptObject} */
  const kept = await sendJson(`/images/${tab.id}/objects`, "POST", obj);
  tab.objects.push(kept);
  emit("objects");
  return kept;
}

/** @param {ImageTab} tab @param {string} id @returns {Promise<true>} */
async function remove(tab, id) {
  await api(`/images/${tab.id}/objects/${id}`, { method: "DELETE" });
  tab.objects = tab.objects.filter((o) => o.id !== id);
  emit("objects");
  return true;
}

/** @param {ImageTab} tab @param {string} id @param {string} name @returns {Promise<true>} */
async function rename(tab, id, name) {
  await sendJson(`/images/${tab.id}/objects/${id}`, "PATCH", { name });
  const obj = tab.objects.find((o) => o.id === id);
  if (obj) obj.name = name;
  emit("objects");
  return true;
}

/**
 * Keep a mask as an object of the active image.
 * @param {Mask | null} mask
 * @param {string} [name]
 */
export async function keepMask(mask, name = nextName()) {
  const tab = session.active;
  if (!tab || !mask) {
    toast("Nothing to keep: click the object first, or pick one of Everything's results.", "info");
    return;
  }
  const kept = await attempt("Keeping the object", () => post(tab, { mask_id: mask.id, name }));
  if (!kept) return;
  rememberMask(tab, mask);
  noteName(kept.name);
  input("object-name").value = kept.name;
  tab.history.push({
    label: `keep ${kept.name}`,
    undo: async () => { await remove(tab, kept.id); },
    redo: async () => { await post(tab, kept); },
  });
  setStatus(`Kept “${kept.name}” (${tab.objects.length} object${tab.objects.length === 1 ? "" : "s"} on this image).`);
}

/** @param {ImageTab} tab @param {KeptObject} obj @param {string} name */
async function renameStep(tab, obj, name) {
  const before = obj.name;
  if (!name || name === before) return;
  const done = await attempt("Renaming the object", () => rename(tab, obj.id, name));
  if (done === undefined) {
    emit("objects"); // put the old name back in the field
    return;
  }
  noteName(name);
  tab.history.push({
    label: `rename ${before}`,
    undo: async () => { await rename(tab, obj.id, before); },
    redo: async () => { await rename(tab, obj.id, name); },
  });
}

/** @param {ImageTab} tab @param {KeptObject} obj */
async function deleteStep(tab, obj) {
  const snapshot = { ...obj };
  const done = await attempt("Removing the object", () => remove(tab, obj.id));
  if (done === undefined) return;
  highlight(null);
  tab.history.push({
    label: `remove ${snapshot.name}`,
    undo: async () => { await post(tab, snapshot); },
    redo: async () => { await remove(tab, snapshot.id); },
  });
  setStatus(`Removed “${snapshot.name}” (Ctrl+Z brings it back).`);
}

/** Load a tab's objects and their masks from the server (after reopening a folder image). @param {ImageTab} tab */
export async function loadObjects(tab) {
  const answer = await api(`/images/${tab.id}/objects`);
  /** @type {KeptObject[]} */
  const objects = answer.objects;
  for (const obj of objects) {
    if (!tab.masks.has(obj.mask_id)) rememberMask(tab, await api(`/images/${tab.id}/masks/${obj.mask_id}`));
    noteName(obj.name);
  }
  tab.objects = objects;
  emit("objects");
}

export function renderObjects() {
  const tab = session.active;
  const list = el("objects");
  list.replaceChildren();
  for (const [index, obj] of (tab?.objects ?? []).entries()) {
    const mask = tab?.masks.get(obj.mask_id) ?? null;
    const item = make("li", "object");
    item.dataset.objectId = obj.id;
    item.dataset.maskId = obj.mask_id;
    const [r, g, b] = objectColour(index);
    const swatch = make("span", "swatch");
    swatch.style.background = `rgb(${r},${g},${b})`;
    const name = make("input");
    name.value = obj.name;
    name.maxLength = 100;
    name.setAttribute("aria-label", "object name");
    name.setAttribute("list", "recent-names");
    name.onkeydown = (event) => {
      if (event.key === "Enter") name.blur();
      if (event.key === "Escape") { name.value = obj.name; name.blur(); }
    };
    name.onchange = () => { if (tab) renameStep(tab, obj, name.value.trim()); };
    const select = make("button", "ghost", "select");
    select.title = "make this object's mask the selection (to download or brush it)";
    select.onclick = () => { if (mask) choose(mask); };
    const del = make("button", "ghost danger", "×");
    del.title = "remove this object (Ctrl+Z brings it back)";
    del.setAttribute("aria-label", `remove ${obj.name}`);
    del.onclick = () => { if (tab) deleteStep(tab, obj); };
    item.append(swatch, name, select, del);
    item.onmouseenter = () => highlight(mask, obj.id);
    item.onmouseleave = () => highlight(null);
    list.append(item);
  }
  el("objects-empty").hidden = Boolean(tab?.objects.length);
  renderNames();
  drawObjects();
}

/** The Keep button says which name the object will get; the field suggests names used before. */
export function renderNames() {
  const options = el("recent-names");
  options.replaceChildren(...session.recentNames.map((n) => {
    const option = make("option");
    option.value = n;
    return option;
  }));
  const field = input("object-name");
  field.placeholder = session.recentNames[0] || "object";
  const keep = button("keep");
  keep.textContent = `Keep as “${nextName()}”`;
  keep.disabled = !selectedMask();
}

export function wireObjects() {
  const field = input("object-name");
  field.addEventListener("input", renderNames);
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      field.blur(); // the keys act on the image again
      keepMask(selectedMask());
    }
  });
  button("keep").onclick = () => keepMask(selectedMask());
}
