"""Labeled photo lists: a CSV with ``path`` (relative to the CSV) and ``breed``, or one folder per breed."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"}


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    breed: str  # as written: a breed key, display name, alias, ImageNet name or not_a_dog
    extra: dict  # the CSV's other columns (e.g. imagenet_overlap)


def read_manifest(csv_path: Path) -> list[ManifestRow]:
    csv_path = Path(csv_path)
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "breed"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path} lacks column(s) {', '.join(sorted(missing))}")
        return [
            ManifestRow(
                csv_path.parent / row["path"],
                row["breed"].strip(),
                {k: v for k, v in row.items() if k not in ("path", "breed")},
            )
            for row in reader
        ]


def read_folder(root: Path) -> list[ManifestRow]:
    """``root/<breed name>/<photo>``: the layout a shelter's existing photo archive often has.

    Each photo is a dog of its own, unless it is in a sub-folder of its breed's folder
    (``root/<breed>/<dog>/<photo>``): the photos of one sub-folder are one dog (its ``dog`` value).
    """
    rows = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                inner = path.parent.relative_to(folder)
                extra = {"dog": f"{folder.name}/{inner.as_posix()}"} if inner.parts else {}
                rows.append(ManifestRow(path, folder.name.replace("_", " "), extra))
    return rows


def image_paths(paths: list[Path]) -> Iterator[Path]:
    """Files as given, and the images inside any folder given."""
    for path in paths:
        if path.is_dir():
            yield from (
                p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            yield path
