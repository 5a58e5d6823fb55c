"""Model registry: every trained head, the ``champion`` alias, and the append-only log of its moves.

The serving model is the target of the last ``champion`` move. ``<backbone>-v0`` (the ImageNet
classifier's dog rows, no artifact) is registered and made champion on first use. A candidate
becomes champion only through :func:`promote`, after evaluation, and a rejected one never can;
rollback is a move too (to the champion before the current one), so the log says which model
served when, why and on whose word.

A trained head's files live in the database (``ModelArtifact``), registered in the same transaction
as its version; the model folder is only a cache. So a bot replica on another machine loads a model
the worker trained without a shared volume: it finds the file missing, copies it from the database
(checking the registry's hash) and serves it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ml.head import BreedHead, saved_head_intact, sidecar_path
from ml.predictor import Predictor, backbone_of, base_version
from storage import lifecycle_repository as repo
from storage.blobs import write_bytes_atomically
from storage.db import session as open_session
from storage.lifecycle_tables import AliasMove, ModelVersion
from storage.vocabulary import ModelStatus

if TYPE_CHECKING:  # imported by models(): serving a champion (every start) reads no scores
    from jobs.scores import RetrainMetrics

log = logging.getLogger(__name__)

CHAMPION = repo.CHAMPION


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the message is meant for an admin."""


class NoEarlierModel(RegistryError):
    """A rollback with no model before the one answering (the bot words it in the admin's language)."""


@dataclass(frozen=True)
class ModelInfo:
    """A model version as the CLI and the bot show it."""

    version: str
    status: str
    champion: bool
    created_at: datetime
    dataset_version: int | None
    n_breeds: int
    trigger: str
    actor: str | None
    reason: str
    metrics: RetrainMetrics | None  # None: never trained (version 0)


def ensure_base(engine: Engine, *, backbone: str, breed_keys: list[str], now: datetime) -> str:
    """Register ``<backbone>-v0``, point the champion alias at it if nothing does yet; return the champion."""
    version = base_version(backbone)
    with open_session(engine) as session:
        if repo.model_version(version, session=session) is None:
            session.add(
                ModelVersion(
                    version=version,
                    backbone=backbone,
                    created_at=now,
                    breed_keys=list(breed_keys),
                    trigger="base",
                    actor="system",
                    status=ModelStatus.PROMOTED,
                    reason="zero-shot: the ImageNet classifier's dog rows",
                )
            )
            try:
                session.commit()
            except IntegrityError:  # another process registered it at the same moment
                session.rollback()
        champion = repo.alias_target(session=session)
        if champion is None or backbone_of(champion) != backbone:
            # A deployment that changed DOGBOT_MODEL: the old champion reads other embeddings, so
            # this model's line starts again at v0 (the old line stays listed, and comes back with
            # the old DOGBOT_MODEL).
            reason = "first start" if champion is None else f"model changed to {backbone} (was {champion})"
            if champion is not None:  # every minute, if processes disagree on DOGBOT_MODEL
                log.warning("champion %s was made for another model: serving %s", champion, version)
            session.add(
                AliasMove(
                    from_version=champion,
                    to_version=version,
                    kind="init",
                    moved_at=now,
                    reason=reason,
                    actor="system",
                )
            )
            session.commit()
            champion = version
        return champion


def champion_version(engine: Engine) -> str | None:
    with open_session(engine) as session:
        return repo.alias_target(session=session)


def store_artifact(session: Session, version: str, path: Path) -> None:
    """Add the files :meth:`BreedHead.save` wrote at ``path`` to the registry (the caller commits).

    Commit it with the version's row: a version every process can see is one every process can load.
    """
    for file in (path, sidecar_path(path)):
        repo.add_artifact(version, file.name, file.read_bytes(), session=session)


def load_head(
    engine: Engine, version: str, *, model_dir: Path, base_head: Callable[[], BreedHead]
) -> BreedHead:
    """The head of ``version``; checks the artifact's hash against the registry's.

    Read from ``model_dir`` when the file there is intact, else copied there from the database first.
    """
    with open_session(engine) as session:
        row = repo.model_version(version, session=session)
    if row is None:
        raise RegistryError(f"no model {version}")
    if row.artifact is None:
        return base_head()
    path = Path(model_dir) / row.artifact
    if not saved_head_intact(path, row.sha256):
        _fetch_artifact(engine, row, path)
    try:
        head = BreedHead.load(path)  # checks the tensors against the sidecar's hash
    except ValueError:  # a damaged local sidecar (bad JSON, another head's hash): take the shared copy
        log.warning("%s: local copy of %s is damaged; copying it from the database", version, path.name)
        _fetch_artifact(engine, row, path)
        head = BreedHead.load(path)
    # The registry's hash covers the tensors only; the breed list says which row is which breed.
    if list(head.breed_keys) != list(row.breed_keys):
        raise RegistryError(f"{version}: {path.name} names other breeds than the registry does")
    return head


def store_missing_artifacts(engine: Engine, model_dir: Path) -> list[str]:
    """Copy into the database the model files of versions registered before artifacts lived there.

    Run by the worker at start and by ``dogbot db upgrade``; returns the versions it stored.
    """
    stored = []
    with open_session(engine) as session:
        shared = repo.artifact_versions(session=session)
        for row in repo.model_versions(session=session):
            if row.artifact is None or row.version in shared:
                continue
            path = Path(model_dir) / row.artifact
            if not saved_head_intact(path, row.sha256):
                log.warning("%s: %s is not in %s; replicas cannot load it", row.version, path.name, model_dir)
                continue
            store_artifact(session, row.version, path)
            try:
                session.commit()
            except IntegrityError:  # the worker and `dogbot db upgrade` at the same moment: it is there
                session.rollback()
                continue
            stored.append(row.version)
    return stored


