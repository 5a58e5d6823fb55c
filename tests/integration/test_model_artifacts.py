"""Model files live in the database: a process with an empty model folder loads any registered head.

Each test plays the worker (saves a head, registers it with its files) and a replica on another
machine (its own, empty model folder), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import delete, update
from sqlmodel import select

from jobs import registry
from ml.head import BreedHead, sidecar_path
from storage.blobs import write_bytes_atomically
from storage.db import make_engine
from storage.db import session as open_session
from storage.lifecycle_tables import ModelArtifact, ModelVersion
from storage.vocabulary import ModelStatus

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def small_head(seed: int = 0) -> BreedHead:
    generator = torch.Generator().manual_seed(seed)
    return BreedHead(
        ["pug", "boxer"], torch.randn(2, 4, generator=generator), torch.zeros(2), backbone="lite0"
    )


def no_base() -> BreedHead:
    raise AssertionError("a trained version never falls back to the base head")


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def register(engine, worker_dir: Path, version: str = "lite0-v1", *, share: bool = True) -> BreedHead:
    """What the retrain job does: save the head, add its row and (unless ``share`` is off) its files."""
    head = small_head()
    path = worker_dir / f"{version}.pt"
    sha256 = head.save(path, write=write_bytes_atomically)
    with open_session(engine) as session:
        session.add(
            ModelVersion(
                version=version,
                backbone="lite0",
                created_at=NOW,
                artifact=path.name,
                sha256=sha256,
                breed_keys=head.breed_keys,
                status=ModelStatus.CANDIDATE,
            )
        )
        if share:
            registry.store_artifact(session, version, path)
        session.commit()
    return head


def test_a_replica_with_an_empty_model_folder_loads_the_head_from_the_database(engine, tmp_path):
    head = register(engine, tmp_path / "worker")
    replica = tmp_path / "replica"
    loaded = registry.load_head(engine, "lite0-v1", model_dir=replica, base_head=no_base)
    assert np.array_equal(loaded.weight, head.weight) and loaded.breed_keys == head.breed_keys
    # Cached as the worker wrote it, with no temporary files left behind.
    assert sorted(p.name for p in replica.iterdir()) == ["lite0-v1.pt", "lite0-v1.pt.json"]
    for name in ("lite0-v1.pt", "lite0-v1.pt.json"):
        assert (replica / name).read_bytes() == (tmp_path / "worker" / name).read_bytes()

    with open_session(engine) as session:  # the cache is enough from now on
        session.exec(delete(ModelArtifact))
        session.commit()
    again = registry.load_head(engine, "lite0-v1", model_dir=replica, base_head=no_base)
    assert np.array_equal(again.weight, head.weight)


def test_a_damaged_cached_copy_is_replaced_from_the_database(engine, tmp_path):
    head = register(engine, tmp_path / "worker")
    replica = tmp_path / "replica"
    replica.mkdir()
    (replica / "lite0-v1.pt").write_bytes(b"half a file")  # e.g. a cache from a restored older database
    loaded = registry.load_head(engine, "lite0-v1", model_dir=replica, base_head=no_base)
    assert np.array_equal(loaded.weight, head.weight)


def test_a_missing_or_damaged_cached_sidecar_is_replaced_from_the_database(engine, tmp_path):
    head = register(engine, tmp_path / "worker")
    replica = tmp_path / "replica"
    registry.load_head(engine, "lite0-v1", model_dir=replica, base_head=no_base)
    sidecar = sidecar_path(replica / "lite0-v1.pt")
    sidecar.unlink()
    assert registry.load_head(engine, "lite0-v1", model_dir=replica, base_head=no_base).breed_keys == [
        "pug",
        "boxer",
    ]
    sidecar.write_text("{not json")
    loaded = registry.load_head(engine, "lite0-v1", model_dir=replica, base_head=no_base)
    assert np.array_equal(loaded.weight, head.weight)


def test_a_sidecar_naming_other_breeds_than_the_registry_is_refused(engine, tmp_path):
    register(engine, tmp_path / "worker")
    with open_session(engine) as session:
        row = session.exec(select(ModelVersion).where(ModelVersion.version == "lite0-v1")).one()
        row.breed_keys = ["boxer", "pug"]  # rows swapped: every answer would name the wrong breed
        session.add(row)
        session.commit()
    with pytest.raises(registry.RegistryError, match="other breeds"):
        registry.load_head(engine, "lite0-v1", model_dir=tmp_path / "replica", base_head=no_base)


def test_a_copy_that_does_not_match_the_registry_is_refused(engine, tmp_path):
    register(engine, tmp_path / "worker")
    with open_session(engine) as session:
        tensors = ModelArtifact.name == "lite0-v1.pt"
        session.exec(update(ModelArtifact).where(tensors).values(data=b"tampered"))
        session.commit()
    with pytest.raises(registry.RegistryError, match="does not match"):
        registry.load_head(engine, "lite0-v1", model_dir=tmp_path / "replica", base_head=no_base)
    assert not (tmp_path / "replica" / "lite0-v1.pt").exists()


def test_a_head_in_neither_place_is_a_clear_error(engine, tmp_path):
    register(engine, tmp_path / "worker", share=False)
    with pytest.raises(registry.RegistryError, match="database has no copy"):
        registry.load_head(engine, "lite0-v1", model_dir=tmp_path / "replica", base_head=no_base)


def test_the_worker_shares_heads_trained_before_artifacts_lived_in_the_database(engine, tmp_path):
    """After `dogbot db upgrade` (or at the worker's start) older versions' files go into the database."""
    worker = tmp_path / "worker"
    register(engine, worker, "lite0-v1", share=False)
    register(engine, worker, "lite0-v2", share=True)
    register(engine, worker, "lite0-v3", share=False)
    (worker / "lite0-v3.pt").unlink()  # lost: reported, not shared
    assert registry.store_missing_artifacts(engine, worker) == ["lite0-v1"]
    assert registry.store_missing_artifacts(engine, worker) == []
    with open_session(engine) as session:
        names = sorted(session.exec(select(ModelArtifact.name)))
    assert names == ["lite0-v1.pt", "lite0-v1.pt.json", "lite0-v2.pt", "lite0-v2.pt.json"]
    registry.load_head(engine, "lite0-v1", model_dir=tmp_path / "replica", base_head=no_base)
    assert sidecar_path(tmp_path / "replica" / "lite0-v1.pt").is_file()


def test_changing_the_model_starts_its_own_line_and_rollback_never_crosses_models(engine):
    # A deployment on lite0 (1,280-number embeddings) upgrades to lite0gem (2,560): the lite0
    # champion cannot read the new embeddings, so the new model's line starts at its v0.
    assert registry.ensure_base(engine, backbone="lite0", breed_keys=["pug"], now=NOW) == "lite0-v0"
    assert registry.ensure_base(engine, backbone="lite0gem", breed_keys=["pug"], now=NOW) == "lite0gem-v0"
    assert registry.ensure_base(engine, backbone="lite0gem", breed_keys=["pug"], now=NOW) == "lite0gem-v0"
    assert registry.champion_version(engine) == "lite0gem-v0"
    with pytest.raises(registry.RegistryError, match="DOGBOT_MODEL=lite0 "):
        registry.rollback(engine, actor="1", now=NOW)
    moves = [(m.kind, m.from_version, m.to_version) for m in registry.history(engine)]
    assert moves == [("init", None, "lite0-v0"), ("init", "lite0-v0", "lite0gem-v0")]
