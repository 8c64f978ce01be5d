// The upload side of the page: the file picker, drops anywhere on the page, one row per
// file with its progress (and one bar per part for a multipart upload), its state and, when
// rejected, the reason; and the unfinished multipart uploads a reload left behind.

import { $, element, formatBytes, limiter, notify, refused, session } from "./common.js";
import { addUploaded } from "./grid.js";
import {
  Interrupted,
  Rejected,
  discard,
  ownerOf,
  savedUploads,
  uploadFile,
  uploadId,
} from "./upload.js";

const FILES_AT_ONCE = 3;

const ui = {
  picker: $("#picker"),
  tags: $("input[name=upload_tags]"),
  dropZone: $("#drop-zone"),
  resumable: $("#resumable"),
  resumableList: $("#resumable-list"),
  uploads: $("#uploads"),
};

const fileSlots = limiter(FILES_AT_ONCE);

function uploadRow(file) {
  const name = element("span", { className: "upload-name", text: file.name });
  const size = element("span", { className: "upload-size", text: ` (${formatBytes(file.size)})` });
  const status = element("span", { className: "upload-status", text: " — waiting" });
  const bar = element("progress", { attrs: { max: "1", value: "0" } });
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const parts = element("span", { className: "upload-parts", attrs: { "aria-hidden": "true" } });
  const row = element("li", { className: "upload", attrs: { "data-upload-state": "uploading" } }, [
    element("span", { className: "upload-line" }, [name, size, status]),
    bar,
    parts,
  ]);
  ui.uploads.prepend(row);
  return { row, status, bar, parts };
}

function showParts(view, fractions) {
  if (!fractions) return;
  if (view.parts.childElementCount !== fractions.length) {
    view.parts.replaceChildren(
      ...fractions.map(() => element("progress", { className: "part", attrs: { max: "1" } })),
    );
  }
  fractions.forEach((fraction, index) => {
    view.parts.children[index].value = fraction;
  });
}

/** Upload files, FILES_AT_ONCE at a time, each with the tags typed for new uploads. */
export function uploadFiles(files) {
  const api = session.api;
  if (!api || !files.length) return;
  const tags = ui.tags.value
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
  for (const file of files) {
    const view = uploadRow(file);
    removeResumable(uploadId(ownerOf(api), file));
    fileSlots(() => uploadOne(api, file, tags, view));
  }
}

async function uploadOne(api, file, tags, view) {
  if (api !== session.api) return; // signed out meanwhile
  const report = ({ fraction, text, parts }) => {
    view.bar.value = fraction;
    view.status.textContent = ` — uploading: ${text}`;
    showParts(view, parts);
  };
  try {
    const image = await uploadFile(api, file, { tags, report });
    view.row.dataset.uploadState = "ready";
    view.row.dataset.uploadedId = image.image_id;
    view.bar.value = 1;
    view.status.textContent = " — ready";
    if (api === session.api) addUploaded(image);
  } catch (error) {
    if (api === session.api && refused(error)) return;
    let reason = error && error.message ? error.message : String(error);
    if (error instanceof Interrupted) reason = `upload failed: ${reason}`;
    else if (!(error instanceof Rejected)) reason = `error: ${reason}`;
    view.row.dataset.uploadState = "rejected";
    view.status.textContent = ` — rejected: ${reason}`;
    view.row.title = reason;
    if (error instanceof Interrupted && error.resumable) showResumable();
  }
}

/** Forget the rows (signed out). */
export function clearUploads() {
  ui.uploads.replaceChildren();
  ui.resumableList.replaceChildren();
  ui.resumable.hidden = true;
}

$("[data-action=clear-uploads]").addEventListener("click", () => {
  for (const row of [...ui.uploads.children]) {
    if (row.dataset.uploadState !== "uploading") row.remove();
  }
});

/** The unfinished multipart uploads of the signed-in user, each with a Discard button. */
export function showResumable() {
  const api = session.api;
  if (!api) return;
  const saved = savedUploads(ownerOf(api));
  ui.resumableList.replaceChildren(
    ...saved.map((state) => {
      const button = element("button", {
        text: "Discard",
        attrs: { type: "button", "data-action": "discard" },
      });
      const text =
        `${state.name} (${formatBytes(state.size)}): interrupted. ` +
        "Choose or drop the same file to resume. ";
      const item = element("li", { attrs: { "data-resumable": state.id } }, [
        element("span", { text }),
        button,
      ]);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await discard(api, state);
          removeResumable(state.id);
        } catch (error) {
          button.disabled = false;
          if (!refused(error)) {
            notify(`Could not discard ${state.name}: ${error.message}`, "error");
          }
        }
      });
      return item;
    }),
  );
  ui.resumable.hidden = saved.length === 0;
}

function removeResumable(id) {
  for (const item of ui.resumableList.querySelectorAll("[data-resumable]")) {
    if (item.dataset.resumable === id) item.remove();
  }
  ui.resumable.hidden = !ui.resumableList.childElementCount;
}

ui.picker.addEventListener("change", () => {
  uploadFiles([...ui.picker.files]);
  ui.picker.value = ""; // choosing the same file again (to resume) fires change again
});

ui.dropZone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    ui.picker.click();
  }
});

// Drops anywhere on the page (listened to on window): never let the browser open the file.
let dragDepth = 0;
const carriesFiles = (event) =>
  event.dataTransfer && [...(event.dataTransfer.types || [])].includes("Files");

window.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth++;
  if (session.api) document.body.classList.add("dragging");
});
window.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = session.api ? "copy" : "none";
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) document.body.classList.remove("dragging");
});
window.addEventListener("drop", (event) => {
  dragDepth = 0;
  document.body.classList.remove("dragging");
  const files = event.dataTransfer ? [...event.dataTransfer.files] : [];
  if (!files.length) return;
  event.preventDefault();
  if (!session.api) {
    notify("Sign in first, then drop your images.", "error");
    return;
  }
  uploadFiles(files);
});
