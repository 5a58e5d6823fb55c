"""Dogs with the real model and a real database (SQLite and PostgreSQL): codes, one answer from all
photos, people's answers per dog, merging."""

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from dogbot.core.dogs import ShelterBreed, UnknownDog, shelter_breed_name
from dogbot.core.intake import Incoming, receive
from storage.db import session
from storage.tables import Dog, Label, Photo
from storage.vocabulary import MIXED_BREED, LabelSource, Outcome


@pytest.fixture
def photos_of(shared_manifest, eval_data_dir):
    """Bytes of real photos of a manifest label, not ImageNet images first."""

    def pick(breed: str, n: int = 1) -> list[bytes]:
        rows = [r for r in shared_manifest("manifest.csv") if r["breed"] == breed]
        rows.sort(key=lambda r: r["imagenet_overlap"] != "no")
        assert len(rows) >= n, f"only {len(rows)} photos of {breed}"
        return [(eval_data_dir / r["path"]).read_bytes() for r in rows[:n]]

    return pick


def test_a_photo_sent_alone_starts_a_dog_with_the_next_code_of_its_year(
    make_catalog, database_url, photos_of
):
    clock = lambda: datetime(2026, 3, 4, 5, 6, tzinfo=UTC)  # noqa: E731
    catalog = make_catalog(database_url, clock=clock)
    first, second = photos_of("pug", 2)
    a = catalog.intake.submit(first, source="telegram", sender_id=11, chat_id=11)
    b = catalog.intake.submit(second, source="telegram", sender_id=11, chat_id=11)
    dog_a, dog_b = catalog.dogs.get(a.photo.dog_id), catalog.dogs.get(b.photo.dog_id)
    assert (dog_a.code, dog_b.code) == ("D-2026-0001", "D-2026-0002")
    assert dog_a.intake_at.year == 2026 and dog_a.sender_id == 11 and dog_a.source == "telegram"
    assert catalog.dogs.by_code(" d-2026-0002 ").id == dog_b.id  # as staff type it
    with pytest.raises(UnknownDog):
        catalog.dogs.by_code("D-2026-0099")
    # The same photo sent again stays with its dog, and no empty dog is made for it.
    again = catalog.intake.submit(first, source="telegram", sender_id=12, chat_id=12)
    assert again.photo.dog_id == dog_a.id
    with session(catalog.intake.engine) as s:
        assert len(s.exec(select(Dog)).all()) == 2


def test_one_answer_from_all_photos_of_a_dog(make_catalog, database_url, photos_of):
    catalog = make_catalog(database_url)
    dog = catalog.dogs.create(source="ingest", name="  Max  ")
    assert dog.name == "Max"
    items = [
        Incoming(data, sender_id=7, chat_id=7, dog_id=dog.id) for data in photos_of("golden retriever", 3)
    ]
    received = receive(catalog.intake, items, source="ingest")
    assert all(r.classification is not None and r.classification.photo.dog_id == dog.id for r in received)

    answer = catalog.dogs.answer(dog.id)
    assert [p.id for p in answer.photos] == sorted(r.classification.photo.id for r in received)
    assert answer.top[0][0].key == "golden_retriever"
    assert answer.output.breed_probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    assert answer.best_photo in answer.photos
    if answer.outcome == Outcome.AUTO_ACCEPTED:  # the photos' auto labels do not decide the dog's breed
        assert answer.breed == ShelterBreed("golden_retriever") and answer.label is None
    else:
        assert answer.outcome == Outcome.ASK and answer.breed is None


def test_a_persons_answer_about_a_dog_is_recorded_on_every_photo_and_an_admin_wins(
    make_catalog, database_url, photos_of
):
    catalog = make_catalog(database_url)
    dog = catalog.dogs.create(source="telegram", sender_id=7)
    receive(catalog.intake, [Incoming(d, sender_id=7, dog_id=dog.id) for d in photos_of("boxer", 2)])

    catalog.dogs.record_label(
        dog.id,
        MIXED_BREED,
        source=LabelSource.STAFF,
        user_id=7,
        primary="boxer",
        secondary="labrador_retriever",
    )
    catalog.dogs.record_label(  # a double tap adds nothing
        dog.id,
        MIXED_BREED,
        source=LabelSource.STAFF,
        user_id=7,
        primary="boxer",
        secondary="labrador_retriever",
    )
    answer = catalog.dogs.answer(dog.id)
    assert answer.breed == ShelterBreed("boxer", "labrador_retriever", mix=True)
    name = shelter_breed_name(answer.breed, catalog.breeds.breed_name)
    assert name == "Boxer / Labrador Retriever mix"
    with session(catalog.intake.engine) as s:
        people = s.exec(select(Label).where(Label.source == LabelSource.STAFF)).all()
        assert sorted(label.photo_id for label in people) == [p.id for p in answer.photos]

    # Two colleagues say purebred boxer: the majority of people (each counted once) wins...
    for user in (8, 9):
        catalog.dogs.record_label(dog.id, "boxer", source=LabelSource.STAFF, user_id=user)
    assert catalog.dogs.answer(dog.id).breed == ShelterBreed("boxer")
    # ...until an admin speaks.
    catalog.dogs.record_label(dog.id, MIXED_BREED, source=LabelSource.ADMIN, user_id=1, primary=None)
    assert catalog.dogs.answer(dog.id).breed == ShelterBreed(None, None, mix=True)
    assert shelter_breed_name(ShelterBreed(None, None, True), catalog.breeds.breed_name) == "Mixed breed"
    with pytest.raises(ValueError):
        catalog.dogs.record_label(dog.id, "boxer", source=LabelSource.STAFF, user_id=7, primary="pug")


