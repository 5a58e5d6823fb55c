"""Dogs as Animal Shelter Manager 3 (ASM3) imports them: one CSV row per dog, every field right.

The rules are ASM3's own, read in its source (``src/asm3/csvimport.py``, ``animal.py``; commit
625abaf, v52), not a guess of them:

* Lookups (breed, species, type) match a name exactly, case-insensitively, with ``'`` read as a
  backtick; a name ASM lacks silently becomes the default lookup (breed "Abyssinian", a cat, and type
  "U (Unwanted Cat)" on a stock database), and an unknown second breed is dropped. So every breed
  goes through :class:`dogbot.core.asm_breeds.AsmBreedMap` to a name in ASM's default dog list, the
  type is named (``D (Dog)`` by default) and the species is ``Dog``.
* The crossbreed flag is set when the second breed is known and differs from the first: a cross
  sends both breeds, "Labrador Retriever mix" sends Labrador Retriever + Mixed Breed, a mix nobody
  could name sends Mixed Breed alone.
* An animal with neither ``ANIMALDOB`` nor ``ANIMALAGE`` (0 < years <= 100) is refused. dogbot knows
  an age group, not a birthday: ``ANIMALAGE`` is a typical age of the group, which ASM stores as an
  estimated date of birth (its own "estimated" flag); the comments say it is an estimate.
* ``ANIMALENTRYDATE`` is read as year-month-day whatever ASM's locale when the year comes first.
  It is the shelter's day (``DOGBOT_TIMEZONE``), not UTC's.
* ``ANIMALIMAGE`` as a ``data:image/jpeg;base64,`` URI is attached as the animal's picture, once per
  import: the sync (``jobs.asm_sync``) sends it with the first import only.

* ASM's CSV reader (``asm3.utils.csv_parse``) strips each cell's outer quotes and surrounding spaces
  but keeps a doubled quote inside as two, so a ``"`` in a cell is sent as ``”``. ASM stores ``'`` in
  text as a backtick, so dogbot's own words in the comments use none.

Photos that are not dogs, and dogs merged into another, are never animals. Cells a spreadsheet would
run as a formula are neutralised and invisible control characters stripped (:func:`safe_cell`).
"""

from __future__ import annotations

import base64
import csv
import io
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image, ImageOps

from dogbot.core.asm_breeds import MIXED_BREED, AsmBreedMap
from dogbot.core.dogs import DogAnswer, Dogs, UnknownDog
from storage.vocabulary import AgeGroup, LabelSource, Sex

ASM3_COLUMNS = (
    "ANIMALCODE",
    "ANIMALNAME",
    "ANIMALSPECIES",
    "ANIMALTYPE",
    "ANIMALSEX",
    "ANIMALBREED1",
    "ANIMALBREED2",
    "ANIMALAGE",
    "ANIMALDOB",
    "ANIMALENTRYDATE",
    "ANIMALCOMMENTS",
    "ANIMALIMAGE",
)
# ASM reads sex from the first letter (f/m/u).
_SEX = {Sex.MALE: "Male", Sex.FEMALE: "Female", Sex.UNKNOWN: "Unknown"}
# A typical age in years for each age group, inside ASM's default age bands (Baby < 0.5, Young Adult
# < 2, Adult < 7, Senior): most shelter puppies arrive at 2-4 months. Unknown ages get an adult's,
# and the comments say the age is not known.
TYPICAL_AGE_YEARS = {AgeGroup.PUPPY: 0.25, AgeGroup.ADULT: 3.0, AgeGroup.SENIOR: 9.0, AgeGroup.UNKNOWN: 3.0}
# A catalog picture, not the original: at most this many characters of base64, so every CSV reader
# copes (Python's csv refuses fields over 128 KiB by default); it is shrunk until it fits.
IMAGE_MAX_CHARS = 100_000
IMAGE_SIDE = 800
# Text that starts a formula in a spreadsheet (OWASP's CSV-injection list): such a cell gets a
# leading apostrophe, which spreadsheets show as text and ASM stores as typed.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Characters that change how text reads without being seen: bidirectional overrides and isolates,
# marks, and zero-width characters.
_INVISIBLE = {
    "\u061c",
    *map(chr, range(0x200B, 0x2010)),
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
    "\ufeff",
}


