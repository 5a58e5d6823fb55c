"""A 15-dog shelter for checking the Animal Shelter Manager sync against a real ASM3 (issue 24).

Builds a catalog in DATA_DIR from the dev photos with one dog of each kind that ASM must get right:
renamed breeds (German Shepherd, Yorkshire), a cross, a "mix", an unknown mix, a poodle, a rare breed
(nearest ASM breed), a cat filed Not a dog, a name a spreadsheet would run, a name with a
right-to-left override, a dog that came in at 23:30 on 31 December in Los Angeles, and two dogs
nobody answered. Then, with a stock ASM3 running (../shared/tools/asm3, README "Animal Shelter
Manager"):

    .venv/bin/python bench/asm_real_shelter.py /tmp/asmrun/data
    export DOGBOT_DATA_DIR=/tmp/asmrun/data DOGBOT_TIMEZONE=America/Los_Angeles \
        DOGBOT_ASM_URL=http://127.0.0.1:5077 DOGBOT_ASM_USERNAME=dogbotcheck DOGBOT_ASM_PASSWORD=dogbotcheck
    .venv/bin/dogbot asm sync --now        # then again: nothing new, no second photo
    ../shared/tools/asm3/dump.py           # what ASM holds
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

from dogbot.app import Container
from dogbot.core.bulk import BulkItem, submit_files
from dogbot.settings import Settings
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, AgeGroup, LabelSource, Sex

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dogs"
STAFF = 2002
# (photo's breed in the manifests, name, staff's answer, a cross's first and second breed, sex, age group)
PLAN = [
    ("German shepherd", "Rex", "german_shepherd", None, None, Sex.MALE, AgeGroup.ADULT),
    ("Yorkshire terrier", "Tiny", "yorkshire_terrier", None, None, Sex.FEMALE, AgeGroup.SENIOR),
    ("West Highland white terrier", "Snow", None, None, None, None, None),
    ("beagle", "Luna", None, None, None, Sex.FEMALE, AgeGroup.PUPPY),
    ("Labrador retriever", '=HYPERLINK("x")', MIXED_BREED, "labrador_retriever", "boxer", Sex.MALE, None),
    ("boxer", "Rocky", MIXED_BREED, "boxer", None, None, AgeGroup.ADULT),
    ("pug", "", MIXED_BREED, None, None, None, None),
    ("standard poodle", "Fifi", "standard_poodle", None, None, Sex.FEMALE, None),
    ("akita", "Hachi", "akita", None, None, Sex.MALE, AgeGroup.ADULT),
    ("caucasian_shepherd_dog", "Tank", "caucasian_shepherd_dog", None, None, None, None),
    ("not_a_dog", "Whiskers", NOT_A_DOG, None, None, None, None),
    ("golden retriever", "Goldie\u202e", None, None, None, None, None),
    ("Chihuahua", "Pip", None, None, None, None, None),
    ("Saint Bernard", "Bernie", "saint_bernard", None, None, None, AgeGroup.SENIOR),
    ("dingo", None, None, None, None, None, None),
]


def main(data_dir: Path) -> None:
    rows = []
    for manifest in ("manifest.csv", "other_breeds.csv"):
        with (DATASET / manifest).open(newline="", encoding="utf-8") as handle:
            rows += [r for r in csv.DictReader(handle) if r["format"] == "JPEG" and not r["quirks"]]
    container = Container(Settings(_env_file=None, data_dir=data_dir, timezone="America/Los_Angeles"))
    dogs = container.catalog.dogs
    container.members.remember_name(STAFF, "Ana López")
    for index, (breed, name, label, primary, secondary, sex, age) in enumerate(PLAN):
        photo = DATASET / next(r for r in rows if r["breed"] == breed)["path"]
        intake = datetime(2027, 1, 1, 7, 30, tzinfo=UTC) if index == 0 else None  # 23:30 on 31 Dec in LA
        dog = dogs.create(source="ingest", name=name or None, intake_at=intake)
        submit_files(container.catalog, [BulkItem(photo, dog_id=dog.id)], source="ingest")
        if label:
            dogs.record_label(
                dog.id, label, source=LabelSource.STAFF, user_id=STAFF, primary=primary, secondary=secondary
            )
        if sex or age:
            dogs.set_details(dog.id, sex=sex, age_group=age)
        answer = dogs.answer(dog.id)
        state = "not a dog" if answer.not_a_dog else "settled" if answer.decided else "waiting for staff"
        print(dog.code, breed, "->", answer.breed, state)
    container.engine.dispose()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
