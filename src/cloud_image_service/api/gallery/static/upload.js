// Uploads straight to S3: the presigned POST form (with XHR upload progress) up to the
// multipart threshold, and above it a multipart upload through the service's /s3 routes
// (Uppy's Companion protocol), whose state is kept in localStorage so that a reload, or
// a lost connection, resumes it: S3 is asked which parts it holds and only the others go.

import { ApiError, sleep } from "./api.js";

export const MULTIPART_THRESHOLD = 16 * 1024 * 1024; // 16 MiB
const STORE_KEY = "cis-gallery-multipart";
const PARTS_AT_ONCE = 3;
const PART_RETRY_DELAYS_MS = [400, 1200, 2400]; // then the upload stops, resumable

const TYPES_BY_EXTENSION = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  jpe: "image/jpeg",
  jfif: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  heic: "image/heic",
  heif: "image/heif",
  heics: "image/heic-sequence",
  heifs: "image/heif-sequence",
};

/** The service's word on why a file was refused: shown as it is, next to the file. */
export class Rejected extends Error {
  constructor(reason) {
    super(reason);
    this.name = "Rejected";
  }
}

/** The upload stopped (network, S3 unreachable); a multipart upload can be resumed. */
export class Interrupted extends Error {
  constructor(message, resumable) {
    super(message);
    this.name = "Interrupted";
    this.resumable = resumable;
  }
}

/** The Content-Type to declare: the browser's, else the one of the file name's extension. */
export function contentTypeOf(file) {
  if (file.type && file.type.startsWith("image/")) return file.type;
  const extension = (file.name.includes(".") ? file.name.split(".").pop() : "").toLowerCase();
  return TYPES_BY_EXTENSION[extension] || file.type || "application/octet-stream";
}

// Saved multipart uploads: {[id]: {key, uploadId, image_id, part_size, name, size, ...}}.

function loadAll() {
  try {
    const value = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function saveAll(all) {
  try {
    if (Object.keys(all).length) localStorage.setItem(STORE_KEY, JSON.stringify(all));
    else localStorage.removeItem(STORE_KEY);
  } catch {
    // Storage full or off: the upload still works, it just cannot be resumed after a reload.
  }
}

/** 32-bit FNV-1a, as hex: tells whose uploads these are without keeping the token. */
function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/** Who the saved uploads belong to: the user id, or a hash of the token. */
export function ownerOf(api) {
  return api.userId ? `user:${api.userId}` : `token:${fnv1a(api.token)}`;
}

/** The key of a file's saved upload: whose, and which file (name, size, modification time). */
export function uploadId(owner, file) {
  return JSON.stringify([owner, file.name, file.size, file.lastModified]);
}

/** The unfinished multipart uploads of this owner, oldest first. */
export function savedUploads(owner) {
  return Object.entries(loadAll())
    .filter(([, state]) => state.owner === owner)
    .map(([id, state]) => ({ id, ...state }))
    .sort((a, b) => a.started_at - b.started_at);
}

export function forget(id) {
  const all = loadAll();
  delete all[id];
  saveAll(all);
}

function remember(id, state) {
  const all = loadAll();
  all[id] = state;
  saveAll(all);
}

/** S3's XML error, as one line: `Code: Message`. */
function s3Message(status, text) {
  const code = /<Code>([^<]*)<\/Code>/.exec(text || "");
  const message = /<Message>([^<]*)<\/Message>/.exec(text || "");
  const parts = [code && code[1], message && message[1]].filter(Boolean);
  if (!parts.length) return `S3 answered ${status}`;
  return `S3 refused the upload (${status}): ${parts.join(": ")}`;
}

const UNREACHABLE =
  "S3 could not be reached, or did not allow this page's origin (bucket CORS); network error";

/**
 * Where to POST the form: its URL, with a trailing slash when it names a bucket path-style
 * (`http://host/bucket`). Both are the bucket, for S3, moto and SeaweedFS alike; but SeaweedFS
 * answers the CORS preflight of `/bucket` (there is one: XHR upload progress needs it) from
 * its global `-s3.allowedOrigins` instead of the bucket's CORS rules, and that of `/bucket/`
 * from the bucket's rules, as AWS does. Virtual-host URLs (`https://bucket.s3…/`) end in `/`.
 */
export function formUrl(url) {
  const parsed = new URL(url);
  if (/^\/[^/]+$/.test(parsed.pathname)) parsed.pathname += "/";
  return parsed.toString();
}

/** POST the presigned form: every field in order, the file last. Resolves on 2xx. */
function postForm(form, file, onProgress) {
  return new Promise((resolve, reject) => {
    const body = new FormData();
    for (const [name, value] of Object.entries(form.fields)) body.append(name, value);
    body.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", formUrl(form.url));
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else if (xhr.status >= 500) reject(new Interrupted(s3Message(xhr.status, xhr.responseText)));
      else reject(new Rejected(s3Message(xhr.status, xhr.responseText)));
    });
    xhr.addEventListener("error", () => reject(new Interrupted(UNREACHABLE, false)));
    xhr.addEventListener("timeout", () => reject(new Interrupted("S3 did not answer", false)));
    xhr.send(body);
  });
}

