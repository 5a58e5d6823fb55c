"""Data-access functions for dogs (the animals photos belong to). Each takes the session as a keyword."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, select

from storage.repository import chunked
from storage.tables import Dog, DogAudit, DogGroup, DogMessage, Label, Photo, Prediction


def next_serial(year: int, *, session: Session) -> int:
    """The number the next dog of ``year`` gets (the unique (year, serial) index settles races)."""
    live = session.exec(select(func.max(Dog.serial)).where(Dog.year == year)).one() or 0
    # A removed dog's number is not given again: its code may be written down, or in ASM.
    removed = session.exec(select(func.max(DogAudit.serial)).where(DogAudit.year == year)).one() or 0
    return max(live, removed) + 1


def dog_by_code(code: str, *, session: Session) -> Dog | None:
    return session.exec(select(Dog).where(func.upper(Dog.code) == code.strip().upper())).first()


def recent_dogs(
    limit: int,
    *,
    session: Session,
    sender_id: int | None = None,
    since: datetime | None = None,
    offset: int = 0,
) -> list[Dog]:
    """The newest dogs with a photo (by intake, then id), merged records left out; only ``sender_id``'s,
    and only those that came in at ``since`` or later, when given."""
    # A dog made for an album whose every photo was refused has no photo: nothing to list.
    statement = select(Dog).where(Dog.merged_into.is_(None), Dog.id.in_(select(Photo.dog_id)))
    if sender_id is not None:
        statement = statement.where(Dog.sender_id == sender_id)
    if since is not None:
        statement = statement.where(Dog.intake_at >= since)
    statement = statement.order_by(Dog.intake_at.desc(), Dog.id.desc()).offset(offset).limit(limit)
    return list(session.exec(statement))


def dogs(*, session: Session) -> list[Dog]:
    """Every dog that is not merged into another, oldest first."""
    return list(session.exec(select(Dog).where(Dog.merged_into.is_(None)).order_by(Dog.id)))


def photos_of_dog(dog_id: int, *, session: Session) -> list[Photo]:
    return list(session.exec(select(Photo).where(Photo.dog_id == dog_id).order_by(Photo.id)))


def dog_of_photos(photo_ids: Iterable[int], *, session: Session) -> dict[int, int | None]:
    """photo id -> its dog's id."""
    found: dict[int, int | None] = {}
    for chunk in chunked(photo_ids):
        found.update(session.exec(select(Photo.id, Photo.dog_id).where(Photo.id.in_(chunk))).all())
    return found


def dog_codes(*, session: Session) -> dict[int, str]:
    """dog id -> code, for every dog."""
    return dict(session.exec(select(Dog.id, Dog.code)).all())


def split_keys(photo_ids: Iterable[int], *, session: Session) -> dict[int, str]:
    """photo id -> the SHA-256 of the first photo of its dog (its own, for a photo in no dog).

    What decides a photo's train/validation side and judging fold: all photos of one animal land
    together, and a dog of one photo (every photo from before dogs) keeps the side its hash gave it.
    """
    photo_ids = list(photo_ids)
    dog_of = dog_of_photos(photo_ids, session=session)
    first_ids: dict[int, int] = {}
    for chunk in chunked({dog for dog in dog_of.values() if dog is not None}):
        statement = (
            select(Photo.dog_id, func.min(Photo.id)).where(Photo.dog_id.in_(chunk)).group_by(Photo.dog_id)
        )
        first_ids.update(session.exec(statement).all())
    wanted = set(first_ids.values()) | {photo for photo, dog in dog_of.items() if dog is None}
    digest: dict[int, str] = {}
    for chunk in chunked(wanted):
        digest.update(session.exec(select(Photo.id, Photo.sha256).where(Photo.id.in_(chunk))).all())
    return {
        photo: digest[first_ids[dog]] if dog is not None else digest[photo]
        for photo, dog in dog_of.items()
        if (first_ids.get(dog) if dog is not None else photo) in digest
    }


