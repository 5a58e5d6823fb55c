"""Fold job: turn the labels so far into an immutable, numbered dataset version.

Every photo with a label gets one item: its catalog label (``dogbot.core.labels.resolve_label``: an
admin's word wins, else the majority of people, else the import or auto-accepted label), the source
of that label, and a split decided by its dog alone (the hash of the dog's first photo: see
``storage.dog_repository.split_keys``), so a photo is in the validation split in every version and no
animal has photos on both sides. Conflicts (people disagree) are listed.
``not_a_dog`` and ``mixed_breed`` items are kept (the not-a-dog decision may use them) but are not
breeds, so retraining skips them; ``skip`` answers never count as labels.

The golden set is the validation photos of the first versions with a person's (or an import's)
label, up to ``golden_size`` photos; once full it never changes, so every model ever trained is
compared on the same photos.

A version writes only the items that changed against the version before it (see
``storage.lifecycle_tables``); ``prune`` retires versions nothing refers to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from dogbot.core.labels import resolve_label
from storage import dog_repository, repository
from storage import lifecycle_repository as repo
from storage.db import session as open_session
from storage.lifecycle_tables import DatasetItem, DatasetVersion, GoldenItem
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, LabelSource, Split

NOT_BREEDS = (NOT_A_DOG, MIXED_BREED)


@dataclass
class FoldResult:
    version: int | None  # the newest dataset version (None: no labels at all yet)
    created: bool  # False: no new labels since the last version, nothing made
    n_items: int = 0
    n_train: int = 0
    n_val: int = 0
    counts: dict = field(default_factory=dict)  # label -> {"train": n, "val": n}
    conflicts: list[int] = field(default_factory=list)
    golden_added: int = 0
    golden_size: int = 0
    n_changed: int = 0  # items written: photos added, relabelled or removed since the parent version

    def to_json(self) -> dict:
        return asdict(self)


def split_of(sha256: str, val_share: float) -> str:
    """Train or validation, from a hash only (a photo's split key): stable across versions and machines."""
    return Split.VALIDATION if int(sha256[:8], 16) / 16**8 < val_share else Split.TRAIN


def fold(
    engine: Engine,
    *,
    now: datetime,
    val_share: float,
    golden_size: int,
    trigger: str = "schedule",
) -> FoldResult:
    """A new dataset version if labels since the last one changed what a photo is; idempotent.

    Only photos with a label newer than the last version are read, and only those whose item
    changes are written: the work follows the new labels, not the size of the catalog.
    """
    with open_session(engine) as session:
        last = repo.latest_dataset_version(session=session)
        newest_label = repo.max_label_id(session=session)
        after = last.last_label_id if last is not None else 0
        if newest_label <= after:
            return _existing(last, session)
        photo_ids = repo.labeled_photo_ids(session=session, after_label_id=after, up_to_label_id=newest_label)
        before: dict[int, DatasetItem] = {}
        if last is not None:
            now_in_last = repo.dataset_items(last.id, session=session, photo_ids=photo_ids)
            before = {item.photo_id: item for item in now_in_last}
        changes = _changes(photo_ids, before, newest_label, val_share, session)
        if not changes:  # agreeing answers, skips: every photo is what it was
            return _existing(last, session)

        version = DatasetVersion(
            created_at=now,
            last_label_id=newest_label,
            trigger=trigger,
            parent=last.id if last is not None else None,
            n_changed=len(changes),
        )
        session.add(version)
        session.flush()
        for item in changes:
            item.dataset_version = version.id
        session.add_all(changes)
        counts, conflicts = _tally(last, before, changes)
        version.counts = counts
        version.conflicts = conflicts
        version.n_val = sum(c.get(Split.VALIDATION, 0) for c in counts.values())
        version.n_items = sum(sum(c.values()) for c in counts.values())
        version.n_train = version.n_items - version.n_val
        added = [item for item in changes if not item.removed]
        golden_added = _top_up_golden(added, version.id, golden_size, now, session)
        session.commit()
        golden_total = len(repo.golden_items(session=session))
        return FoldResult(
            version=version.id,
            created=True,
            n_items=version.n_items,
            n_train=version.n_train,
            n_val=version.n_val,
            counts=version.counts,
            conflicts=conflicts,
            golden_added=golden_added,
            golden_size=golden_total,
            n_changed=len(changes),
        )


def _changes(
    photo_ids: list[int],
    before: dict[int, DatasetItem],
    newest_label: int,
    val_share: float,
    session: Session,
) -> list[DatasetItem]:
    """One item per photo whose label, source, split or conflict differs from ``before`` (or that left)."""
    labels = repo.labels_up_to(photo_ids, newest_label, session=session)
    split_keys = dog_repository.split_keys(photo_ids, session=session)
    # Ids only: a prediction row carries a 5 KB embedding the dataset item does not need.
    prediction_ids = repository.latest_prediction_ids(photo_ids, session=session)
    changes: list[DatasetItem] = []
    for photo_id in photo_ids:
        resolved = resolve_label(labels.get(photo_id, []))
        old = before.get(photo_id)
        if resolved is None:  # only "skip" answers: not in the dataset (any more)
            if old is not None:
                changes.append(
                    DatasetItem(
                        photo_id=photo_id,
                        prediction_id=old.prediction_id,
                        label=old.label,
                        source=old.source,
                        split=old.split,
                        removed=True,
                    )
                )
            continue
        item = DatasetItem(
            photo_id=photo_id,
            prediction_id=prediction_ids.get(photo_id),
            label=resolved.breed,
            source=resolved.label.source,
            split=split_of(split_keys[photo_id], val_share),
            conflict=resolved.conflict,
        )
        # An unchanged photo keeps the prediction it was folded with: every prediction by the same
        # backbone carries the same embedding, which is all training reads from it.
        if old is None or _what(old) != _what(item):
            changes.append(item)
    return changes


def _what(item: DatasetItem) -> tuple:
    """What training and judging read from an item, besides the embedding."""
    return (item.label, item.source, item.split, item.conflict)


def _tally(
    last: DatasetVersion | None, before: dict[int, DatasetItem], changes: list[DatasetItem]
) -> tuple[dict, list[int]]:
    """The new version's label counts and conflicts: the parent's, with the changes applied."""
    counts = {label: Counter(c) for label, c in (last.counts if last is not None else {}).items()}
    conflicts = set(last.conflicts) if last is not None else set()
    for item in changes:
        old = before.get(item.photo_id)
        if old is not None:
            counts[old.label][old.split] -= 1
            conflicts.discard(item.photo_id)
        if not item.removed:
            counts.setdefault(item.label, Counter())[item.split] += 1
            if item.conflict:
                conflicts.add(item.photo_id)
    kept = {label: {split: n for split, n in c.items() if n > 0} for label, c in sorted(counts.items())}
    return {label: c for label, c in kept.items() if c}, sorted(conflicts)


@dataclass
class PruneResult:
    removed: list[int]  # dataset versions pruned
    items_deleted: int  # their items no kept version reads
    kept: int  # versions left readable

    def to_json(self) -> dict:
        return asdict(self)


def prune(engine: Engine) -> PruneResult:
    """Prune dataset versions nothing needs: no model was trained on them, no golden photo came from them.

    The newest version is kept too (the next fold's parent). A pruned version keeps its row (marked
    ``pruned``, no longer readable) and only the items a kept version still reads through it, so
    pruning deletes rows and moves none: its cost follows what changed, not the catalog.
    """
    with open_session(engine) as session:
        versions = [v for v in repo.dataset_versions(session=session) if not v.pruned]
        if not versions:
            return PruneResult(removed=[], items_deleted=0, kept=0)
        needed = repo.referenced_dataset_versions(session=session) | {versions[-1].id}
        removed: list[int] = []
        deleted = 0
        for index, version in enumerate(versions):
            if version.id in needed:
                continue
            kept = next(v.id for v in versions[index + 1 :] if v.id in needed)
            complete_between = any(v.parent is None for v in versions[index + 1 :] if v.id <= kept)
            deleted += repo.drop_unneeded_items(
                version, kept, complete_between=complete_between, session=session
            )
            version.pruned = True
            session.add(version)
            removed.append(version.id)
        session.commit()
        return PruneResult(removed=removed, items_deleted=deleted, kept=len(versions) - len(removed))


def _top_up_golden(items: list[DatasetItem], version: int, size: int, now: datetime, session: Session) -> int:
    have = {item.photo_id for item in repo.golden_items(session=session)}
    room = size - len(have)
    if room <= 0:
        return 0
    # The model's own confident guesses would grade the model by itself: people's labels only.
    candidates = [
        item
        for item in items
        if item.split == Split.VALIDATION
        and item.source != LabelSource.AUTO
        and item.label not in NOT_BREEDS
        and not item.conflict
        and item.photo_id not in have
    ]
    chosen = candidates[:room]
    session.add_all(
        GoldenItem(photo_id=i.photo_id, label=i.label, added_in=version, added_at=now) for i in chosen
    )
    return len(chosen)


def _existing(last: DatasetVersion | None, session: Session) -> FoldResult:
    if last is None:
        return FoldResult(version=None, created=False)
    return FoldResult(
        version=last.id,
        created=False,
        n_items=last.n_items,
        n_train=last.n_train,
        n_val=last.n_val,
        counts=last.counts,
        conflicts=list(last.conflicts),
        golden_size=len(repo.golden_items(session=session)),
    )
