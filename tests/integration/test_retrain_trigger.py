"""The scheduled retrain starts as soon as a breed the model cannot name has 3 labelled photos."""

from datetime import UTC, datetime

from jobs import registry
from jobs.retrain import retrain_trigger
from storage.db import make_engine
from storage.db import session as open_session
from storage.tables import Label, Photo
from storage.vocabulary import LabelSource, SpecialLabel

NOW = datetime(2026, 1, 5, 20, 0, tzinfo=UTC)


def test_a_third_photo_of_a_new_breed_triggers_a_retrain(database_url):
    engine = make_engine(database_url)
    registry.ensure_base(engine, backbone="lite0", breed_keys=["beagle", "pug"], now=NOW)
    photos = iter(range(1, 100))

    def label(breed: str, source: str = LabelSource.STAFF) -> None:
        with open_session(engine) as session:
            photo = Photo(sha256=f"{next(photos):064x}", source="telegram")
            session.add(photo)
            session.flush()
            session.add(Label(photo_id=photo.id, breed=breed, source=source, user_id=7))
            session.commit()

    def trigger() -> str | None:
        return retrain_trigger(engine, min_new_labels=50, new_breed_photos=3)

    for breed in ("beagle", "beagle", "beagle", "shiba_inu", "shiba_inu", SpecialLabel.NOT_A_DOG):
        label(breed)
    label(SpecialLabel.NOT_A_DOG)
    label("akita", LabelSource.AUTO)  # a model's own label says nothing new
    label("akita", LabelSource.AUTO)
    label("akita", LabelSource.AUTO)
    assert trigger() is None  # breeds it knows, two Shiba Inus, non-breeds: not yet
    label("shiba_inu")
    assert trigger() == "new_breed"
    assert retrain_trigger(engine, min_new_labels=50, new_breed_photos=0) is None  # off
    engine.dispose()
