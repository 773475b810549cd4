// @ts-check
// What the page holds: the open images (one tab each, with its prompts, candidates, kept
// objects, everything results and undo history), the active tool, and change notifications
// the modules subscribe to. A mode (prompts, brush, everything, and later video or text) reads
// and changes the active tab only through here.
import { History } from "./history.js";

/**
 * @typedef {import("./api.js").Mask} Mask
 * @typedef {import("./api.js").KeptObject} KeptObject
 * @typedef {import("./api.js").ServerInfo} ServerInfo
 * @typedef {[number, number, number]} Point x, y (image pixels) and label (1 fg, 0 bg)
 * @typedef {{points: Point[], box: number[] | null, candidates: Mask[],
 *   selectedId: string | null}} PromptState
 * @typedef {{status: string, progress: number, masks: Mask[], error?: string | null,
 *   options?: Record<string, number>}} EverythingState
 * @typedef {{
 *   id: string, name: string, width: number, height: number, url: string,
 *   folderFile: string | null, ready: boolean, gone: boolean,
 *   prompt: PromptState, objects: KeptObject[], masks: Map<string, Mask>,
 *   everything: EverythingState | null, everythingView: boolean, history: History,
 * }} ImageTab
 * @typedef {"hover" | "box" | "brush"} Tool
 * @typedef {"tabs" | "prompt" | "objects" | "everything" | "tool" | "folder" | "history"} Topic
 */

export const session = {
  /** @type {ImageTab[]} */ tabs: [],
  /** @type {ImageTab | null} */ active: null,
  /** @type {ServerInfo | null} */ info: null,
  /** @type {Tool} */ tool: "hover",
  /** @type {string[]} names given to objects, most recent first */ recentNames: [],
  /** @type {{name: string, files: {name: string, objects: number | null}[]} | null} */
  folder: null,
};

/** @type {Map<Topic, Set<() => void>>} */
const listeners = new Map();

/** @param {Topic} topic @param {() => void} listener */
export function on(topic, listener) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic)?.add(listener);
}

/** @param {...Topic} topics */
export function emit(...topics) {
  for (const topic of topics) for (const listener of listeners.get(topic) ?? []) listener();
}

/** @returns {PromptState} */
export function emptyPrompt() {
  return { points: [], box: null, candidates: [], selectedId: null };
}

/**
 * A tab for an image the server holds.
 * @param {import("./api.js").ImageStatus} status
 * @param {string} url
 * @returns {ImageTab}
 */
export function newTab(status, url) {
  return {
    id: status.id,
    name: status.name,
    width: status.width,
    height: status.height,
    url,
    folderFile: status.folder_file,
    ready: false,
    gone: false,
    prompt: emptyPrompt(),
    objects: [],
    masks: new Map(),
    everything: null,
    everythingView: false,
    history: new History(() => emit("history")),
  };
}

/** The active tab's selected mask, if any. @returns {Mask | null} */
export function selectedMask() {
  const tab = session.active;
  if (!tab || !tab.prompt.selectedId) return null;
  return tab.masks.get(tab.prompt.selectedId) ?? null;
}

/** Remember a mask the server answered, by id. @param {ImageTab} tab @param {Mask} mask */
export function rememberMask(tab, mask) {
  tab.masks.set(mask.id, mask);
}

/** @param {string} name */
export function noteName(name) {
  session.recentNames = [name, ...session.recentNames.filter((n) => n !== name)].slice(0, 20);
}
