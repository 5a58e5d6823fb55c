"""The catalog service with the real model and a real database (SQLite and PostgreSQL)."""

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from dogbot.core import review
from dogbot.core.intake import Incoming, receive
from dogbot.core.labelling import UnknownBreed
from dogbot.core.reporting import EXPORT_COLUMNS
from ml.images import ImageRejected
from storage import repository
from storage.db import session
from storage.tables import CustomBreed, Label, Photo, Prediction
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


def test_a_photo_that_may_not_be_a_dog_is_asked_about_not_filed(
    make_catalog, database_url, shared_manifest, eval_data_dir
):
    """Below Settings.dog_threshold but not below not_a_dog_below, staff are asked: a dog of a breed
    ImageNet lacks often looks to the model like a dingo or a wolf, and staff send dogs."""
    from bot import texts

    cat = next(r for r in shared_manifest("manifest.csv") if "cat:" in r["provenance"])
    catalog = make_catalog(database_url, not_a_dog_below=0.0)  # no verdict "not a dog" is sure enough
    result = catalog.intake.submit((eval_data_dir / cat["path"]).read_bytes(), source="telegram")
    assert result.outcome == Outcome.ASK and not result.prediction.is_dog
    assert result.label is None and not result.prediction.auto_accepted
    assert "may not be a dog" in texts.classification(result, lambda key: key)
    answer = catalog.dogs.answer(result.photo.dog_id)
    assert answer.outcome == Outcome.ASK and answer.maybe_not_a_dog and answer.breed is None
    assert "may not be a dog" in texts.dog_card(answer, lambda key: key)


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


@pytest.mark.parametrize("name", ["Skip", "skipped", "Other", "Don't know", "Mixed", "Not a dog"])
def test_breeds_cannot_take_the_names_of_special_answers(make_catalog, database_url, name):
    catalog = make_catalog(database_url)
    with pytest.raises(ValueError, match="buttons use|already in the breed list"):
        catalog.breeds.add_breed(name, by=99)
    with session(catalog.intake.engine) as s:
        assert s.exec(select(CustomBreed)).all() == []


def test_a_breed_named_skip_from_before_the_check_cannot_turn_answers_into_skip(make_catalog, database_url):
    """A custom breed keyed "skip" already in the database is left out; "skip" stays "I don't know"."""
    catalog = make_catalog(database_url)
    with session(catalog.intake.engine) as s:
        s.add(CustomBreed(key="skip", display_name="Skip", aliases=[], added_by=99))
        s.add(Photo(sha256="ab" * 32, source="telegram"))
        s.commit()
    restarted = make_catalog(database_url)
    assert "skip" not in restarted.breeds.taxonomy and restarted.breeds.taxonomy.resolve("Skip") is None
    photo_id = restarted.reporting.status().photos_total
    restarted.labelling.record_label(photo_id, "skip", source=LabelSource.STAFF, user_id=11)
    assert restarted.labelling.catalog_label(photo_id) is None  # still waiting for a real answer
    assert restarted.reporting.status().awaiting_label == 1


def test_export_has_the_contract_columns(make_catalog, database_url, photo_bytes):
    catalog = make_catalog(database_url, auto_accept_threshold=1.01)
    result = catalog.intake.submit(photo_bytes("pug"), source="telegram")
    catalog.labelling.record_label(result.photo.id, "pug", source=LabelSource.STAFF, user_id=11)
    rows = list(csv.DictReader(io.StringIO(catalog.reporting.export_csv())))
    assert tuple(rows[0].keys()) == EXPORT_COLUMNS
    assert rows[0]["label"] == "Pug" and rows[0]["labeled_by"] == "11" and rows[0]["label_source"] == "staff"
    assert rows[0]["sha256"] == result.photo.sha256 and rows[0]["model_version"] == "lite0-v0"


class Lockstep:
    """The real predictor, except that two callers leave ``predict`` together: the race, every time."""

    def __init__(self, predictor, parties: int) -> None:
        self._predictor, self._barrier = predictor, threading.Barrier(parties, timeout=120)

    def __getattr__(self, name: str):
        return getattr(self._predictor, name)

    def predict(self, images):
        outputs = self._predictor.predict(images)
        self._barrier.wait()
        return outputs


