"""Dogs as shelter software imports them: Animal Shelter Manager 3's CSV import (``--format asm3``).

One row per dog. Every column is one of ASM's importer fields (``VALID_FIELDS`` in ASM3's
``csvimport.py``); ASM requires ``ANIMALNAME``, so a dog without a name goes by its code. Dates are
``YYYY-MM-DD``, which ASM reads as year-month-day whatever its locale. ``ANIMALIMAGE`` is the dog's
best photo as a ``data:image/jpeg;base64,`` URI, which the importer stores as the animal's picture.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Iterable

from PIL import Image, ImageOps

from dogbot.core.dogs import DogAnswer, Dogs
from storage.vocabulary import Sex

ASM3_COLUMNS = (
    "ANIMALCODE",
    "ANIMALNAME",
    "ANIMALSPECIES",
    "ANIMALSEX",
    "ANIMALBREED1",
    "ANIMALBREED2",
    "ANIMALENTRYDATE",
    "ANIMALCOMMENTS",
    "ANIMALIMAGE",
)
_SEX = {Sex.MALE: "Male", Sex.FEMALE: "Female", Sex.UNKNOWN: "Unknown"}
MIXED = "Mixed Breed"  # ASM's own name for a dog of unknown cross
# A catalog picture, not the original: at most this many characters of base64, so every CSV reader
# copes (Python's csv refuses fields over 128 KiB by default); it is shrunk until it fits.
IMAGE_MAX_CHARS = 100_000
IMAGE_SIDE = 800


def export_asm3(dogs: Dogs) -> str:
    """Every dog with at least one photo, oldest first, as ASM3 import CSV."""
    rows = (
        asm3_row(answer, breed_name=dogs.breeds.breed_name, photo_bytes=dogs.photo_bytes, who=_who)
        for answer in dogs.answers()
        if answer.photos
    )
    return asm3_csv(rows)


def _who(user_id: int | None) -> str:
    return f"Telegram user {user_id}" if user_id is not None else "a shelter import"


def asm3_row(
    answer: DogAnswer,
    *,
    breed_name: Callable[[str], str],
    photo_bytes: Callable[[object], bytes],
    who: Callable[[int | None], str],
) -> dict[str, str]:
    dog, breed = answer.dog, answer.breed
    if breed is None:
        first, second = "", ""
    else:
        first = breed_name(breed.primary) if breed.primary else MIXED
        second = breed_name(breed.secondary) if breed.secondary else ""
        if breed.mix and not second and breed.primary:
            second = MIXED  # "Labrador Retriever mix": ASM records a cross as two breeds
    return {
        "ANIMALCODE": dog.code,
        "ANIMALNAME": dog.name or dog.code,
        "ANIMALSPECIES": "Dog",
        "ANIMALSEX": _SEX.get(dog.sex, "Unknown"),
        "ANIMALBREED1": first,
        "ANIMALBREED2": second,
        "ANIMALENTRYDATE": dog.intake_at.date().isoformat(),
        "ANIMALCOMMENTS": _comments(answer, who),
        "ANIMALIMAGE": _jpeg_uri(photo_bytes(answer.best_photo)) if answer.best_photo is not None else "",
    }


def _comments(answer: DogAnswer, who: Callable[[int | None], str]) -> str:
    parts = []
    if answer.label is not None:
        label = answer.label.label
        by = f"the web API client {label.user_name}" if label.user_name else who(label.user_id)
        parts.append(f"Breed from dogbot, confirmed by {by} ({label.source}).")
    elif answer.breed is not None:
        parts.append(f"Breed from dogbot's model ({answer.output.model_version}), not checked by staff.")
    else:
        parts.append("Breed not known yet: dogbot is waiting for staff to answer.")
    parts.append(f"Age group: {answer.dog.age_group}. Photos: {len(answer.photos)}.")
    if answer.dog.notes:
        parts.append(answer.dog.notes)
    return " ".join(parts)


def _jpeg_uri(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    side = IMAGE_SIDE
    while True:
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        if len(encoded) <= IMAGE_MAX_CHARS or side <= 64:
            return "data:image/jpeg;base64," + encoded
        side = int(side * 0.75)


def asm3_csv(rows: Iterable[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ASM3_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
