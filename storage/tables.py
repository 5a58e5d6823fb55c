"""Database tables (SQLModel). Names are singular; rows are never updated in place where history matters.

* ``Dog`` — one animal the shelter took in (a shelter code such as ``D-2026-0042``); its photos point at it.
* ``Photo`` — one row per distinct image (content-addressed by SHA-256); the bytes live in the photo store.
* ``Prediction`` — what a model version said about a photo, with its embedding for drift and retraining.
* ``Label`` — append-only: every answer from staff, admins, auto-acceptance or imports, with who and when.
* ``CustomBreed`` — breeds staff added that the base model does not know.
* ``Member`` — staff and admins added from the chat (ids from settings are always trusted too).
* ``ApiToken`` — a web API client (an app, a website, a kiosk): its name and the SHA-256 of its token.
* ``PersonName`` — the name a staff member or admin goes by in Telegram, so records name people.
* ``AsmSend`` — the outbox to the shelter's Animal Shelter Manager: every send of a dog, its state and
  ASM's answer (``jobs.asm_sync``).
* ``DogGroup`` — photos sent together as one dog (a Telegram album, one API registration, one
  ``ingest --dog``): the key names the group, so its dog is made with its first stored photo.
* ``DogMessage`` — which dog (and photo) a bot message shows, so a reply finds its dog by identity.
* ``DogAudit`` — what happened to dogs that are gone or changed in bulk (removed empty, merged, deleted).
* ``AccuracyNotice`` — whether admins were told the catalog fell below its target accuracy (once per
  fall, whichever bot replica noticed it first).
* ``RateWindow`` — per user, how many photos arrived in the current fixed time window, when bot
  replicas share one photo limit (``DOGBOT_SHARED_RATE_LIMIT``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, UniqueConstraint, false
from sqlmodel import JSON, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dog(SQLModel, table=True):
    """One animal. Its breed is not a column: it comes from the labels of its photos (the catalog rule,
    over all of them) and, until a person answers, from the model's answer on all its photos together."""

    __table_args__ = (UniqueConstraint("year", "serial"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    year: int  # the intake year and the dog's number within it make the code
    serial: int
    name: str | None = Field(default=None, max_length=64)
    sex: str = Field(default="unknown", max_length=8)  # vocabulary.Sex
    age_group: str = Field(default="unknown", max_length=8)  # vocabulary.AgeGroup
    intake_at: datetime = Field(default_factory=utcnow, index=True)
    notes: str = Field(default="", max_length=2000)
    source: str = Field(max_length=16)  # as Photo.source
    sender_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Merged into another dog (two records of one animal): kept, so nothing is lost and old codes resolve.
    # A plain id, no foreign key: a backup restores rows in id order, and a dog may merge into a newer one.
    merged_into: int | None = None


class Photo(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    dog_id: int | None = Field(default=None, foreign_key="dog.id", index=True)
    sha256: str = Field(index=True, unique=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    source: str = Field(max_length=16)  # telegram, ingest, import, simulate
    sender_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    file_name: str | None = Field(default=None, max_length=255)
    format: str | None = Field(default=None, max_length=16)
    size_bytes: int = 0
    width: int = 0
    height: int = 0
    # Cheap image statistics, kept for lighting/size drift checks.
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0


class Prediction(SQLModel, table=True):
    # One prediction per photo and model version: the same photo sent twice at once is classified
    # once, and every sender's buttons point at that one prediction.
    __table_args__ = (Index("uq_prediction_photo_model", "photo_id", "model_version", unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photo.id", index=True)
    model_version: str = Field(index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    is_dog: bool
    dog_probability: float
    breed: str | None = Field(default=None, max_length=64)  # None when not a dog
    confidence: float
    top: list = Field(default_factory=list, sa_type=JSON)  # [{"breed": key, "p": float}, ...]
    embedding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32
    auto_accepted: bool = False
    # Accepted without asking, and picked at random for staff to check (dogbot/core/asking.py): the
    # unbiased sample the catalog's accuracy is estimated from.
    spot_check: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Sure enough to accept, but asked because a look-alike the model cannot name was in the way
    # (dogbot/core/lookalikes.py): asked for a reason that makes it likelier wrong, so left out of
    # what the rule for asking learns from.
    held_back: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Label(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    photo_id: int = Field(foreign_key="photo.id", index=True)
    prediction_id: int | None = Field(default=None, foreign_key="prediction.id")
    # A breed key, or one of the special values mixed_breed / not_a_dog / skip.
    breed: str = Field(max_length=64, index=True)
    # Only with mixed_breed: the breeds the shelter records for the cross (either may be unknown).
    primary_breed: str | None = Field(default=None, max_length=64)
    secondary_breed: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=16)
    user_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Who, in words, where the id alone does not say: an API token's name (its user_id is minus the
    # token's id, so it never meets a Telegram user id).
    user_name: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class CustomBreed(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=64, unique=True)
    aliases: list = Field(default_factory=list, sa_type=JSON)
    added_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Member(SQLModel, table=True):
    """A staff member or admin added from the chat; ``active`` False keeps the history of removals."""

    __table_args__ = (UniqueConstraint("user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    role: str = Field(max_length=8)  # staff | admin
    active: bool = True
    added_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)


class LanguageChoice(SQLModel, table=True):
    """The language one person chose with /language (anyone in the chat: settings list admins too)."""

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    language: str = Field(max_length=8)  # a code of dogbot.i18n.LANGUAGES, e.g. "es"
    updated_at: datetime = Field(default_factory=utcnow)


class RateWindow(SQLModel, table=True):
    """One counter per (kind, user): ``events`` counted in the fixed window that began at ``window_start``."""

    kind: str = Field(primary_key=True, max_length=16)  # photo
    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    window_start: int = Field(sa_column=Column(BigInteger, nullable=False))  # Unix seconds
    events: int = 0


class ApiToken(SQLModel, table=True):
    """A web API client. Only the token's SHA-256 is kept (tokens are random, so no salt is needed);
    a revoked token stays, so the labels it gave keep their name."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    token_sha256: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    revoked_at: datetime | None = None


class PersonName(SQLModel, table=True):
    """The name a staff member or admin goes by in Telegram (kept fresh by the bot), for records
    people read: ASM's comments say "confirmed by Ana López", not a Telegram id."""

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    name: str = Field(max_length=128)
    updated_at: datetime = Field(default_factory=utcnow)


class AsmSend(SQLModel, table=True):
    """One send of one dog to Animal Shelter Manager: the outbox row and, once tried, ASM's answer.

    ``row`` is the CSV row as it was (or will be) sent, without the photo; the latest ``sent`` row
    of a code is what ASM holds, so a change to the dog is a new row to send. ``state`` is a
    ``vocabulary.AsmState``; ``sending_since`` is set before the request and a kill leaves it set, so
    the next sync knows the send was interrupted and asks ASM whether the animal arrived.
    """

    __table_args__ = (Index("ix_asmsend_code_id", "code", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32)
    dog_id: int = Field(index=True)
    kind: str = Field(max_length=8)  # vocabulary.AsmSendKind: new (with the photo) | update
    row: dict = Field(default_factory=dict, sa_type=JSON)
    state: str = Field(max_length=12, index=True)  # vocabulary.AsmState
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    next_try_at: datetime | None = None
    sending_since: datetime | None = None
    sent_at: datetime | None = None
    http_status: int | None = None
    answer: str = Field(
        default="", max_length=2000
    )  # ASM's answer (or why it could not be reached), in short


class DogGroup(SQLModel, table=True):
    """Photos sent together as one dog. The dog is made in the transaction that stores the group's
    first new photo, so no dog exists without a photo, and two bot replicas taking one album's
    photos find the same dog (the key is the primary key)."""

    key: str = Field(primary_key=True, max_length=128)  # tg:<chat>:<media group>, api:<uuid>, ...
    dog_id: int = Field(index=True)
    created_at: datetime = Field(default_factory=utcnow)


class DogMessage(SQLModel, table=True):
    """A bot message that shows a dog (a card, a question about one of its photos): a reply to it,
    or a press on it, finds the dog from here, never from digits in the message's text."""

    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    message_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    dog_id: int = Field(index=True)
    photo_id: int | None = None  # a question about one photo; None: the dog's card
    caption: bool = False  # the card is a photo's caption (/dog): edited as a caption
    created_at: datetime = Field(default_factory=utcnow)


class PressOrder(SQLModel, table=True):
    """The Telegram update of the last press applied per person and thing pressed (``subject``: a
    dog, ``dog:<id>``, or a photo in no dog, ``photo:<id>``). Update ids increase per bot, so they
    order one person's presses across bot replicas: a press older than this is stale."""

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    subject: str = Field(primary_key=True, max_length=40)
    update_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: datetime = Field(default_factory=utcnow)


class DogAudit(SQLModel, table=True):
    """One change to a dog's record that leaves no other trace: a dog removed because a move left it
    without photos, a merge (with the photos it moved, so it can be undone), a deletion."""

    id: int | None = Field(default=None, primary_key=True)
    dog_id: int = Field(index=True)
    code: str = Field(max_length=32, index=True)
    # The removed dog's number: a code is never given twice, even after its dog is gone.
    year: int | None = None
    serial: int | None = None
    action: str = Field(max_length=16)  # vocabulary.DogAuditAction
    detail: dict = Field(default_factory=dict, sa_type=JSON)  # the dog's row, moved photos, ...
    user_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    at: datetime = Field(default_factory=utcnow)


class AccuracyNotice(SQLModel, table=True):
    """Whether the rule of when to ask is strict now as admins were told (dogbot/core/asking.py): the
    replica whose conditional update turns ``strict`` on tells admins; it turns off only once the
    rule is back to the target, so the next fall is told again."""

    name: str = Field(primary_key=True, max_length=32)  # "catalog"
    strict: bool = False
    changed_at: datetime = Field(default_factory=utcnow)
