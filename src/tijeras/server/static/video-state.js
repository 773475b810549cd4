// @ts-check
// What the video mode holds: the open video (as the server describes it), the frame shown,
// the object the clicks go to, the tool, and the prompts the page sent, by object and frame.

/**
 * @typedef {import("./api.js").Rle} Rle
 * @typedef {{id: number, colour: number[], frames: number[]}} VideoObject
 * @typedef {{status: string, done?: number, total?: number, fps?: number,
 *   error?: string | null, start?: number, reverse?: boolean, seconds?: number}} TrackJob
 * @typedef {{id: string, name: string, width: number, height: number, num_frames: number,
 *   fps: number, duration: number | null, model: string, objects: VideoObject[],
 *   masked_frames: number, track: TrackJob, palette: number[][]}} VideoStatus
 * @typedef {{frame: number, objects: {id: number, colour: number[], rle: Rle}[],
 *   prompted: number[]}} FrameMasks
 * @typedef {{points: [number, number, number][], box: number[] | null}} FramePrompt
 * @typedef {{model: string, max_upload_bytes: number, max_frames: number, max_seconds: number,
 *   max_pixels: number, max_videos: number}} VideoLimits
 */

export const video = {
  /** @type {VideoStatus | null} */ open: null,
  frame: 0,
  object: 1,
  /** @type {number[]} objects listed on the page (a new one has no prompt yet) */ objects: [],
  /** @type {"hover" | "box"} */ tool: "hover",
  shown: false,
  /** @type {Map<string, FramePrompt>} prompts by "object:frame" */ prompts: new Map(),
  /** @type {FrameMasks | null} */ masks: null,
  loads: 0,
};

/** The colour of an object (the overlay MP4's). @param {number} id */
export function colourOf(id) {
  const palette = video.open?.palette ?? [[30, 111, 217]];
  return palette[(id - 1) % palette.length];
}
