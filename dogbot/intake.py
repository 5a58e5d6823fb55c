"""Photo intake for many senders at once: each photo decoded, stored, then all classified in one batch.

Unlike :meth:`Catalog.submit_many` one bad file does not fail its neighbours: every item gets its own
outcome. A photo that decoded is stored before the model sees it, so a classification failure
leaves it in the catalog, waiting for review, and the sender can be told so.

Memory: a photo is decoded, its statistics taken, and it is shrunk to the model's input before the
next one is decoded. A 100 KB PNG can hold 40 megapixels (119 MB decoded); holding every decoded
photo of a batch until classification took a process from 1 to 2.5 GB (bench/README.md, "Memory").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from dogbot.catalog import Catalog, Classification
from ml.images import ImageRejected
from storage.tables import Photo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    data: bytes
    sender_id: int | None = None
    chat_id: int | None = None
    file_name: str | None = None


@dataclass(frozen=True)
class Received:
    """What became of one incoming file; exactly one of the three outcomes is set."""

    classification: Classification | None = None
    stored: Photo | None = None  # stored, but classification failed: it waits for review
    rejected: ImageRejected | None = None


def receive(catalog: Catalog, items: Sequence[Incoming], *, source: str = "telegram") -> list[Received]:
    """Decode, store and classify ``items``; never raises for one bad item (storage errors do raise)."""
    results: list[Received | None] = [None] * len(items)
    stored: list[tuple[int, tuple[Photo, bool], object]] = []  # (position, stored photo, model input)
    for i, item in enumerate(items):
        try:
            image = catalog.decode(item.data)
        except ImageRejected as rejected:
            results[i] = Received(rejected=rejected)
            continue
        photo = catalog.store_photo(
            item.data,
            image,
            source=source,
            sender_id=item.sender_id,
            chat_id=item.chat_id,
            file_name=item.file_name,
        )
        stored.append((i, photo, catalog.predictor.prepare(image)))
        del image  # before the next decode: one full-size photo in memory at a time
    if stored:
        try:
            classified = catalog.classify_stored([p for _, p, _ in stored], [x for _, _, x in stored])
        except Exception:
            # The photos are safe in the catalog; a person will label them from /review.
            log.exception("classification failed for %d stored photo(s)", len(stored))
            for i, (photo, _), _ in stored:
                results[i] = Received(stored=photo)
        else:
            for (i, _, _), classification in zip(stored, classified, strict=True):
                results[i] = Received(classification=classification)
    return [result for result in results if result is not None]
