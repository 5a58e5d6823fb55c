"""Queries whose cost must not grow with the catalog, and a fold past PostgreSQL's parameter limit.

Synthetic rows (no photos, tiny embeddings): what matters here is how many rows and ids there are.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import default_settings
from sqlalchemy import func, insert
from sqlmodel import select

from jobs.fold import fold
from storage import repository
from storage.db import make_engine, session
from storage.lifecycle_tables import DatasetItem
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import LabelSource

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def add_catalog(engine, n_photos: int, predictions_per_photo: int = 1) -> list[int]:
    """``n_photos`` photos, each labelled once and predicted ``predictions_per_photo`` times."""
    with session(engine) as s:
        s.execute(insert(Photo), [{"sha256": f"{i:064x}", "source": "import"} for i in range(n_photos)])
        ids = list(s.exec(select(Photo.id).order_by(Photo.id)))
        for round_ in range(predictions_per_photo):
            s.execute(
                insert(Prediction),
                [
                    {
                        "photo_id": photo_id,
                        "model_version": f"lite0-v{round_}",
                        "is_dog": True,
                        "dog_probability": 0.9,
                        "breed": "pug",
                        "confidence": 0.5,
                        "top": [],
                        "embedding": repository.embedding_to_bytes([float(round_)]),
                    }
                    for photo_id in ids
                ],
            )
        s.execute(insert(Label), [{"photo_id": i, "breed": "pug", "source": LabelSource.IMPORT} for i in ids])
        s.commit()
    return ids


def test_newest_predictions_by_id_across_several_in_list_chunks(database_url):
    engine = make_engine(database_url)
    ids = add_catalog(engine, repository.IN_LIST_CHUNK * 2 + 7, predictions_per_photo=2)
    with session(engine) as s:
        wanted = ids[::2] + [10**9]  # every other photo, and one that does not exist
        newest = repository.latest_prediction_ids(wanted, session=s)
        assert sorted(newest) == sorted(ids[::2])
        rows = repository.latest_predictions(wanted, session=s)
        assert set(rows) == set(ids[::2])
        assert all(row.model_version == "lite0-v1" and row.id == newest[pid] for pid, row in rows.items())
        assert set(repository.latest_predictions(session=s)) == set(ids)  # all photos: same answer
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_fold_works_past_postgresql_parameter_limit(postgres_url):
    """70,001 labelled photos: one IN list of their ids would need more than 65,535 parameters."""
    engine = make_engine(postgres_url)
    add_catalog(engine, 70_001)
    settings = default_settings()
    result = fold(engine, now=NOW, val_share=settings.validation_share, golden_size=settings.golden_size)
    assert result.created and result.n_items == 70_001
    with session(engine) as s:
        linked = s.exec(select(func.count()).where(DatasetItem.prediction_id.is_not(None))).one()
    assert linked == 70_001
    engine.dispose()
