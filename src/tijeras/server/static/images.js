// @ts-check
// Open images, one tab each. A new file is checked by the server before anything changes: a
// failed upload leaves every open image and its objects as they were. Closing is always the
// user's choice, and closing an image with kept objects asks first (a folder image's objects
// are kept by the server, so closing it loses nothing). With `tijeras serve --folder`, the
// folder's images are listed and opened in order (next / previous), and the COCO file of the
// whole folder is written when asked.
import { api, ApiError, fetchFile, sendJson } from "./api.js";
import { button, dialog, el, image, input, make, select } from "./dom.js";
import { saveBlob } from "./downloads.js";
import { connectHover, disconnectHover } from "./hover.js";
import { drawAll } from "./layers.js";
import { attempt, fail, setProgress, setStatus, toast } from "./notify.js";
import { loadObjects } from "./objects.js";
import { fitStage } from "./stage.js";
import { emit, newTab, session } from "./state.js";

/** @typedef {import("./state.js").ImageTab} ImageTab */

const FOLDER_TABS = 3; // folder images kept open (older ones close: the folder keeps their objects)
const KEEP_ALIVE_MS = 5 * 60_000;

/** Make a tab the one shown. @param {ImageTab | null} tab */
export function activate(tab) {
  if (session.active === tab && tab) return;
  disconnectHover();
  session.active = tab;
  const stage = el("stage");
  stage.hidden = !tab;
  el("empty").hidden = Boolean(tab);
  if (tab) {
    image("image").src = tab.url;
    stage.dataset.imageId = tab.id;
    if (tab.ready) stage.dataset.ready = "1";
    else delete stage.dataset.ready;
    stage.style.width = "";
    fitStage();
    drawAll();
    if (tab.ready) connectHover();
    setStatus(describeTab(tab));
  } else {
    delete stage.dataset.ready;
    delete stage.dataset.imageId;
    setStatus("No image open: drop one here or choose a file.");
  }
  emit("tabs", "prompt", "objects", "everything", "history");
}

/** @param {ImageTab} tab */
function describeTab(tab) {
  if (tab.gone) return `${tab.name}: the server no longer holds this image; close its tab and open it again.`;
  return `${tab.name}: ${tab.width} x ${tab.height}${tab.ready ? ", ready: hover, click or drag a box." : ""}`;
}

/**
 * Poll the server until the tab's embedding is ready.
 * @param {ImageTab} tab
 */