def _fetch_artifact(engine: Engine, row: ModelVersion, path: Path) -> None:
    """Write the version's files from the database into the model folder (a cache), tensors last."""
    with open_session(engine) as session:
        files = repo.artifacts(row.version, session=session)
    data = files.get(row.artifact)
    if data is None:
        where = "does not match the registry's hash" if path.exists() else f"is not in {path.parent}"
        raise RegistryError(f"{row.version}: artifact {path.name} {where}, and the database has no copy")
    if row.sha256 and hashlib.sha256(data).hexdigest() != row.sha256:
        raise RegistryError(f"{row.version}: the database's copy of {path.name} does not match its hash")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A reader that finds the tensors finds their sidecar too.
    for name in sorted(files, key=lambda name: name == row.artifact):
        if Path(name).name != name or name.startswith("."):
            raise RegistryError(f"{row.version}: unexpected artifact name {name!r}")
        write_bytes_atomically(path.parent / name, files[name])
    log.info("%s: copied %s from the database into %s", row.version, ", ".join(sorted(files)), path.parent)


def serve_champion(
    engine: Engine,
    predictor: Predictor,
    *,
    model_dir: Path,
    now: datetime,
    on_change: Callable[[], None] = lambda: None,
) -> bool:
    """Make ``predictor`` serve the current champion; return True if it changed.

    Cheap when nothing changed (one indexed query), so the bot can call it every minute. A champion
    whose artifact cannot be loaded is logged and the predictor keeps serving what it has.
    """
    champion = ensure_base(
        engine, backbone=predictor.backbone_name, breed_keys=predictor.base_head().breed_keys, now=now
    )
    if champion == predictor.model_version:
        return False
    try:
        head = load_head(engine, champion, model_dir=model_dir, base_head=predictor.base_head)
    except (OSError, ValueError, KeyError, RegistryError):
        log.exception("cannot load champion %s; still serving %s", champion, predictor.model_version)
        return False
    on_change()  # e.g. reload the taxonomy first, so the new head's breeds have names
    predictor.use_head(head, champion)
    log.info("now serving %s", champion)
    return True


def next_version(session: Session, backbone: str) -> str:
    numbers = [0]
    for row in repo.model_versions(session=session):
        match = re.fullmatch(rf"{re.escape(backbone)}-v(\d+)", row.version)
        if match:
            numbers.append(int(match.group(1)))
    return f"{backbone}-v{max(numbers) + 1}"


def promote(engine: Engine, version: str, *, reason: str, actor: str | None, now: datetime) -> None:
    """Point the champion alias at ``version`` (which must have passed its gates or be promoted before)."""
    with open_session(engine) as session:
        row = repo.model_version(version, session=session)
        if row is None:
            raise RegistryError(f"no model {version}")
        if row.status == ModelStatus.REJECTED:
            raise RegistryError(f"{version} was rejected ({row.reason}); it cannot serve")
        current = repo.alias_target(session=session)
        row.status = ModelStatus.PROMOTED
        row.reason = reason
        session.add(row)
        session.add(
            AliasMove(
                from_version=current,
                to_version=version,
                kind="promote",
                moved_at=now,
                reason=reason,
                actor=actor,
            )
        )
        session.commit()


def reject(engine: Engine, version: str, *, reason: str) -> None:
    with open_session(engine) as session:
        row = repo.model_version(version, session=session)
        if row is None:
            raise RegistryError(f"no model {version}")
        row.status, row.reason = ModelStatus.REJECTED, reason
        session.add(row)
        session.commit()


def champion_stack(moves: list[AliasMove]) -> list[str]:
    """Champions in order, the current last: promotions push, rollbacks pop.

    A move to the champion already serving changes nothing (two replicas starting on a fresh
    database may both record the first "init" move), so a rollback never goes from v0 to v0.
    """
    stack: list[str] = []
    for move in moves:
        if move.kind == "rollback" and stack:
            stack.pop()
        if not stack or stack[-1] != move.to_version:
            stack.append(move.to_version)
    return stack


def rollback(engine: Engine, *, actor: str | None, now: datetime, reason: str = "") -> tuple[str, str]:
    """Move the champion back to the one before it; return ``(from, to)``."""
    with open_session(engine) as session:
        stack = champion_stack(repo.alias_moves(session=session))
        if len(stack) < 2:
            raise NoEarlierModel("there is no earlier champion to roll back to")
        current, previous = stack[-1], stack[-2]
        if backbone_of(previous) != backbone_of(current):
            raise RegistryError(
                f"the champion before {current} is {previous}, made for another model: "
                f"set DOGBOT_MODEL={backbone_of(previous)} to serve it again"
            )
        session.add(
            AliasMove(
                from_version=current,
                to_version=previous,
                kind="rollback",
                moved_at=now,
                reason=reason or f"rollback from {current}",
                actor=actor,
            )
        )
        session.commit()
        return current, previous


def models(engine: Engine) -> list[ModelInfo]:
    from jobs.scores import RetrainMetrics

    with open_session(engine) as session:
        champion = repo.alias_target(session=session)
        return [
            ModelInfo(
                version=row.version,
                status=row.status,
                champion=row.version == champion,
                created_at=row.created_at,
                dataset_version=row.dataset_version,
                n_breeds=len(row.breed_keys),
                trigger=row.trigger,
                actor=row.actor,
                reason=row.reason,
                metrics=RetrainMetrics.from_json(row.metrics),
            )
            for row in repo.model_versions(session=session)
        ]


def history(engine: Engine) -> list[AliasMove]:
    with open_session(engine) as session:
        return repo.alias_moves(session=session)
