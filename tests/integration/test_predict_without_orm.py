"""`dogbot predict` on a SQLite catalog reads the champion and the added breeds without the ORM
(dogbot.app.predictor_without_orm, storage.serving_read): it must serve exactly what the full way
serves, and step aside whenever it cannot be sure."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import numpy as np
import pytest

from dogbot.app import Container, predictor_without_orm
from dogbot.settings import Settings
from jobs import registry
from ml.head import BreedHead
from ml.images import load_image
from storage.blobs import write_bytes_atomically
from storage.db import session as open_session
from storage.lifecycle_tables import ModelVersion

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def promote_a_head_that_knows(container: Container, breed_key: str) -> BreedHead:
    """What the worker does after training: save the head, register it with its files, promote it."""
    base = container.predictor.base_head()
    head = BreedHead(
        base.breed_keys + [breed_key],
        np.vstack([base.weight, base.weight[:1]]),
        np.append(base.bias, 0.0),
        backbone="lite0",
    )
    path = container.settings.model_dir / "lite0-v1.safetensors"
    sha256 = head.save(path, write=write_bytes_atomically)
    with open_session(container.engine) as session:
        session.add(
            ModelVersion(
                version="lite0-v1",
                backbone="lite0",
                created_at=NOW,
                artifact=path.name,
                sha256=sha256,
                breed_keys=head.breed_keys,
            )
        )
        registry.store_artifact(session, "lite0-v1", path)
        session.commit()
    registry.promote(container.engine, "lite0-v1", reason="test", actor="test", now=NOW)
    assert container.refresh_champion()
    return head


@pytest.mark.slow
def test_predict_serves_what_the_full_way_serves_and_steps_aside_when_unsure(
    tmp_path, serving_backbone_dir, eval_data_dir, shared_manifest
):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", backbone_dir=serving_backbone_dir)
    assert predictor_without_orm(settings) is None  # no catalog yet: the full way creates it
    container = Container(settings)
    assert container.predictor.model_version == "lite0-v0"  # registers the base model
    assert predictor_without_orm(settings)[0].model_version == "lite0-v0"

    breed = container.breeds.add_breed("Kintamani", by=1)
    promote_a_head_that_knows(container, breed.key)
    quick, taxonomy = predictor_without_orm(settings)
    assert quick.model_version == container.predictor.model_version == "lite0-v1"
    assert quick.head.breed_keys == container.predictor.head.breed_keys
    assert taxonomy.get(breed.key).display_name == "Kintamani"
    photo = eval_data_dir / shared_manifest("manifest.csv")[0]["path"]
    image = load_image(photo.read_bytes(), max_bytes=20 << 20, max_pixels=40_000_000)
    served, full = quick.predict([image])[0], container.predictor.predict([image])[0]
    assert served.top(3) == full.top(3)
    np.testing.assert_allclose(served.breed_probabilities, full.breed_probabilities, rtol=1e-6)

    # A damaged head file in the model folder: the full way copies it from the database again.
    head_file = settings.model_dir / "lite0-v1.safetensors"
    intact = head_file.read_bytes()
    head_file.write_bytes(intact[:-1] + bytes([intact[-1] ^ 1]))
    assert predictor_without_orm(settings) is None
    head_file.write_bytes(intact)
    assert predictor_without_orm(settings)[0].model_version == "lite0-v1"

    # Another model configured: its line starts at its own version 0, which the full way registers.
    assert predictor_without_orm(settings.model_copy(update={"model": "lite2"})) is None
    # A database at another schema revision (older: the full way upgrades it) is not read.
    with sqlite3.connect(settings.data_dir / "dogbot.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0001_first_release'")
    assert predictor_without_orm(settings) is None
    # PostgreSQL is always read the full way.
    postgres = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:5432/root"})
    assert predictor_without_orm(postgres) is None
