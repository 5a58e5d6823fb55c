"""Registering dogs in Animal Shelter Manager: the outbox sync against a double of ASM's service that
follows ASM3's own import rules (tests/e2e/fake_asm.py), on SQLite and PostgreSQL.

Every dog lands right the first time (species, type, both breeds and the crossbreed flag, sex, the
shelter's entry day, an estimated age, one photo); nothing that is not a dog, nothing unsettled; a
second sync adds nothing; an outage loses nothing; a change reaches ASM's comments and what ASM's
import cannot change is listed for a hand fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dogbot.core.bulk import BulkItem, submit_files
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, AgeGroup, LabelSource, Sex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from fake_asm import FakeAsm  # noqa: E402

STAFF_ID = 2002
ASM_TABLE = Path(__file__).resolve().parents[2] / "dogbot/data/asm3_dog_breeds.json"
ASM_CAT_BREEDS = set(json.loads(ASM_TABLE.read_text())["other_species_breeds"]["Cat"])
# 23:30 on 31 December in Los Angeles is 1 January in UTC: ASM must get the shelter's day.
NEW_YEARS_EVE_LA = datetime(2027, 1, 1, 7, 30, tzinfo=UTC)


@pytest.fixture
def fake_asm():
    fake = FakeAsm(username="dogbot", password="secret").start()
    yield fake
    fake.stop()


def _container(tmp_path: Path, database_url: str, predictor, fake: FakeAsm, **settings):
    from dogbot.app import Container
    from dogbot.settings import Settings

    values = dict(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url or "",
        timezone="America/Los_Angeles",
        asm_url=fake.url,
        asm_username="dogbot",
        asm_password="secret",
        asm_quiet_minutes=0,
    )
    values.update(settings)
    container = Container(Settings(**values))
    predictor.use_head(predictor.base_head(), "lite0-v0")
    container.predictor = predictor
    return container


def _dog(container, photo: bytes, tmp_path: Path, *, name: str | None = None, at: datetime | None = None):
    catalog = container.catalog
    dog = catalog.dogs.create(source="ingest", name=name, intake_at=at)
    path = tmp_path / f"photo-{dog.id}.jpg"
    path.write_bytes(photo)
    submit_files(catalog, [BulkItem(path, dog_id=dog.id)], source="ingest")
    return dog


@pytest.fixture(scope="module")
def other_photos(eval_data_dir) -> list[bytes]:
    """Distinct real dog photos (a photo the catalog has already joins its first dog)."""
    import csv

    with (eval_data_dir / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["format"] == "JPEG" and not r["quirks"]]
    rows = [r for r in rows if r["breed"] != "not_a_dog"][::7][:12]
    return [(eval_data_dir / r["path"]).read_bytes() for r in rows]


@pytest.fixture
def shelter(tmp_path, database_url, predictor, dog_photos, other_photos, fake_asm):
    """A catalog with one dog of each kind ASM must get right, and the ids of those dogs."""
    container = _container(tmp_path, database_url, predictor, fake_asm)
    dogs = container.catalog.dogs
    container.members.remember_name(STAFF_ID, "Ana López")
    ids = {}
    ids["sure"] = _dog(container, dog_photos["sure"], tmp_path, name="Max", at=NEW_YEARS_EVE_LA).id
    dogs.set_details(ids["sure"], sex=Sex.MALE, age_group=AgeGroup.PUPPY)
    for photo, (kind, breed, primary, secondary) in zip(
        other_photos,
        (
            ("shepherd", "german_shepherd", None, None),
            ("yorkie", "yorkshire_terrier", None, None),
            ("cross", MIXED_BREED, "labrador_retriever", "boxer"),
            ("lab_mix", MIXED_BREED, "labrador_retriever", None),
            ("unknown_mix", MIXED_BREED, None, None),
            ("cat", NOT_A_DOG, None, None),
        ),
        strict=False,
    ):
        ids[kind] = _dog(container, photo, tmp_path, name=f"=cmd|{kind}").id
        dogs.record_label(
            ids[kind], breed, source=LabelSource.STAFF, user_id=STAFF_ID, primary=primary, secondary=secondary
        )
    ids["waiting"] = _dog(container, dog_photos["unsure"], tmp_path).id  # unsure, and nobody answered
    ids["not_dog"] = _dog(container, dog_photos["not_dog"], tmp_path).id
    yield container, ids
    container.engine.dispose()


def _code(container, dog_id: int) -> str:
    return container.catalog.dogs.get(dog_id).code


def test_every_settled_dog_lands_in_asm_right_the_first_time(shelter, fake_asm):
    container, ids = shelter
    report = container.asm_sync.sync()
    assert report.ok and not report.failed and report.checked_asm, report
    code = {kind: _code(container, dog_id) for kind, dog_id in ids.items()}
    sent = {c: k for k, c in code.items() if c in fake_asm.animals}
    assert set(sent.values()) == {"sure", "shepherd", "yorkie", "cross", "lab_mix", "unknown_mix"}
    assert sorted(report.sent) == sorted(sent)
    assert report.not_settled == 1  # the dog nobody answered waits; the cat and the non-dog never go
    animals = {kind: fake_asm.animals[c] for c, kind in sent.items()}
    for kind, animal in animals.items():
        assert (animal.species, animal.animal_type) == ("Dog", "D (Dog)"), kind
        assert animal.breed1 not in ASM_CAT_BREEDS and animal.breed2 not in ASM_CAT_BREEDS, kind
        assert len(animal.images) == 1 and animal.images[0][:2] == b"\xff\xd8", kind  # one JPEG
        assert animal.estimated_dob, kind
    assert (animals["shepherd"].breed1, animals["shepherd"].crossbreed) == ("German Shepherd Dog", False)
    assert animals["yorkie"].breed1 == "Yorkshire Terrier Yorkie"
    cross = animals["cross"]
    assert (cross.breed1, cross.breed2, cross.crossbreed) == ("Labrador Retriever", "Boxer", True)
    lab_mix = animals["lab_mix"]
    assert (lab_mix.breed1, lab_mix.breed2, lab_mix.crossbreed) == ("Labrador Retriever", "Mixed Breed", True)
    unknown = animals["unknown_mix"]
    assert (unknown.breed1, unknown.breed2, unknown.crossbreed) == ("Mixed Breed", None, False)
    max_ = animals["sure"]
    assert (max_.name, max_.sex) == ("Max", "Male")
    assert max_.entry_date == "2026-12-31"  # the shelter's day, not UTC's 1 January
    assert 0 < (fake_asm.today - max_.date_of_birth).days < 183  # a puppy: ASM's "Baby" band
    assert "estimate" in max_.comments
    # A name that a spreadsheet would run is text; the comments name the person who answered.
    assert animals["shepherd"].name.startswith("'=cmd")
    assert "confirmed by Ana López" in animals["shepherd"].comments


def test_a_second_sync_adds_no_animal_and_no_photo(shelter, fake_asm):
    container, _ = shelter
    container.asm_sync.sync()
    animals, imports = len(fake_asm.animals), fake_asm.imports
    report = container.asm_sync.sync(send_all=True)
    assert report.ok and not report.sent and not report.updated
    assert len(fake_asm.animals) == animals and fake_asm.imports == imports
    assert all(len(animal.images) == 1 for animal in fake_asm.animals.values())


def test_a_change_updates_the_same_animal_and_lists_what_asm_cannot_change(shelter, fake_asm):
    container, ids = shelter
    dogs = container.catalog.dogs
    container.asm_sync.sync()
    code = _code(container, ids["shepherd"])
    dogs.set_details(ids["shepherd"], age_group=AgeGroup.SENIOR, sex=Sex.FEMALE)
    report = container.asm_sync.sync()
    assert report.updated == [code] and not report.sent
    animal = fake_asm.animals[code]
    assert len(animal.images) == 1 and len(fake_asm.animals) == 6  # the same animal, no second photo
    assert "senior" in animal.comments and (fake_asm.today - animal.date_of_birth).days > 7 * 365
    fix = next(f for f in report.hand_fixes if f.code == code)
    assert ("sex", "Unknown", "Female") in fix.differences
    # Merged into another dog: ASM holds an animal that should go, and an admin is told.
    dogs.merge(ids["yorkie"], into_id=ids["shepherd"])
    report = container.asm_sync.sync()
    yorkie = next(f for f in report.hand_fixes if f.code == _code_of_merged(container, ids["yorkie"]))
    assert yorkie.merged_into == code and not yorkie.not_a_dog
    # Deleted from dogbot (registered by mistake): the sync says so and goes on.
    lab_code = _code(container, ids["lab_mix"])
    dogs.delete(ids["lab_mix"], why="a test")
    report = container.asm_sync.sync()
    removed = next(f for f in report.hand_fixes if f.code == lab_code)
    assert removed.removed and removed.merged_into is None and not removed.not_a_dog


def _code_of_merged(container, dog_id: int) -> str:
    from storage.db import session as open_session
    from storage.tables import Dog

    with open_session(container.engine) as session:
        return session.get(Dog, dog_id).code


def test_an_outage_loses_nothing_and_the_next_sync_delivers(shelter, fake_asm):
    container, _ = shelter
    fake_asm.down = True
    report = container.asm_sync.sync()
    assert not report.ok and len(report.waiting) == 6 and not fake_asm.animals
    assert all("503" in why for _, why in report.waiting), report.waiting
    overview = container.asm_sync.overview()
    assert len(overview.waiting) == 6 and overview.in_asm == 0 and overview.not_settled == 1
    assert all("503" in why for _, why in overview.waiting)
    # The worker waits longer after each failed try (1, 2, 4 minutes ...); asked, it tries at once.
    now = datetime.now(UTC)
    waits = []
    for _ in range(3):
        later = container.asm_sync.sync(now=now).later
        now = max(at for _, at in later).replace(tzinfo=UTC)
        waits.append(now)
        assert not container.asm_sync.sync(now=now - timedelta(seconds=1)).waiting  # not due: not tried
        container.asm_sync.sync(now=now)  # due: tried, and refused again
    gaps = [(b - a).total_seconds() / 60 for a, b in zip(waits, waits[1:], strict=False)]
    assert gaps == [2, 4], gaps  # after the 2nd and 3rd failed tries (the 1st waited 1 minute)
    fake_asm.down = False
    assert not container.asm_sync.sync(now=now - timedelta(seconds=1)).sent
    report = container.asm_sync.sync(send_all=True)
    assert report.ok and len(report.sent) == 6 and len(fake_asm.animals) == 6
    assert container.asm_sync.overview().in_asm == 6


def test_asm_refusing_the_login_is_a_failure_in_its_words(tmp_path, predictor, dog_photos, fake_asm):
    container = _container(tmp_path, None, predictor, fake_asm, asm_password="wrong")
    dog = _dog(container, dog_photos["sure"], tmp_path)
    report = container.asm_sync.sync()
    code = _code(container, dog.id)
    assert report.failed == [(code, "ERROR: Invalid username and password")] and not fake_asm.animals
    assert not container.asm_sync.sync().failed  # refused sends wait for a person (or a change)
    container.engine.dispose()


def test_a_quiet_time_lets_sex_and_age_go_with_the_first_send(tmp_path, predictor, dog_photos, fake_asm):
    container = _container(tmp_path, None, predictor, fake_asm, asm_quiet_minutes=10)
    dog = _dog(container, dog_photos["sure"], tmp_path)
    first = container.asm_sync.sync()
    assert not first.sent and [c for c, _ in first.later] == [_code(container, dog.id)]
    container.catalog.dogs.set_details(dog.id, sex=Sex.FEMALE)
    assert not container.asm_sync.sync().sent  # still quiet: the change joins the waiting send
    report = container.asm_sync.sync(send_all=True)  # `asm sync --now`, Send now
    assert report.sent == [_code(container, dog.id)]
    assert fake_asm.animals[report.sent[0]].sex == "Female"
    container.engine.dispose()


def test_a_sync_killed_mid_send_sends_no_second_photo(
    tmp_path, database_url, predictor, dog_photos, fake_asm
):
    """The worker is killed while ASM imports: ASM finishes the row; the next sync asks ASM first."""
    container = _container(tmp_path, database_url, predictor, fake_asm)
    dog = _dog(container, dog_photos["sure"], tmp_path, name="Luna")
    code = _code(container, dog.id)
    fake_asm.hold = threading.Event()
    env = {
        **os.environ,
        "DOGBOT_DATA_DIR": str(tmp_path / "data"),
        "DOGBOT_ASM_URL": fake_asm.url,
        "DOGBOT_ASM_USERNAME": "dogbot",
        "DOGBOT_ASM_PASSWORD": "secret",
        "DOGBOT_ASM_QUIET_MINUTES": "0",
        "DOGBOT_TIMEZONE": "America/Los_Angeles",
    }
    env["DOGBOT_DATABASE_URL"] = database_url
    dogbot = Path(sys.executable).with_name("dogbot")
    child = subprocess.Popen(
        [str(dogbot), "asm", "sync"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while fake_asm.imports == 0 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert fake_asm.imports == 1, child.communicate(timeout=5)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    fake_asm.hold.set()  # ASM completes the request its caller no longer waits for
    assert len(fake_asm.animals[code].images) == 1
    report = container.asm_sync.sync()
    assert report.ok and report.already_there == [code], report
    assert len(fake_asm.animals[code].images) == 1 and fake_asm.imports == 1
    assert container.asm_sync.sent_at(code) is not None
    container.engine.dispose()


def test_the_double_reads_csv_as_asm_does_and_dogbot_cells_arrive_as_held():
    """ASM's reader keeps a doubled quote as two (asm3.utils.csv_parse): seen on a real ASM3, where a
    name with quotes, written by Python's csv module, arrived with each quote doubled."""
    from fake_asm import asm_csv_rows

    from dogbot.core.shelter_export import ASM3_COLUMNS, asm3_csv, safe_cell

    rows = asm_csv_rows('ANIMALNAME,ANIMALCOMMENTS\n"a ""b"""," x, y "\n')
    assert rows == [{"ANIMALNAME": 'a ""b""', "ANIMALCOMMENTS": "x, y"}]
    sent = {"ANIMALNAME": safe_cell('Max "the big"'), "ANIMALCOMMENTS": safe_cell("one\ntwo", multiline=True)}
    text = asm3_csv([{**dict.fromkeys(ASM3_COLUMNS, ""), **sent}])
    arrived = {key: value for key, value in asm_csv_rows(text)[0].items() if key in sent}
    assert arrived == sent == {"ANIMALNAME": "Max ”the big”", "ANIMALCOMMENTS": "one\ntwo"}


