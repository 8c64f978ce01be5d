// The detail view: a modal <dialog> with the `preview` variant (over the placeholder), the
// metadata, the original's download, and delete. Escape closes it (the dialog's own cancel)
// and the focus goes back to the tile.

import { $, element, formatBytes, nameOf, notify, refused, session } from "./common.js";
import { deleteImage, gridEvents, setFilter, tileEntry } from "./grid.js";
import { paintPlaceholder } from "./thumbhash.js";
import { imageUrl } from "./variants.js";

const ui = {
  dialog: $("#detail"),
  title: $("#detail-title"),
  meta: $("#detail-meta"),
  media: $("#detail-media"),
  canvas: $("#detail-media canvas"),
  img: $("#detail-media img"),
  status: $("#detail-status"),
};

const state = { generation: 0, returnFocus: null };

function metaRow(label, value) {
  if (value === null || value === undefined || value === "") return [];
  const content = value instanceof Node ? value : document.createTextNode(String(value));
  return [element("dt", { text: label }), element("dd", {}, [content])];
}

function tagButtons(tags) {
  if (!tags || !tags.length) return null;
  const list = element("span", { className: "tags" });
  for (const tag of tags) {
    const button = element("button", {
      className: "tag",
      text: tag,
      attrs: { type: "button", "data-tag": tag, title: `Show the images tagged ${tag}` },
    });
    list.append(button, " ");
  }
  return list;
}

function fill(image) {
  ui.title.textContent = nameOf(image);
  const dimensions = image.width && image.height ? `${image.width} × ${image.height}` : "";
  const created = image.created_at ? new Date(image.created_at).toLocaleString() : "";
  ui.meta.replaceChildren(
    ...metaRow("Type", image.content_type),
    ...metaRow("Size", image.size ? formatBytes(image.size) : ""),
    ...metaRow("Dimensions", dimensions),
    ...metaRow("Uploaded", created),
    ...metaRow("Tags", tagButtons(image.tags)),
    ...metaRow("Description", image.description),
    ...metaRow("SHA-256", image.sha256),
  );
}

function paint(image) {
  if (ui.media.classList.contains("loaded")) return;
  ui.media.classList.toggle("no-placeholder", !paintPlaceholder(ui.canvas, image.placeholder));
}

export function openDetail(imageId) {
  const entry = tileEntry(imageId);
  const api = session.api;
  if (!entry || !api) return;
  const generation = ++state.generation;
  const current = () => generation === state.generation;
  const image = entry.image;
  ui.dialog.dataset.detailId = imageId;
  state.returnFocus = entry.element;
  fill(image);
  ui.media.classList.remove("loaded");
  ui.img.removeAttribute("src");
  ui.img.alt = nameOf(image);
  paint(image);
  if (image.width && image.height) {
    ui.media.style.aspectRatio = `${image.width} / ${image.height}`; // JS-set: CSP allows it
  } else {
    ui.media.style.removeProperty("aspect-ratio");
  }
  ui.status.textContent = "Loading the preview…";
  if (!ui.dialog.open) ui.dialog.showModal();
  $("[data-action=close]", ui.dialog).focus();

  // Fresh metadata: variants and placeholder may have been made since the list.
  api.get(imageId).then(
    (fresh) => {
      if (!current()) return;
      entry.image = fresh;
      fill(fresh);
      paint(fresh);
    },
    () => {},
  );

  imageUrl(entry, "preview").then(
    (url) => {
      if (!current()) return;
      ui.img.addEventListener(
        "load",
        () => {
          if (!current()) return;
          ui.media.classList.add("loaded");
          ui.status.textContent = "";
        },
        { once: true },
      );
      ui.img.src = url;
    },
    (error) => {
      if (current() && !refused(error)) ui.status.textContent = `No preview: ${error.message}`;
    },
  );
}

export function closeDetail() {
  if (ui.dialog.open) ui.dialog.close();
}

async function downloadOriginal(imageId, button) {
  button.disabled = true;
  try {
    const url = await session.api.downloadUrl(imageId, { disposition: "attachment" });
    // The URL answers with Content-Disposition: attachment: the browser saves the file
    // and the page stays.
    const link = element("a", { attrs: { href: url, download: "" } });
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    if (!refused(error)) notify(`Could not download: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

ui.dialog.addEventListener("click", (event) => {
  if (event.target === ui.dialog) {
    ui.dialog.close(); // a click on the backdrop
    return;
  }
  const tagButton = event.target.closest("[data-tag]");
  if (tagButton) {
    ui.dialog.close();
    setFilter(tagButton.dataset.tag);
    return;
  }
  const button = event.target.closest("[data-action]");
  if (!button) return;
  const imageId = ui.dialog.dataset.detailId;
  const action = button.dataset.action;
  if (action === "close") ui.dialog.close();
  else if (action === "delete") deleteImage(imageId);
  else if (action === "download") downloadOriginal(imageId, button);
});

ui.dialog.addEventListener("close", () => {
  state.generation++;
  ui.img.removeAttribute("src");
  const target = state.returnFocus;
  state.returnFocus = null;
  if (target && target.isConnected) target.focus();
});

gridEvents.addEventListener("open", (event) => openDetail(event.detail.imageId));

gridEvents.addEventListener("deleted", (event) => {
  const { imageId, neighbour } = event.detail;
  if (ui.dialog.open && ui.dialog.dataset.detailId === imageId) {
    state.returnFocus = neighbour;
    ui.dialog.close();
  }
});
