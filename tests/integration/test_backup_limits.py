"""Restore refuses a hostile archive by its members' declared sizes, before reading them (issue 26).

A few MB of gzip can declare a 2 GB "photo" (read into memory), a model file that fills the disk
or a database bigger than the free space. Each is refused on its header, in one line, and leaves
nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dogbot.backup import BadBackup, create_backup, restore_backup
from storage import snapshot
from storage.blobs import LocalPhotoStore
from storage.db import make_engine

MB = 1024 * 1024


class Zeros(io.RawIOBase):
    """``size`` zero bytes, made as they are read (tarfile copies the member from it)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def hostile(tmp_path: Path, name: str, size: int, *, write_data: bool = True) -> Path:
    """A real backup's manifest and database, then one member of ``size`` bytes named ``name``."""
    engine, store = make_engine(f"sqlite:///{tmp_path / 'source.db'}"), LocalPhotoStore(tmp_path / "p")
    good = create_backup(engine, store, tmp_path / "good.tar.gz").path
    engine.dispose()
    out = tmp_path / f"{name.replace('/', '_')}.tar.gz"
    with tarfile.open(good) as source, tarfile.open(out, "w:gz", compresslevel=1) as tar:
        for member in source.getmembers():
            if member.name != name:
                tar.addfile(member, source.extractfile(member))
        info = tarfile.TarInfo(name)
        info.size = size
        if write_data:
            tar.addfile(info, io.BufferedReader(Zeros(size)))
        else:  # only the header: the archive is cut short right after it
            tar.fileobj.write(info.tobuf())
    return out


def restore(tmp_path: Path, archive: Path):
    target = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    try:
        return restore_backup(
            target,
            LocalPhotoStore(tmp_path / "restored-photos"),
            archive,
            model_dir=tmp_path / "models",
            work_dir=tmp_path / "work",
            max_photo_bytes=20 * MB,
        )
    finally:
        assert snapshot.is_empty(target)
        target.dispose()


def leftovers(tmp_path: Path) -> list[Path]:
    folders = [tmp_path / "models", tmp_path / "restored-photos", tmp_path / "work"]
    return [path for folder in folders if folder.exists() for path in folder.rglob("*") if path.is_file()]


def test_a_model_file_over_the_limit_is_refused_and_never_written(tmp_path):
    archive = hostile(tmp_path, "models/lite0-v9.pt", 100 * MB)
    with pytest.raises(BadBackup, match="declares 100.0 MB, more than a model file"):
        restore(tmp_path, archive)
    assert leftovers(tmp_path) == []


def test_a_photo_over_the_photo_limit_is_refused_before_it_is_read(tmp_path):
    digest = hashlib.sha256(bytes(30 * MB)).hexdigest()  # a true name: only its size is wrong
    archive = hostile(tmp_path, f"photos/{digest[:2]}/{digest[2:4]}/{digest}", 30 * MB)
    with pytest.raises(BadBackup, match="declares 30.0 MB, more than a photo"):
        restore(tmp_path, archive)
    assert leftovers(tmp_path) == []


def test_a_database_bigger_than_the_free_space_is_refused_on_its_header(tmp_path):
    archive = hostile(tmp_path, "database.sqlite", 2**50, write_data=False)
    with pytest.raises(BadBackup, match="more than the free space"):
        restore(tmp_path, archive)
    assert leftovers(tmp_path) == []


def test_the_cli_refuses_in_one_line(tmp_path):
    archive = hostile(tmp_path, "models/huge.onnx", 100 * MB)
    env = {**os.environ, "DOGBOT_DATA_DIR": str(tmp_path / "data")}
    env.pop("DOGBOT_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "dogbot.cli", "restore", str(archive)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("restore refused: "), result.stderr
    assert not (tmp_path / "data" / "models" / "huge.onnx").exists()


def test_a_manifest_over_its_limit_is_not_read(tmp_path):
    archive = tmp_path / "big-manifest.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        data = json.dumps({"format": 1, "pad": "x" * (2 * MB)}).encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BadBackup, match="manifest.json declares"):
        restore(tmp_path, archive)