@dataclass(frozen=True)
class AsmRules:
    """How a shelter's ASM wants dogs (values from ``Settings``)."""

    breeds: AsmBreedMap
    animal_type: str  # an ASM animal type name, "D (Dog)" or a stray type such as "A (Stray Dog)"
    timezone: ZoneInfo


@dataclass(frozen=True)
class AsmDog:
    """One dog as ASM will hold it: the row to import, and whether it is ready to be sent."""

    dog_id: int
    code: str
    row: dict[str, str]  # without the photo (``ANIMALIMAGE`` empty)
    settled: bool  # the breed is known (a person answered, or the model was sure): ASM cannot change it later
    best_photo: object | None  # the Photo the model was surest of


def exportable(answer: DogAnswer) -> bool:
    """A dog ASM should hold: it has photos, is not merged into another, and is a dog."""
    return bool(answer.photos) and answer.dog.merged_into is None and not answer.not_a_dog


def asm_dog(answer: DogAnswer, rules: AsmRules, *, breed_name: Callable[[str], str], who: Callable) -> AsmDog:
    """The ASM row of one exportable dog. ``who(label)`` names the person or client behind a label."""
    dog, breed = answer.dog, answer.breed
    if breed is None:
        first, second = MIXED_BREED, ""  # waiting for staff: a valid dog breed, and the comments say so
    else:
        first = _asm_breed(breed.primary, rules, breed_name) if breed.primary else MIXED_BREED
        second = _asm_breed(breed.secondary, rules, breed_name) if breed.secondary else ""
        if breed.mix and breed.primary and not second:
            second = MIXED_BREED  # "Labrador Retriever mix": ASM records a cross as two breeds
        if second == first:
            second = ""  # a toy x miniature poodle is a Poodle to ASM; "Poodle/Poodle" is no cross
    age = TYPICAL_AGE_YEARS.get(AgeGroup(dog.age_group), TYPICAL_AGE_YEARS[AgeGroup.UNKNOWN])
    entry_day = shelter_day(dog.intake_at, rules.timezone)
    row = {
        "ANIMALCODE": dog.code,
        "ANIMALNAME": dog.name or dog.code,  # ASM requires a name: the code stands in
        "ANIMALSPECIES": "Dog",
        "ANIMALTYPE": rules.animal_type,
        "ANIMALSEX": _SEX.get(Sex(dog.sex), "Unknown"),
        "ANIMALBREED1": first,
        "ANIMALBREED2": second,
        "ANIMALAGE": f"{age:g}",
        # ASM takes a date of birth over an age when both are given, but only an age marks the date
        # of birth as estimated on a new animal: the sync fills this in for updates only (where ASM
        # takes the date of birth and keeps its estimated flag).
        "ANIMALDOB": "",
        "ANIMALENTRYDATE": entry_day.isoformat(),
        "ANIMALCOMMENTS": _comments(answer, who, breed_name),
        "ANIMALIMAGE": "",
    }
    return AsmDog(
        dog_id=dog.id,
        code=dog.code,
        row={key: safe_cell(value, multiline=key == "ANIMALCOMMENTS") for key, value in row.items()},
        settled=answer.breed is not None and answer.decided,
        best_photo=answer.best_photo,
    )


def estimated_birth_date(row: dict[str, str]) -> str:
    """The date of birth ASM's import would estimate from ``ANIMALAGE``, counted from the entry day.

    As ASM's ``subtract_years``: whole years go back calendar years (but from 29 February), others
    go back 365 days a year.
    """
    entry, years = date.fromisoformat(row["ANIMALENTRYDATE"]), float(row["ANIMALAGE"])
    if years == int(years) and not (entry.month == 2 and entry.day == 29):
        return entry.replace(year=entry.year - int(years)).isoformat()
    return (entry - timedelta(days=int(years * 365))).isoformat()


