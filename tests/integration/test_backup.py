"""Backups on SQLite and PostgreSQL: back up, wipe, restore, and find the same rows and photo bytes."""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlmodel import select

from dogbot.backup import BadBackup, RestoreRefused, create_backup, restore_backup
from storage import repository, snapshot
from storage.blobs import LocalPhotoStore
from storage.db import make_engine, session
from storage.tables import CustomBreed, Dog, Label, Photo, Prediction
from storage.vocabulary import MIXED_BREED, LabelSource


def populate(engine, store, *, photos: int = 5, seed: str = "a") -> None:
    """Photos with bytes in the store, predictions with embeddings, a label history, breeds, members."""
    with session(engine) as s:
        # Two dogs, the first merged into the second (two records of one animal found later).
        year = 2000 + len(seed)  # each seed its own year: (year, serial) is unique
        dogs = [Dog(code=f"D-{year}-{seed}{n}", year=year, serial=n, source="telegram") for n in (1, 2)]
        s.add_all(dogs)
        s.commit()
        dogs[0].merged_into, dogs[0].name, dogs[1].sex = dogs[1].id, "Max", "male"
        s.add(dogs[0])
        s.commit()
        rows = []
        for i in range(photos):
            data = f"photo {seed}{i} ".encode() * (100 + i)
            rows.append(
                Photo(
                    dog_id=dogs[1].id,
                    sha256=store.put(data),
                    source="telegram",
                    sender_id=5_000_000_000 + i,
                    size_bytes=len(data),
                )
            )
        s.add_all(rows)
        s.commit()
        for i, photo in enumerate(rows):
            prediction = Prediction(
                photo_id=photo.id,
                model_version="lite0-v0",
                is_dog=i % 2 == 0,
                dog_probability=0.25 + i / 10,
                breed="pug" if i % 2 == 0 else None,
                confidence=0.5,
                top=[{"breed": "pug", "p": 0.5}],
                embedding=repository.embedding_to_bytes([float(i), -1.5, 3e-8]),
            )
            s.add(prediction)
            s.commit()
            s.add(
                Label(
                    photo_id=photo.id,
                    prediction_id=prediction.id,
                    breed=MIXED_BREED,
                    primary_breed="pug",
                    secondary_breed="boxer",
                    source=LabelSource.STAFF,
                    user_id=2002,
                )
            )
            s.add(Label(photo_id=photo.id, breed="boxer", source=LabelSource.ADMIN, user_id=1001))
        s.add(CustomBreed(key=f"chinook_{seed}", display_name=f"Chinook {seed} ÄÖ 🐕", aliases=["sled dog"]))
        repository.set_member(7_000_000_001, "staff", True, by=1001, session=s)
        s.commit()


