// The service's public API, as the gallery uses it: JSON in and out, errors as ApiError.
//
// Credentials: with authentication off a `user_id` names the user (sent in bodies and in the
// list query); otherwise a token, sent as `X-API-Key` when it is an API key (`cis_...`) and
// as `Authorization: Bearer` otherwise. Neither ever goes into a URL.

/** An answer of the API that was not a success, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retry-After (seconds, or an HTTP date) in milliseconds, within [250 ms, 30 s]; else null. */
export function retryAfterMs(value) {
  if (!value) return null;
  let ms = Number(value) * 1000;
  if (Number.isNaN(ms)) ms = Date.parse(value) - Date.now();
  if (Number.isNaN(ms)) return null;
  return Math.min(30_000, Math.max(250, ms));
}

// 409s that mean "not yet": retried after Retry-After.
const NOT_YET = new Set(["verification_in_progress", "variant_not_ready"]);

export class Api {
  /** @param {{user_id?: string, token?: string}} session */
  constructor(session) {
    this.userId = (session.user_id || "").trim();
    this.token = (session.token || "").trim();
  }

  /** Whether a token or API key is used (authentication on). */
  get usesToken() {
    return this.token !== "";
  }

  /** Who is signed in, for the page (never the token itself): a JWT's `sub` is shown. */
  get label() {
    if (this.userId) return this.userId;
    if (this.token.startsWith("cis_")) return "API key";
    try {
      const payload = this.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const sub = JSON.parse(atob(payload + "===".slice((payload.length + 3) % 4))).sub;
      if (typeof sub === "string" && sub) return `${sub} (token)`;
    } catch {
      // not a JWT we can read: the service will say whether it accepts it
    }
    return "token";
  }

  headers(json) {
    const headers = { Accept: "application/json" };
    if (json) headers["Content-Type"] = "application/json";
    if (this.token.startsWith("cis_")) headers["X-API-Key"] = this.token;
    else if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  /** `body` plus the user id when one was given (authentication off needs it). */
  withUser(body) {
    return this.userId ? { user_id: this.userId, ...body } : body;
  }

  async request(method, path, { body, query } = {}) {
    let url = path;
    if (query) {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query)) {
        if (value !== undefined && value !== null && value !== "") params.set(name, value);
      }
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: this.headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network", "the service cannot be reached (network error)");
    }
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("json")) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const code = (data && data.code) || `http_${response.status}`;
      const message =
        (data && (data.message || data.detail)) || `${response.status} ${response.statusText}`;
      throw new ApiError(
        response.status,
        code,
        String(message),
        retryAfterMs(response.headers.get("Retry-After")),
      );
    }
    return data;
  }

  /**
   * `send()` again while it fails with a "not yet" 409 (or a 503 with Retry-After), waiting
   * what Retry-After says each time, for at most `seconds`.
   */
  async settle(send, seconds = 90) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      try {
        return await send();
      } catch (error) {
        const retryable =
          error instanceof ApiError &&
          ((error.status === 409 && NOT_YET.has(error.code)) ||
            (error.status === 503 && error.retryAfterMs !== null) ||
            error.status === 429);
        const wait = (error && error.retryAfterMs) || 1000;
        if (!retryable || Date.now() + wait > deadline) throw error;
        await sleep(wait);
      }
    }
  }

  list({ tag, cursor, limit }) {
    const query = { limit, tag, cursor, user_id: this.userId || undefined };
    return this.request("GET", "/images", { query });
  }

  get(imageId) {
    return this.request("GET", `/images/${encodeURIComponent(imageId)}`);
  }

  createUpload(fields) {
    return this.request("POST", "/images/upload", { body: this.withUser(fields) });
  }

  /** Verify the upload: the image (ready), or an ApiError 422 with the reason. */
  complete(imageId) {
    const path = `/images/${encodeURIComponent(imageId)}/complete`;
    return this.settle(() => this.request("POST", path));
  }

  /** A presigned URL of the original or of a variant; waits while the variant is made. */
  async downloadUrl(imageId, { variant, disposition = "inline", seconds = 120, gate } = {}) {
    const path = `/images/${encodeURIComponent(imageId)}/download`;
    const query = { disposition, variant };
    const send = () => this.request("GET", path, { query });
    // `gate` limits requests at once; the waits between them hold no slot.
    const answer = await this.settle(gate ? () => gate(send) : send, seconds);
    return answer.download_url;
  }

  remove(imageId) {
    return this.request("DELETE", `/images/${encodeURIComponent(imageId)}`);
  }

  // Multipart (Uppy's Companion protocol under /s3).

  startMultipart(file, contentType, tags) {
    const metadata = { size: String(file.size) };
    if (this.userId) metadata.user_id = this.userId;
    if (tags.length) metadata.tags = tags;
    const body = { filename: file.name, type: contentType, metadata };
    return this.request("POST", "/s3/multipart", { body });
  }

  signPart(upload, number) {
    const path = `/s3/multipart/${encodeURIComponent(upload.uploadId)}/${number}`;
    return this.request("GET", path, { query: { key: upload.key } });
  }

  listParts(upload) {
    const path = `/s3/multipart/${encodeURIComponent(upload.uploadId)}`;
    return this.request("GET", path, { query: { key: upload.key } });
  }

  completeMultipart(upload, parts) {
    const path = `/s3/multipart/${encodeURIComponent(upload.uploadId)}/complete`;
    return this.request("POST", path, { query: { key: upload.key }, body: { parts } });
  }

  abortMultipart(upload) {
    const path = `/s3/multipart/${encodeURIComponent(upload.uploadId)}`;
    return this.request("DELETE", path, { query: { key: upload.key } });
  }
}
