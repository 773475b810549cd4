// @ts-check
// Tracking a video and its files: Track propagates every object from its prompted frames on
// the server (forward, or backward), the progress shows frames done and frames per second,
// the frame shown is redrawn as its masks arrive, and Stop keeps the frames done. The overlay
// MP4, the SA-V masks JSON and the zip of palette PNGs are named after the video.
import { api, fetchFile, sendJson } from "./api.js";
import { button, el, input } from "./dom.js";
import { saveBlob } from "./downloads.js";
import { fail, setStatus, toast } from "./notify.js";
import { video } from "./video-state.js";

/** @typedef {import("./video-state.js").TrackJob} TrackJob */

const POLL_MS = 250;
let polling = false;
/** @type {() => Promise<void>} redraw the frame shown with its newest masks */
let refreshMasks = async () => {};
/** @type {() => Promise<void>} fetch the video's objects again */
let refreshStatus = async () => {};

/** Start a propagation and follow it to its end. */
export async function runTrack() {
  const v = video.open;
  if (!v || polling) return;
  try {
    /** @type {TrackJob} */
    const job = await sendJson(`/videos/${v.id}/track`, "POST", { reverse: input("video-reverse").checked });
    renderTrack(job);
  } catch (err) {
    fail("Track", err);
    return;
  }
  await follow(v.id);
}

/** @param {string} id */
async function follow(id) {
  polling = true;
  let shownDone = -1;
  try {
    for (;;) {
      if (video.open?.id !== id) return;
      /** @type {TrackJob} */
      const job = await api(`/videos/${id}/track`);
      renderTrack(job);
      if ((job.done ?? 0) !== shownDone) {
        shownDone = job.done ?? 0;
        await refreshMasks();
      }
      if (!["queued", "running"].includes(job.status)) {
        await refreshStatus();
        await refreshMasks();
        if (job.status === "done") {
          toast(`Tracked ${job.total} frames in ${(job.seconds ?? 0).toFixed(1)} s (${(job.fps ?? 0).toFixed(1)} frames/s).`, "info");
        } else if (job.status === "failed") {
          fail("Track", job.error ?? "tracking failed");
        }
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    fail("Tracking progress", err);
  } finally {
    polling = false;
  }
}

/** Show a tracking state in the panel. @param {TrackJob} job */
export function renderTrack(job) {
  const running = ["queued", "running"].includes(job.status);
  const bar = /** @type {HTMLProgressElement} */ (el("video-progress"));
  bar.hidden = job.status === "none";
  bar.value = job.total ? (job.done ?? 0) / job.total : 0;
  button("video-track").disabled = running;
  button("video-stop").disabled = !running;
  el("video-view").dataset.track = job.status;
  const frames = `${job.done ?? 0} / ${job.total ?? 0} frames`;
  const speed = job.fps ? `, ${job.fps.toFixed(1)} frames/s` : "";
  const notes = {
    none: "",
    queued: "Tracking: waiting for the model…",
    running: `Tracking: ${frames}${speed}`,
    done: `Tracked ${frames}${speed}. Scrub to check; correct on any frame, then Track again.`,
    stopped: `Stopped after ${frames}; those frames keep their masks.`,
    failed: job.error ?? "Tracking failed.",
  };
  const note = /** @type {Record<string, string>} */ (notes)[job.status] ?? job.status;
  el("video-track-note").textContent = note;
  if (running && video.shown) setStatus(note);
}

async function stopTrack() {
  const v = video.open;
  if (!v) return;
  try {
    renderTrack(await api(`/videos/${v.id}/track`, { method: "DELETE" }));
  } catch (err) {
    fail("Stop", err);
  }
}

/** @param {string} file the path under the video: overlay.mp4, masks.json, masks.zip */
async function download(file) {
  const v = video.open;
  if (!v) return;
  setStatus(`${v.name}: preparing ${file}…`);
  try {
    const { blob, name } = await fetchFile(`/videos/${v.id}/${file}`);
    saveBlob(blob, name);
    setStatus(`Saved ${name}.`);
  } catch (err) {
    fail(`Download of ${file}`, err);
  }
}

/**
 * @param {() => Promise<void>} redraw redraws the frame shown with its newest masks
 * @param {() => Promise<void>} reload fetches the video's objects again
 */
export function wireTrack(redraw, reload) {
  refreshMasks = redraw;
  refreshStatus = reload;
  button("video-track").onclick = runTrack;
  button("video-stop").onclick = stopTrack;
  button("video-dl-overlay").onclick = () => download("overlay.mp4");
  button("video-dl-json").onclick = () => download("masks.json");
  button("video-dl-png").onclick = () => download("masks.zip");
}
