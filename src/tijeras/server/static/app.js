// @ts-check
// The page's entry: asks the server what runs, wires the modules together and keeps the panels
// in step with the state. Each concern lives in its own module (api, images, hover, prompts,
// everything, objects, brush, downloads, layers, text, geo); a mode (prompts, brush, everything,
// text) handles the pointer on the image, chosen here from the tool and the view.
import { api } from "./api.js";
import { button, el, input, make } from "./dom.js";
import { renderDownloads, downloadCutout, hidePreview, wireDownloads } from "./downloads.js";
import { renderEverything, runEverything, showEverything } from "./everything.js";
import { clearHover } from "./hover.js";
import { activate, nextImage, openSample, refreshFolder, renderFolder, renderTabs, wireImages } from "./images.js";
import { bind, wireKeys } from "./keys.js";
import { drawSelected } from "./layers.js";
import { catchStrayErrors, fail, setStatus, toast } from "./notify.js";
import { keepMask, renderNames, renderObjects, wireObjects } from "./objects.js";
import { choose, renderCandidates, resegment, resetPrompt } from "./prompts.js";
import { chooseModeWith, resetCursor, wireStage } from "./stage.js";
import { on, selectedMask, session } from "./state.js";
import { renderText, showText, textShown, wireText } from "./text.js";
import { wireGeo } from "./geo.js";
import { wireVideo } from "./video.js";
import "./brush.js";

/** @param {import("./state.js").Tool} tool */
function setTool(tool) {
  session.tool = tool;
  for (const b of document.querySelectorAll("button.tool")) {
    const pressed = /** @type {HTMLElement} */ (b).dataset.tool === tool;
    b.setAttribute("aria-pressed", String(pressed));
  }
  el("brush-options").hidden = tool !== "brush";
  clearHover();
  resetCursor();
  el("stage").dataset.tool = tool;
}

async function undo() {
  const tab = session.active;
  if (!tab?.history.canUndo) return;
  try {
    const label = await tab.history.undo();
    if (label) setStatus(`Undid: ${label} (Ctrl+Shift+Z redoes it).`);
  } catch (err) {
    fail("Undo", err);
  }
}

async function redo() {
  const tab = session.active;
  if (!tab?.history.canRedo) return;
  try {
    const label = await tab.history.redo();
    if (label) setStatus(`Redid: ${label}.`);
  } catch (err) {
    fail("Redo", err);
  }
}

function renderHistory() {
  const tab = session.active;
  button("undo").disabled = !tab?.history.canUndo;
  button("redo").disabled = !tab?.history.canRedo;
}

function renderInfo() {
  const info = session.info;
  if (!info) return;
  const precision = info.precision ? ` · ${info.precision.label}` : "";
  el("model-badge").textContent = `model: ${info.model}${info.fallback ? " (classical fallback)" : ""}${precision}`;
  el("model-badge").title = info.precision ? `${info.description}\n${info.precision.reason}` : info.description;
  const banner = el("fallback-banner");
  banner.hidden = !info.fallback;
  if (info.fallback) {
    el("fallback-reason").textContent = `${info.fallback_reason}.`;
    el("fallback-hint").textContent = `To use SAM: ${info.how_to_add_weights}`;
  }
  const samples = el("samples");
  samples.replaceChildren(
    ...info.samples.map((name) => {
      const b = make("button", "sample", name);
      b.onclick = () => openSample(name);
      return b;
    }),
  );
}

function wireControls() {
  for (const b of document.querySelectorAll("button.tool")) {
    const tool = /** @type {import("./state.js").Tool} */ (/** @type {HTMLElement} */ (b).dataset.tool);
    /** @type {HTMLButtonElement} */ (b).onclick = () => setTool(tool);
  }
  button("undo").onclick = undo;
  button("redo").onclick = redo;
  button("reset").onclick = resetPrompt;
  input("multimask").onchange = () => resegment();
  button("everything").onclick = runEverything;
  button("fallback-details").onclick = () => {
    const details = el("fallback-details-text");
    details.hidden = !details.hidden;
    button("fallback-details").setAttribute("aria-expanded", String(!details.hidden));
  };
  el("stage").addEventListener("pointerleave", () => clearHover());
}

function wireShortcuts() {
  const ready = () => Boolean(session.active?.ready);
  bind([
    { key: "z", ctrl: true, shift: false, run: undo },
    { key: "z", ctrl: true, shift: true, run: redo },
    { key: "y", ctrl: true, run: redo },
    { key: "h", run: () => setTool("hover") },
    { key: "b", run: () => setTool("box") },
    { key: "p", run: () => setTool("brush") },
    { key: "m", when: ready, run: () => { input("multimask").checked = !input("multimask").checked; resegment(); } },
    { key: "r", when: ready, run: resetPrompt },
    { key: "e", when: ready, run: () => {
      const tab = session.active;
      if (tab?.everything?.masks.length && !tab.everythingView) showEverything(true);
      else runEverything();
    } },
    { key: "escape", run: () => { showEverything(false); showText(false); hidePreview(); } },
    { key: "k", when: ready, run: () => keepMask(selectedMask()) },
    { key: "n", run: () => { input("object-name").focus(); input("object-name").select(); } },
    { key: "d", when: () => Boolean(selectedMask()), run: downloadCutout },
    { key: "arrowright", run: () => nextImage(1) },
    { key: "arrowleft", run: () => nextImage(-1) },
    ...["1", "2", "3", "4"].map((key, i) => ({
      key,
      run: () => {
        const mask = session.active?.prompt.candidates[i];
        if (mask) choose(mask);
      },
    })),
    { key: "[", run: () => { input("brush-size").stepDown(4); } },
    { key: "]", run: () => { input("brush-size").stepUp(4); } },
  ]);
}

function subscribe() {
  on("tabs", renderTabs);
  on("tabs", renderFolder);
  on("folder", renderFolder);
  on("prompt", () => {
    renderCandidates();
    renderNames();
    renderDownloads();
    drawSelected();
  });
  on("objects", () => {
    renderObjects();
    renderTabs();
    renderDownloads();
    renderEverything();
  });
  on("everything", renderEverything);
  on("everything", resetCursor);
  on("history", renderHistory);
}

async function start() {
  catchStrayErrors();
  subscribe();
  wireStage();
  wireImages();
  wireControls();
  wireObjects();
  wireDownloads();
  wireText();
  wireGeo();
  wireVideo();
  wireShortcuts();
  wireKeys();
  chooseModeWith(() => {
    if (session.active?.everythingView) return "everything";
    if (textShown() && session.tool !== "brush") return "text";
    return session.tool === "brush" ? "brush" : "prompts";
  });
  setTool("hover");
  activate(null);
  try {
    session.info = await api("/info");
  } catch (err) {
    toast(`Cannot reach the server: ${err instanceof Error ? err.message : err}`);
    return;
  }
  renderInfo();
  renderText();
  if (session.info?.folder) {
    await refreshFolder();
    const first = session.folder?.files[0];
    if (first) await nextImage(1);
  }
}

start();