export async function waitForEmbedding(tab) {
  for (;;) {
    const s = await api(`/images/${tab.id}`);
    if (session.active === tab) setProgress(s.progress);
    if (s.status === "ready") break;
    if (s.status === "failed") throw new Error(s.error || "encoding failed");
    const where = s.queue_position ? ` (${s.queue_position} ahead in the queue)` : "";
    if (session.active === tab) setStatus(`${tab.name}: computing the embedding ${Math.round(s.progress * 100)}%${where}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  tab.ready = true;
  if (session.active === tab) {
    setProgress(null);
    el("stage").dataset.ready = "1";
    connectHover();
    setStatus(describeTab(tab));
  }
  emit("tabs");
}

/**
 * Hold a new tab for an image the server accepted, show it and wait for its embedding.
 * @param {import("./api.js").ImageStatus} status
 * @param {string} url
 */
async function adopt(status, url) {
  const tab = newTab(status, url);
  session.tabs.push(tab);
  activate(tab);
  if (status.objects) await attempt("Loading the image's objects", () => loadObjects(tab));
  await attempt(`Preparing ${tab.name}`, () => waitForEmbedding(tab)).finally(() => {
    if (session.active === tab) setProgress(null);
  });
}

/**
 * Open a file: the server checks it first; on any failure nothing open changes.
 * @param {Blob} blob
 * @param {string} name
 */
export async function openFile(blob, name) {
  const limit = session.info?.max_upload_bytes ?? Infinity;
  if (blob.size > limit) {
    const mb = (/** @type {number} */ n) => (n / 1024 / 1024).toFixed(1);
    fail(`Cannot open ${name}`, `it is ${mb(blob.size)} MB; this server takes images up to ${mb(limit)} MB`);
    return;
  }
  setStatus(`Uploading ${name}…`);
  let status;
  try {
    const headers = { "X-Filename": encodeURIComponent(name) };
    status = await api("/images", { method: "POST", body: blob, headers });
  } catch (err) {
    fail(`Cannot open ${name}`, err);
    setStatus(session.active ? `${describeTab(session.active)} (${name} was not opened)` : `${name} was not opened.`);
    return;
  }
  await adopt(status, status.geo ? serverPreview(status.id) : URL.createObjectURL(blob));
}

/** A GeoTIFF is shown as the server's preview of its bands (browsers do not show TIFFs). @param {string} id */
const serverPreview = (id) => `/api/images/${id}/preview.png`;

/** @param {string} name */
export async function openSample(name) {
  const response = await fetch(`/api/samples/${encodeURIComponent(name)}`);
  if (!response.ok) return fail(`Cannot open the sample ${name}`, new ApiError(response.statusText, response.status));
  return openFile(await response.blob(), name);
}

/** Open one of the served folder's images (or show it if it is open). @param {string} name */
export async function openFolderFile(name) {
  const open = session.tabs.find((t) => t.folderFile === name);
  if (open) return activate(open);
  setStatus(`Opening ${name}…`);
  const status = await attempt(`Cannot open ${name}`, () => sendJson("/folder/open", "POST", { name }));
  if (!status) return;
  const folderTabs = session.tabs.filter((t) => t.folderFile && t.id !== status.id);
  for (const old of folderTabs.slice(0, Math.max(0, folderTabs.length - (FOLDER_TABS - 1)))) {
    await closeTab(old, true);
  }
  await adopt(status, status.geo ? serverPreview(status.id) : `/api/folder/files/${encodeURIComponent(name)}`);
  await refreshFolder();
}

/** Step through the folder (or through the open tabs without a folder). @param {number} step */
export function nextImage(step) {
  const files = session.folder?.files.map((f) => f.name);
  if (files?.length) {
    const at = files.indexOf(session.active?.folderFile ?? "");
    const next = at < 0 ? (step > 0 ? 0 : files.length - 1) : at + step;
    if (next >= 0 && next < files.length) return openFolderFile(files[next]);
    toast(step > 0 ? "This is the folder's last image." : "This is the folder's first image.", "info");
    return;
  }
  const at = session.active ? session.tabs.indexOf(session.active) : -1;
  const next = session.tabs[at + step];
  if (next) activate(next);
}

/**
 * Ask before losing work: closing an image with kept objects (not kept by a folder).
 * @param {ImageTab} tab
 * @returns {Promise<"close" | "cancel" | "coco">}
 */
function confirmClose(tab) {
  const box = dialog("confirm");
  el("confirm-text").textContent =
    `${tab.name} has ${tab.objects.length} kept object${tab.objects.length === 1 ? "" : "s"}. ` +
    "Closing it forgets them. Download its COCO file first?";
  return new Promise((resolve) => {
    box.onclose = () => resolve(/** @type {"close" | "cancel" | "coco"} */ (box.returnValue || "cancel"));
    box.showModal();
  });
}

/**
 * Close a tab (the server forgets the image).
 * @param {ImageTab} tab
 * @param {boolean} [quiet] no question (objects kept elsewhere)
 */
export async function closeTab(tab, quiet = false) {
  if (!quiet && tab.objects.length && !tab.folderFile && !tab.gone) {
    const choice = await confirmClose(tab);
    if (choice === "cancel") return;
    if (choice === "coco") {
      const file = await attempt("Downloading the COCO file", () => fetchFile(`/images/${tab.id}/coco.json`));
      if (!file) return;
      saveBlob(file.blob, file.name);
    }
  }
  const index = session.tabs.indexOf(tab);
  session.tabs.splice(index, 1);
  if (session.active === tab) activate(session.tabs[Math.min(index, session.tabs.length - 1)] ?? null);
  if (tab.url.startsWith("blob:")) URL.revokeObjectURL(tab.url);
  try {
    await api(`/images/${tab.id}`, { method: "DELETE" });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) fail(`Closing ${tab.name}`, err);
  }
  emit("tabs");
  if (tab.folderFile) await refreshFolder();
}

export function renderTabs() {
  const strip = el("tabs");
  strip.replaceChildren();
  for (const tab of session.tabs) {
    const item = make("div", tab === session.active ? "tab active" : "tab");
    item.dataset.imageId = tab.id;
    item.title = tab.name;
    const thumb = make("img");
    thumb.src = tab.url;
    thumb.alt = "";
    const label = make("span", "name", tab.name);
    const count = make("span", "count", tab.objects.length ? String(tab.objects.length) : "");
    count.title = "kept objects";
    const close = make("button", "close", "×");
    close.title = `close ${tab.name}`;
    close.setAttribute("aria-label", `close ${tab.name}`);
    close.onclick = (event) => {
      event.stopPropagation();
      closeTab(tab);
    };
    item.append(thumb, label, count, close);
    if (!tab.ready && !tab.gone) item.classList.add("busy");
    if (tab.gone) item.classList.add("gone");
    item.onclick = () => activate(tab);
    strip.append(item);
  }
  strip.hidden = session.tabs.length === 0;
  button("close-image").disabled = !session.active;
}

export async function refreshFolder() {
  if (!session.info?.folder) return;
  session.folder = await api("/folder");
  emit("folder");
}

export function renderFolder() {
  const section = el("folder-section");
  section.hidden = !session.folder;
  if (!session.folder) return;
  el("folder-name").textContent = session.folder.name;
  const list = el("folder-list");
  list.replaceChildren();
  for (const file of session.folder.files) {
    const item = make("li", session.active?.folderFile === file.name ? "active" : "");
    item.dataset.file = file.name;
    item.append(make("span", "name", file.name));
    item.append(make("span", "count", file.objects === null ? "" : `${file.objects}`));
    item.onclick = () => openFolderFile(file.name);
    list.append(item);
  }
  list.querySelector("li.active")?.scrollIntoView({ block: "nearest" });
}

/** @param {boolean} overwrite */
async function writeFolderCoco(overwrite = false) {
  const body = { path: input("folder-coco-path").value.trim(), segmentation: select("folder-coco-format").value, overwrite };
  try {
    const done = await sendJson("/folder/coco", "POST", body);
    toast(`Wrote ${done.path}: ${done.images} images, ${done.annotations} objects.`, "info");
    setStatus(`Wrote ${done.path}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && !overwrite) {
      if (window.confirm(`${err.message}\n\nReplace the file?`)) await writeFolderCoco(true);
      return;
    }
    fail("Writing the folder's COCO file", err);
  }
}

