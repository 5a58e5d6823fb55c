"""The catalog service with the real model and a real database (SQLite and PostgreSQL)."""

import csv
import io

import pytest
from sqlmodel import select

from dogbot.core.labelling import UnknownBreed
from dogbot.core.reporting import EXPORT_COLUMNS
from ml.images import ImageRejected
from storage import repository
from storage.db import session
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import LabelSource, Outcome


@pytest.fixture
def photo_bytes(shared_manifest, eval_data_dir):
    """Bytes of a real photo of the given manifest label (first one that is not an ImageNet image)."""

    def pick(breed: str) -> bytes:
        rows = [
            r
            for r in shared_manifest("manifest.csv")
            if r["breed"] == breed and r["imagenet_overlap"] == "no"
        ]
        return (eval_data_dir / rows[0]["path"]).read_bytes()

    return pick


def test_a_photo_is_stored_classified_and_deduplicated(make_catalog, database_url, photo_bytes):
    catalog = make_catalog(database_url)
    data = photo_bytes("golden retriever")
    first = catalog.intake.submit(data, source="telegram", sender_id=11, chat_id=11)
    assert first.outcome in (Outcome.AUTO_ACCEPTED, Outcome.ASK)
    assert first.prediction.is_dog and first.prediction.model_version == "lite0-v0"
    assert [breed.key for breed, _ in first.top][0] == "golden_retriever"
    assert len(first.prediction.top) == 3
    assert len(repository.embedding_from_bytes(first.prediction.embedding)) == 1280
    assert catalog.intake.photos.get(first.photo.sha256) == data

    again = catalog.intake.submit(data, source="telegram", sender_id=12, chat_id=12)
    assert again.duplicate and again.photo.id == first.photo.id
    with session(catalog.intake.engine) as s:
        assert len(s.exec(select(Photo)).all()) == 1
        assert len(s.exec(select(Prediction)).all()) == 1  # the same model is not asked twice


def test_an_unreadable_file_is_refused_and_nothing_is_stored(make_catalog, database_url):
    catalog = make_catalog(database_url)
    with pytest.raises(ImageRejected):
        catalog.intake.submit(b"this is a text file, not a photo", source="telegram")
    with session(catalog.intake.engine) as s:
        assert s.exec(select(Photo)).all() == []


def test_a_cat_is_not_a_dog(make_catalog, database_url, shared_manifest, eval_data_dir):
    catalog = make_catalog(database_url)
    cat = next(r for r in shared_manifest("manifest.csv") if "cat:" in r["provenance"])
    result = catalog.intake.submit((eval_data_dir / cat["path"]).read_bytes(), source="telegram")
    assert result.outcome == Outcome.NOT_A_DOG
    assert result.label.breed == "not_a_dog" and result.label.label.source == LabelSource.AUTO


def test_labels_are_appended_with_who_and_repeats_change_nothing(make_catalog, database_url, photo_bytes):
    catalog = make_catalog(database_url, auto_accept_threshold=1.01)  # ask about everything
    result = catalog.intake.submit(photo_bytes("pug"), source="telegram", sender_id=11)
    assert result.outcome == Outcome.ASK and result.label is None
    assert catalog.labelling.next_for_review()[0].id == result.photo.id

    staff = catalog.labelling.record_label(result.photo.id, "pug", source=LabelSource.STAFF, user_id=11)
    repeat = catalog.labelling.record_label(result.photo.id, "pug", source=LabelSource.STAFF, user_id=11)
    other = catalog.labelling.record_label(result.photo.id, "boxer", source=LabelSource.STAFF, user_id=12)
    assert staff.created and not repeat.created and other.created
    assert other.resolved.conflict  # two people disagree: admins see it
    assert [photo.id for photo, _ in catalog.reporting.conflicts()] == [result.photo.id]
    admin = catalog.labelling.record_label(result.photo.id, "pug", source=LabelSource.ADMIN, user_id=99)
    assert admin.resolved.breed == "pug" and admin.resolved.label.user_id == 99
    with session(catalog.intake.engine) as s:
        history = s.exec(select(Label).order_by(Label.id)).all()
    assert [(label.breed, label.user_id) for label in history] == [("pug", 11), ("boxer", 12), ("pug", 99)]
    assert catalog.labelling.next_for_review() is None

    with pytest.raises(UnknownBreed):
        catalog.labelling.record_label(result.photo.id, "space_wolf", source=LabelSource.STAFF, user_id=11)


def test_added_breeds_can_label_photos_and_survive_a_restart(make_catalog, database_url, photo_bytes):
    catalog = make_catalog(database_url, auto_accept_threshold=1.01)
    breed = catalog.breeds.add_breed("Bucovina Shepherd", by=99)
    result = catalog.intake.submit(photo_bytes("basenji"), source="telegram")
    catalog.labelling.record_label(result.photo.id, breed.key, source=LabelSource.ADMIN, user_id=99)
    restarted = make_catalog(database_url)
    assert restarted.breeds.taxonomy.resolve("bucovina shepherd").key == breed.key
    assert restarted.labelling.catalog_label(result.photo.id).breed == breed.key


def test_export_has_the_contract_columns(make_catalog, database_url, photo_bytes):
    catalog = make_catalog(database_url, auto_accept_threshold=1.01)
    result = catalog.intake.submit(photo_bytes("pug"), source="telegram")
    catalog.labelling.record_label(result.photo.id, "pug", source=LabelSource.STAFF, user_id=11)
    rows = list(csv.DictReader(io.StringIO(catalog.reporting.export_csv())))
    assert tuple(rows[0].keys()) == EXPORT_COLUMNS
    assert rows[0]["label"] == "Pug" and rows[0]["labeled_by"] == "11" and rows[0]["label_source"] == "staff"
    assert rows[0]["sha256"] == result.photo.sha256 and rows[0]["model_version"] == "lite0-v0"
