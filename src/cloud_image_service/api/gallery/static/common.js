// What the gallery's modules share: the signed-in API client, the notice line, DOM helpers.

/** The session: `api` is an Api once signed in, null otherwise. */
export const session = {
  api: null,
  // Called with the message when the service refuses the credential (401): app.js signs out.
  onRefused: () => {},
};

export const $ = (selector, root = document) => root.querySelector(selector);

/** A new element: `element("li", {className, text, attrs}, [children])`. */
export function element(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const notice = $("#notice");

/** One line for the user at the top of the page (role=status); "" hides it. */
export function notify(message, kind = "info") {
  notice.textContent = message;
  notice.dataset.kind = kind;
  notice.hidden = !message;
}

/** A 401 anywhere: the credential is not (or no longer) accepted. True if it was one. */
export function refused(error) {
  if (error && error.name === "ApiError" && error.status === 401) {
    session.onRefused(`Sign-in refused: ${error.message}`);
    return true;
  }
  return false;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** What to call an image: its file name, else the start of its id. */
export function nameOf(image) {
  return image.filename || `image ${image.image_id.slice(0, 8)}`;
}

/** A gate letting at most `limit` tasks (functions returning promises) run at once. */
export function limiter(limit) {
  let active = 0;
  const waiting = [];
  const next = () => {
    if (active >= limit || !waiting.length) return;
    active++;
    const { task, resolve, reject } = waiting.shift();
    Promise.resolve()
      .then(task)
      .then(resolve, reject)
      .finally(() => {
        active--;
        next();
      });
  };
  return (task) =>
    new Promise((resolve, reject) => {
      waiting.push({ task, resolve, reject });
      next();
    });
}
