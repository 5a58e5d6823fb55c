"""No ghost dogs (issue 25): every change to a dog is one transaction and no dog is left without a
photo, on SQLite and PostgreSQL; merges can be undone; the migration removes today's empty dogs."""

from __future__ import annotations

import pytest
from sqlmodel import select

from dogbot.core.dogs import NewDog, UnknownDog
from dogbot.core.intake import Incoming, receive
from storage.db import session
from storage.tables import Dog, DogAudit, Photo


@pytest.fixture
def photos_of(shared_manifest, eval_data_dir):
    def pick(breed: str, n: int = 1) -> list[bytes]:
        rows = [r for r in shared_manifest("manifest.csv") if r["breed"] == breed]
        rows.sort(key=lambda r: r["imagenet_overlap"] != "no")
        return [(eval_data_dir / r["path"]).read_bytes() for r in rows[:n]]

    return pick


def ghost_dogs(engine) -> list[str]:
    """Codes of dogs no photo shows that were not merged into another dog."""
    with session(engine) as s:
        shown = {p.dog_id for p in s.exec(select(Photo))}
        return [d.code for d in s.exec(select(Dog)) if d.merged_into is None and d.id not in shown]


def test_moving_photos_already_imported_into_one_dog_removes_the_dogs_it_empties(
    make_catalog, database_url, photos_of
):
    catalog = make_catalog(database_url)
    engine = catalog.intake.engine
    data = photos_of("beagle", 3)
    alone = [catalog.intake.submit(d, source="ingest").photo for d in data]  # three dogs of one photo
    old_codes = {catalog.dogs.get(p.dog_id).code for p in alone}

    luna = NewDog(source="ingest", group="ingest:luna", name="Luna")  # what `ingest --dog Luna` sends
    received = receive(catalog.intake, [Incoming(d, new_dog=luna) for d in data], source="ingest")
    dog = catalog.dogs.group_dog("ingest:luna")
    assert dog.code in old_codes and dog.name == "Luna"  # the first photo's dog, now named Luna
    assert {r.classification.photo.dog_id for r in received} == {dog.id}
    assert ghost_dogs(engine) == []
    with session(engine) as s:
        audits = s.exec(select(DogAudit).order_by(DogAudit.id)).all()
        dogs = s.exec(select(Dog)).all()
    assert len(dogs) == 1 and len(audits) == 2
    assert {a.code for a in audits} == old_codes - {dog.code}
    assert {a.action for a in audits} == {"removed_empty"} and all(
        a.detail["into"] == dog.code for a in audits
    )


def test_a_photo_of_a_dog_with_other_photos_stays_there_and_no_dog_is_made_for_it(
    make_catalog, database_url, photos_of
):
    catalog = make_catalog(database_url)
    engine = catalog.intake.engine
    first, second = photos_of("pug", 2)
    kept = NewDog(source="telegram", group="tg:1:album-a")
    receive(catalog.intake, [Incoming(first, new_dog=kept), Incoming(second, new_dog=kept)])
    pug = catalog.dogs.group_dog("tg:1:album-a")
    assert len(catalog.dogs.photos_of(pug.id)) == 2

    # A second album with only the first photo again: no dog for it, the photo stays with the pug.
    again = NewDog(source="telegram", group="tg:1:album-b")
    (result,) = receive(catalog.intake, [Incoming(first, new_dog=again)])
    assert result.classification.photo.dog_id == pug.id and result.classification.duplicate
    assert catalog.dogs.group_dog("tg:1:album-b") is None
    # A reply to another dog's card with it: refused the same way (the photo names its dog).
    other = catalog.intake.submit(photos_of("boxer")[0], source="telegram").photo
    moved = catalog.dogs.place_known(result.classification.photo.id, dog_id=other.dog_id)
    assert moved.dog_id == pug.id
    with session(engine) as s:
        assert len(s.exec(select(Dog)).all()) == 2
    assert ghost_dogs(engine) == []


def test_an_album_whose_photos_are_all_refused_makes_no_dog(make_catalog, database_url):
    catalog = make_catalog(database_url)
    spec = NewDog(source="telegram", group="tg:1:junk")
    results = receive(
        catalog.intake, [Incoming(b"not a photo", new_dog=spec), Incoming(b"\0" * 10, new_dog=spec)]
    )
    assert all(r.rejected is not None for r in results)
    assert catalog.dogs.group_dog("tg:1:junk") is None
    with session(catalog.intake.engine) as s:
        assert s.exec(select(Dog)).all() == []


