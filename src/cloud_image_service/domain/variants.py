"""Variants: named thumbnails and previews, made once when an image turns ready.

The transition to `ready` puts the record in the due index under `variants` (in the
same conditional write, so no job is ever lost); the worker finds it there, makes every
configured variant that is missing, stores each at `variants/<image_id>/<name>` and
records them with the ThumbHash placeholder. A failure is retried later with backoff,
never touching the original's status.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cloud_image_service.domain.budget import UNLIMITED, MemoryBudget
from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.domain.models import VARIANTS_DUE, Image, Status, Variant, utcnow
from cloud_image_service.domain.ports import Catalog, Storage
from cloud_image_service.imaging import OutputFormat, UnsupportedImage, make_variants
from cloud_image_service.observability import metrics

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# Retries of a failed variant job: 30 s, 1 min, 2 min... capped; given up after this many.
_BACKOFF_SECONDS, _BACKOFF_CAP_SECONDS, MAX_ATTEMPTS = 30, 3600, 8
# A worker that takes a job pushes its due time this far out: another worker picks the
# job up again only if this one died on it.
JOB_LEASE_SECONDS = 300


@dataclass(frozen=True)
class VariantSpec:
    """A named variant: fits in `size` x `size`."""

    name: str
    size: int


DEFAULT_VARIANTS = "thumb:256,preview:1280"


def parse_variants(spec: str) -> tuple[VariantSpec, ...]:
    """`thumb:256,preview:1280` -> specs; ValueError naming the problem."""
    specs: list[VariantSpec] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, size = part.partition(":")
        if not _NAME.match(name):
            raise ValueError(
                f"variant name {name!r}: 1-32 characters of a-z 0-9 _ -, starting with a "
                "letter or digit"
            )
        if not size.isdigit() or not 16 <= int(size) <= 8192:
            raise ValueError(f"variant {name!r}: size must be 16-8192 pixels (got {size!r})")
        if any(s.name == name for s in specs):
            raise ValueError(f"variant {name!r} is named twice")
        specs.append(VariantSpec(name, int(size)))
    return tuple(specs)


def backoff(attempts: int) -> timedelta:
    """How long to wait before the next try after `attempts` failed ones."""
    return timedelta(
        seconds=min(_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), _BACKOFF_CAP_SECONDS)
    )


class VariantMaker:
    """Makes the missing variants of ready images and records them."""

    def __init__(
        self,
        storage: Storage,
        catalog: Catalog,
        specs: tuple[VariantSpec, ...],
        fmt: OutputFormat = "webp",
        max_pixels: int = 50_000_000,
        budget: MemoryBudget = UNLIMITED,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.specs = specs
        self.fmt: OutputFormat = fmt
        self.max_pixels = max_pixels
        self.budget = budget

    @property
    def names(self) -> tuple[str, ...]:
        """The configured variant names."""
        return tuple(spec.name for spec in self.specs)

    def missing(self, image: Image) -> list[VariantSpec]:
        """Configured variants the image does not have yet."""
        return [spec for spec in self.specs if spec.name not in image.variants]

    def run_due(self, limit: int = 20) -> int:
        """Make the variants of images whose job is due; returns how many were handled."""
        handled = 0
        for image in self.catalog.due(VARIANTS_DUE, int(time.time()), limit):
            if not self._take(image):
                continue  # another worker took it
            self.make(image)
            handled += 1
        return handled

    def _take(self, image: Image) -> bool:
        """Push the job's due time out (a lease), only if nobody else did meanwhile."""
        lease = utcnow() + timedelta(seconds=JOB_LEASE_SECONDS)
        return self.catalog.take_due(image.image_id, VARIANTS_DUE, image.due_at, lease)

    def make(self, image: Image) -> Image:
        """Make what is missing, store and record it; a failure reschedules the job."""
        if image.status not in (Status.READY, Status.TRASHED):
            return image
        missing = self.missing(image)
        if not missing and image.placeholder is not None:
            return self._record(image, {}, image.placeholder) or image
        started = time.perf_counter()
        try:
            made, placeholder = self._render(image, missing)
        except (ServiceError, UnsupportedImage, OSError) as exc:
            metrics.VARIANT_SECONDS.labels("failed").observe(time.perf_counter() - started)
            return self._failed(image, exc)
        metrics.VARIANT_SECONDS.labels("made").observe(time.perf_counter() - started)
        return self._record(image, made, placeholder) or image

    def _render(self, image: Image, missing: list[VariantSpec]) -> tuple[dict[str, Variant], str]:
        sizes = {spec.name: spec.size for spec in missing or self.specs[:1]}
        with tempfile.TemporaryDirectory(prefix="cis-variants-") as folder:
            path = Path(folder) / "original"
            with self.storage.open(image.key) as stream:
                if stream is None:
                    raise UnsupportedImage("the original is missing")
                with path.open("wb") as file:
                    shutil.copyfileobj(stream, file, 1024 * 1024)
            rendered = make_variants(path, sizes, self.fmt, self.max_pixels, self.budget.reserve)
        made: dict[str, Variant] = {}
        for spec in missing:
            out = rendered.variants[spec.name]
            self.storage.put(image.variant_key(spec.name), out.data, out.content_type)
            made[spec.name] = Variant(out.width, out.height, len(out.data), out.content_type)
        return made, rendered.placeholder

    def _record(self, image: Image, made: dict[str, Variant], placeholder: str) -> Image | None:
        """Add the new variants to the record and end its job (only while ready or trashed)."""
        variants = image.variants | made
        changes: dict[str, object] = {"variants": variants, "placeholder": placeholder}
        remove: tuple[str, ...] = ("due_shard", "due_at", "variant_attempts", "variant_error")
        if image.due_kind not in (None, VARIANTS_DUE):
            remove = ("variant_attempts", "variant_error")  # trashed: its purge stays due
        recorded = self.catalog.transition(
            image.image_id, (Status.READY, Status.TRASHED), changes, remove=remove
        )
        if recorded is not None and made:
            names = ", ".join(sorted(made))
            log.info(
                "image %s: variants %s made",
                image.image_id,
                names,
                extra={"image_id": image.image_id, "action": "variants made"},
            )
        return recorded

    def _failed(self, image: Image, exc: Exception) -> Image:
        attempts = image.variant_attempts + 1
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        log.warning("image %s: variants failed (try %d): %s", image.image_id, attempts, reason)
        changes: dict[str, object] = {"variant_attempts": attempts, "variant_error": reason}
        remove: tuple[str, ...] = ()
        if attempts < MAX_ATTEMPTS:
            changes |= {"due_at": utcnow() + backoff(attempts), "due_kind": VARIANTS_DUE}
        else:  # given up: `variants backfill` or fsck --repair tries again
            remove = ("due_shard", "due_at")
        updated = self.catalog.transition(
            image.image_id, (Status.READY, Status.TRASHED), changes, remove=remove
        )
        return updated or image
