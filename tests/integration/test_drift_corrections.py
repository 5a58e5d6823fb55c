"""The correction rate judges each label against the model that answered it (jobs/drift.py)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from jobs import drift
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import ModelVersion
from storage.repository import embedding_to_bytes
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import LabelSource, ModelStatus

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _labelled_photo(session, n: int, *, model: str, shown: str, label: str | None) -> int:
    photo = Photo(sha256=f"{n:064x}", received_at=NOW, source="test", width=10, height=10)
    session.add(photo)
    session.flush()
    prediction = Prediction(
        photo_id=photo.id,
        model_version=model,
        created_at=NOW,
        is_dog=True,
        dog_probability=0.99,
        breed=shown,
        confidence=0.6,
        embedding=embedding_to_bytes(np.ones(4, np.float32)),
    )
    session.add(prediction)
    session.flush()
    if label is not None:
        session.add(
            Label(
                photo_id=photo.id,
                prediction_id=prediction.id,
                breed=label,
                source=LabelSource.STAFF,
                user_id=7,
                created_at=NOW,
            )
        )
    return photo.id


def test_a_label_counts_as_a_correction_only_if_the_answering_model_could_have_given_it(engine):
    with open_session(engine) as session:
        for version, keys in (
            ("lite0-v0", ["basenji", "pug"]),
            ("lite0-v1", ["basenji", "pug", "shiba_inu"]),
        ):
            session.add(
                ModelVersion(
                    version=version,
                    backbone="lite0",
                    created_at=NOW,
                    breed_keys=keys,
                    status=ModelStatus.PROMOTED,
                )
            )
        ids = [
            # v0 had no Shiba Inu row: a new breed, not the model getting worse ...
            _labelled_photo(session, 1, model="lite0-v0", shown="basenji", label="shiba_inu"),
            # ... but v1 has one, so the same answer from v1 is a correction.
            _labelled_photo(session, 2, model="lite0-v1", shown="basenji", label="shiba_inu"),
            _labelled_photo(session, 3, model="lite0-v0", shown="basenji", label="pug"),
            _labelled_photo(session, 4, model="lite0-v0", shown="pug", label="not_a_dog"),
            _labelled_photo(session, 5, model="lite0-v0", shown="pug", label="mixed_breed"),
            _labelled_photo(session, 6, model="lite0-v9", shown="pug", label="pug"),  # not registered
            _labelled_photo(session, 7, model="lite0-v0", shown="pug", label=None),
            # Embedded by another backbone (a deployment that changed DOGBOT_MODEL): not comparable.
            _labelled_photo(session, 8, model="lite2-v0", shown="pug", label="pug"),
        ]
        session.commit()
    window = drift._load(engine, ids, "lite0")
    assert window.photo_ids == ids[:-1]
    assert window.answerable == [False, True, True, True, False, None, None]
    assert window.people_label[-1] is None
