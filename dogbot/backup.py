"""Back up and restore the catalog: the database, the photos and the trained models in one ``.tar.gz``.

The archive (format 1), in this order::

    manifest.json          format, time, source database kind, rows per table, photos included or not
    database.sqlite        a consistent snapshot of every table (see :mod:`storage.snapshot`)
    photos/ab/cd/<sha256>  the bytes of every photo the snapshot names (unless left out, see below)
    missing-photos.txt     only if some photo named by the snapshot was not in the store
    models/<file>          the model folder: trained heads the registry names, their sidecars, charts

The snapshot is taken first and the files copied after it. The bot writes a photo's bytes (and the
worker a model's artifact) before its row and never deletes either, so every file the snapshot names
is already there: the archive is consistent while the bot keeps running. Photos sent after the
snapshot are simply in the next backup.

Restore works the other way round: files first, then all rows in one transaction,
into an empty database (or, with ``force``, replacing what is there). The snapshot loads into SQLite
and PostgreSQL alike, so ``backup`` on SQLite and ``restore`` with a PostgreSQL ``DOGBOT_DATABASE_URL``
moves a catalog to PostgreSQL.

Photos in an S3 bucket are left out by default: the bucket's versioning and replication are their
backup, and copying every object through one machine each night does not scale.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from jobs.lock import process_is_gone
from storage import migrations, repository, snapshot
from storage.blobs import PhotoStore, check_sha256, sha256_of, write_atomically
from storage.db import session as open_session

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "database.sqlite"
PHOTOS = "photos"
MISSING = "missing-photos.txt"
MODELS = "models"

# What a member may declare, checked on its header before a byte of it is read: an archive of a
# few MB can declare a 2 GB "photo" (read into memory) or a 3 GB database (written to temp).
MANIFEST_LIMIT = 1024 * 1024
# Trained heads, their JSON sidecars and charts: the largest, a lite2 head for a few hundred
# breeds, is about 2 MB; 64 MB leaves room for many more breeds and still refuses a disk-filler.
MODEL_FILE_LIMIT = 64 * 1024 * 1024
# Settings.max_upload_mb's default; the CLI passes the deployment's own limit.
PHOTO_LIMIT = 20 * 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


class RestoreRefused(BackupError):
    pass


class BadBackup(BackupError):
    pass


@dataclass
class BackupReport:
    path: Path
    rows: dict[str, int]
    photos: int  # photos written into the archive
    photos_included: bool
    missing_photos: list[str] = field(default_factory=list)
    model_files: int = 0


@dataclass
class RestoreReport:
    rows: dict[str, int]
    photos: int  # photos put into the store
    photos_included: bool
    missing_photos: list[str] = field(default_factory=list)
    model_files: int = 0


def create_backup(
    engine: Engine,
    store: PhotoStore,
    out: Path,
    *,
    include_photos: bool = True,
    model_dir: Path | None = None,
) -> BackupReport:
    """Write the archive to ``out`` atomically: a file at ``out`` is always a complete backup."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out.parent)
    # Both names carry this process's id, so a later backup can tell a killed one's debris from a live one.
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix=f".dogbot-backup-{os.getpid()}-", dir=out.parent) as work:
        database = Path(work) / DATABASE
        rows = snapshot.write_snapshot(engine, database)
        digests = _photo_digests(database)
        models = _model_files(model_dir)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_dialect": engine.dialect.name,
            "schema_revision": migrations.current(engine),
            "rows": rows,
            "photos_included": include_photos,
            "photos": len(digests),
            "model_files": len(models),
        }
        # The archive holds every label and user id: readable by its owner only.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                missing = _write_archive(
                    handle, manifest, database, digests if include_photos else [], store, models
                )
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    written = len(digests) - len(missing) if include_photos else 0
    return BackupReport(out, rows, written, include_photos, missing, len(models))