def test_same_dog_can_be_undone_and_both_records_are_as_before(make_catalog, database_url, photos_of):
    catalog = make_catalog(database_url)
    a = catalog.intake.submit(photos_of("boxer")[0], source="telegram").photo
    b = catalog.intake.submit(photos_of("pug")[0], source="telegram").photo
    catalog.dogs.set_details(b.dog_id, name="Rex")
    kept = catalog.dogs.merge(b.dog_id, a.dog_id, user_id=5)
    assert kept.id == a.dog_id and kept.name == "Rex" and len(catalog.dogs.photos_of(a.dog_id)) == 2

    back = catalog.dogs.unmerge(b.dog_id, user_id=5)
    assert back is not None and back.merged_into is None
    assert [p.id for p in catalog.dogs.photos_of(b.dog_id)] == [b.id]
    assert [p.id for p in catalog.dogs.photos_of(a.dog_id)] == [a.id]
    assert catalog.dogs.get(a.dog_id).name is None  # the name came with the merge, and went with it
    assert catalog.dogs.unmerge(b.dog_id) is None  # nothing left to undo
    with session(catalog.intake.engine) as s:
        assert [x.action for x in s.exec(select(DogAudit).order_by(DogAudit.id))] == ["merged", "unmerged"]


def test_the_migration_removes_empty_dogs_keeping_them_in_audit_rows(make_catalog, database_url, photos_of):
    catalog = make_catalog(database_url)
    engine = catalog.intake.engine
    shown = catalog.intake.submit(photos_of("pug")[0], source="telegram").photo
    ghost = catalog.dogs.create(source="api", name="Ghost")  # as an API registration of old left it
    merged = catalog.dogs.create(source="telegram")
    with session(engine) as s:  # a merged record has no photos by design: it stays
        row = s.get(Dog, merged.id)
        row.merged_into = shown.dog_id
        s.add(row)
        s.commit()
    assert ghost_dogs(engine) == [ghost.code]

    import importlib

    migration = importlib.import_module("storage.migrations.versions.0010_one_dog_record")
    with engine.begin() as connection:
        assert migration.remove_empty_dogs(connection) == 1
    assert ghost_dogs(engine) == []
    with session(engine) as s:
        (audit,) = s.exec(select(DogAudit)).all()
        assert s.get(Dog, merged.id) is not None
    assert (audit.code, audit.action, audit.detail["name"]) == (ghost.code, "removed_empty", "Ghost")


def test_codes_and_intake_years_are_on_the_shelters_clock(make_catalog, database_url, photos_of):
    from datetime import UTC, datetime

    # 23:30 on 31 December in Los Angeles is already 1 January in UTC.
    late = datetime(2027, 1, 1, 7, 30, tzinfo=UTC)
    catalog = make_catalog(database_url, clock=lambda: late, timezone="America/Los_Angeles")
    dog = catalog.dogs.get(catalog.intake.submit(photos_of("pug")[0], source="telegram").photo.dog_id)
    assert (dog.code, dog.year) == ("D-2026-0001", 2026)
    utc = make_catalog(database_url, clock=lambda: late)  # the same moment for a shelter on UTC
    assert utc.dogs.create(source="api").code == "D-2027-0001"


def test_names_and_codes_from_people_are_cleaned_once_at_the_edge(make_catalog, database_url, photos_of):
    catalog = make_catalog(database_url)
    photo = catalog.intake.submit(photos_of("pug")[0], source="telegram").photo
    dog = catalog.dogs.set_details(
        photo.dog_id, name="\u202eMa\x00x\u200b\tthe\x07 pug", notes="line\x00 one\nline\u200f two"
    )
    assert (dog.name, dog.notes) == ("Max the pug", "line one\nline two")
    # A NUL in a code is "no such dog" or the dog, never a database error (PostgreSQL refuses NUL).
    assert catalog.dogs.by_code(dog.code.replace("-", "-\x00", 1)).id == dog.id
    with pytest.raises(UnknownDog):
        catalog.dogs.by_code("\x00\u200b")
    named = receive(
        catalog.intake,
        [
            Incoming(
                photos_of("boxer")[0], new_dog=NewDog(source="api", group="api:x", name="Re\x00x" + "!" * 99)
            )
        ],
    )[0]
    assert catalog.dogs.get(named.classification.photo.dog_id).name == "Rex" + "!" * 61  # capped at 64


