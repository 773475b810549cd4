// @ts-check
// The server's HTTP API: JSON calls whose errors carry the server's own message, and file
// downloads that keep the name the server gives (image and object names, never overwritten).

/** An answer of 4xx/5xx, or no answer at all; `message` is the server's `detail`. */
export class ApiError extends Error {
  /** @param {string} message @param {number} status */
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/**
 * @typedef {{size: [number, number], counts: string | number[]}} Rle
 * @typedef {{id: string, score: number, area: number, bbox: number[], source: string, rle: Rle}} Mask
 * @typedef {{id: string, name: string, mask_id: string}} KeptObject
 * @typedef {{id: string, name: string, width: number, height: number, status: string,
 *   progress: number, queue_position: number | null, error: string | null,
 *   folder_file: string | null, objects: number, geo: GeoInfo | null}} ImageStatus
 * @typedef {{crs: string, bounds: number[], raster_width: number, raster_height: number,
 *   pixel_size: number, units: string, scale: number, bands: number[], band_count: number, dtype: string,
 *   stretch: number[] | null}} GeoInfo a GeoTIFF as the page shows it
 * @typedef {{model: string, description: string, fallback: boolean,
 *   fallback_reason: string | null, how_to_add_weights: string | null, samples: string[],
 *   folder: string | null, max_upload_bytes: number, max_images: number,
 *   text: boolean, geo: boolean, precision: {label: string, reason: string} | null}} ServerInfo
 */

/**
 * @param {Response} response
 * @returns {Promise<string>}
 */
async function failure(response) {
  let detail = "";
  try {
    const body = await response.json();
    detail = typeof body?.detail === "string" ? body.detail : JSON.stringify(body?.detail ?? "");
  } catch {
    detail = "";
  }
  return detail || `${response.status} ${response.statusText}`;
}

/**
 * @param {string} url
 * @param {RequestInit} [options]
 * @returns {Promise<Response>}
 */
async function send(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new ApiError(`cannot reach the server (${err instanceof Error ? err.message : err})`, 0);
  }
  if (!response.ok) throw new ApiError(await failure(response), response.status);
  return response;
}

/**
 * A JSON call under /api.
 * @param {string} path
 * @param {RequestInit} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  const response = await send(`/api${path}`, options);
  return response.headers.get("content-type")?.includes("json") ? response.json() : null;
}

/**
 * @param {string} path
 * @param {string} method
 * @param {unknown} body
 * @returns {Promise<any>}
 */
export function sendJson(path, method, body) {
  return api(path, {
    method,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/**
 * The file name in a Content-Disposition header (the UTF-8 `filename*` first).
 * @param {string | null} header
 * @returns {string | null}
 */
export function dispositionName(header) {
  if (!header) return null;
  const exact = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (exact) return decodeURIComponent(exact[1]);
  const plain = /filename="([^"]+)"/i.exec(header);
  return plain ? plain[1] : null;
}

/**
 * Fetch a file of the API: its bytes and the name the server gives it.
 * @param {string} path under /api
 * @returns {Promise<{blob: Blob, name: string}>}
 */
export async function fetchFile(path) {
  const response = await send(`/api${path}`);
  const name = dispositionName(response.headers.get("content-disposition")) || "download";
  return { blob: await response.blob(), name };
}