/**
 * The part's ETag from the response headers the bucket's CORS exposes (ExposeHeaders: ETag),
 * else null. Read from getAllResponseHeaders(): getResponseHeader() of a header that is not
 * exposed logs an error in the console.
 */
function exposedETag(xhr) {
  const found = /^etag:[ \t]*(.+?)[ \t]*$/im.exec(xhr.getAllResponseHeaders());
  return found ? found[1] : null;
}

/** PUT one part; resolves with its ETag, or null when the bucket's CORS does not expose it. */
function putPart(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(exposedETag(xhr));
      } else if (xhr.status >= 500 || xhr.status === 408 || xhr.status === 403) {
        // 403: the part's URL expired (a slow part, a laptop asleep): signed again on retry.
        reject(new Interrupted(s3Message(xhr.status, xhr.responseText), true));
      } else {
        reject(new Rejected(s3Message(xhr.status, xhr.responseText)));
      }
    });
    xhr.addEventListener("error", () => reject(new Interrupted(UNREACHABLE, true)));
    xhr.addEventListener("timeout", () => reject(new Interrupted("S3 did not answer", true)));
    xhr.send(blob);
  });
}

/** An API error as what the file row shows; "image was rejected: " is said by the row. */
function asRejection(error) {
  if (error instanceof ApiError && error.status !== 0 && error.status < 500) {
    return new Rejected(error.message.replace(/^image was rejected:\s*/i, ""));
  }
  return error;
}

/**
 * Upload one file and have it verified. Resolves with the image (status ready); rejects with
 * Rejected (the reason), Interrupted, or ApiError.
 *
 * `report({fraction, text, parts})`: progress of the whole file, a word on the phase, and for
 * a multipart upload the fraction sent of each part.
 */
export async function uploadFile(api, file, { tags = [], report = () => {} } = {}) {
  const type = contentTypeOf(file);
  try {
    if (file.size > MULTIPART_THRESHOLD) {
      return await uploadMultipart(api, file, type, tags, report);
    }
    return await uploadByForm(api, file, type, tags, report);
  } catch (error) {
    throw asRejection(error);
  }
}

async function uploadByForm(api, file, type, tags, report) {
  report({ fraction: 0, text: "starting" });
  const fields = { content_type: type, filename: file.name, size: file.size };
  if (tags.length) fields.tags = tags;
  const upload = await api.createUpload(fields);
  await postForm(upload.upload_form, file, (fraction) =>
    report({ fraction, text: `${Math.floor(fraction * 100)}%` }),
  );
  report({ fraction: 1, text: "verifying" });
  return api.complete(upload.image_id);
}

