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
    """Make a new dataset version if there are labels newer than the last one; idempotent."""
    with open_session(engine) as session:
        last = repo.latest_dataset_version(session=session)
        newest_label = repo.max_label_id(session=session)
        if newest_label == 0 or (last is not None and newest_label <= last.last_label_id):
            return _existing(last, session)
        photo_ids = repo.labeled_photo_ids(session=session, up_to_label_id=newest_label)
        labels = repo.labels_up_to(photo_ids, newest_label, session=session)
        split_keys = dog_repository.split_keys(photo_ids, session=session)
        # Ids only: a prediction row carries a 5 KB embedding the dataset item does not need.
        prediction_ids = repository.latest_prediction_ids(photo_ids, session=session)

        version = DatasetVersion(created_at=now, last_label_id=newest_label, trigger=trigger)
        session.add(version)
        session.flush()
        counts: dict[str, Counter] = {}
        conflicts: list[int] = []
        items: list[DatasetItem] = []
        for photo_id in photo_ids:
            resolved = resolve_label(labels.get(photo_id, []))
            if resolved is None:  # only "skip" answers
                continue
            split = split_of(split_keys[photo_id], val_share)
            items.append(
                DatasetItem(
                    dataset_version=version.id,
                    photo_id=photo_id,
                    prediction_id=prediction_ids.get(photo_id),
                    label=resolved.breed,
                    source=resolved.label.source,
                    split=split,
                    conflict=resolved.conflict,
                )
            )
            counts.setdefault(resolved.breed, Counter())[split] += 1
            if resolved.conflict:
                conflicts.append(photo_id)
        session.add_all(items)
        version.n_items = len(items)
        version.n_val = sum(item.split == Split.VALIDATION for item in items)
        version.n_train = version.n_items - version.n_val
        version.counts = {label: dict(c) for label, c in sorted(counts.items())}
        version.conflicts = conflicts
        golden_added = _top_up_golden(items, version.id, golden_size, now, session)
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
        )


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
