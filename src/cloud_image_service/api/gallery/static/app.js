// The gallery's entry point: sign-in and sign-out; the modules do the rest.
//
//   api.js        the service's API (JSON, errors, Retry-After)
//   upload.js     bytes to S3: the POST form, or multipart with resume
//   uploader.js   the picker, drops, one row per upload, unfinished uploads
//   grid.js       tiles, pages through next_cursor, the tag filter, delete
//   detail.js     the detail view (preview, metadata, download, delete)
//   variants.js   presigned URLs of variants, waiting while they are made
//   thumbhash.js  the ThumbHash decoder of the placeholders
//
// Everything runs under the page's Content-Security-Policy (scripts and styles from this
// origin only, images and connections to this origin and the S3 endpoint): no inline
// script, handler or style attribute; listeners are attached in these modules, styles are
// classes (or set from JS on element.style, which the CSP allows).
//
// Hooks other code relies on (keep them):
//   sign-in       input[name=user_id], input[name=token], [data-action="sign-in"] (Enter too)
//   uploads       input[type=file][multiple], drops anywhere on the page; per file an
//                 element [data-upload-state="uploading"|"ready"|"rejected"] whose text
//                 names the file and, when rejected, the reason (data-uploaded-id once ready)
//   tiles         [data-image-id] holding an img (the thumb variant) and a button
//                 [data-action="delete"] confirmed by window.confirm()
//   grid pages    grid.js PAGE_SIZE (30) images per request, the next page when the
//                 sentinel below the grid comes within 200 px of the viewport

import { Api } from "./api.js";
import { $, notify, session } from "./common.js";
import { closeDetail } from "./detail.js";
import { clearGrid, resetGrid } from "./grid.js";
import { clearUploads, showResumable } from "./uploader.js";

// The sign-in lives as long as the tab (sessionStorage), never in a URL.
const SESSION_KEY = "cis-gallery-session";
const USER_ID = /^[A-Za-z0-9._@-]{1,128}$/;

const ui = {
  form: $("#sign-in"),
  userId: $("input[name=user_id]"),
  token: $("input[name=token]"),
  who: $("#who"),
  whoName: $("#who-name"),
  workspace: $("#workspace"),
};

function readSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return saved && (saved.user_id || saved.token) ? saved : null;
  } catch {
    return null;
  }
}

async function signIn(credentials) {
  const api = new Api(credentials);
  if (api.userId && !USER_ID.test(api.userId)) {
    notify("A user id is 1-128 characters of A-Z a-z 0-9 . _ @ -", "error");
    return;
  }
  session.api = api;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ user_id: api.userId, token: api.token }));
  ui.token.value = "";
  ui.userId.value = api.userId;
  ui.form.hidden = true;
  ui.whoName.textContent = api.label;
  ui.who.hidden = false;
  ui.workspace.hidden = false;
  notify("");
  showResumable();
  await resetGrid();
}

function signOut(message = "", kind = "info") {
  session.api = null;
  sessionStorage.removeItem(SESSION_KEY);
  closeDetail();
  clearGrid();
  clearUploads();
  ui.workspace.hidden = true;
  ui.who.hidden = true;
  ui.form.hidden = false;
  notify(message, kind);
  ui.userId.focus();
}

session.onRefused = (message) => signOut(message, "error");

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const userId = ui.userId.value.trim();
  const token = ui.token.value.trim();
  if (!userId && !token) {
    notify("Enter a user id (authentication off) or a token or API key.", "error");
    ui.userId.focus();
    return;
  }
  signIn({ user_id: userId, token });
});

$("[data-action=sign-out]").addEventListener("click", () => signOut("Signed out."));

const saved = readSession();
if (saved) signIn(saved);
else ui.userId.focus();
