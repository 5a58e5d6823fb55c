"""Labelling: people's answers appended to a photo's labels, and what the catalog holds for a photo.

Labels are append-only with who, when and source; :func:`dogbot.core.labels.resolve_label` turns
them into the catalog label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from dogbot.core.breeds import Breeds
from dogbot.core.labels import ResolvedLabel, resolve_label
from dogbot.core.lookalikes import Lookalikes
from storage import repository
from storage.blobs import PhotoStore
from storage.db import session as open_session
from storage.tables import Label, Photo, Prediction, utcnow
from storage.vocabulary import MIXED_BREED, PEOPLE, SPECIAL_LABELS, LabelSource


@dataclass(frozen=True)
class LabelResult:
    label: Label
    created: bool  # False: this person had already given this exact answer (a repeated press)
    resolved: ResolvedLabel | None


class UnknownBreed(ValueError):
    """A label named a breed the taxonomy does not know."""


class Labelling:
    def __init__(
        self,
        engine: Engine,
        photos: PhotoStore,
        breeds: Breeds,
        lookalikes: Lookalikes,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.photos = photos
        self.breeds = breeds
        self.lookalikes = lookalikes  # told about people's answers: they decide what is shadowed
        self.clock = clock

    def record_label(
        self,
        photo_id: int,
        breed: str,
        *,
        source: str,
        user_id: int | None,
        prediction_id: int | None = None,
        primary_breed: str | None = None,
        secondary_breed: str | None = None,
        user_name: str | None = None,
    ) -> LabelResult:
        """Append a label. The same person repeating their latest answer adds nothing (double taps).

        ``primary_breed`` and ``secondary_breed`` name a mixed breed's parts, when someone knows them;
        ``user_name`` says who in words where the id does not (an API token's name).
        """
        if source not in tuple(LabelSource):
            raise ValueError(f"unknown label source {source!r}")
        if (primary_breed or secondary_breed) and breed != MIXED_BREED:
            raise ValueError("primary and secondary breeds belong to a mixed_breed label")
        for key in (breed, primary_breed, secondary_breed):
            if key is not None and key not in SPECIAL_LABELS:
                try:
                    self.breeds.taxonomy.get(key)
                except KeyError:
                    raise UnknownBreed(f"unknown breed {key!r}: an admin can add it with /addbreed") from None
        with open_session(self.engine) as session:
            # On PostgreSQL the photo's row stays locked until the commit, so a double tap that two bot
            # replicas answer at the same moment records one label, not two (SQLite ignores the lock).
            if session.get(Photo, photo_id, with_for_update={"key_share": True}) is None:
                raise KeyError(f"no photo #{photo_id}")
            labels = repository.labels_of(photo_id, session=session)
            repeat = _repeat(labels, user_id, breed, primary_breed, secondary_breed)
            if repeat is not None:
                return repeat
            label = Label(
                photo_id=photo_id,
                prediction_id=prediction_id,
                breed=breed,
                primary_breed=primary_breed,
                secondary_breed=secondary_breed,
                source=source,
                user_id=user_id,
                user_name=user_name,
                created_at=self.clock(),
            )
            session.add(label)
            session.commit()
            session.refresh(label)
        if source in PEOPLE:
            self.lookalikes.label_recorded(breed)
        return LabelResult(label, True, resolve_label([*labels, label]))

    @contextmanager
    def press_applying(self, user_id: int, subject: str, update_id: int) -> Iterator[int | None]:
        """Apply one press in the order Telegram gave it: yields None when ``update_id`` is the newest
        press of this person on ``subject`` (then the body records it), else the newer update id that
        was applied (then the body must change nothing).

        On PostgreSQL the order row stays locked while the body runs, so two replicas applying two
        presses of one person apply them one at a time, the older one refused if it comes second.
        SQLite holds no write lock across other sessions: the order is claimed at once instead.
        """
        with open_session(self.engine) as session:
            row = repository.press_order_for_update(user_id, subject, session=session)
            if row.update_id > update_id:
                newer = row.update_id
                session.rollback()
                yield newer
                return
            row.update_id, row.at = update_id, self.clock()
            session.add(row)
            held = self.engine.dialect.name == "postgresql"
            if not held:
                session.commit()
            yield None
            if held:
                session.commit()

    def repeat_of(
        self, photo_id: int, user_id: int, breed: str, primary: str | None, secondary: str | None
    ) -> LabelResult | None:
        """This person's latest answer on the photo, as a repeat (nothing new recorded), when it is
        exactly this one; else None."""
        with open_session(self.engine) as session:
            return _repeat(
                repository.labels_of(photo_id, session=session), user_id, breed, primary, secondary
            )

    def answers_now(self, photo_id: int, user_id: int | None) -> tuple[str | None, ResolvedLabel | None]:
        """``user_id``'s answer that stands for the photo (their latest) and its catalog label, read now."""
        with open_session(self.engine) as session:
            labels = repository.labels_of(photo_id, session=session)
        mine = [label.breed for label in labels if user_id is not None and label.user_id == user_id]
        return (mine[-1] if mine else None), resolve_label(labels)

    def labels(self, photo_id: int) -> list[Label]:
        """Every label of the photo, oldest first."""
        with open_session(self.engine) as session:
            return repository.labels_of(photo_id, session=session)

    def catalog_label(self, photo_id: int) -> ResolvedLabel | None:
        with open_session(self.engine) as session:
            return resolve_label(repository.labels_of(photo_id, session=session))

    def photo(self, photo_id: int) -> Photo | None:
        with open_session(self.engine) as session:
            return session.get(Photo, photo_id)

    def prediction(self, prediction_id: int) -> Prediction | None:
        with open_session(self.engine) as session:
            return session.get(Prediction, prediction_id)

    def latest_prediction(self, photo_id: int) -> Prediction | None:
        with open_session(self.engine) as session:
            return repository.latest_prediction(photo_id, session=session)

    def next_for_review(self, after_photo_id: int = 0) -> tuple[Photo, Prediction | None] | None:
        """The oldest photo still waiting for a person's answer, after ``after_photo_id``."""
        with open_session(self.engine) as session:
            found = repository.photos_awaiting_label(session=session, after_id=after_photo_id)
            if not found:
                return None
            return found[0], repository.latest_prediction(found[0].id, session=session)

    def photo_bytes(self, photo: Photo) -> bytes:
        return self.photos.get(photo.sha256)

    def stored_bytes(self, sha256: str) -> bytes:
        """A stored photo by its hash (e.g. the examples of a drift incident)."""
        return self.photos.get(sha256)


def _repeat(
    labels: list[Label], user_id: int | None, breed: str, primary: str | None, secondary: str | None
) -> LabelResult | None:
    """The person's latest answer among ``labels`` when it is exactly this one (a double tap adds
    nothing), else None."""
    mine = [label for label in labels if user_id is not None and label.user_id == user_id]
    if mine and (mine[-1].breed, mine[-1].primary_breed, mine[-1].secondary_breed) == (
        breed,
        primary,
        secondary,
    ):
        return LabelResult(mine[-1], False, resolve_label(labels))
    return None
