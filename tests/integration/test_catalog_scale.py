"""Queries whose cost must not grow with the catalog, and a fold past PostgreSQL's parameter limit.

Synthetic rows (no photos, tiny embeddings): what matters here is how many rows and ids there are.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import default_settings
from sqlalchemy import func, insert
from sqlmodel import select

from jobs.fold import fold, prune
from storage import lifecycle_repository, repository
from storage.db import make_engine, session
from storage.lifecycle_tables import DatasetItem, ModelVersion
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
    with session(engine) as s:  # one new label past the limit: one row, the version reads whole
        s.add(Label(photo_id=70_001, breed="boxer", source=LabelSource.STAFF, user_id=7))
        s.commit()
    again = fold(engine, now=NOW, val_share=settings.validation_share, golden_size=settings.golden_size)
    assert again.created and again.n_changed == 1 and again.n_items == 70_001
    with session(engine) as s:
        items = lifecycle_repository.dataset_items(again.version, session=s)
    assert len(items) == 70_001 and items[-1].label == "boxer"
    engine.dispose()


def items_of(engine, version: int) -> dict[int, tuple[str, str]]:
    with session(engine) as s:
        items = lifecycle_repository.dataset_items(version, session=s)
    return {i.photo_id: (i.label, i.source) for i in items}


def rows(engine) -> int:
    with session(engine) as s:
        return s.exec(select(func.count()).select_from(DatasetItem)).one()


def test_a_fold_writes_only_what_changed_and_pruning_keeps_what_models_need(database_url):
    engine = make_engine(database_url)
    ids = add_catalog(engine, 1_200)
    settings = default_settings()

    def fold_now(hour: int):
        return fold(engine, now=NOW.replace(hour=hour), val_share=settings.validation_share, golden_size=0)

    first = fold_now(1)
    assert first.n_changed == first.n_items == 1_200 and rows(engine) == 1_200
    with session(engine) as s:  # one photo relabelled, one confirmed by staff (its source changes)
        s.add(Label(photo_id=ids[0], breed="boxer", source=LabelSource.STAFF, user_id=7))
        s.add(Label(photo_id=ids[1], breed="pug", source=LabelSource.STAFF, user_id=7))
        s.commit()
    second = fold_now(2)
    assert second.created and second.n_changed == 2 and rows(engine) == 1_202
    assert sum(second.counts["boxer"].values()) == 1
    assert sum(sum(c.values()) for c in second.counts.values()) == second.n_items == 1_200
    with session(engine) as s:  # agreeing with the catalog and skipping change nothing: no version
        s.add(Label(photo_id=ids[0], breed="boxer", source=LabelSource.STAFF, user_id=8))
        s.add(Label(photo_id=ids[2], breed="skip", source=LabelSource.STAFF, user_id=8))
        s.commit()
    assert not fold_now(3).created and rows(engine) == 1_202
    with session(engine) as s:
        s.add(Label(photo_id=ids[3], breed="beagle", source=LabelSource.ADMIN, user_id=1))
        s.commit()
    third = fold_now(4)
    assert third.n_changed == 1 and third.version == second.version + 1

    expected = {v: items_of(engine, v) for v in (first.version, second.version, third.version)}
    assert expected[first.version][ids[0]] == ("pug", LabelSource.IMPORT)
    assert expected[second.version][ids[0]] == ("boxer", LabelSource.STAFF)
    assert expected[second.version][ids[3]] == ("pug", LabelSource.IMPORT)
    assert expected[third.version][ids[3]] == ("beagle", LabelSource.ADMIN)
    with session(engine) as s:  # a model trained on the second version keeps it
        s.add(ModelVersion(version="lite0-v1", backbone="lite0", dataset_version=second.version))
        s.commit()
    pruned = prune(engine)
    assert pruned.removed == [first.version] and pruned.kept == 2
    assert {v: items_of(engine, v) for v in (second.version, third.version)} == {
        v: expected[v] for v in (second.version, third.version)
    }
    assert rows(engine) == 1_201  # the two rows the second version replaced are gone; nothing moved
    with pytest.raises(ValueError, match="pruned"):
        items_of(engine, first.version)
    assert prune(engine).removed == []  # nothing more to do
    engine.dispose()