# What a backup writes beside its archive while it works; a killed backup (SIGKILL, power cut) leaves
# them behind, the work folder holding a full database snapshot.
_WORK_FOLDER = re.compile(r"^\.dogbot-backup-(?:(\d+)-)?")
_PARTIAL = re.compile(r"^\..+?(?:\.(\d+))?\.partial$")
_LEFTOVER_AGE_S = 24 * 3600  # debris without a process id (older releases): gone after a day


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the work folders and partial archives of backups in ``folder`` whose process is gone."""
    removed = []
    for path in Path(folder).glob(".*"):
        match = _WORK_FOLDER.match(path.name) if path.is_dir() else _PARTIAL.match(path.name)
        if match is None:
            continue
        try:
            if match.group(1):
                abandoned = process_is_gone(int(match.group(1)))
            else:
                abandoned = time.time() - path.stat().st_mtime > _LEFTOVER_AGE_S
            if not abandoned:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except FileNotFoundError:  # finished or cleaned meanwhile
            continue
    return removed


def restore_backup(
    engine: Engine,
    store: PhotoStore,
    archive: Path,
    *,
    force: bool = False,
    model_dir: Path | None = None,
    work_dir: Path | None = None,
    max_photo_bytes: int = PHOTO_LIMIT,
) -> RestoreReport:
    """Load an archive written by :func:`create_backup`. Stop the bot and the worker first.

    Model files go to ``model_dir`` (left out when it is None); ``work_dir`` holds the unpacked
    database meanwhile (default: the system's temporary folder). Each member's declared size is
    checked against its kind's limit (a photo ``max_photo_bytes``, a model file
    ``MODEL_FILE_LIMIT``, the database the free space of ``work_dir``) before it is read.
    """
    if not force and not snapshot.is_empty(engine):
        raise RestoreRefused(
            "the database already holds a catalog; restoring would mix two. Restore into an empty "
            "database, or pass --force to replace everything in it with the backup."
        )
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115  (closed by the `with` below)
    except (OSError, tarfile.TarError) as error:
        raise BadBackup(f"cannot read {archive}: {error}") from error
    with tar, tempfile.TemporaryDirectory(prefix=".dogbot-restore-", dir=work_dir) as work:
        manifest = _read_manifest(tar, archive)
        database = Path(work) / DATABASE
        photos, model_files, missing = 0, 0, []
        try:
            while (member := tar.next()) is not None:  # on from after the manifest
                if not member.isfile():
                    raise BadBackup(f"unexpected entry {member.name!r} in {archive}")
                _check_size(member, archive, work, manifest, max_photo_bytes)
                with tar.extractfile(member) as data:
                    if member.name == DATABASE:
                        with database.open("wb") as copy:
                            shutil.copyfileobj(data, copy)
                    elif member.name == MISSING:
                        missing = data.read().decode("ascii").split()
                    elif member.name.startswith(f"{MODELS}/"):
                        if model_dir is not None:
                            _restore_model_file(member.name, data, Path(model_dir))
                            model_files += 1
                    else:
                        _restore_photo(member.name, data.read(), store)
                        photos += 1
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise RestoreRefused(f"no room to unpack {archive}: {error.strerror}") from error
            raise BadBackup(f"{archive} is damaged or cut short: {error}") from error
        except (EOFError, tarfile.TarError) as error:
            raise BadBackup(f"{archive} is damaged or cut short: {error}") from error
        if not database.exists():
            raise BadBackup(f"{archive} has no {DATABASE}")
        source = snapshot.open_snapshot(database)
        try:
            migrated = migrations.current(source) != migrations.head()
            if migrated:
                _upgrade_snapshot(source, archive)
            rows = snapshot.load_snapshot(source, engine, replace=force)
        finally:
            source.dispose()
    # A migration may reshape rows; an archive restored as it was must match its manifest exactly.
    if not migrated and rows != manifest["rows"]:
        raise BadBackup(f"restored rows {rows} differ from the backup's manifest {manifest['rows']}")
    return RestoreReport(rows, photos, manifest["photos_included"], missing, model_files)


def _check_size(member: tarfile.TarInfo, archive: Path, work: str, manifest: dict, max_photo: int) -> None:
    """Refuse a member whose declared size is more than its kind can be, before reading any of it."""
    if member.name == DATABASE:
        limit, kind = shutil.disk_usage(work).free, "the free space to unpack it"
    elif member.name == MISSING:
        limit, kind = 65 * int(manifest.get("photos") or 0) + 1024, "a list of the backup's photos"
    elif member.name.startswith(f"{MODELS}/"):
        limit, kind = MODEL_FILE_LIMIT, "a model file"
    elif member.name.startswith(f"{PHOTOS}/"):
        limit, kind = max_photo, "a photo"
    else:
        raise BadBackup(f"unexpected entry {member.name!r} in {archive}")
    if member.size > limit:
        raise BadBackup(
            f"{archive}: {member.name} declares {_size(member.size)}, more than {kind} "
            f"({_size(limit)}); not read"
        )


def _size(count: int) -> str:
    return f"{count / 1024**2:,.1f} MB" if count >= 1024**2 else f"{count} bytes"


def _upgrade_snapshot(source: Engine, archive: Path) -> None:
    """Bring a backup made by an older dogbot to this version's schema before loading it."""
    try:
        migrations.prepare(source, upgrade=True)
    except migrations.SchemaError as error:
        raise BadBackup(f"{archive}: {error}") from error


