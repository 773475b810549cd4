// Masks on canvases: decoding COCO run-length encodings (pycocotools' compressed strings)
// and painting them. COCO RLEs run down columns (Fortran order): run i covers pixel indices
// idx .. idx+n-1 with x = floor(idx / height), y = idx % height.

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

export function rleCounts(rle) {
  return typeof rle.counts === "string" ? decodeCounts(rle.counts) : rle.counts;
}

// A Uint8Array (row-major, height*width) with 1 inside the mask.
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

const scratch = new WeakMap();

// Paint a mask onto a canvas sized to the mask, in one RGBA colour (rest transparent).
// COCO runs go down columns, so they are filled as contiguous spans of a transposed pixel
// buffer (w rows of h pixels, kept per canvas: hover paints many masks a second), which is then
// drawn with the axes swapped: no per-pixel scatter across rows.
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
    const tctx = transposed.getContext("2d");
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
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = false;
  ctx.setTransform(0, 1, 1, 0, 0, 0); // (x, y) of the buffer -> (y, x) of the canvas
  ctx.drawImage(buffer.canvas, 0, 0);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}

// Paint several masks (largest first, so small ones stay visible) onto one canvas.
export function paintMasks(canvas, rles, alpha = 255) {
  if (!rles.length) return;
  const [h, w] = rles[0].size;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  const pixels = new Uint32Array(image.data.buffer);
  rles.forEach((rle, index) => {
    const [r, g, b] = PALETTE[index % PALETTE.length];
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

export const PALETTE = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
  [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
  [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128],
];
