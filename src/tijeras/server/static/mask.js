// @ts-check
// Masks on canvases: decoding COCO run-length encodings (pycocotools' compressed strings)
// and painting them. COCO RLEs run down columns (Fortran order): run i covers pixel indices
// idx .. idx+n-1 with x = floor(idx / height), y = idx % height.
import { context } from "./dom.js";

/** @param {string} text @returns {number[]} */
export function decodeCounts(text) {
  // pycocotools' string form: 6-bit groups offset by 48, little-endian, sign in the last
  // group's 0x10 bit; from the third count on, values are deltas to the count two back.
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = text.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** @typedef {import("./api.js").Rle} Rle */

/** @type {WeakMap<Rle, number[]>} */
const decoded = new WeakMap();

/** The run lengths of an RLE (decoded once per RLE object). @param {Rle} rle @returns {number[]} */
export function rleCounts(rle) {
  if (typeof rle.counts !== "string") return rle.counts;
  let counts = decoded.get(rle);
  if (!counts) {
    counts = decodeCounts(rle.counts);
    decoded.set(rle, counts);
  }
  return counts;
}

// A Uint8Array (row-major, height*width) with 1 inside the mask.
/** @param {Rle} rle @returns {Uint8Array} */
export function rleToMask(rle) {
  const [h, w] = rle.size;
  const counts = rleCounts(rle);
  const out = new Uint8Array(h * w);
  let idx = 0;
  for (let i = 0; i < counts.length; i += 1) {
    const n = counts[i];
    if (i % 2 === 1) {
      for (let j = idx; j < idx + n; j += 1) {
        const x = (j / h) | 0;
        out[(j - x * h) * w + x] = 1;
      }
    }
    idx += n;
  }
  return out;
}

/** @type {WeakMap<HTMLCanvasElement, {canvas: HTMLCanvasElement, ctx: CanvasRenderingContext2D, image: ImageData}>} */
const scratch = new WeakMap();

// Paint a mask onto a canvas sized to the mask, in one RGBA colour (rest transparent).
// COCO runs go down columns, so they are filled as contiguous spans of a transposed pixel
// buffer (w rows of h pixels, kept per canvas: hover paints many masks a second), which is then
// drawn with the axes swapped: no per-pixel scatter across rows.
/**
 * @param {HTMLCanvasElement} canvas
 * @param {Rle} rle
 * @param {number[]} rgba
 */
export function paintMask(canvas, rle, rgba) {
  const [h, w] = rle.size;
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  let buffer = scratch.get(canvas);
  if (!buffer || buffer.canvas.width !== h || buffer.canvas.height !== w) {
    const transposed = document.createElement("canvas");
    transposed.width = h;
    transposed.height = w;
    const tctx = context(transposed);
    buffer = { canvas: transposed, ctx: tctx, image: tctx.createImageData(h, w) };
    scratch.set(canvas, buffer);
  }
  const pixels = new Uint32Array(buffer.image.data.buffer);
  pixels.fill(0);
  const colour = (rgba[3] << 24) | (rgba[2] << 16) | (rgba[1] << 8) | rgba[0];
  const counts = rleCounts(rle);
  let idx = 0;
  for (let i = 0; i < counts.length; i += 1) {
    if (i % 2 === 1) pixels.fill(colour, idx, idx + counts[i]);
    idx += counts[i];
  }
  buffer.ctx.putImageData(buffer.image, 0, 0);
  const ctx = context(canvas);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = false;
  ctx.setTransform(0, 1, 1, 0, 0, 0); // (x, y) of the buffer -> (y, x) of the canvas
  ctx.drawImage(buffer.canvas, 0, 0);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}

// Paint several masks (largest first, so small ones stay visible) onto one canvas, each in
// its colour (the palette's, cycled, unless colours are given).
/**
 * @param {HTMLCanvasElement} canvas
 * @param {Rle[]} rles
 * @param {number} [alpha]
 * @param {number[][]} [colours]
 */
export function paintMasks(canvas, rles, alpha = 255, colours = PALETTE) {
  if (!rles.length) return;
  const [h, w] = rles[0].size;
  canvas.width = w;
  canvas.height = h;
  const ctx = context(canvas);
  const image = ctx.createImageData(w, h);
  const pixels = new Uint32Array(image.data.buffer);
  rles.forEach((rle, index) => {
    const [r, g, b] = colours[index % colours.length];
    const colour = (alpha << 24) | (b << 16) | (g << 8) | r;
    const counts = rleCounts(rle);
    let idx = 0;
    for (let i = 0; i < counts.length; i += 1) {
      if (i % 2 === 1) {
        for (let j = idx; j < idx + counts[i]; j += 1) {
          const x = (j / h) | 0;
          pixels[(j - x * h) * w + x] = colour;
        }
      }
      idx += counts[i];
    }
  });
  ctx.putImageData(image, 0, 0);
}

// Whether pixel (x, y) is inside an RLE mask, without decoding the whole mask.
/** @param {Rle} rle @param {number} x @param {number} y */
export function rleContains(rle, x, y) {
  const [h] = rle.size;
  const target = x * h + y;
  const counts = rleCounts(rle);
  let idx = 0;
  for (let i = 0; i < counts.length; i += 1) {
    if (target < idx + counts[i]) return i % 2 === 1;
    idx += counts[i];
  }
  return false;
}

/** @type {number[][]} */
export const PALETTE = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
  [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
  [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128],
];

// Outlines at the size the image is shown: the painted canvas `source` (any size, stretched
// over the image) is scaled to `target`'s size without smoothing, and every coloured pixel
// next to a pixel of another colour (or the border) is drawn opaque, `width` pixels wide.
/**
 * @param {HTMLCanvasElement} source
 * @param {HTMLCanvasElement} target
 * @param {number} width
 */
export function paintOutlines(source, target, width = 2) {
  const w = target.width;
  const h = target.height;
  const ctx = context(target, true);
  ctx.clearRect(0, 0, w, h);
  if (!w || !h || !source.width || !source.height) return;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, w, h);
  const image = ctx.getImageData(0, 0, w, h);
  const pixels = new Uint32Array(image.data.buffer);
  const edge = new Uint8Array(w * h);
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      const i = y * w + x;
      const c = pixels[i];
      if (!(c >>> 24)) continue;
      if (
        x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        pixels[i - 1] !== c || pixels[i + 1] !== c || pixels[i - w] !== c || pixels[i + w] !== c
      ) edge[i] = 1;
    }
  }
  const out = new Uint32Array(w * h);
  const r = Math.max(0, Math.round(width) - 1);
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      const i = y * w + x;
      if (!edge[i]) continue;
      const colour = (pixels[i] | 0xff000000) >>> 0;
      for (let dy = -r; dy <= r; dy += 1) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -r; dx <= r; dx += 1) {
          const xx = x + dx;
          if (xx >= 0 && xx < w && (pixels[yy * w + xx] >>> 24)) out[yy * w + xx] = colour;
        }
      }
    }
  }
  image.data.set(new Uint8ClampedArray(out.buffer));
  ctx.putImageData(image, 0, 0);
}