def test_merging_two_records_of_one_animal_keeps_both_and_old_codes_find_it(
    make_catalog, database_url, photos_of
):
    catalog = make_catalog(database_url)
    first, second = photos_of("beagle", 2)
    a = catalog.intake.submit(first, source="telegram", sender_id=5)
    b = catalog.intake.submit(second, source="telegram", sender_id=5)
    kept = catalog.dogs.get(a.photo.dog_id)
    catalog.dogs.set_details(b.photo.dog_id, name="Bella", sex="female", age_group="puppy")
    gone = catalog.dogs.get(b.photo.dog_id)
    merged = catalog.dogs.merge(gone.id, kept.id)
    assert merged.id == kept.id and (merged.name, merged.sex, merged.age_group) == (
        "Bella",
        "female",
        "puppy",
    )
    assert [p.id for p in catalog.dogs.photos_of(kept.id)] == sorted([a.photo.id, b.photo.id])
    assert catalog.dogs.by_code(gone.code).id == kept.id
    assert [d.id for d in catalog.dogs.recent(10)] == [kept.id]
    with session(catalog.intake.engine) as s:
        assert s.get(Dog, gone.id).merged_into == kept.id
        assert {p.dog_id for p in s.exec(select(Photo))} == {kept.id}
    with pytest.raises(ValueError):
        catalog.dogs.set_details(kept.id, sex="tomcat")


def test_the_split_goes_by_dog_and_a_dog_of_one_photo_keeps_its_photos_split(
    make_catalog, database_url, photos_of
):
    from jobs.fold import fold, split_of
    from storage import lifecycle_repository

    catalog = make_catalog(database_url)
    dog = catalog.dogs.create(source="ingest")
    together = photos_of("pug", 4)
    receive(catalog.intake, [Incoming(d, dog_id=dog.id) for d in together], source="ingest")
    alone = [catalog.intake.submit(d, source="ingest").photo for d in photos_of("beagle", 3)]
    catalog.dogs.record_label(dog.id, "pug", source=LabelSource.STAFF, user_id=7)
    for photo in alone:
        catalog.labelling.record_label(photo.id, "beagle", source=LabelSource.STAFF, user_id=7)
    result = fold(catalog.intake.engine, now=datetime.now(UTC), val_share=0.5, golden_size=0)
    with session(catalog.intake.engine) as s:
        items = lifecycle_repository.dataset_items(result.version, session=s)
        first = min(p.id for p in catalog.dogs.photos_of(dog.id))
        first_sha = s.get(Photo, first).sha256
    split_by_photo = {item.photo_id: item.split for item in items}
    assert {split_by_photo[p.id] for p in catalog.dogs.photos_of(dog.id)} == {split_of(first_sha, 0.5)}
    assert [split_by_photo[p.id] for p in alone] == [split_of(p.sha256, 0.5) for p in alone]


def test_the_drift_report_counts_the_recent_dogs_age_groups(make_catalog, database_url, photos_of, predictor):
    from conftest import default_settings

    from dogbot.app import drift_thresholds
    from jobs.drift import check_drift

    catalog = make_catalog(database_url)
    photos = [catalog.intake.submit(d, source="telegram", sender_id=3).photo for d in photos_of("pug", 3)]
    extra = catalog.intake.submit(photos_of("pug", 4)[3], source="telegram", sender_id=3).photo
    catalog.dogs.add_photos(photos[0].dog_id, [extra.id])  # a second photo of a puppy counts once
    for photo in photos[:2]:
        catalog.dogs.set_details(photo.dog_id, age_group="puppy")
    result = check_drift(
        catalog.intake.engine,
        head=predictor.head,
        model_version=predictor.model_version,
        now=datetime.now(UTC),
        window=10,
        reference_max=10,
        thresholds=drift_thresholds(default_settings()),
        dog_threshold=0.5,
    )
    assert result.extra["age_groups"]["current"] == {"puppy": 2, "unknown": 1}
