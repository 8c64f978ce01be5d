// The grid: tiles of the `thumb` variant over their ThumbHash placeholder, pages followed
// through `next_cursor` as the sentinel below the grid nears the viewport, a tag filter,
// delete with confirmation, and the keyboard (Tab to a tile, arrows between tiles, Enter
// opens it, Delete deletes it).

import { ApiError } from "./api.js";
import { $, element, nameOf, notify, refused, session } from "./common.js";
import { paintPlaceholder } from "./thumbhash.js";
import { GONE, imageUrl } from "./variants.js";

export const PAGE_SIZE = 30; // images per list request

const ui = {
  grid: $("#grid"),
  sentinel: $("#sentinel"),
  status: $("#grid-status"),
  filterForm: $("#filter"),
  filterTag: $("input[name=tag]"),
  filterLabel: $("#filter-label"),
};

const grid = {
  tiles: new Map(), // image id -> {element, img, canvas, image, fresh}
  tag: "",
  cursor: null,
  exhausted: false,
  loading: false,
  failed: false,
  generation: 0, // bumped by every reset: answers for an older grid are dropped
};

/** "open" (detail: {imageId}) and "deleted" ({imageId, neighbour}) happen here. */
export const gridEvents = new EventTarget();

const emit = (type, detail) => gridEvents.dispatchEvent(new CustomEvent(type, { detail }));

/** The tile of an image: {element, img, canvas, image, fresh}, or undefined. */
export function tileEntry(imageId) {
  return grid.tiles.get(imageId);
}

const observer = new IntersectionObserver(
  (entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadMore();
  },
  { rootMargin: "0px 0px 200px 0px" },
);

/** Look again: a page that left the sentinel in view asks for the next one. */
function watchSentinel() {
  observer.unobserve(ui.sentinel);
  if (session.api && !grid.exhausted && !grid.failed) observer.observe(ui.sentinel);
}

/** Empty the grid (signed out). */
export function clearGrid() {
  grid.generation++;
  grid.tiles.clear();
  grid.cursor = null;
  grid.exhausted = false;
  grid.loading = false;
  grid.failed = false;
  observer.unobserve(ui.sentinel);
  ui.grid.replaceChildren();
  setStatus("");
}

/** Start again from the first page (signed in, or another filter). */
export async function resetGrid() {
  clearGrid();
  ui.filterLabel.textContent = grid.tag ? `Tag: ${grid.tag}` : "All images";
  await loadMore();
}

function setStatus(text, retry = false) {
  ui.status.replaceChildren(text);
  if (retry) {
    const button = element("button", {
      text: "Retry",
      attrs: { type: "button", "data-action": "retry-list" },
    });
    button.addEventListener("click", () => loadMore());
    ui.status.append(" ", button);
  }
}

function showCount() {
  if (!grid.exhausted) return;
  if (grid.tiles.size) setStatus(`${grid.tiles.size} images, that is all.`);
  else setStatus(grid.tag ? `No image tagged “${grid.tag}”.` : "No images yet: upload some.");
}

async function loadMore() {
  const api = session.api;
  if (!api || grid.loading || grid.exhausted) return;
  const generation = grid.generation;
  grid.loading = true;
  grid.failed = false;
  setStatus("Loading…");
  ui.grid.setAttribute("aria-busy", "true");
  try {
    const page = await api.list({
      tag: grid.tag || undefined,
      cursor: grid.cursor || undefined,
      limit: PAGE_SIZE,
    });
    if (generation !== grid.generation) return;
    for (const image of page.items) addTile(image, "end");
    grid.cursor = page.next_cursor;
    grid.exhausted = !page.next_cursor;
    setStatus("");
    showCount();
  } catch (error) {
    if (generation !== grid.generation || refused(error)) return;
    grid.failed = true;
    setStatus(`Could not load images: ${error.message}.`, true);
  } finally {
    if (generation === grid.generation) {
      grid.loading = false;
      ui.grid.removeAttribute("aria-busy");
      watchSentinel();
    }
  }
}

/** Show the images with this tag only ("" : all). */
export function setFilter(tag) {
  grid.tag = tag.trim();
  ui.filterTag.value = grid.tag;
  resetGrid();
}

ui.filterForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setFilter(ui.filterTag.value);
});

$("[data-action=clear-filter]").addEventListener("click", () => setFilter(""));