def test_two_processes_storing_one_name_at_once_both_succeed(database_url):
    """Bot replicas see the same person at the same moment: neither update fails."""
    from concurrent.futures import ThreadPoolExecutor

    from dogbot.core.members import Members
    from storage.db import make_engine

    engine = make_engine(database_url)
    replicas = [Members(engine, cache_seconds=0) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda members: members.remember_name(STAFF_ID, "Ana López"), replicas))
    assert replicas[0].names() == {STAFF_ID: "Ana López"}
    engine.dispose()


def test_asm_sync_says_when_the_next_send_is_on_the_shelters_clock(tmp_path, predictor, dog_photos, fake_asm):
    from dogbot.asm_cli import report_json, report_lines

    container = _container(tmp_path, None, predictor, fake_asm, asm_quiet_minutes=10)
    _dog(container, dog_photos["sure"], tmp_path)
    report = container.asm_sync.sync(now=NEW_YEARS_EVE_LA)  # 23:30 in Los Angeles: due at 23:40 there
    assert "(the next at 2026-12-31 23:40 PST; --now sends them now)" in "\n".join(
        report_lines(report, container.timezone)
    )
    assert report_json(report, container.timezone)["later"][0]["at"] == "2026-12-31T23:40:00-08:00"
    container.engine.dispose()