def test_the_same_photo_sent_twice_at_once_is_classified_once(make_catalog, database_url, photo_bytes):
    catalog = make_catalog(database_url, auto_accept_threshold=1.01)
    catalog.intake.predictor = Lockstep(catalog.intake.predictor, 2)
    data = photo_bytes("golden retriever")

    def send(sender: int):
        return catalog.intake.submit(data, source="telegram", sender_id=sender, chat_id=sender)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(send, (11, 12))
    with session(catalog.intake.engine) as s:
        assert len(s.exec(select(Photo)).all()) == 1
        assert len(s.exec(select(Prediction)).all()) == 1, "one prediction per photo and model"
    assert first.prediction.id == second.prediction.id  # the racing duplicate gets the existing answer
    assert {first.duplicate, second.duplicate} == {False, True}
    for result in (first, second):  # both senders' buttons stay valid
        assert review.current_question(catalog, result.prediction.id).photo.id == result.photo.id
        review.answer(catalog, result.prediction.id, "golden_retriever", source="staff", user_id=11)


def test_the_same_photo_twice_in_one_batch_is_classified_once(make_catalog, database_url, photo_bytes):
    catalog = make_catalog(database_url)
    data = photo_bytes("pug")
    received = receive(catalog.intake, [Incoming(data, sender_id=11), Incoming(data, sender_id=12)])
    assert received[0].classification.prediction.id == received[1].classification.prediction.id
    with session(catalog.intake.engine) as s:
        assert len(s.exec(select(Prediction)).all()) == 1
        assert len(s.exec(select(Label)).all()) <= 1  # at most one auto label


def test_after_a_rollback_a_photo_sent_again_gets_that_models_prediction(
    make_catalog, database_url, photo_bytes
):
    """One prediction per photo and model: after a rollback the old one answers; none is added."""
    catalog = make_catalog(database_url, auto_accept_threshold=1.01)
    data = photo_bytes("pug")
    v0 = catalog.intake.submit(data, source="telegram").prediction
    catalog.intake.predictor.use_head(
        catalog.intake.predictor.base_head(), "lite0-v1"
    )  # a retrain promoted v1
    v1 = catalog.intake.submit(data, source="telegram").prediction
    catalog.intake.predictor.use_head(catalog.intake.predictor.base_head(), "lite0-v0")  # rolled back to v0
    again = catalog.intake.submit(data, source="telegram")
    assert again.prediction.id == v0.id and v1.id != v0.id
    with session(catalog.intake.engine) as s:
        assert len(s.exec(select(Prediction)).all()) == 2


def test_answers_now_reads_each_persons_standing_answer_and_the_catalog_label(make_catalog, database_url):
    """What a question message is drawn from after a press, whatever order racing presses wrote in."""
    catalog = make_catalog(database_url)
    with session(catalog.intake.engine) as s:
        s.add(Photo(sha256="cd" * 32, source="telegram"))
        s.commit()
    for user_id, breed in ((11, "leonberger"), (11, "pug"), (12, "saint_bernard")):
        catalog.labelling.record_label(1, breed, source=LabelSource.STAFF, user_id=user_id)
    mine, resolved = catalog.labelling.answers_now(1, 11)
    assert mine == "pug" and (resolved.breed, resolved.conflict) == ("saint_bernard", True)
    assert catalog.labelling.answers_now(1, 99)[0] is None


def test_intake_holds_one_decoded_photo_at_a_time(make_catalog, database_url, monkeypatch):
    """Many pixels in small files: each decoded photo is let go (shrunk to the model's input) before the
    next is decoded, and none is alive when the batch is classified (bench/README.md, "Memory")."""
    import gc
    import weakref

    from PIL import Image

    catalog = make_catalog(database_url)
    decoded: list[weakref.ref] = []
    alive_at: list[int] = []

    def alive() -> int:
        gc.collect()
        return sum(ref() is not None for ref in decoded)

    decode, classify = catalog.intake.decode, catalog.intake.classify_stored

    def tracked_decode(data):
        alive_at.append(alive())
        image = decode(data)
        decoded.append(weakref.ref(image))
        return image

    def tracked_classify(stored, images):
        alive_at.append(alive())
        return classify(stored, images)

    monkeypatch.setattr(catalog.intake, "decode", tracked_decode)
    monkeypatch.setattr(catalog.intake, "classify_stored", tracked_classify)
    files = []
    for shade in range(4):
        buffer = io.BytesIO()
        Image.new("RGB", (1600, 1200), (shade * 60, 90, 120)).save(buffer, "PNG")
        files.append(buffer.getvalue())
    received = receive(catalog.intake, [Incoming(data) for data in files])
    assert all(r.classification is not None for r in received)
    assert alive_at == [0, 0, 0, 0, 0], "decoded photos still held while the next is decoded or classified"
    assert received[0].classification.photo.width == 1600  # statistics from the full photo


def test_a_prepared_photo_gets_the_same_answer_as_the_photo(predictor, photo_bytes):
    from conftest import load_photo

    image = load_photo(photo_bytes("pug"))
    whole, prepared = predictor.predict([image, predictor.prepare(image)])
    assert (whole.embedding == prepared.embedding).all() and whole.top(3) == prepared.top(3)