def _photo_digests(database: Path) -> list[str]:
    engine = snapshot.open_snapshot(database)
    try:
        with open_session(engine) as session:
            return repository.photo_digests(session=session)
    finally:
        engine.dispose()


def _model_files(model_dir: Path | None) -> list[tuple[Path, str]]:
    """Every file of the model folder with its name in the archive; half-written temp files are not."""
    if model_dir is None or not Path(model_dir).is_dir():
        return []
    found = []
    for path in sorted(Path(model_dir).rglob("*")):
        relative = path.relative_to(model_dir)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append((path, f"{MODELS}/{relative.as_posix()}"))
    return found


def _write_archive(
    handle,
    manifest: dict,
    database: Path,
    digests: list[str],
    store: PhotoStore,
    models: list[tuple[Path, str]],
) -> list[str]:
    missing = []
    # JPEGs do not shrink; level 6 squeezes the database without spending minutes on the photos.
    with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6) as tar:
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
        tar.add(database, arcname=DATABASE, recursive=False)
        for digest in digests:
            try:
                data = store.get(digest)
            except FileNotFoundError:
                missing.append(digest)
                continue
            _add_bytes(tar, f"{PHOTOS}/{digest[:2]}/{digest[2:4]}/{digest}", data)
        if missing:
            _add_bytes(tar, MISSING, "\n".join(missing).encode("ascii"))
        for path, name in models:
            tar.add(path, arcname=name, recursive=False)
    return missing


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict:
    try:
        first = tar.next()
        if first is None or first.name != MANIFEST:
            raise BadBackup(f"{archive} is not a dogbot backup (no {MANIFEST} at its start)")
        if first.size > MANIFEST_LIMIT:
            raise BadBackup(f"{archive}: {MANIFEST} declares {_size(first.size)}; not read")
        with tar.extractfile(first) as data:
            manifest = json.loads(data.read())
    except (OSError, EOFError, tarfile.TarError, ValueError) as error:
        raise BadBackup(f"{archive} is not a readable dogbot backup: {error}") from error
    if manifest.get("format") != FORMAT:
        raise BadBackup(f"{archive} has backup format {manifest.get('format')!r}; this dogbot reads {FORMAT}")
    return manifest


def _restore_photo(name: str, data: bytes, store: PhotoStore) -> None:
    parts = name.split("/")
    try:
        if len(parts) != 4 or parts[0] != PHOTOS or parts[1:3] != [parts[3][:2], parts[3][2:4]]:
            raise ValueError(name)
        expected = check_sha256(parts[3])
    except ValueError as error:
        raise BadBackup(f"unexpected entry {name!r} in the backup") from error
    if sha256_of(data) != expected:
        raise BadBackup(f"photo {expected} in the backup is damaged (its bytes have another SHA-256)")
    store.put(data)


def _restore_model_file(name: str, data, model_dir: Path) -> None:
    relative = Path(name.removeprefix(f"{MODELS}/"))
    if (
        relative.is_absolute()
        or not relative.parts
        or any(part in ("", ".", "..") for part in relative.parts)
    ):
        raise BadBackup(f"unexpected entry {name!r} in the backup")
    write_atomically(model_dir / relative, lambda handle: shutil.copyfileobj(data, handle))
