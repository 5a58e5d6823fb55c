"""Bulk intake for `dogbot import` and `dogbot ingest`: many files, batched through the model.

One bad file never stops the rest: it is reported with its reason and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from dogbot.catalog import Catalog, Classification
from ml.images import ImageRejected
from storage.tables import LabelSource, Photo


@dataclass(frozen=True)
class BulkItem:
    path: Path
    label: str | None = None  # a breed key or special label, for imports


@dataclass(frozen=True)
class BulkResult:
    path: Path
    classification: Classification | None = None
    error: str | None = None


def submit_files(
    catalog: Catalog,
    items: Sequence[BulkItem],
    *,
    source: str,
    user_id: int | None = None,
    batch_size: int = 16,
    progress: Callable = lambda iterable, **_: iterable,
) -> list[BulkResult]:
    """Store, classify and (for imports) label each file; return one result per item, in order."""
    results: dict[int, BulkResult] = {}
    batch: list[tuple[int, Photo, bool, Image.Image]] = []

    def flush() -> None:
        stored = [(photo, known) for _, photo, known, _ in batch]
        classified = catalog.classify_stored(stored, [image for *_, image in batch])
        for (position, *_), classification in zip(batch, classified, strict=True):
            label = items[position].label
            if label is not None:
                catalog.record_label(
                    classification.photo.id,
                    label,
                    source=LabelSource.IMPORT,
                    user_id=user_id,
                    prediction_id=classification.prediction.id,
                )
            results[position] = BulkResult(items[position].path, classification)
        batch.clear()

    for position, item in enumerate(progress(items, desc=source, unit="photo")):
        try:
            data = item.path.read_bytes()
            image = catalog.decode(data)
        except ImageRejected as error:
            results[position] = BulkResult(item.path, error=error.message)
            continue
        except OSError as error:
            results[position] = BulkResult(item.path, error=f"cannot read file: {error.strerror or error}")
            continue
        photo, known = catalog.store_photo(data, image, source=source, file_name=item.path.name)
        batch.append((position, photo, known, image))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return [results[i] for i in range(len(items))]
