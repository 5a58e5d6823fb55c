"""Storage on SQLite and PostgreSQL: content-addressed photos, append-only labels, WAL mode."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage import repository
from storage.blobs import LocalPhotoStore, sha256_of
from storage.db import make_engine, session
from storage.tables import Label, Photo, Prediction
from storage.vocabulary import LabelSource


def test_photo_store_is_content_addressed(tmp_path):
    store = LocalPhotoStore(tmp_path)
    first = store.put(b"same bytes")
    second = store.put(b"same bytes")
    assert first == second == sha256_of(b"same bytes")
    assert store.get(first) == b"same bytes"
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")


def test_sqlite_file_uses_wal(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'dogbot.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_one_row_per_photo_hash(database_url):
    engine = make_engine(database_url)
    with session(engine) as s:
        s.add(Photo(sha256="a" * 64, source="telegram"))
        s.commit()
        s.add(Photo(sha256="a" * 64, source="telegram"))
        with pytest.raises(IntegrityError):
            s.commit()
    engine.dispose()


def test_labels_append_and_the_review_queue_follows_them(database_url):
    engine = make_engine(database_url)
    with session(engine) as s:
        photos = [Photo(sha256=f"{i:064x}", source="ingest", sender_id=5_000_000_000) for i in range(3)]
        s.add_all(photos)
        s.commit()
        for photo in photos:
            s.add(
                Prediction(
                    photo_id=photo.id,
                    model_version="lite0-v0",
                    is_dog=True,
                    dog_probability=0.9,
                    breed="pug",
                    confidence=0.4,
                    top=[{"breed": "pug", "p": 0.4}],
                    embedding=repository.embedding_to_bytes([0.5, 1.5]),
                )
            )
        s.add(Label(photo_id=photos[0].id, breed="pug", source=LabelSource.STAFF, user_id=1))
        s.add(Label(photo_id=photos[1].id, breed="skip", source=LabelSource.STAFF, user_id=1))
        s.commit()
        waiting = repository.photos_awaiting_label(session=s, limit=10)
        assert [p.id for p in waiting] == [photos[1].id, photos[2].id]  # skipped photos come back
        assert repository.count_awaiting_label(session=s) == 2
        assert (
            repository.photos_awaiting_label(session=s, after_id=photos[1].id, limit=10)[0].id == photos[2].id
        )
        s.add(Label(photo_id=photos[0].id, breed="boxer", source=LabelSource.ADMIN, user_id=2))
        s.commit()
        history = repository.labels_of(photos[0].id, session=s)
        assert [label.breed for label in history] == ["pug", "boxer"]  # nothing overwritten
        latest = repository.latest_predictions(session=s)
        assert set(latest) == {p.id for p in photos}
        assert repository.embedding_from_bytes(latest[photos[0].id].embedding).tolist() == [0.5, 1.5]
        assert s.exec(select(Photo).where(Photo.sender_id == 5_000_000_000)).first() is not None
    engine.dispose()