def recent_dog_embeddings(limit: int, *, session: Session) -> list[tuple[int, bytes, str]]:
    """(dog id, embedding, model version) of the newest ``limit`` predictions of photos in a dog."""
    statement = (
        select(Photo.dog_id, Prediction.embedding, Prediction.model_version)
        .join(Prediction, Prediction.photo_id == Photo.id)
        .where(Photo.dog_id.is_not(None))
        .order_by(Prediction.id.desc())
        .limit(limit)
    )
    return [(dog_id, blob, version) for dog_id, blob, version in session.exec(statement)]


def dogs_by_id(dog_ids: Iterable[int], *, session: Session) -> dict[int, Dog]:
    found: dict[int, Dog] = {}
    for chunk in chunked(dog_ids):
        found.update((dog.id, dog) for dog in session.exec(select(Dog).where(Dog.id.in_(chunk))))
    return found


def age_groups_of_photos(photo_ids: Iterable[int], *, session: Session) -> dict[str, int]:
    """How many distinct dogs of each age group the photos show (a dog counts once however many photos)."""
    dog_ids = {dog for dog in dog_of_photos(photo_ids, session=session).values() if dog is not None}
    counts: dict[str, int] = {}
    for dog in dogs_by_id(dog_ids, session=session).values():
        counts[dog.age_group] = counts.get(dog.age_group, 0) + 1
    return counts


def age_group_of_photos(photo_ids: Iterable[int], *, session: Session) -> dict[int, str]:
    """photo id -> the age group of its dog (photos in no dog are left out)."""
    dog_of = dog_of_photos(photo_ids, session=session)
    dogs = dogs_by_id({d for d in dog_of.values() if d is not None}, session=session)
    return {photo: dogs[dog].age_group for photo, dog in dog_of.items() if dog in dogs}


def remember_message(
    chat_id: int, message_id: int, dog_id: int, photo_id: int | None, *, caption: bool, session: Session
) -> None:
    """Record (or re-point) the dog a bot message shows."""
    row = session.get(DogMessage, (chat_id, message_id))
    if row is None:
        row = DogMessage(chat_id=chat_id, message_id=message_id, dog_id=dog_id)
    row.dog_id, row.photo_id, row.caption = dog_id, photo_id, caption
    session.add(row)


def message_shows(chat_id: int, message_id: int, *, session: Session) -> DogMessage | None:
    return session.get(DogMessage, (chat_id, message_id))


def messages_of_dog(dog_id: int, *, session: Session) -> list[DogMessage]:
    return list(session.exec(select(DogMessage).where(DogMessage.dog_id == dog_id)))


def groups_of_dog(dog_id: int, *, session: Session) -> list[DogGroup]:
    return list(session.exec(select(DogGroup).where(DogGroup.dog_id == dog_id)))


def merged_into(dog_id: int, *, session: Session) -> list[Dog]:
    """The dog records merged into ``dog_id``."""
    return list(session.exec(select(Dog).where(Dog.merged_into == dog_id)))


def last_audit(dog_id: int, action: str, *, session: Session) -> DogAudit | None:
    statement = select(DogAudit).where(DogAudit.dog_id == dog_id, DogAudit.action == action)
    return session.exec(statement.order_by(DogAudit.id.desc())).first()


def discard_photos(sha256s: Iterable[str], *, session: Session) -> list[int]:
    """Delete the photos with these hashes and what hangs on them (predictions, labels, the record of
    messages that show them); the ids deleted. Only for photos a failed request itself stored."""
    photos = list(session.exec(select(Photo).where(Photo.sha256.in_(list(sha256s)))))
    ids = [photo.id for photo in photos]
    if ids:
        session.exec(delete(Label).where(Label.photo_id.in_(ids)))
        session.exec(delete(Prediction).where(Prediction.photo_id.in_(ids)))
        session.exec(delete(DogMessage).where(DogMessage.photo_id.in_(ids)))
        for photo in photos:
            session.delete(photo)
        session.flush()
    return ids


def group(key: str, *, session: Session) -> DogGroup | None:
    return session.get(DogGroup, key)