function addTile(image, where, fresh = false) {
  if (grid.tiles.has(image.image_id)) return;
  const name = nameOf(image);
  const canvas = element("canvas", { className: "placeholder", attrs: { "aria-hidden": "true" } });
  const painted = paintPlaceholder(canvas, image.placeholder);
  const img = element("img", { attrs: { alt: name, decoding: "async", draggable: "false" } });
  const remove = element("button", {
    className: "tile-delete",
    text: "×",
    attrs: {
      type: "button",
      "data-action": "delete",
      "aria-label": `Delete ${name}`,
      title: `Delete ${name}`,
    },
  });
  const tile = element(
    "li",
    {
      className: painted ? "tile" : "tile no-placeholder",
      attrs: { "data-image-id": image.image_id, tabindex: "0", "aria-label": name },
    },
    [canvas, img, remove],
  );
  const entry = { element: tile, img, canvas, image, fresh };
  grid.tiles.set(image.image_id, entry);
  if (where === "start") ui.grid.prepend(tile);
  else ui.grid.append(tile);
  loadThumb(entry);
}

/** A just-uploaded image: first in the grid when it belongs to the current filter. */
export function addUploaded(image) {
  if (grid.tag && !(image.tags || []).includes(grid.tag)) return;
  addTile(image, "start", true);
  showCount();
}

async function loadThumb(entry, retried = false) {
  const { element: tile, img, canvas } = entry;
  const api = session.api;
  const paint = (fresh) => {
    if (tile.classList.contains("no-placeholder") && paintPlaceholder(canvas, fresh.placeholder)) {
      tile.classList.remove("no-placeholder");
    }
  };
  let url;
  try {
    url = await imageUrl(entry, "thumb", paint);
  } catch (error) {
    if (error instanceof ApiError && error.code === GONE) return;
    if (api === session.api && refused(error)) return;
    tile.classList.add("thumb-failed");
    tile.title = `No thumbnail: ${error.message}`;
    return;
  }
  if (!tile.isConnected || api !== session.api) return;
  img.addEventListener(
    "load",
    () => {
      tile.classList.add("loaded");
      tile.dataset.thumb = "loaded";
    },
    { once: true },
  );
  img.addEventListener(
    "error",
    () => {
      if (!retried && tile.isConnected) loadThumb(entry, true); // e.g. an expired URL
      else tile.classList.add("thumb-failed");
    },
    { once: true },
  );
  img.src = url;
}

function tileOf(node) {
  return node && node.closest ? node.closest("[data-image-id]") : null;
}

ui.grid.addEventListener("click", (event) => {
  const tile = tileOf(event.target);
  if (!tile) return;
  if (event.target.closest("[data-action=delete]")) {
    event.stopPropagation();
    deleteImage(tile.dataset.imageId);
    return;
  }
  emit("open", { imageId: tile.dataset.imageId });
});

ui.grid.addEventListener("keydown", (event) => {
  const tile = tileOf(event.target);
  if (!tile || event.target !== tile) return; // the delete button handles its own keys
  const tiles = [...ui.grid.children];
  const index = tiles.indexOf(tile);
  const columns = Math.max(
    1,
    tiles.filter((other) => other.offsetTop === tiles[0].offsetTop).length,
  );
  const moves = {
    ArrowRight: 1,
    ArrowLeft: -1,
    ArrowDown: columns,
    ArrowUp: -columns,
    Home: -index,
    End: tiles.length - 1 - index,
  };
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    emit("open", { imageId: tile.dataset.imageId });
  } else if (event.key === "Delete") {
    event.preventDefault();
    deleteImage(tile.dataset.imageId);
  } else if (event.key in moves) {
    const target = tiles[index + moves[event.key]];
    if (target) {
      event.preventDefault();
      target.focus();
    }
  }
});

/** Delete an image once the user confirms (window.confirm), and its tile. */
export async function deleteImage(imageId) {
  const entry = grid.tiles.get(imageId);
  const api = session.api;
  if (!entry || !api) return;
  const name = nameOf(entry.image);
  if (!window.confirm(`Delete “${name}”? This cannot be undone.`)) return;
  try {
    await api.remove(imageId);
  } catch (error) {
    if (refused(error)) return;
    if (!(error instanceof ApiError && error.status === 404)) {
      notify(`Could not delete ${name}: ${error.message}`, "error");
      return;
    }
  }
  const tiles = [...ui.grid.children];
  const index = tiles.indexOf(entry.element);
  const neighbour = tiles[index + 1] || tiles[index - 1] || null;
  const hadFocus = entry.element.contains(document.activeElement);
  entry.element.remove();
  grid.tiles.delete(imageId);
  notify(`Deleted ${name}.`);
  showCount();
  emit("deleted", { imageId, neighbour });
  if (hadFocus && neighbour) neighbour.focus();
}
