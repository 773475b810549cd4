// @ts-check
// What the selected object becomes, one click away: the cut-out, a sticker for messaging apps,
// the photo with the object erased (previewed on the image first), its mask, an inpainting
// mask, and COCO files of the kept objects (RLE or polygons). Files are fetched first, so an
// error (an empty mask, a value out of range) is shown; they are saved under the name the
// server gives, made of the image's and the object's names (002-penguin-cutout.png).
import { fetchFile } from "./api.js";
import { button, el, image, input, select } from "./dom.js";
import { attempt, setStatus } from "./notify.js";
import { nextName } from "./objects.js";
import { selectedMask, session } from "./state.js";

/** Save a blob under a name, as a download. @param {Blob} blob @param {string} name */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * The object's name in file names: its kept name, else the name it would be kept under. Kept
 * objects that share a name (every instance of a text phrase is kept under the phrase) are
 * numbered in the order they were kept, so their files never overwrite each other.
 */
function objectName() {
  const tab = session.active;
  const mask = selectedMask();
  const kept = tab && mask ? tab.objects.find((o) => o.mask_id === mask.id) : undefined;
  if (!tab || !kept) return nextName();
  const namesakes = tab.objects.filter((o) => o.name === kept.name);
  return namesakes.length > 1 ? `${kept.name} ${namesakes.indexOf(kept) + 1}` : kept.name;
}

/**
 * The URL of one of the selected mask's files.
 * @param {string} file e.g. "cutout.png"
 * @param {Record<string, string | number>} [query]
 */
function maskPath(file, query = {}) {
  const tab = session.active;
  const mask = selectedMask();
  if (!tab || !mask) throw new Error("no mask is selected: click the object first");
  const params = new URLSearchParams({ name: objectName() });
  for (const [k, v] of Object.entries(query)) params.set(k, String(v));
  return `/images/${tab.id}/masks/${mask.id}/${file}?${params}`;
}

/**
 * Fetch a file and save it; failures become a toast.
 * @param {string} what
 * @param {() => string} path
 */
async function download(what, path) {
  const file = await attempt(`Downloading the ${what}`, () => fetchFile(path()));
  if (file) {
    saveBlob(file.blob, file.name);
    setStatus(`Saved ${file.name}`);
  }
  return file;
}

const dilation = () => Number(input("erase-dilate").value);

let previewUrl = "";

/** Show (or refresh) the erased photo over the image. */
async function preview() {
  const file = await attempt("Erasing the object", () => fetchFile(maskPath("erase.jpg", { dilate: dilation() })));
  if (!file) return;
  URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file.blob);
  const shown = image("preview");
  shown.src = previewUrl;
  shown.hidden = false;
  button("erase-preview").setAttribute("aria-pressed", "true");
  el("stage").dataset.preview = "erase";
  setStatus("Preview of the object erased (OpenCV inpainting). Click Preview again to hide it.");
}

export function hidePreview() {
  image("preview").hidden = true;
  button("erase-preview").setAttribute("aria-pressed", "false");
  delete el("stage").dataset.preview;
}

export function renderDownloads() {
  const has = Boolean(selectedMask());
  for (const id of ["dl-cutout", "dl-sticker", "dl-erase", "erase-preview", "dl-mask", "dl-inpaint"]) {
    button(id).disabled = !has;
  }
  button("dl-coco").disabled = !session.active?.objects.length;
  if (!has) hidePreview();
}

export function downloadCutout() {
  return download("cut-out", () => maskPath("cutout.png"));
}

export function wireDownloads() {
  button("dl-cutout").onclick = downloadCutout;
  button("dl-sticker").onclick = () =>
    download("sticker", () => maskPath("sticker.webp", { outline: input("sticker-outline").checked ? 8 : 0 }));
  button("dl-erase").onclick = () => download("erased photo", () => maskPath("erase.jpg", { dilate: dilation() }));
  button("erase-preview").onclick = () => (el("stage").dataset.preview ? hidePreview() : preview());
  input("erase-dilate").onchange = () => { if (el("stage").dataset.preview) preview(); };
  button("dl-mask").onclick = () => download("mask", () => maskPath("mask.png"));
  button("dl-inpaint").onclick = () =>
    download("inpainting mask", () => maskPath("inpaint.png", { dilate: dilation() }));
  button("dl-coco").onclick = () =>
    download("COCO file", () => {
      const tab = session.active;
      if (!tab) throw new Error("no image is open");
      return `/images/${tab.id}/coco.json?segmentation=${select("coco-format").value}`;
    });
}
