// @ts-check
// Where the page speaks to the user: the status line under the image, and toasts for errors
// and results. Every failure reaches one of them; nothing is reported only to the console.
import { el, make } from "./dom.js";

const TOAST_MS = { error: 12000, info: 5000 };

/**
 * Show a toast; errors stay longer and can be closed.
 * @param {string} message
 * @param {"error" | "info"} [kind]
 */
export function toast(message, kind = "error") {
  const box = make("div", `toast ${kind}`);
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.append(make("span", "", message));
  const close = make("button", "close", "×");
  close.title = "dismiss";
  close.onclick = () => box.remove();
  box.append(close);
  el("toasts").append(box);
  while (el("toasts").children.length > 4) el("toasts").firstElementChild?.remove();
  setTimeout(() => box.remove(), TOAST_MS[kind]);
}

/** @param {unknown} err */
export function describe(err) {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Report an error as a toast, with what was being done.
 * @param {string} doing
 * @param {unknown} err
 */
export function fail(doing, err) {
  toast(`${doing}: ${describe(err)}`, "error");
}

/**
 * Run an action; its failure becomes a toast.
 * @template T
 * @param {string} doing
 * @param {() => Promise<T>} action
 * @returns {Promise<T | undefined>}
 */
export async function attempt(doing, action) {
  try {
    return await action();
  } catch (err) {
    fail(doing, err);
    return undefined;
  }
}

/** @param {string} text */
export function setStatus(text) {
  el("status").textContent = text;
}

/** @param {number | null} fraction null hides the bar */
export function setProgress(fraction) {
  const bar = /** @type {HTMLProgressElement} */ (el("progress"));
  bar.hidden = fraction === null;
  if (fraction !== null) bar.value = fraction;
}

/** Errors nobody caught (a bug) still reach the user. */
export function catchStrayErrors() {
  window.addEventListener("error", (event) => fail("Unexpected error", event.message));
  window.addEventListener("unhandledrejection", (event) => fail("Unexpected error", event.reason));
}