def test_an_album_split_across_two_replicas_is_one_dog(make_catalog, database_url, photos_of):
    """Two bot processes (two catalogs, two engines) take one album's photos at the same moment:
    the album's dog lives in the database (DogGroup), so they make one dog, not two."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    first, second = make_catalog(database_url), make_catalog(database_url)
    album = NewDog(source="telegram", group="tg:7:album-split", sender_id=7, chat_id=7)
    data = photos_of("beagle", 4)
    start = Barrier(2)

    def take(catalog, photos):
        start.wait()  # both replicas store their first photo at once
        return receive(catalog.intake, [Incoming(d, sender_id=7, chat_id=7, new_dog=album) for d in photos])

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(take, (first, second), (data[:2], data[2:])))
    dogs = {r.classification.photo.dog_id for batch in results for r in batch}
    assert len(dogs) == 1 and first.dogs.group_dog("tg:7:album-split").id in dogs
    with session(first.intake.engine) as s:
        assert len(s.exec(select(Dog)).all()) == 1
    assert ghost_dogs(first.intake.engine) == []


def staff_answer(catalog, photo_id: int, user_id: int) -> str:
    """The person's answer that stands for a photo (their latest label)."""
    return [lb.breed for lb in catalog.labelling.labels(photo_id) if lb.user_id == user_id][-1]


def test_a_press_older_than_one_already_applied_changes_nothing(make_catalog, database_url, photos_of):
    """Telegram's update ids order one person's presses across bot replicas: a press that comes late
    (an older update, handled by a slower replica) does not overwrite the newer answer."""
    from dogbot.core import review

    catalog = make_catalog(database_url)
    first, second = photos_of("beagle", 2)
    album = NewDog(source="telegram", group="tg:1:order")
    received = receive(catalog.intake, [Incoming(first, new_dog=album), Incoming(second, new_dog=album)])
    photo = received[0].classification.photo
    prediction = received[0].classification.prediction.id
    later = received[1].classification.prediction.id  # the other photo's question: the same dog

    review.answer(catalog, prediction, "basenji", source="staff", user_id=11, update_id=1011)
    with pytest.raises(review.OlderPress):
        review.answer(catalog, later, "beagle", source="staff", user_id=11, update_id=1010)
    assert staff_answer(catalog, photo.id, 11) == "basenji"
    assert catalog.dogs.answer(photo.dog_id).label.breed == "basenji"

    # Newer presses apply, a redelivered one too; another person's order is their own.
    review.answer(catalog, later, "beagle", source="staff", user_id=11, update_id=1012)
    review.answer(catalog, later, "beagle", source="staff", user_id=11, update_id=1012)
    review.answer(catalog, prediction, "pug", source="staff", user_id=12, update_id=1005)
    assert staff_answer(catalog, photo.id, 11) == "beagle" and staff_answer(catalog, photo.id, 12) == "pug"


@pytest.mark.postgres
def test_on_postgres_an_older_press_waits_for_a_newer_one_being_applied_then_is_refused(
    make_catalog, postgres_url, photos_of
):
    """Two replicas at once: the newer press holds the order row while it writes; the older one,
    arriving meanwhile, waits for it and is then refused, whatever order their writes would take."""
    import threading

    from dogbot.core import review

    catalog = make_catalog(postgres_url)
    classified = catalog.intake.submit(photos_of("pug")[0], source="telegram")
    photo, prediction = classified.photo, classified.prediction.id
    subject = f"dog:{photo.dog_id}"
    outcome: list[object] = []

    def older() -> None:
        try:
            outcome.append(
                review.answer(catalog, prediction, "boxer", source="staff", user_id=11, update_id=7)
            )
        except review.OlderPress as error:
            outcome.append(error)

    with catalog.labelling.press_applying(11, subject, 8) as newer:
        assert newer is None
        thread = threading.Thread(target=older)
        thread.start()
        thread.join(1.5)
        assert thread.is_alive(), "the older press waits while the newer one is being applied"
        catalog.labelling.record_label(photo.id, "basenji", source="staff", user_id=11)
    thread.join(10)
    assert isinstance(outcome[0], review.OlderPress), outcome
    assert staff_answer(catalog, photo.id, 11) == "basenji"
