// Presigned URLs of an image's variants (`thumb` for tiles, `preview` for the detail view).

import { ApiError, sleep } from "./api.js";
import { limiter, session } from "./common.js";

// An image younger than this (or uploaded here) may still be getting its variants: its
// metadata is watched, for up to VARIANT_WATCH_MS, before its download is asked for.
const RECENT_MS = 2 * 60_000;
const VARIANT_WATCH_MS = 30_000;
const URL_REQUESTS_AT_ONCE = 6;

const urlRequests = limiter(URL_REQUESTS_AT_ONCE);

// Once a download says `variant_not_found`, variants are off: originals are shown instead.
let variantsOff = false;

export function hasVariant(image, variant) {
  return Boolean(image.variants && image.variants[variant]);
}

/** The answer of imageUrl when the tile went away or the user signed out meanwhile. */
export const GONE = "gone";

/**
 * A presigned URL of a variant of `entry.image`, else of the original (variants off).
 *
 * The download of a variant being made answers 409 `variant_not_ready`: it is asked again
 * after each Retry-After. For a recent image, whose variants are likely on their way, the
 * image's metadata is watched first (a GET that answers 200, and brings the placeholder
 * along with the variants), so that a fresh upload costs no 409 at all. `onFresh(image)`
 * gets each newer copy of the metadata.
 *
 * @param {{image: object, element: Element, fresh?: boolean}} entry
 */
export async function imageUrl(entry, variant, onFresh = () => {}) {
  const api = session.api;
  const imageId = entry.image.image_id;
  const gate = (send) => urlRequests(send);
  const age = Date.now() - Date.parse(entry.image.created_at || "");
  const recent = entry.fresh || (age >= -RECENT_MS && age < RECENT_MS);
  const deadline = recent ? Date.now() + VARIANT_WATCH_MS : 0;
  for (let wait = 300; !variantsOff && !hasVariant(entry.image, variant); ) {
    if (Date.now() + wait > deadline) break;
    await sleep(wait);
    if (api !== session.api || !entry.element.isConnected) {
      throw new ApiError(0, GONE, "no longer shown");
    }
    wait = Math.min(2000, Math.round(wait * 1.5));
    const fresh = await gate(() => api.get(imageId)).catch(() => null);
    if (!fresh) break;
    entry.image = fresh;
    onFresh(fresh);
  }
  if (variantsOff) return api.downloadUrl(imageId, { gate });
  try {
    return await api.downloadUrl(imageId, { variant, gate });
  } catch (error) {
    if (error instanceof ApiError && error.code === "variant_not_found") {
      variantsOff = true;
      return api.downloadUrl(imageId, { gate });
    }
    throw error;
  }
}