def contents(engine) -> dict[str, list[dict]]:
    """Every row of every table, in key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                dict(row._mapping)
                for row in connection.execute(table.select().order_by(*table.primary_key.columns))
            ]
            for table in snapshot.tables()
        }


def photo_bytes(engine, store) -> dict[str, bytes]:
    with session(engine) as s:
        return {photo.sha256: store.get(photo.sha256) for photo in s.exec(select(Photo))}


def wipe(engine, photo_dir: Path) -> None:
    """Lose everything: every table (whatever made it) and the photo folder."""
    names = sqlalchemy.inspect(engine).get_table_names()
    cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for name in names:
            connection.execute(text(f'DROP TABLE IF EXISTS "{name}"{cascade}'))
    engine.dispose()
    shutil.rmtree(photo_dir, ignore_errors=True)


def test_round_trip_keeps_every_row_and_photo(database_url, tmp_path):
    engine, store = make_engine(database_url), LocalPhotoStore(tmp_path / "photos")
    populate(engine, store)
    before, before_bytes = contents(engine), photo_bytes(engine, store)

    report = create_backup(engine, store, tmp_path / "backups" / "dogbot.tar.gz")
    assert report.photos == 5 and report.rows["photo"] == 5 and report.rows["label"] == 10
    assert report.missing_photos == []
    assert os.stat(report.path).st_mode & 0o777 == 0o600  # labels and user ids: owner only
    wipe(engine, tmp_path / "photos")

    engine = make_engine(database_url)
    assert snapshot.is_empty(engine) and not store.root.exists()
    restored = restore_backup(engine, store, report.path)
    assert restored.photos == 5 and restored.rows == report.rows
    assert contents(engine) == before
    assert photo_bytes(engine, store) == before_bytes

    # New rows after a restore do not collide with restored ids (PostgreSQL sequences moved on).
    populate(engine, store, photos=1, seed="new")
    with session(engine) as s:
        assert len(s.exec(select(Photo)).all()) == 6
    engine.dispose()


def test_restore_refuses_a_database_with_data_unless_forced(database_url, tmp_path):
    engine, store = make_engine(database_url), LocalPhotoStore(tmp_path / "photos")
    populate(engine, store, photos=2)
    backed_up = contents(engine)
    archive = create_backup(engine, store, tmp_path / "dogbot.tar.gz").path
    populate(engine, store, photos=1, seed="later")
    later = contents(engine)

    with pytest.raises(RestoreRefused, match="--force"):
        restore_backup(engine, store, archive)
    assert contents(engine) == later  # nothing touched

    restore_backup(engine, store, archive, force=True)
    assert contents(engine) == backed_up
    engine.dispose()


def test_a_sqlite_backup_moves_the_catalog_to_another_database(database_url, tmp_path):
    """SQLite → PostgreSQL (or another SQLite file): the step from one process to replicas."""
    source = make_engine(f"sqlite:///{tmp_path / 'old' / 'dogbot.db'}")
    old_store = LocalPhotoStore(tmp_path / "old" / "photos")
    populate(source, old_store)
    before, before_bytes = contents(source), photo_bytes(source, old_store)
    archive = create_backup(source, old_store, tmp_path / "move.tar.gz").path
    source.dispose()

    target, new_store = make_engine(database_url), LocalPhotoStore(tmp_path / "new" / "photos")
    restore_backup(target, new_store, archive)
    assert contents(target) == before
    assert photo_bytes(target, new_store) == before_bytes
    target.dispose()


def test_a_backup_of_any_database_restores_into_sqlite(database_url, tmp_path):
    source, store = make_engine(database_url), LocalPhotoStore(tmp_path / "photos")
    populate(source, store)
    before = contents(source)
    archive = create_backup(source, store, tmp_path / "any.tar.gz").path
    source.dispose()

    target = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    restore_backup(target, LocalPhotoStore(tmp_path / "restored-photos"), archive)
    assert contents(target) == before
    target.dispose()


def test_photos_can_be_left_out_for_an_object_store(tmp_path):
    engine, store = make_engine(f"sqlite:///{tmp_path / 'dogbot.db'}"), LocalPhotoStore(tmp_path / "photos")
    populate(engine, store, photos=2)
    report = create_backup(engine, store, tmp_path / "db-only.tar.gz", include_photos=False)
    with tarfile.open(report.path) as tar:
        assert tar.getnames() == ["manifest.json", "database.sqlite"]
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["photos_included"] is False and manifest["photos"] == 2
    target = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    restored = restore_backup(target, LocalPhotoStore(tmp_path / "other"), report.path)
    assert restored.photos == 0 and restored.rows["photo"] == 2
    engine.dispose()
    target.dispose()


def test_a_photo_missing_from_the_store_is_reported_not_hidden(tmp_path):
    engine, store = make_engine(f"sqlite:///{tmp_path / 'dogbot.db'}"), LocalPhotoStore(tmp_path / "photos")
    populate(engine, store, photos=3)
    with session(engine) as s:
        lost = s.exec(select(Photo).order_by(Photo.id)).first().sha256
    store.path_for(lost).unlink()
    report = create_backup(engine, store, tmp_path / "b.tar.gz")
    assert report.missing_photos == [lost] and report.photos == 2
    target = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    restored = restore_backup(target, LocalPhotoStore(tmp_path / "other"), report.path)
    assert restored.missing_photos == [lost] and restored.photos == 2
    engine.dispose()
    target.dispose()


def test_a_damaged_backup_is_refused_and_the_database_stays_empty(tmp_path):
    engine, store = make_engine(f"sqlite:///{tmp_path / 'dogbot.db'}"), LocalPhotoStore(tmp_path / "photos")
    populate(engine, store)
    archive = create_backup(engine, store, tmp_path / "b.tar.gz").path
    engine.dispose()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    not_a_backup = tmp_path / "photos.tar.gz"
    with tarfile.open(not_a_backup, "w:gz") as tar:
        tar.add(store.root, arcname="photos")
    escaping = tmp_path / "escaping.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(escaping, "w:gz") as tar:
        tar.addfile(source.getmember("manifest.json"), source.extractfile("manifest.json"))
        evil = tarfile.TarInfo("models/../../evil.py")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))

    target = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    for bad in (cut, not_a_backup, escaping, tmp_path / "nowhere.tar.gz"):
        with pytest.raises(BadBackup):
            restore_backup(
                target, LocalPhotoStore(tmp_path / "other"), bad, model_dir=tmp_path / "m" / "models"
            )
        assert snapshot.is_empty(target)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "m" / "evil.py").exists()
    target.dispose()


def test_the_cli_backs_up_and_restores(tmp_path):
    dogbot = str(Path(sys.executable).with_name("dogbot"))

    def run(*args: str, data_dir: Path, status: int = 0) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOGBOT_DATA_DIR": str(data_dir)}
        for name in ("DOGBOT_DATABASE_URL", "DOGBOT_PHOTO_STORE"):
            env.pop(name, None)
        result = subprocess.run([dogbot, *args], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == status, result.stderr
        return result

    old, new = tmp_path / "old", tmp_path / "new"
    engine = make_engine(f"sqlite:///{old / 'dogbot.db'}")
    populate(engine, LocalPhotoStore(old / "photos"))
    (old / "models").mkdir()
    (old / "models" / "lite0-v1.pt").write_bytes(b"weights")
    (old / "models" / ".incoming.x").write_bytes(b"half-written")
    before = contents(engine)
    engine.dispose()

    out = run("backup", str(tmp_path / "nightly.tar.gz"), data_dir=old).stdout
    assert "5 photos" in out and "1 model files" in out
    run("restore", str(tmp_path / "nightly.tar.gz"), data_dir=new)
    refused = run("restore", str(tmp_path / "nightly.tar.gz"), data_dir=new, status=2)
    assert "--force" in refused.stderr
    assert [p.name for p in (new / "models").iterdir()] == ["lite0-v1.pt"]
    assert (new / "models" / "lite0-v1.pt").read_bytes() == b"weights"

    engine = make_engine(f"sqlite:///{new / 'dogbot.db'}")
    assert contents(engine) == before
    assert photo_bytes(engine, LocalPhotoStore(new / "photos")) == photo_bytes(
        engine, LocalPhotoStore(old / "photos")
    )
    engine.dispose()


def test_a_backup_taken_while_the_bot_writes_is_consistent(database_url, tmp_path):
    """Photos and labels keep arriving during the backup; the archive is one moment, with all its photos."""
    engine, store = make_engine(database_url), LocalPhotoStore(tmp_path / "photos")
    populate(engine, store, photos=3)
    stop, written = threading.Event(), []

    def staff_keep_sending() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            with session(engine) as s:  # as the catalog does: bytes first, then the row
                photo = Photo(sha256=store.put(f"live {i}".encode() * 50), source="telegram")
                s.add(photo)
                s.flush()
                s.add(Label(photo_id=photo.id, breed="pug", source=LabelSource.STAFF, user_id=2002))
                s.commit()
            written.append(i)

    writer = threading.Thread(target=staff_keep_sending)
    writer.start()
    try:
        while len(written) < 5:
            time.sleep(0.01)
        report = create_backup(engine, store, tmp_path / "live.tar.gz")
    finally:
        stop.set()
        writer.join()
    assert report.missing_photos == []
    # Each live photo came with exactly one label in the same transaction; the 3 first have two each.
    assert report.rows["label"] == 2 * 3 + (report.rows["photo"] - 3)

    target = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    restored = restore_backup(target, LocalPhotoStore(tmp_path / "restored-photos"), report.path)
    assert restored.photos == restored.rows["photo"] == report.rows["photo"]
    engine.dispose()
    target.dispose()


def test_a_stopped_or_killed_backup_leaves_no_snapshot_behind(tmp_path):
    """SIGTERM: the backup removes its work folder (a full database snapshot) on the way out; SIGKILL:
    the next backup removes the killed one's."""
    import signal

    data, out = tmp_path / "data", tmp_path / "backups"
    out.mkdir()
    engine = make_engine(f"sqlite:///{data / 'dogbot.db'}")
    store = LocalPhotoStore(data / "photos")
    with session(engine) as s:  # enough incompressible photos that the archive takes a few seconds
        s.add_all(Photo(sha256=store.put(os.urandom(1 << 20)), source="telegram") for _ in range(48))
        s.commit()
    engine.dispose()
    env = {**os.environ, "DOGBOT_DATA_DIR": str(data)}
    for name in ("DOGBOT_DATABASE_URL", "DOGBOT_PHOTO_STORE"):
        env.pop(name, None)
    dogbot = str(Path(sys.executable).with_name("dogbot"))

    def interrupted(how: int, name: str) -> int:
        with subprocess.Popen([dogbot, "backup", str(out / name)], env=env, stderr=subprocess.PIPE) as run:
            deadline = time.monotonic() + 120
            work = f".dogbot-backup-{run.pid}-*/database.sqlite"
            while not any(out.glob(work)) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # into the archive
            run.send_signal(how)
            return run.wait(timeout=120)

    assert interrupted(signal.SIGKILL, "killed.tar.gz") == -signal.SIGKILL
    assert list(out.glob(".dogbot-backup-*")), "a SIGKILL leaves the work folder (nothing can run)"
    assert interrupted(signal.SIGTERM, "stopped.tar.gz") == 128 + signal.SIGTERM
    assert list(out.iterdir()) == [], "neither the stopped backup's nor the killed one's debris is left"


def test_a_legacy_name_with_a_nul_is_cleaned_on_restore_not_an_abort(database_url, tmp_path):
    """A SQLite catalog from before names were cleaned may hold a NUL; PostgreSQL refuses one in
    text, so the restore takes it out of the row (issue 25) instead of failing the whole load."""
    source = make_engine(f"sqlite:///{tmp_path / 'old' / 'dogbot.db'}")
    store = LocalPhotoStore(tmp_path / "old" / "photos")
    populate(source, store)
    with session(source) as s:
        dog = s.exec(select(Dog).order_by(Dog.id)).first()
        dog.name = "Ma\x00x"
        s.add(dog)
        s.commit()
    archive = create_backup(source, store, tmp_path / "legacy.tar.gz").path
    source.dispose()

    target = make_engine(database_url)
    restore_backup(target, LocalPhotoStore(tmp_path / "new" / "photos"), archive)
    with session(target) as s:
        assert s.exec(select(Dog).order_by(Dog.id)).first().name == "Max"
    target.dispose()