/** Keep the server from forgetting images whose tabs are open (it forgets idle ones). */
function keepAlive() {
  setInterval(async () => {
    for (const tab of session.tabs) {
      try {
        await api(`/images/${tab.id}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404 && !tab.gone) {
          tab.gone = true;
          toast(`The server no longer holds ${tab.name} (it was restarted or the image was idle too long).`);
          emit("tabs");
        }
      }
    }
  }, KEEP_ALIVE_MS);
}

export function wireImages() {
  /** @param {FileList | null | undefined} files */
  const openAll = async (files) => {
    for (const file of files ?? []) await openFile(file, file.name);
  };
  input("file-input").onchange = async (event) => {
    const target = /** @type {HTMLInputElement} */ (event.target);
    await openAll(target.files);
    target.value = "";
  };
  for (const zone of [el("drop-zone"), document.body]) {
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      el("drop-zone").classList.add("over");
    });
    zone.addEventListener("dragleave", () => el("drop-zone").classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      event.stopPropagation();
      el("drop-zone").classList.remove("over");
      openAll(event.dataTransfer?.files);
    });
  }
  button("close-image").onclick = () => { if (session.active) closeTab(session.active); };
  button("folder-prev").onclick = () => nextImage(-1);
  button("folder-next").onclick = () => nextImage(1);
  button("folder-coco").onclick = () => writeFolderCoco();
  keepAlive();
}