async function uploadMultipart(api, file, type, tags, report) {
  const owner = ownerOf(api);
  const id = uploadId(owner, file);
  let state = loadAll()[id] || null;
  const held = new Map();
  if (state) {
    report({ fraction: 0, text: "resuming: asking S3 which parts it holds" });
    try {
      for (const part of await api.listParts(state)) held.set(part.PartNumber, part);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
      // No such upload any more: finished meanwhile, aborted, or expired.
      forget(id);
      const image = await api.get(state.image_id).catch(() => null);
      if (image && image.status === "ready") return image;
      state = null;
    }
  }
  if (!state) {
    report({ fraction: 0, text: "starting a multipart upload" });
    const started = await api.startMultipart(file, type, tags);
    state = {
      owner,
      key: started.key,
      uploadId: started.uploadId,
      image_id: started.image_id,
      part_size: started.part_size,
      name: file.name,
      size: file.size,
      last_modified: file.lastModified,
      started_at: Date.now(),
    };
    remember(id, state);
  }

  const partSize = state.part_size;
  const count = Math.max(1, Math.ceil(file.size / partSize));
  const sizeOf = (number) => Math.min(partSize, file.size - (number - 1) * partSize);
  const etags = new Map();
  const sent = new Map();
  for (let number = 1; number <= count; number++) {
    const part = held.get(number);
    if (part && part.Size === sizeOf(number)) {
      etags.set(number, part.ETag);
      sent.set(number, part.Size);
    }
  }
  const resumed = etags.size;
  const show = () => {
    let total = 0;
    for (const bytes of sent.values()) total += bytes;
    const parts = [];
    for (let number = 1; number <= count; number++) {
      parts.push((sent.get(number) || 0) / sizeOf(number));
    }
    const again = resumed ? `, ${resumed} already at S3` : "";
    report({
      fraction: total / file.size,
      text: `part ${Math.min(count, etags.size + 1)} of ${count}${again}`,
      parts,
    });
  };
  show();

  const queue = [];
  for (let number = 1; number <= count; number++) if (!etags.has(number)) queue.push(number);
  let failure = null;

  const sendPart = async (number) => {
    const start = (number - 1) * partSize;
    const blob = file.slice(start, start + sizeOf(number));
    for (let attempt = 0; ; attempt++) {
      try {
        const { url } = await api.signPart(state, number);
        const etag = await putPart(url, blob, (bytes) => {
          sent.set(number, bytes);
          show();
        });
        sent.set(number, blob.size);
        return etag;
      } catch (error) {
        sent.set(number, 0);
        show();
        const transient =
          error instanceof Interrupted ||
          (error instanceof ApiError && (error.status === 0 || error.status >= 500));
        if (!transient || attempt >= PART_RETRY_DELAYS_MS.length || failure) throw error;
        await sleep(PART_RETRY_DELAYS_MS[attempt]);
      }
    }
  };
  const worker = async () => {
    while (queue.length && !failure) {
      const number = queue.shift();
      try {
        etags.set(number, await sendPart(number));
        show();
      } catch (error) {
        failure = failure || { number, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARTS_AT_ONCE, queue.length) }, worker));
  if (failure) {
    const { number, error } = failure;
    if (error instanceof Rejected) throw error;
    throw new Interrupted(
      `interrupted at part ${number} of ${count} (${error.message}); the parts S3 holds are ` +
        "kept: choose or drop the same file again to resume",
      true,
    );
  }

  if ([...etags.values()].some((etag) => !etag)) {
    // The bucket's CORS hides ETag (no ExposeHeaders: ETag): S3's list of the parts has them.
    for (const part of await api.listParts(state)) {
      if (etags.has(part.PartNumber) && !etags.get(part.PartNumber)) {
        etags.set(part.PartNumber, part.ETag);
      }
    }
    const missing = [...etags.entries()].filter(([, etag]) => !etag).map(([number]) => number);
    if (missing.length) {
      const which = missing.join(", ");
      throw new Interrupted(`S3 does not list part ${which}: choose the file again`, true);
    }
  }

  report({ fraction: 1, text: "assembling and verifying", parts: Array(count).fill(1) });
  const parts = [...etags.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
  try {
    await api.completeMultipart(state, parts);
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      // Assembled, but another request verifies it right now: wait for its verdict.
      forget(id);
      return api.complete(state.image_id);
    }
    if (error instanceof ApiError && error.status >= 400 && error.status < 500) forget(id);
    throw error;
  }
  forget(id);
  return api.get(state.image_id);
}

/** Abort a saved multipart upload (S3 drops its parts) and forget it. */
export async function discard(api, saved) {
  try {
    await api.abortMultipart(saved);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  forget(saved.id);
}