// A small picture of one mask: the image around the mask's box, the mask tinted over it.
/**
 * @param {HTMLImageElement} picture the full image
 * @param {import("./api.js").Mask} mask
 * @param {number} width
 * @param {number} height
 * @returns {HTMLCanvasElement}
 */
export function thumbnail(picture, mask, width = 96, height = 64) {
  const thumb = document.createElement("canvas");
  thumb.width = width;
  thumb.height = height;
  const ctx = context(thumb);
  const [ih, iw] = mask.rle.size;
  const [bx, by, bw, bh] = mask.bbox;
  const side = Math.max(bw * 1.2, bh * 1.2 * (width / height), 16);
  const cw = Math.min(iw, side);
  const ch = Math.min(ih, cw * (height / width));
  const cx = Math.min(Math.max(bx + bw / 2 - cw / 2, 0), iw - cw);
  const cy = Math.min(Math.max(by + bh / 2 - ch / 2, 0), ih - ch);
  ctx.fillStyle = "#2a2f36";
  ctx.fillRect(0, 0, width, height);
  const scale = Math.min(width / cw, height / ch);
  const dw = cw * scale;
  const dh = ch * scale;
  const ox = (width - dw) / 2;
  const oy = (height - dh) / 2;
  if (picture.complete && picture.naturalWidth) {
    const sx = picture.naturalWidth / iw;
    const sy = picture.naturalHeight / ih;
    ctx.drawImage(picture, cx * sx, cy * sy, cw * sx, ch * sy, ox, oy, dw, dh);
  }
  const layer = document.createElement("canvas");
  paintMask(layer, mask.rle, [30, 111, 217, 150]);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(layer, cx, cy, cw, ch, ox, oy, dw, dh);
  return thumb;
}
