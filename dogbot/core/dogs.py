"""Dogs: the animals the shelter takes in, each with a shelter code, its photos and one breed answer.

Staff think in dogs, not photos. A dog's breed comes from all its photos at once:

* the model's answer on all of them together (``ml.combine``), rescored with the serving head, and
* people's answers, which are recorded on every photo of the dog (so training and the photo-level
  export see them) and resolved by the one catalog rule (:func:`dogbot.core.labels.resolve_label`)
  over the labels of all its photos: an admin's word wins, else the majority of people.

Until a person answers, a confident combined answer is the dog's breed; an unsure one waits.
The breed as shelter software records it is a :class:`ShelterBreed`: primary breed, optional
secondary breed, and whether it is a mix.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from dogbot.core.asking import AskPolicy
from dogbot.core.breeds import Breeds
from dogbot.core.labelling import Labelling, LabelResult
from dogbot.core.labels import ResolvedLabel, resolve_label
from dogbot.core.taxonomy import Breed
from dogbot.core.text import clean_text
from ml.combine import Combine, combine_outputs
from ml.predictor import ModelOutput, Predictor, backbone_of
from storage import dog_repository, repository
from storage.blobs import sha256_of
from storage.db import session as open_session
from storage.tables import Dog, DogAudit, DogGroup, Photo, Prediction, utcnow
from storage.vocabulary import MIXED_BREED, NOT_A_DOG, AgeGroup, DogAuditAction, LabelSource, Outcome, Sex

_NUMBERING_ATTEMPTS = 100
T = TypeVar("T")


class UnknownDog(KeyError):
    """No dog has that code or id."""


@dataclass(frozen=True)
class DogRules:
    """How dogs are numbered and answered (values from ``Settings``; see its comments)."""

    code_prefix: str
    code_format: str  # str.format with prefix, year, serial
    combine: Combine
    dog_threshold: float
    not_a_dog_below: float  # below this dog probability, filed as not a dog without asking
    auto_accept_threshold: float
    # A new dog whose photo is at least this close (cosine of embeddings) to an earlier dog's photo
    # may be that dog: staff are asked. Above 1: never asked. bench/bench_dogs.py chose it.
    same_dog_similarity: float = 0.8
    same_dog_window: int = 2000  # the newest photos compared with (a shelter's last months)

    # The shelter's clock: a dog arriving at 23:30 on 31 December in Los Angeles is of that year.
    timezone: str = "UTC"

    def code(self, year: int, serial: int) -> str:
        return self.code_format.format(prefix=self.code_prefix, year=year, serial=serial)

    def year_of(self, moment: datetime) -> int:
        return moment.astimezone(ZoneInfo(self.timezone)).year if moment.tzinfo else moment.year


@dataclass(frozen=True)
class NewDog:
    """A dog to make with its first stored photo; photos of one ``group`` make one dog."""

    source: str
    group: str | None = None  # tg:<chat>:<album>, api:<uuid>, ingest:<uuid>, import:<uuid>:<dog>
    sender_id: int | None = None
    chat_id: int | None = None
    name: str | None = None
    sex: str | None = None
    age_group: str | None = None
    intake_at: datetime | None = None


@dataclass(frozen=True)
class ShelterBreed:
    """A breed as shelter software records it: "Labrador Retriever", "... mix", "... / Boxer mix"."""

    primary: str | None  # a breed key; None: a mix of breeds nobody could name
    secondary: str | None = None
    mix: bool = False

    @classmethod
    def of_label(cls, label: ResolvedLabel) -> ShelterBreed | None:
        if label.breed == NOT_A_DOG:
            return None
        if label.breed == MIXED_BREED:
            return cls(label.label.primary_breed, label.label.secondary_breed, True)
        return cls(label.breed)


@dataclass(frozen=True)
class DogAnswer:
    """What the catalog holds about one dog now."""

    dog: Dog
    photos: list[Photo]
    output: ModelOutput | None  # the model on all photos together; None before any was classified
    outcome: Outcome | None  # what the model alone would do with the dog
    top: list[tuple[Breed, float]]
    label: ResolvedLabel | None  # people's (or an import's) answer over all photos
    breed: ShelterBreed | None  # the catalog's breed: people's word, else a confident model answer
    best_photo: Photo | None  # the photo the model was surest of
    held_back: bool = False  # confident, but a photo was asked about (a look-alike the model cannot name)
    maybe_not_a_dog: bool = False  # asked because the model is unsure it is a dog at all
    # The model's own answer, accepted without asking, and one of the random few staff are asked to
    # check (a photo of the dog is a spot check, dogbot/core/asking.py) until a person answers.
    spot_check: bool = False

    @property
    def decided(self) -> bool:
        """A person answered, or the model was sure enough alone."""
        return self.label is not None or self.outcome in (Outcome.AUTO_ACCEPTED, Outcome.NOT_A_DOG)

    @property
    def not_a_dog(self) -> bool:
        if self.label is not None:
            return self.label.breed == NOT_A_DOG
        return self.outcome == Outcome.NOT_A_DOG


class Dogs:
    def __init__(
        self,
        engine: Engine,
        predictor: Predictor,
        breeds: Breeds,
        labelling: Labelling,
        rules: DogRules,
        *,
        asking: AskPolicy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.predictor = predictor
        self.breeds = breeds
        self.labelling = labelling
        self.rules = rules
        self.asking = asking  # the same rule as a photo's: when a dog's answer is accepted without asking
        self.clock = clock

    # --- records ------------------------------------------------------------------------------
    def create(
        self,
        *,
        source: str,
        sender_id: int | None = None,
        chat_id: int | None = None,
        name: str | None = None,
        intake_at: datetime | None = None,
    ) -> Dog:
        """A new dog with the next code of its intake year (for callers that add its photos at once;
        intake makes a photo's dog in the photo's own transaction: :meth:`dog_for`)."""
        spec = NewDog(source=source, sender_id=sender_id, chat_id=chat_id, name=name, intake_at=intake_at)
        return self.retrying(lambda session: self.dog_for(session, spec))

    def retrying(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` and commit; again after a unique-index collision (another request
        numbering a dog, or storing the same photo or album, at the same moment)."""
        # 20 web API clients registering at once collided more than 5 times in a row
        # (bench/bench_api.py): retry more, after a random pause that grows, so the writers spread out.
        for attempt in range(_NUMBERING_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.002 * min(attempt, 20)))
            with open_session(self.engine) as session:
                try:
                    result = work(session)
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    continue
                if isinstance(result, SQLModel):
                    session.refresh(result)
                return result
        raise RuntimeError("could not number a new dog: too many at the same moment")

    def dog_for(self, session: Session, spec: NewDog) -> Dog:
        """In the caller's transaction: the dog of ``spec.group`` if one was made, else a new one
        (flushed, not committed: it is committed with the photo that needs it, or not at all)."""
        if spec.group is not None:
            group = session.get(DogGroup, spec.group)
            if group is not None:
                return self._live(session, group.dog_id)
        intake_at = spec.intake_at or self.clock()
        year = self.rules.year_of(intake_at)
        serial = dog_repository.next_serial(year, session=session)
        dog = Dog(
            code=self.rules.code(year, serial),
            year=year,
            serial=serial,
            name=clean_name(spec.name),
            sex=Sex(spec.sex) if spec.sex else Sex.UNKNOWN,
            age_group=AgeGroup(spec.age_group) if spec.age_group else AgeGroup.UNKNOWN,
            intake_at=intake_at,
            source=spec.source,
            sender_id=spec.sender_id,
            chat_id=spec.chat_id,
        )
        session.add(dog)
        session.flush()
        if spec.group is not None:
            session.add(DogGroup(key=spec.group, dog_id=dog.id, created_at=self.clock()))
            session.flush()
        return dog

    def dog_of_photo_bytes(self, data: bytes) -> Dog | None:
        """The dog a photo with exactly these bytes is in, or None when the catalog lacks it."""
        with open_session(self.engine) as session:
            photo = repository.photo_by_sha(sha256_of(data), session=session)
            if photo is None or photo.dog_id is None:
                return None
            return self._live(session, photo.dog_id)

    def remember_message(
        self,
        chat_id: int,
        message_id: int,
        dog_id: int,
        photo_id: int | None = None,
        *,
        caption: bool = False,
    ) -> None:
        """A bot message shows this dog (and photo): replies and presses on it find them here."""
        with open_session(self.engine) as session:
            dog_repository.remember_message(
                chat_id, message_id, dog_id, photo_id, caption=caption, session=session
            )
            session.commit()

    def cards_of(self, dog_id: int) -> list[tuple[int, int, bool]]:
        """(chat id, message id, is a caption) of every card the bot sent of this dog (or of a dog
        merged into it)."""
        with open_session(self.engine) as session:
            dog = self._live(session, dog_id)
            ids = [dog.id] + [d.id for d in dog_repository.merged_into(dog.id, session=session)]
            return [
                (m.chat_id, m.message_id, m.caption)
                for one in ids
                for m in dog_repository.messages_of_dog(one, session=session)
                if m.photo_id is None
            ]

    def merged_record_of(self, photo_id: int) -> Dog | None:
        """The dog record still merged whose last merge moved this photo (what *New dog* undoes)."""
        with open_session(self.engine) as session:
            photo = session.get(Photo, photo_id)
            if photo is None or photo.dog_id is None:
                return None
            for merged in dog_repository.merged_into(photo.dog_id, session=session):
                audit = dog_repository.last_audit(merged.id, DogAuditAction.MERGED, session=session)
                if audit is not None and photo_id in audit.detail.get("photos", []):
                    return merged
            return None

    def shown_in(self, chat_id: int, message_id: int) -> tuple[Dog, int | None] | None:
        """The dog (as it is now: merged records lead to the dog kept) and photo a bot message
        shows, or None for a message that shows no dog (or one since removed)."""
        with open_session(self.engine) as session:
            row = dog_repository.message_shows(chat_id, message_id, session=session)
            if row is None:
                return None
            try:
                return self._live(session, row.dog_id), row.photo_id
            except UnknownDog:
                return None

    def group_dog(self, key: str) -> Dog | None:
        """The dog a group of photos made, or None while none of its photos was stored."""
        with open_session(self.engine) as session:
            group = session.get(DogGroup, key)
            return self._live(session, group.dog_id) if group is not None else None

    def place_known(self, photo_id: int, *, dog_id: int | None = None, spec: NewDog | None = None) -> Photo:
        """A photo the catalog already has, sent again for dog ``dog_id`` (or ``spec``'s group).

        It stays in the dog it is in (the same picture is not a second animal's) unless that dog has
        no other photo: then it was only made for it, and the photo moves; the dog it leaves empty is
        removed in the same transaction, with an audit row. A group whose dog is not made yet adopts
        such a photo's dog instead. The photo is returned as it now is: ``photo.dog_id`` says where.
        """

        def work(session: Session) -> Photo:
            photo = session.get(Photo, photo_id)
            if photo is None:
                raise KeyError(f"no photo #{photo_id}")
            target = dog_id
            if target is None and spec is not None and spec.group is not None:
                group = session.get(DogGroup, spec.group)
                target = group.dog_id if group is not None else None
            if target is not None:
                target = self._live(session, target).id
            if photo.dog_id is not None and photo.dog_id == target:
                return photo
            alone = (
                photo.dog_id is None or len(dog_repository.photos_of_dog(photo.dog_id, session=session)) == 1
            )
            if not alone:
                return photo
            if target is None and photo.dog_id is None and spec is not None:
                # A photo of a dog that was deleted (or never had one): it starts its dog now.
                photo.dog_id = self.dog_for(session, spec).id
                session.add(photo)
                return photo
            if target is None:
                if spec is not None and spec.group is not None and photo.dog_id is not None:
                    session.add(DogGroup(key=spec.group, dog_id=photo.dog_id, created_at=self.clock()))
                    adopted = session.get(Dog, photo.dog_id)  # it is this group's dog now: its details
                    adopted.name = clean_name(spec.name) or adopted.name
                    adopted.sex = spec.sex or adopted.sex
                    adopted.age_group = spec.age_group or adopted.age_group
                    session.add(adopted)
                return photo
            self._move(session, photo, target)
            return photo

        return self.retrying(work)

    def give_dog(self, photo_id: int, spec: NewDog) -> Photo:
        """A photo in no dog (one the model filed as not a dog, or whose dog was deleted) becomes
        a dog of its own, in one transaction; a photo already in a dog is returned as it is."""

        def work(session: Session) -> Photo:
            photo = session.get(Photo, photo_id)
            if photo is None:
                raise KeyError(f"no photo #{photo_id}")
            if photo.dog_id is None:
                photo.dog_id = self.dog_for(session, spec).id
                session.add(photo)
            return photo

        return self.retrying(work)

    def add_photos(self, dog_id: int, photo_ids: Sequence[int]) -> list[int]:
        """Put photos in a dog; returns those that joined it (see :meth:`place_known`)."""
        return [
            photo_id
            for photo_id in dict.fromkeys(photo_ids)
            if self.place_known(photo_id, dog_id=dog_id).dog_id == self.get(dog_id).id
        ]

    def _move(self, session: Session, photo: Photo, dog_id: int) -> None:
        left = photo.dog_id
        photo.dog_id = dog_id
        session.add(photo)
        session.flush()
        if left is not None and not dog_repository.photos_of_dog(left, session=session):
            into = session.get(Dog, dog_id)
            detail = {"photo": photo.id, "into": into.code}
            self._remove(session, left, DogAuditAction.REMOVED_EMPTY, detail, into=dog_id)

    def _remove(
        self,
        session: Session,
        dog_id: int,
        action: str,
        detail: dict,
        *,
        into: int | None = None,
        user_id: int | None = None,
    ) -> None:
        """Delete a dog's row, keeping it in an audit row; records merged into it follow ``into``."""
        dog = session.get(Dog, dog_id)
        for merged in dog_repository.merged_into(dog_id, session=session):
            merged.merged_into = into
            session.add(merged)
        for shown in dog_repository.messages_of_dog(dog_id, session=session):
            if into is None:
                session.delete(shown)
            else:  # its card now shows the dog its photo joined
                shown.dog_id = into
                session.add(shown)
        row = dog.model_dump(mode="json")
        session.add(
            DogAudit(
                dog_id=dog.id,
                code=dog.code,
                year=dog.year,
                serial=dog.serial,
                action=action,
                detail={**detail, "dog": row},
                user_id=user_id,
                at=self.clock(),
            )
        )
        for group in dog_repository.groups_of_dog(dog_id, session=session):
            session.delete(group)
        session.delete(dog)
        session.flush()

    def delete(self, dog_id: int, *, user_id: int | None = None, why: str = "") -> Dog:
        """Remove a wrongly registered dog: its record goes (kept whole in an audit row, with who
        and why); its photos stay in the catalog, in no dog, and start a new dog if sent again."""
        with open_session(self.engine) as session:
            dog = self._live(session, dog_id)
            photos = dog_repository.photos_of_dog(dog.id, session=session)
            for photo in photos:
                photo.dog_id = None
                session.add(photo)
            session.flush()
            detail = {"photos": [p.id for p in photos], "why": why}
            self._remove(session, dog.id, DogAuditAction.DELETED, detail, user_id=user_id)
            session.commit()
            return dog

    def abandon(self, group: str, sha256s: Sequence[str], *, why: str = "") -> None:
        """Undo a registration that failed midway, in one transaction: the photos it stored (by
        hash; none was in the catalog before it) and the dog made for its group go, the dog kept in
        an audit row (its code is never given again). The photo files stay in the store."""
        with open_session(self.engine) as session:
            made = dog_repository.group(group, session=session)
            removed = dog_repository.discard_photos(sha256s, session=session)
            if made is not None and session.get(Dog, made.dog_id) is not None:
                detail = {"photos": removed, "why": why}
                self._remove(session, made.dog_id, DogAuditAction.ABANDONED, detail)
            elif made is not None:
                session.delete(made)
            session.commit()

    def photo_bytes_of(self, dog_id: int, number: int) -> tuple[Photo, bytes]:
        """The dog's ``number``-th photo (1-based, in the order they came) and its bytes;
        IndexError when it has fewer."""
        photos = self.photos_of(self.get(dog_id).id)
        if not 1 <= number <= len(photos):
            raise IndexError(f"the dog has {len(photos)} photos")
        photo = photos[number - 1]
        return photo, self.labelling.photo_bytes(photo)

    def get(self, dog_id: int) -> Dog:
        with open_session(self.engine) as session:
            return self._live(session, dog_id)

    def by_code(self, code: str) -> Dog:
        """The dog with this code (case and spaces forgiven); a merged dog's code finds the one kept."""
        code = clean_text(code, 32)  # a NUL would be a 500 on PostgreSQL, not "no such dog"
        if not code:
            raise UnknownDog(code)
        with open_session(self.engine) as session:
            dog = dog_repository.dog_by_code(code, session=session)
            if dog is None:
                raise UnknownDog(code)
            return self._live(session, dog.id)

    def recent(
        self,
        limit: int = 10,
        *,
        sender_id: int | None = None,
        since: datetime | None = None,
        offset: int = 0,
    ) -> list[Dog]:
        """The newest dogs first, skipping ``offset`` (what /dogs pages, and ``GET /v1/dogs``)."""
        with open_session(self.engine) as session:
            return dog_repository.recent_dogs(
                limit, session=session, sender_id=sender_id, since=since, offset=offset
            )

    def photo_ref(self, photo_id: int) -> PhotoRef | None:
        """Which photo of which dog this is; None for a photo in no dog."""
        with open_session(self.engine) as session:
            photo = session.get(Photo, photo_id)
            if photo is None or photo.dog_id is None:
                return None
            dog = self._live(session, photo.dog_id)
            ids = [p.id for p in dog_repository.photos_of_dog(dog.id, session=session)]
        number = ids.index(photo_id) + 1 if photo_id in ids else len(ids)
        return PhotoRef(number=number, count=len(ids), code=dog.code, name=dog.name)

    def photos_of(self, dog_id: int) -> list[Photo]:
        with open_session(self.engine) as session:
            return dog_repository.photos_of_dog(dog_id, session=session)

    def set_details(
        self,
        dog_id: int,
        *,
        name: str | None = None,
        sex: str | None = None,
        age_group: str | None = None,
        notes: str | None = None,
    ) -> Dog:
        """Change what is given (None leaves a field as it is)."""
        with open_session(self.engine) as session:
            dog = self._live(session, dog_id)
            if name is not None:
                dog.name = clean_name(name)
            if sex is not None:
                dog.sex = Sex(sex)
            if age_group is not None:
                dog.age_group = AgeGroup(age_group)
            if notes is not None:
                dog.notes = clean_text(notes, 2000, multiline=True)
            session.add(dog)
            session.commit()
            session.refresh(dog)
            return dog

    def merge(self, dog_id: int, into_id: int, *, user_id: int | None = None) -> Dog:
        """Two records of one animal: ``dog_id``'s photos join ``into_id``; the record stays, marked,
        and an audit row keeps what it was, so :meth:`unmerge` can undo it."""
        if dog_id == into_id:
            return self.get(into_id)
        with open_session(self.engine) as session:
            dog = self._live(session, dog_id)
            into = self._live(session, into_id)
            if dog.id == into.id:
                return into
            moved = []
            for photo in dog_repository.photos_of_dog(dog.id, session=session):
                photo.dog_id = into.id
                session.add(photo)
                moved.append(photo.id)
            before = {"dog": dog.model_dump(mode="json"), "into": into.model_dump(mode="json")}
            session.add(
                DogAudit(
                    dog_id=dog.id,
                    code=dog.code,
                    action=DogAuditAction.MERGED,
                    detail={**before, "photos": moved, "into_code": into.code},
                    user_id=user_id,
                    at=self.clock(),
                )
            )
            dog.merged_into = into.id
            into.name = into.name or dog.name
            into.sex = into.sex if into.sex != Sex.UNKNOWN else dog.sex
            into.age_group = into.age_group if into.age_group != AgeGroup.UNKNOWN else dog.age_group
            session.add_all([dog, into])
            session.commit()
            session.refresh(into)
            return into

    def unmerge(self, dog_id: int, *, user_id: int | None = None) -> Dog | None:
        """Undo the last merge of ``dog_id``: its photos (those still in the dog it joined) come back
        and it is a dog of its own again. None when it is not merged (nothing to undo)."""
        with open_session(self.engine) as session:
            dog = session.get(Dog, dog_id)
            if dog is None or dog.merged_into is None:
                return None
            audit = dog_repository.last_audit(dog_id, DogAuditAction.MERGED, session=session)
            photos = audit.detail.get("photos", []) if audit is not None else []
            into = dog.merged_into
            for photo_id in photos:
                photo = session.get(Photo, photo_id)
                if photo is not None and photo.dog_id == into:
                    photo.dog_id = dog.id
                    session.add(photo)
            if audit is not None:  # what the kept dog took from this one goes back
                kept = session.get(Dog, into)
                before = audit.detail.get("into", {})
                for field in ("name", "sex", "age_group"):
                    if field in before and getattr(kept, field) == getattr(dog, field):
                        setattr(kept, field, before[field])
                session.add(kept)
            dog.merged_into = None
            session.add(dog)
            session.add(
                DogAudit(
                    dog_id=dog.id,
                    code=dog.code,
                    action=DogAuditAction.UNMERGED,
                    detail={"photos": photos, "from": into},
                    user_id=user_id,
                    at=self.clock(),
                )
            )
            session.commit()
            session.refresh(dog)
            return dog

    def live(self, session: Session, dog_id: int) -> Dog:
        """In the caller's session: the dog, or the one it was merged into."""
        return self._live(session, dog_id)

    def _live(self, session, dog_id: int) -> Dog:
        """The dog, or the one it was merged into."""
        dog = session.get(Dog, dog_id)
        seen = set()
        while dog is not None and dog.merged_into is not None and dog.id not in seen:
            seen.add(dog.id)
            dog = session.get(Dog, dog.merged_into)
        if dog is None:
            raise UnknownDog(dog_id)
        return dog

    # --- answers ------------------------------------------------------------------------------
    def answer(self, dog_id: int) -> DogAnswer:
        with open_session(self.engine) as session:
            dog = self._live(session, dog_id)
            photos = dog_repository.photos_of_dog(dog.id, session=session)
            predictions = repository.latest_predictions([p.id for p in photos], session=session)
            labels = repository.labels_by_photo([p.id for p in photos], session=session)
        pooled = [label for photo in photos for label in labels.get(photo.id, [])]
        return self._answer(dog, photos, predictions, pooled)

    def answers(self) -> list[DogAnswer]:
        """Every dog's answer, oldest dog first (the export)."""
        with open_session(self.engine) as session:
            every = dog_repository.dogs(session=session)
            photos = {dog.id: dog_repository.photos_of_dog(dog.id, session=session) for dog in every}
            ids = [photo.id for group in photos.values() for photo in group]
            predictions = repository.latest_predictions(ids, session=session)
            labels = repository.labels_by_photo(ids, session=session)
        return [
            self._answer(
                dog, photos[dog.id], predictions, [lb for p in photos[dog.id] for lb in labels.get(p.id, [])]
            )
            for dog in every
        ]

    def _answer(self, dog: Dog, photos: list[Photo], predictions: dict[int, Prediction], labels) -> DogAnswer:
        scored = [
            (photo, predictions[photo.id])
            for photo in photos
            if photo.id in predictions
            and backbone_of(predictions[photo.id].model_version) == self.predictor.backbone_name
        ]
        output = outcome = best = None
        top: list[tuple[Breed, float]] = []
        held_back = maybe_not_a_dog = False
        if scored:
            embeddings = np.stack([repository.embedding_from_bytes(p.embedding) for _, p in scored])
            dog_probability = np.asarray([p.dog_probability for _, p in scored], dtype=np.float32)
            outputs = self.predictor.predict_embeddings(embeddings, dog_probability)
            output = combine_outputs(outputs, self.rules.combine)
            top = [
                (self.breeds.taxonomy.get(key), p) for key, p in output.top(3) if key in self.breeds.taxonomy
            ]
            confidence = top[0][1] if top else 0.0
            # A photo the intake asked about although confident hides a breed the model cannot name yet.
            held_back = any(p.held_back and not p.auto_accepted for _, p in scored)
            # Not a dog only when sure, as intake decides it; a photo intake asked about makes the card ask.
            sure_not_a_dog = output.surely_not_a_dog(
                self.rules.dog_threshold, self.rules.not_a_dog_below
            ) and not any(not p.is_dog and not p.auto_accepted for _, p in scored)
            if sure_not_a_dog:
                outcome = Outcome.NOT_A_DOG
            elif (
                output.is_dog(self.rules.dog_threshold)
                and bool(top)
                and self.asking.accepts(
                    top[0][0].key,
                    confidence,
                    top[1][0].key if len(top) > 1 else None,
                    fallback=self.rules.auto_accept_threshold,
                )
                and not held_back
            ):
                outcome = Outcome.AUTO_ACCEPTED
            else:
                outcome = Outcome.ASK
            maybe_not_a_dog = outcome == Outcome.ASK and not output.is_dog(self.rules.dog_threshold)
            best_index = int(np.argmax([o.breed_probabilities.max() * o.dog_probability for o in outputs]))
            best = scored[best_index][0]
        said = resolve_label([label for label in labels if label.source != LabelSource.AUTO])
        if said is not None:
            breed = ShelterBreed.of_label(said)
        elif outcome == Outcome.AUTO_ACCEPTED:
            breed = ShelterBreed(top[0][0].key)
        else:
            breed = None
        picked = any(p.spot_check for _, p in scored)
        spot_check = said is None and outcome == Outcome.AUTO_ACCEPTED and picked
        return DogAnswer(
            dog=dog,
            photos=photos,
            output=output,
            outcome=outcome,
            top=top,
            label=said,
            breed=breed,
            best_photo=best or (photos[0] if photos else None),
            held_back=held_back,
            maybe_not_a_dog=maybe_not_a_dog,
            spot_check=spot_check,
        )

    def record_label(
        self,
        dog_id: int,
        breed: str,
        *,
        source: str,
        user_id: int | None,
        primary: str | None = None,
        secondary: str | None = None,
        except_photo: int | None = None,
        user_name: str | None = None,
    ) -> list[LabelResult]:
        """A person's answer about the dog, on every photo of it (the catalog rule counts them once:
        each person's latest answer); ``except_photo`` was answered already."""
        if breed != MIXED_BREED and (primary or secondary):
            raise ValueError("primary and secondary breeds belong to a mixed_breed answer")
        answer = self.answer(dog_id)
        results = []
        for photo in answer.photos:
            if photo.id == except_photo:
                continue
            prediction = self.labelling.latest_prediction(photo.id)
            results.append(
                self.labelling.record_label(
                    photo.id,
                    breed,
                    source=source,
                    user_id=user_id,
                    prediction_id=prediction.id if prediction is not None else None,
                    primary_breed=primary,
                    secondary_breed=secondary,
                    user_name=user_name,
                )
            )
        return results

    def same_dog(self, dog_id: int) -> SameDog | None:
        """An earlier dog this one may be (two records of one animal), or None.

        The sender's own previous dog is asked about first (staff photograph one dog, then send one
        more photo of it); else any dog among the newest photos. Compared photo by photo: the
        closest pair of photos decides.
        """
        if self.rules.same_dog_similarity > 1:
            return None
        with open_session(self.engine) as session:
            dog = self._live(session, dog_id)
            mine = [p.id for p in dog_repository.photos_of_dog(dog.id, session=session)]
            own = repository.latest_predictions(mine, session=session)
            others = dog_repository.recent_dog_embeddings(self.rules.same_dog_window, session=session)
            previous = None
            if dog.sender_id is not None:
                earlier = [
                    d
                    for d in dog_repository.recent_dogs(5, session=session, sender_id=dog.sender_id)
                    if d.id < dog.id
                ]
                previous = earlier[0].id if earlier else None
        backbone = self.predictor.backbone_name
        vectors = [
            repository.embedding_from_bytes(p.embedding)
            for p in own.values()
            if backbone_of(p.model_version) == backbone
        ]
        candidates = [
            (other, repository.embedding_from_bytes(blob))
            for other, blob, version in others
            if other != dog.id and backbone_of(version) == backbone
        ]
        if not vectors or not candidates:
            return None
        mine_unit = _unit(np.stack(vectors))
        theirs_unit = _unit(np.stack([vector for _, vector in candidates]))
        similarity = (theirs_unit @ mine_unit.T).max(axis=1)
        best: dict[int, float] = {}
        for (other, _), value in zip(candidates, similarity, strict=True):
            best[other] = max(best.get(other, -1.0), float(value))
        close = {other: value for other, value in best.items() if value >= self.rules.same_dog_similarity}
        if not close:
            return None
        chosen = previous if previous in close else max(close, key=close.get)
        with open_session(self.engine) as session:
            found = self._live(session, chosen)
        if found.id == dog.id:
            return None
        return SameDog(found, close[chosen], previous_of_sender=chosen == previous)

    def photo_bytes(self, photo: Photo) -> bytes:
        return self.labelling.photo_bytes(photo)


@dataclass(frozen=True)
class PhotoRef:
    """Where a photo stands among its dog's photos, as staff name it ("photo 2 of D-2026-0042 Max")."""

    number: int  # 1-based, in the order the photos came
    count: int
    code: str
    name: str | None


@dataclass(frozen=True)
class SameDog:
    """An earlier dog a new one looks like."""

    dog: Dog
    similarity: float
    previous_of_sender: bool  # the dog the same person registered just before


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def clean_name(name: str | None) -> str | None:
    return clean_text(name, 64) or None


def shelter_breed_name(breed: ShelterBreed | None, name_of: Callable[[str], str]) -> str:
    """ "Labrador Retriever", "Labrador Retriever mix", "Labrador Retriever / Boxer mix", "Mixed breed"."""
    if breed is None:
        return ""
    if breed.primary is None:
        return "Mixed breed"
    words = name_of(breed.primary)
    if breed.secondary:
        words += f" / {name_of(breed.secondary)}"
    return f"{words} mix" if breed.mix else words
