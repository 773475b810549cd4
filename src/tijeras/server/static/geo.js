// @ts-check
// GeoTIFFs: the server shows a preview of chosen bands (browsers do not show TIFFs) and keeps
// the georeference. For a GeoTIFF the panel says where the raster lies (CRS, size, pixel size,
// how much the preview is reduced), lets a multiband raster show other bands or stretch them
// otherwise (the preview is read and encoded again; kept objects stay), and downloads the kept
// objects as GeoJSON in the raster's CRS (named after the image, like the other downloads).
import { api, fetchFile, sendJson } from "./api.js";
import { button, el, input, make, select } from "./dom.js";
import { saveBlob } from "./downloads.js";
import { disconnectHover } from "./hover.js";
import { waitForEmbedding } from "./images.js";
import { attempt, setStatus } from "./notify.js";
import { emit, on, session } from "./state.js";

/** @typedef {import("./api.js").GeoInfo} GeoInfo */

/** A GeoTIFF's record per image id (null: the image is not georeferenced). @type {Map<string, GeoInfo | null>} */
const known = new Map();
let views = 0;

/** The URL of the preview the server shows (new after each change of bands). @param {string} id */
function previewUrl(id) {
  views += 1;
  return `/api/images/${id}/preview.png?v=${views}`;
}

/** Remember what the server said about an image. @param {import("./api.js").ImageStatus} status */
function noteGeo(status) {
  known.set(status.id, status.geo ?? null);
}

/** The active image's record, asked once. @returns {Promise<GeoInfo | null>} */
async function activeGeo() {
  const tab = session.active;
  if (!tab) return null;
  if (!known.has(tab.id)) {
    const status = await api(`/images/${tab.id}`).catch(() => null);
    known.set(tab.id, status?.geo ?? null);
  }
  return known.get(tab.id) ?? null;
}

/** @param {number} value */
function short(value) {
  return Math.abs(value) >= 100 ? value.toFixed(0) : String(Number(value.toPrecision(3)));
}

/** @param {GeoInfo} geo */
function describe(geo) {
  const reduced = geo.scale > 1 ? `, shown reduced 1:${short(geo.scale)}` : ", shown at full resolution";
  const stretch = geo.stretch ? `, stretch ${geo.stretch[0]}–${geo.stretch[1]} %` : "";
  return `${geo.crs} · ${geo.raster_width} x ${geo.raster_height} px of ${short(geo.pixel_size)} ${geo.units}${reduced}` +
    ` · bands ${geo.bands.join(",")} of ${geo.band_count} (${geo.dtype})${stretch}`;
}

/** Fill a band select with the raster's bands. @param {string} id @param {number} count @param {number} chosen */
function fillBands(id, count, chosen) {
  const box = select(id);
  box.replaceChildren(...Array.from({ length: count }, (_, i) => {
    const option = make("option", "", String(i + 1));
    option.value = String(i + 1);
    return option;
  }));
  box.value = String(chosen);
}

function renderGrey() {
  const grey = input("geo-grey").checked;
  select("geo-g").hidden = grey;
  select("geo-b").hidden = grey;
}

export async function renderGeo() {
  const tab = session.active;
  const geo = await activeGeo();
  if (tab !== session.active) return; // another image was shown meanwhile
  el("geo-section").hidden = !geo;
  el("stage").dataset.geo = geo ? geo.crs : "";
  if (!geo || !tab) return;
  el("geo-info").textContent = describe(geo);
  const multi = geo.band_count > 1;
  el("geo-bands").hidden = !multi;
  const [r, g, b] = geo.bands.length === 3 ? geo.bands : [geo.bands[0], geo.bands[0], geo.bands[0]];
  fillBands("geo-r", geo.band_count, r);
  fillBands("geo-g", geo.band_count, g);
  fillBands("geo-b", geo.band_count, b);
  input("geo-grey").checked = geo.bands.length === 1;
  renderGrey();
  input("geo-stretch").checked = Boolean(geo.stretch);
  if (geo.stretch) {
    input("geo-low").value = String(geo.stretch[0]);
    input("geo-high").value = String(geo.stretch[1]);
  }
  button("geo-apply").disabled = !tab.ready;
  button("dl-geojson").disabled = !tab.objects.length;
}

/** Show the chosen bands and stretch: the server reads the preview and encodes it again. */
async function applyView() {
  const tab = session.active;
  if (!tab?.ready) return;
  const bands = input("geo-grey").checked || select("geo-r").options.length < 2
    ? [Number(select("geo-r").value || 1)]
    : ["geo-r", "geo-g", "geo-b"].map((id) => Number(select(id).value));
  const stretch = input("geo-stretch").checked ? [Number(input("geo-low").value), Number(input("geo-high").value)] : null;
  button("geo-apply").disabled = true;
  setStatus(`Reading bands ${bands.join(",")} of ${tab.name}…`);
  const status = await attempt("Showing other bands", () => sendJson(`/images/${tab.id}/geo/view`, "POST", { bands, stretch }));
  if (!status) {
    button("geo-apply").disabled = false;
    return;
  }
  noteGeo(status);
  tab.ready = false;
  tab.url = previewUrl(tab.id);
  if (session.active === tab) {
    disconnectHover();
    delete el("stage").dataset.ready;
    /** @type {HTMLImageElement} */ (el("image")).src = tab.url;
  }
  emit("tabs");
  await attempt(`Preparing ${tab.name}`, () => waitForEmbedding(tab));
  renderGeo();
}

async function downloadGeojson() {
  const tab = session.active;
  if (!tab) return;
  const file = await attempt("Downloading the GeoJSON", () => fetchFile(`/images/${tab.id}/objects.geojson`));
  if (file) {
    saveBlob(file.blob, file.name);
    setStatus(`Saved ${file.name}`);
  }
}

export function wireGeo() {
  input("geo-grey").onchange = renderGrey;
  button("geo-apply").onclick = () => applyView();
  button("dl-geojson").onclick = () => downloadGeojson();
  on("tabs", renderGeo);
  on("objects", renderGeo);
}
