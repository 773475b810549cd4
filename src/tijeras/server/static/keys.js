// @ts-check
// Keyboard-first labelling: every action of the page has a key (listed on the page). Keys are
// ignored while typing in a text field, except Enter (keep) and Escape (leave the field).

/**
 * @typedef {{key: string, ctrl?: boolean, shift?: boolean, run: () => unknown,
 *   when?: () => boolean}} Binding
 */

/** @type {Binding[]} */
const bindings = [];

/** @param {Binding[]} list */
export function bind(list) {
  bindings.push(...list);
}

/** @param {KeyboardEvent} event @param {Binding} b */
function matches(event, b) {
  const ctrl = event.ctrlKey || event.metaKey;
  return (
    event.key.toLowerCase() === b.key &&
    ctrl === Boolean(b.ctrl) &&
    (b.shift === undefined || event.shiftKey === b.shift)
  );
}

/** @param {EventTarget | null} target */
function typing(target) {
  if (target instanceof HTMLInputElement) return !["checkbox", "radio", "button", "range"].includes(target.type);
  return target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
}

export function wireKeys() {
  document.addEventListener("keydown", (event) => {
    if (typing(event.target)) {
      if (event.key === "Escape") /** @type {HTMLElement} */ (event.target).blur();
      return;
    }
    if (document.querySelector("dialog[open]")) return;
    const found = bindings.find((b) => matches(event, b) && (!b.when || b.when()));
    if (!found) return;
    event.preventDefault();
    found.run();
  });
}