def shelter_day(moment: datetime, timezone: ZoneInfo) -> date:
    """The calendar day at the shelter (stored times are UTC; SQLite returns them without a zone)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(timezone).date()


def _asm_breed(key: str, rules: AsmRules, breed_name: Callable[[str], str]) -> str:
    return rules.breeds.name_for(key, breed_name(key))


def _comments(answer: DogAnswer, who: Callable, breed_name: Callable[[str], str]) -> str:
    parts = []
    if answer.label is not None:
        label = answer.label.label
        parts.append(f"Breed from dogbot, confirmed by {who(label)}.")
    elif answer.breed is not None:
        parts.append(f"Breed from the dogbot model ({answer.output.model_version}), not checked by staff.")
    else:
        parts.append("Breed not known yet: dogbot is waiting for staff to answer. Mixed Breed until then.")
    breed = answer.breed
    if breed is not None and breed.primary:
        named = " / ".join(breed_name(key) for key in (breed.primary, breed.secondary) if key)
        parts.append(f"Breed in dogbot: {named}{' mix' if breed.mix else ''}.")
    age_group = AgeGroup(answer.dog.age_group)
    if age_group == AgeGroup.UNKNOWN:
        parts.append("Age not known: the date of birth is a placeholder.")
    else:
        parts.append(f"Age group {age_group.value}: the date of birth is an estimate.")
    parts.append(f"Photos in dogbot: {len(answer.photos)}.")
    if answer.dog.notes:
        parts.append(answer.dog.notes)
    return " ".join(parts)


def safe_cell(value: str, *, multiline: bool = False) -> str:
    """``value`` without invisible or control characters, and never read as a spreadsheet formula."""
    kept = []
    for char in value:
        if char in _INVISIBLE:
            continue
        if unicodedata.category(char) == "Cc" and not (multiline and char == "\n"):
            kept.append(" " if char in "\t\r\n" else "")
            continue
        kept.append(char)
    # ASM's CSV reader (asm3.utils.csv_parse) strips a cell's outer quotes but keeps a doubled quote
    # inside as two: a quote in a name would arrive as "". Typographic quotes arrive as typed.
    text = "".join(kept).replace('"', "”")
    if text.startswith(_FORMULA_STARTS) and not _is_number(text):
        text = "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def jpeg_uri(data: bytes) -> str:
    """The photo as the ``data:`` URI ASM attaches: a JPEG small enough for any CSV reader."""
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


class ShelterRecords:
    """The catalog's dogs as ASM rows: for the CSV file (``export --format asm3``) and the sync."""

    def __init__(self, dogs: Dogs, rules: AsmRules, names: Callable[[], dict[int, str]]) -> None:
        self.dogs = dogs
        self.rules = rules
        self.names = names  # Telegram user id -> the name the person goes by

    def asm_dogs(self) -> list[AsmDog]:
        """Every dog ASM should hold, oldest first."""
        names = self.names()
        who = _namer(names)
        return [
            asm_dog(answer, self.rules, breed_name=self.dogs.breeds.breed_name, who=who)
            for answer in self.dogs.answers()
            if exportable(answer)
        ]

    def photo_uri(self, asm: AsmDog) -> str:
        """The dog's best photo as ASM attaches it ("" when it has none)."""
        return jpeg_uri(self.dogs.photo_bytes(asm.best_photo)) if asm.best_photo is not None else ""

    def fate(self, dog_id: int) -> tuple[str, str | None]:
        """Why a dog ASM holds is no longer one to export: ("merged", the other dog's code),
        ("removed", None) when it was deleted from the catalog, or ("not_a_dog", None)."""
        try:
            live = self.dogs.get(dog_id)
        except UnknownDog:
            return "removed", None
        return ("merged", live.code) if live.id != dog_id else ("not_a_dog", None)

    def export_csv(self) -> tuple[str, int]:
        """Every dog ASM should hold, with its photo, and how many: a file for ASM's "Import a CSV file".

        Dogs still waiting for their breed are in it as Mixed Breed, and their comments say so.
        """
        rows = [{**asm.row, "ANIMALIMAGE": self.photo_uri(asm)} for asm in self.asm_dogs()]
        return asm3_csv(rows), len(rows)


def _namer(names: dict[int, str]) -> Callable:
    def who(label) -> str:
        if label.source == LabelSource.API:
            return f"the web API client {label.user_name}"
        if label.source == LabelSource.IMPORT:
            return "a shelter import"
        if label.user_id is not None and label.user_id in names:
            return names[label.user_id]
        if label.user_name:
            return label.user_name
        return "a staff member" if label.source == LabelSource.STAFF else "an admin"

    return who
